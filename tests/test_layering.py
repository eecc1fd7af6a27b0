"""The packages of equidyn import each other in one direction only.

From the bottom up: the file and cache helpers; ``o3``; ``nn`` (and ``testing``, ``ga``); ``graph``;
``models`` and ``data``; ``dynamics`` and ``calculators``; ``train`` (its quickstart runs MD
with a calculator); ``experiments`` and ``fields``; the demo, the package root and the command
line. A module may import its own package and the layers below its own, never a layer above
or a neighbour in its layer; nothing imports the ``benchmarks`` scripts. Every import counts,
also inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "equidyn"

LAYERS: list[set[str]] = [
    {"_cache", "_io", "_deprecation"},
    {"o3", "groups"},  # groups: finite groups C_N, D_N and their image convolutions
    {"nn", "testing", "ga"},  # ga: the geometric algebra G(3,0,1) and its layers
    {"graph"},
    {"models", "data", "canonical"},
    {"dynamics", "calculators", "paths"},  # paths: transition path sampling
    {"train"},
    {"experiments", "fields"},  # fields: ClimODE, DINo and their data (use the trainer)
    {"demo"},
    {"__init__"},  # the package root (its __version__ is read by the command line)
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """``equidyn.train.trainer`` -> ``train``; ``equidyn`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``equidyn...`` or ``benchmarks...`` import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "equidyn":  # from equidyn import nn, o3 / __version__
                found += [(node.lineno, f"equidyn.{a.name}") for a in node.names if a.name in RANK]
                found += [(node.lineno, "equidyn") for a in node.names if a.name not in RANK]
            else:
                found.append((node.lineno, node.module))
    return [(n, m) for n, m in found if m.split(".")[0] in ("equidyn", "benchmarks")]


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer():
    units = {
        _unit("equidyn." + ".".join(p.relative_to(SRC).with_suffix("").parts)) for p in _modules()
    }
    assert units <= set(RANK), f"give these a layer in LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_down_the_layers(path):
    own = _unit("equidyn." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    bad = []
    for line, module in _imports(path):
        if module.split(".")[0] == "benchmarks":
            bad.append(f"line {line}: imports {module} (nothing imports the benchmarks)")
            continue
        target = _unit(module)
        if target != own and RANK.get(target, len(LAYERS)) >= RANK[own]:
            bad.append(f"line {line}: {own} (layer {RANK[own]}) imports {module} (layer "
                       f"{RANK.get(target, '?')})")  # fmt: skip
    assert not bad, "\n".join(bad)


def test_the_check_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from equidyn.train.trainer import Trainer\n")
    assert _imports(path) == [(2, "equidyn.train.trainer")]


# files whose text may still cite the project's internal notes, each with the reason; the
# lead removes an entry when the file's owner has carried the fact into docs/
def test_the_project_stands_alone():
    """Code and docs cite docs/ and papers, never notes users do not have."""
    root = SRC.parents[1]
    texts = [root / "README.md", *root.glob("docs/*.md"), *root.glob("benchmarks/*.py")]
    texts += [*root.glob("examples/*.py"), *_modules()]
    cited = [
        str(p.relative_to(root))
        for p in texts
        if any(word in p.read_text() for word in ("anchors.md", "anchors §", "design.md"))
    ]
    assert not cited, f"these cite anchors.md, which users do not have: {cited}"
