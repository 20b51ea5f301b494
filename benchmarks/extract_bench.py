"""Extraction benchmark: one big Markdown file, or a tree of many Markdown files.

    python benchmarks/extract_bench.py make-big /tmp/big.md --mb 11
    python benchmarks/extract_bench.py make-tree /tmp/tree --files 5000 --links 500
    /usr/bin/time -v python benchmarks/extract_bench.py parse /tmp/big.md
    /usr/bin/time -v python benchmarks/extract_bench.py parse /tmp/tree

`parse` reads each file and runs `parse_document` on it (the per-file cost of `--dump`
without the CLI), then prints files, links, seconds and files/s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

_SECTION = """\
## Section {n}: setting up `tool-{n}` (part {n})

Read the [installation guide](https://docs.example.org/install/{n}) first, then
see ![diagram](https://img.example.org/d/{n}.png "A diagram") and the
[reference][ref-{n}] for details. Autolink: <https://auto.example.net/{n}>.
A bare URL https://bare.example.com/path/{n}?q=1&r=2, then more prose that goes on
for a while so that paragraphs have a realistic length and *emphasis*, **strong**
and `inline code https://code.example.com/{n}` appear too.

| Name | Link | Notes |
|------|------|-------|
| a{n} | [docs](https://table.example.org/a/{n}) | first |
| b{n} | <https://table.example.org/b/{n}> | second |

```sh
curl https://fenced.example.com/{n}
```

- item with [a relative link](../other/page-{n}.md#intro) and [an anchor](#section-{n})
- item with <a href="https://html.example.org/{n}">inline HTML</a>
  > quoted https://quote.example.com/{n}

<div class="note">
<a href="https://block.example.org/{n}">an HTML block</a>
</div>

[ref-{n}]: https://ref.example.org/{n}
"""


def make_big(path: Path, megabytes: float) -> None:
    """Write a Markdown file of about `megabytes` MB, of varied real-looking sections."""
    target = int(megabytes * 1_000_000)
    with path.open("w", encoding="utf-8") as out:
        size, n = 0, 0
        out.write("# A big document\n\n")
        while size < target:
            chunk = _SECTION.format(n=n)
            out.write(chunk)
            size += len(chunk)
            n += 1


def make_tree(root: Path, files: int, links: int) -> None:
    """Write `files` Markdown files of about `links` links each under `root`."""
    rng = random.Random(1)
    per_section = 13  # links outside code, per section
    for i in range(files):
        folder = root / f"d{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        sections = [
            _SECTION.format(n=rng.randrange(10**6)) for _ in range(max(1, links // per_section))
        ]
        (folder / f"page{i}.md").write_text("# Page\n\n" + "".join(sections), encoding="utf-8")


def parse(target: Path) -> None:
    """Parse every document under `target` (or `target` itself) and print the figures."""
    from fetchpool._extract import document_type, parse_document

    paths = sorted(target.rglob("*.md")) if target.is_dir() else [target]
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        count += len(parse_document(text, document_type(path.name)).links)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{len(paths)} files, {count} links, {seconds:.2f} s ({cpu:.2f} s CPU), "
        f"{len(paths) / seconds:.0f} files/s"
    )


def main(argv: list[str]) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    big = sub.add_parser("make-big")
    big.add_argument("path", type=Path)
    big.add_argument("--mb", type=float, default=11)
    tree = sub.add_parser("make-tree")
    tree.add_argument("root", type=Path)
    tree.add_argument("--files", type=int, default=5000)
    tree.add_argument("--links", type=int, default=500)
    run = sub.add_parser("parse")
    run.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make-big":
        make_big(args.path, args.mb)
    elif args.command == "make-tree":
        make_tree(args.root, args.files, args.links)
    else:
        parse(args.target)


if __name__ == "__main__":
    main(sys.argv[1:])
