"""Where `--save` puts bodies: one readable, unique, safe file name per URL, written atomically.

Layout: flat. Every URL becomes one file directly inside the save directory, named
``host[_port]_seg1_seg2[@query][.ext]`` (for example ``example.org_docs_guide@page=2.html``).
A wget-style ``host/path`` tree was rejected because a single name per URL can never create a
directory, so it can never traverse upwards, never meet a file where a directory must go
(``/a`` and ``/a/b`` in one list) and never pass through a symlinked directory planted inside
the save directory; the path stays readable in the name, and the query sits before the
extension (wget's ``@`` for ``?``) so ``?page=1`` and ``?page=2`` differ and the file type
still shows.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import threading
import unicodedata
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from ._errors import SettingError

__all__ = ["SaveDir", "file_name_for_url"]

# Well under the 255-byte limit of common file systems, so that a "-N" collision suffix and
# the ".<name>.part-<hex>" temporary name built from it still fit.
MAX_NAME_BYTES = 200
_HASH_CHARS = 10
_TEMP_MARK = ".part-"
_INDEX = "index.html"
# Path separators of any platform, plus what Windows forbids in a name.
_FORBIDDEN = frozenset('/\\<>:"|?*')
# Control and invisible formatting characters (bidi overrides can disguise an extension).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in "0123456789¹²³"}
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")


def _clean(text: str) -> str:
    """Decode percent-escapes once, replace every unsafe character with `_`, trim the end."""
    decoded = unicodedata.normalize("NFC", unquote(text, errors="replace"))
    safe = "".join(
        "_" if ch in _FORBIDDEN or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES else ch
        for ch in decoded
    )
    # Windows drops trailing dots and spaces, which would make two names one.
    return safe.rstrip(". ")


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", errors="surrogatepass")).hexdigest()[:_HASH_CHARS]


def _readable_host(host: str) -> str:
    if "xn--" not in host:
        return host
    try:
        return host.encode("ascii").decode("idna")
    except UnicodeError:  # not valid IDNA 2003: the punycode is readable enough
        return host


def _split_name(url: str) -> tuple[str, str]:
    """The (stem, extension) of the file name for `url`, before uniqueness and reserved names."""
    # Browsers read "\" as "/" before the query, so it separates segments here too.
    end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    parts = urlsplit(url[:end].replace("\\", "/") + url[end:])
    host = _clean(_readable_host(parts.hostname or "")) or "_"
    try:
        port = parts.port
    except ValueError:  # out of range: the fetch fails anyway; the name needs no port
        port = None
    if port is not None:
        host = f"{host}_{port}"

    raw_segments = parts.path.split("/")
    segments = [s for s in (_clean(raw) for raw in raw_segments) if s]
    if not segments or not _clean(raw_segments[-1]):
        segments.append(_INDEX)

    match = _EXTENSION.search(segments[-1])
    extension = match.group() if match else ""
    stem = "_".join([host, *segments])
    stem = stem[: len(stem) - len(extension)]

    query = _clean(parts.query)
    if query:
        stem = f"{stem}@{query}"

    # No hidden files, and nothing that looks like our temporary files or a command option.
    stem = stem.lstrip(". ")
    if not stem or stem.startswith("-"):
        stem = "_" + stem

    if len((stem + extension).encode("utf-8")) > MAX_NAME_BYTES:
        room = MAX_NAME_BYTES - len(extension.encode("utf-8")) - 1 - _HASH_CHARS
        stem = f"{_truncate_utf8(stem, room)}~{_url_hash(url)}"
    return stem, extension


def _avoid_reserved(name: str) -> str:
    # Windows reserves device names with any extension: CON, con.txt, "AUX .log".
    base = name.split(".", 1)[0].rstrip(" ").upper()
    return "_" + name if base in _WINDOWS_RESERVED else name


def file_name_for_url(url: str, attempt: int = 0) -> str:
    """The file name `url` is saved under; `attempt` > 0 adds a `-attempt` collision suffix.

    Pure: the same URL always gives the same name. Raises `ValueError` on a URL that
    `urllib.parse.urlsplit` cannot split (such as an unclosed IPv6 bracket).
    """
    stem, extension = _split_name(url)
    return _numbered(stem, extension, attempt)


def _numbered(stem: str, extension: str, attempt: int) -> str:
    suffix = f"-{attempt}" if attempt else ""
    return _avoid_reserved(f"{stem}{suffix}{extension}")


class SaveDir:
    """The `--save` directory: hands out final paths and commits temporary files to them.

    Safe to share between threads and tasks. A body is written to `open_temp()`'s file, then
    `commit()` renames it to its final name, or `discard()` removes it, so a final name never
    holds a partial body.

    Args:
        root: the directory; created (with parents) if missing.
        overwrite: let `commit()` replace an existing file instead of raising `FileExistsError`.

    Raises:
        SettingError: (for `save_dir`) `root` cannot be created, is not a directory, or is
            not writable.
    """

    def __init__(self, root: Path, *, overwrite: bool = False) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SettingError("save_dir", str(root), "not a directory") from None
        except OSError as exc:
            raise SettingError("save_dir", str(root), f"cannot create it: {exc.strerror}") from None
        if not root.is_dir():
            raise SettingError("save_dir", str(root), "not a directory")
        if not os.access(root, os.W_OK | os.X_OK):
            raise SettingError("save_dir", str(root), "not writable")
        self.root = root
        self.overwrite = overwrite
        self._real_root = root.resolve()
        self._lock = threading.Lock()
        self._taken: set[str] = set()  # case-folded: "A" and "a" are one file on macOS/Windows
        self._next_attempt: dict[str, int] = {}  # keeps many copies of one URL O(1) each

    def reserve(self, url: str) -> Path:
        """A final path under `root` for `url`, never handed out before in this run.

        Without `overwrite`, a name that already exists on disk is skipped too.

        Raises:
            ValueError: the URL cannot be split, or (defence in depth) the name would leave `root`.
        """
        with self._lock:
            stem, extension = _split_name(url)  # once: each attempt only changes the suffix
            first = _numbered(stem, extension, 0).casefold()
            attempt = self._next_attempt.get(first, 0)
            while True:
                name = _numbered(stem, extension, attempt)
                folded = name.casefold()
                # Without --overwrite, a file already on disk keeps its name and the
                # download takes the next free one (as `curl --no-clobber` does).
                free = self.overwrite or not os.path.lexists(self.root / name)
                if folded not in self._taken and free:
                    break
                attempt += 1
            final = self._checked(name)
            self._taken.add(folded)
            self._next_attempt[first] = attempt + 1
        return final

    def _checked(self, name: str) -> Path:
        final = self.root / name
        # Resolve only the directory: a symlink planted at the final name must not make a
        # safe name look unsafe (commit replaces or refuses the link, never writes through it).
        inside = final.parent.resolve() == self._real_root and final.name == name
        if not inside or name in {"", ".", ".."} or any(sep in name for sep in "/\\\0"):
            raise ValueError(f"refusing to save outside {self.root}: {name!r}")
        return final

    def open_temp(self, final: Path) -> tuple[BinaryIO, Path]:
        """A new, exclusively created temporary file next to `final`, open for binary writing.

        Close the file before `commit()` or `discard()`.
        """
        if final.parent != self.root:
            raise ValueError(f"not a path reserved under {self.root}: {final}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        flags |= getattr(os, "O_NOFOLLOW", 0)
        for _ in range(100):
            temp = final.with_name(f".{final.name}{_TEMP_MARK}{secrets.token_hex(4)}")
            try:
                fd = os.open(temp, flags, 0o666)
            except FileExistsError:
                continue
            return open(fd, "wb"), temp
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(final))

    def commit(self, temp: Path, final: Path) -> None:
        """Give the finished temporary file its final name; the temporary name is gone after.

        Without `overwrite`, an existing `final` (file, directory or symlink) is never replaced,
        even if it appeared after `reserve()`.

        Raises:
            FileExistsError: `final` exists and `overwrite` is off; the temporary file is removed.
            OSError: the rename failed; the temporary file is removed.
        """
        try:
            if self.overwrite:
                os.replace(temp, final)
            else:
                self._move_no_clobber(temp, final)
        except BaseException:
            self.discard(temp)
            raise

    @staticmethod
    def _move_no_clobber(temp: Path, final: Path) -> None:
        if os.name == "nt":
            os.rename(temp, final)  # refuses an existing target on Windows
            return
        try:
            # link() fails with EEXIST instead of replacing, and never follows a link at `final`.
            os.link(temp, final, follow_symlinks=False)
        except FileExistsError:
            raise FileExistsError(
                errno.EEXIST, "file exists (pass --overwrite to replace it)", str(final)
            ) from None
        except OSError as exc:
            if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}:
                raise
            # No hard links here (FAT, some network file systems): claim the name exclusively,
            # then replace our own empty placeholder.
            try:
                os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                raise FileExistsError(
                    errno.EEXIST, "file exists (pass --overwrite to replace it)", str(final)
                ) from None
            try:
                os.replace(temp, final)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(final)
                raise
        else:
            os.unlink(temp)

    def discard(self, temp: Path) -> None:
        """Remove a temporary file from `open_temp()`; best effort, and a no-op if it is gone."""
        if temp.parent != self.root or not temp.name.startswith(".") or _TEMP_MARK not in temp.name:
            raise ValueError(f"not a temporary file of {self.root}: {temp}")
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
