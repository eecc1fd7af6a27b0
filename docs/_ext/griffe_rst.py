"""Griffe extension: turn the reStructuredText bits of equidyn's docstrings into Markdown.

The docstrings are written to read well in a terminal (``help()``) and to run as doctests, so
they use a little reST: ``:math:`x```, ``.. math::`` blocks, ``:class:`Foo``` roles and bare
``>>>`` examples. The site renders Markdown, so before mkdocstrings parses a docstring this
rewrites: inline math to ``$x$`` and math blocks to ``$$ ... $$`` (MathJax through
pymdownx.arithmatex), roles to inline code, and each run of ``>>>`` lines (with its output) to a
fenced ``pycon`` block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|obj|exc|const):`~?([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_LITERAL = re.compile(r"(?<=\S)::$", re.M)  # "text::" introduces a literal (code) block


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, first = m.group(1), m.group(2).strip()
        body = [first] if first else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        out.append(f"{indent}$$")
        out.extend(f"{indent}{b}" for b in body if b)
        out.append(f"{indent}$$")
        out.append("")
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _doctest_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    fenced = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = " " * _indent(line)
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return out


def rst_to_markdown(text: str) -> str:
    r"""The rewrite on one docstring.

    >>> print(rst_to_markdown("Norm :math:`|x|`, see :class:`~equidyn.o3.Irreps`."))
    Norm $|x|$, see `equidyn.o3.Irreps`.
    >>> print(rst_to_markdown("In a model::"))
    In a model:
    """
    text = _MATH.sub(lambda m: f"${m.group(1)}$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    lines = _math_blocks(text.splitlines())
    lines = [_LITERAL.sub(":", line) for line in lines]
    return "\n".join(_doctest_blocks(lines))


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
