#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and links it to ./.venv.
#
# The environment is cached under ${CSD_MM_CACHE:-~/.cache/csd_mm}, keyed by a hash of the requirement
# files, so a second run (and CI on the same machine) costs seconds; a fresh machine builds
# it from the pinned requirements (docs/environment.md says why each pin is what it is).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python_bin="${PYTHON:-python3}"
cache="${CSD_MM_CACHE:-$HOME/.cache/csd_mm}"
key=$(cat requirements/*.txt | sha256sum | cut -c1-16)
venv="$cache/venv-$key"

if [ ! -f "$venv/.complete" ]; then
  echo "[install] building environment $venv (first time on this machine: a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade "pip<26" wheel
  "$venv/bin/python" -m pip install -q -r requirements/runtime.txt -r requirements/tests.txt
  touch "$venv/.complete"
else
  echo "[install] reusing environment $venv"
fi
# The package itself: an editable install, so configs, tools and tests see this checkout.
"$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
ln -sfn "$venv" .venv
echo "[install] ready: $root/.venv/bin/python"
