"""Outside text shown literally: no URL, reason phrase or error can steer a terminal.

Every character that is not printable (controls, DEL, C1, bidi overrides and other
format characters, line separators) is written as a visible escape such as `\\x1b`.
One definition serves every output: the table, plain, csv, github and the documents.
"""

from __future__ import annotations

import json


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_ESCAPES = {code: _escape(chr(code)) for code in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """`text` with every non-printable character written as a visible escape."""
    if text.isprintable():  # the common case, checked in C
        return text
    text = text.translate(_ESCAPES)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str) -> str:
    """Like `printable`, keeping the line breaks of a multi-line document."""
    return "\n".join(printable(line) for line in text.split("\n"))


def printable_json(text: str) -> str:
    """A JSON text with the non-printable characters that `json.dumps(ensure_ascii=False)`
    leaves raw (DEL, C1, format characters) written as JSON escapes; still valid JSON."""
    if text.isprintable():
        return text
    # Such characters can only stand inside JSON strings, where \\u escapes mean the same;
    # the line breaks of an indented document are structure, and are kept.
    return "".join(c if c.isprintable() or c == "\n" else json.dumps(c)[1:-1] for c in text)
