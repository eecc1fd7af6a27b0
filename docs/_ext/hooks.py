"""MkDocs hooks: put the benchmark plots into the site without copying them into ``docs/``.

The benchmarks write their figures under ``benchmarks/results/``; the pages link to them as
``benchmarks/results/<name>/<file>.png`` (a path relative to the site root), and this hook adds
every such PNG to the build so that links are checked and the pictures are published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for png in sorted((ROOT / "benchmarks" / "results").rglob("*.png")):
        rel = png.relative_to(ROOT).as_posix()
        files.append(
            File(
                rel,
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
