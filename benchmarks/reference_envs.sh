#!/usr/bin/env bash
# Create the virtual environments of the reference packages that the potential benchmarks
# (potentials.py, potentials_accuracy.py, mace_vs_mace_torch.py) run as subprocesses.
#
# mace-torch pins e3nn 0.4.4 while nequip needs e3nn >= 0.6, so each gets its own venv:
#   benchmarks/.venvs/nequip   nequip (+ e3nn 0.6, ase)
#   benchmarks/.venvs/mace     mace-torch (+ e3nn 0.4.4, ase)
# The benchmarks find them there by default (or pass --nequip-python / --mace-python, or set
# NEQUIP_PYTHON / MACE_PYTHON).
#
# Usage: bash benchmarks/reference_envs.sh [TORCH_SPEC]
#   TORCH_SPEC defaults to "torch==2.13.0" (the CPU build on these machines); give e.g.
#   "torch" to let pip choose. Measured versions: nequip 0.19.1, mace-torch 0.3.16.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
torch_spec="${1:-torch==2.13.0}"
python="${PYTHON:-python3}"
make_env() {  # name, packages...
    local dir="$here/.venvs/$1"
    shift
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import ${IMPORT:?}" 2>/dev/null; then
        echo "$dir: already set up"
        return
    fi
    rm -rf "$dir.tmp"
    "$python" -m venv "$dir.tmp"
    "$dir.tmp/bin/pip" install --quiet --upgrade pip
    "$dir.tmp/bin/pip" install --quiet "$torch_spec"
    "$dir.tmp/bin/pip" install --quiet "$@"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"  # only a complete environment gets the final name
    # a venv records its own path in its scripts; the python binary itself works after the move
    echo "$dir: $("$dir/bin/python" -c "import ${IMPORT}, importlib.metadata as m; print(m.version('$PKG'))")"
}
IMPORT=nequip PKG=nequip make_env nequip "nequip>=0.6" "e3nn>=0.6" ase
IMPORT=mace PKG=mace-torch make_env mace "mace-torch>=0.3.10" ase
