"""Every tutorial page runs, top to bottom, and draws the pictures it shows.

The pages' code is executed by ``docs/_ext/tutorials.py`` (the same runner that refreshes the
pictures with ``--write``), each page in a fresh scratch directory; the pages share one data
cache (per test worker), as a reader's pages share ``~/.cache/equidyn``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tutorials", ROOT / "docs" / "_ext" / "tutorials.py")
assert _spec is not None and _spec.loader is not None
tutorials = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tutorials)

PAGES = tutorials.pages()


def test_the_eight_tutorials_of_the_talk_are_there():
    """Pages 01-08 follow the talk; later systems add pages 09, 10, ... (numbered without
    gaps)."""
    assert len(PAGES) >= 8
    assert [p.name[:2] for p in PAGES] == [f"{i:02d}" for i in range(1, len(PAGES) + 1)]
    for page in PAGES:
        assert tutorials.code_blocks(page), f"{page.name} has no code to run"


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("equidyn-cache")


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs_and_draws_its_pictures(page, tmp_path, monkeypatch, data_cache):
    monkeypatch.setenv("EQUIDYN_CACHE", str(data_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    try:
        tutorials.run_page(page, tmp_path)
    finally:
        torch.set_num_threads(threads)
    for image in tutorials.images(page):
        assert (tmp_path / image).is_file(), f"{page.name}: the code did not draw {image}"
        assert (tutorials.TUTORIALS / image).is_file(), f"{image} is not committed"
