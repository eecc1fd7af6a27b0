"""Run the tutorials' code: what CI executes and what draws the pictures in the pages.

A tutorial is a Markdown page in ``docs/tutorials/`` whose ``python`` fences run top to bottom
in one namespace, as a reader would paste them into one session; a fence whose info string is
``python skip`` is shown but not run (commands that take minutes, say). Pictures are written by
the code itself to ``img/<name>.png`` relative to the working directory, and the page shows them
with ``![...](img/<name>.png)``; so the pictures in the site are always the ones the code makes.

    python docs/_ext/tutorials.py            # run every tutorial in a scratch directory
    python docs/_ext/tutorials.py --write    # ... in docs/tutorials/, refreshing img/*.png
    python docs/_ext/tutorials.py 05         # only the pages whose name starts with 05
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_IMAGE = re.compile(r"!\[[^\]]*\]\((img/[^)\s]+)\)")


def pages() -> list[Path]:
    """The tutorial pages, in order (``NN-name.md``)."""
    return sorted(TUTORIALS.glob("[0-9][0-9]-*.md"))


def code_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line number, source)`` of every fence tagged ``python`` (not ``python skip``)."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        info = m.group(1).split()
        if info[:1] == ["python"] and "skip" not in info[1:]:
            out.append((text.count("\n", 0, m.start()) + 2, m.group(2)))
    return out


def images(page: Path) -> list[str]:
    """The ``img/...`` pictures a page shows."""
    return _IMAGE.findall(page.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_page(page: Path, workdir: Path) -> dict[str, object]:
    """Execute the page's code in ``workdir`` (which gets an ``img/`` folder); return its
    namespace. A failing block raises with the page and line it starts on."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    (workdir / "img").mkdir(parents=True, exist_ok=True)
    namespace: dict[str, object] = {"__name__": "__tutorial__"}
    with _working_directory(workdir):
        for line, source in code_blocks(page):
            code = compile("\n" * (line - 1) + source, str(page), "exec")
            exec(code, namespace)  # noqa: S102 - the page's own code, as a reader runs it
        try:
            import matplotlib.pyplot as plt

            plt.close("all")
        except ImportError:
            pass
    return namespace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("only", nargs="*", help="page-name prefixes (default: all)")
    ap.add_argument("--write", action="store_true", help="run in docs/tutorials/ (refresh img/)")
    args = ap.parse_args(argv)
    chosen = [p for p in pages() if not args.only or any(p.name.startswith(o) for o in args.only)]
    for page in chosen:
        t0 = time.perf_counter()
        if args.write:
            run_page(page, TUTORIALS)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                run_page(page, Path(tmp))
        print(f"{page.name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
