"""The ``equidyn`` command.

Each subcommand lives with the code it drives and is imported only when it is run, so
``equidyn --help`` stays fast and a subcommand's optional dependencies are needed only by it.
A subcommand is a function ``main(argv: list[str]) -> int`` that parses its own arguments.

>>> from equidyn.cli import SUBCOMMANDS
>>> "demo" in SUBCOMMANDS
True
"""

from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("equidyn.demo:main", "a short demonstration of the O(3) core"),
    "quickstart": (
        "equidyn.train.quickstart:main",
        "train a small NequIP on the built-in data, evaluate it and run a short MD",
    ),
    "train": ("equidyn.train.cli:train_main", "train an interatomic potential from a YAML config"),
    "evaluate": ("equidyn.train.cli:evaluate_main", "evaluate a saved model on a data file"),
    "md": ("equidyn.calculators.md:main", "run NVE or Langevin MD with a saved model"),
    "export-lammps": ("equidyn.calculators.lammps:main", "export a saved model for LAMMPS"),
    "nbody": ("equidyn.experiments.nbody:main", "train a model on the charged N-body task"),
    "climode": (
        "equidyn.fields.climode_cli:main",
        "train ClimODE and an autoregressive ResNet on generated tracers; RMSE/ACC by lead",
    ),
    "dino": (
        "equidyn.fields.dino_cli:main",
        "DINo against a grid CNN on generated Navier-Stokes fields (subsampled grids)",
    ),
}


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = ["usage: equidyn <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Run 'equidyn <command> --help' for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``equidyn`` console script (and ``python -m equidyn``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from equidyn import __version__

        print(f"equidyn {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(
            f"equidyn: unknown command {name!r}; expected one of {sorted(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    target, _ = SUBCOMMANDS[name]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(rest) or 0)
    except KeyboardInterrupt:
        print("\nequidyn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
