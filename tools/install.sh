#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment; ./.venv is this checkout's thin layer on top of it.
#
# The packages are installed once into an environment cached under ${CSD_MM_CACHE:-~/.cache/csd_mm}, keyed by a
# hash of the requirement files, so a second run (and CI on the same machine) costs seconds; a fresh machine
# builds it from the pinned requirements (docs/environment.md says why each pin is what it is).
#
# csd_mm itself is NOT installed into that shared environment (an editable install there would point at
# whichever checkout installed last, and every other checkout would silently import that one's code). Instead
# ./.venv is a per-checkout venv without packages whose site-packages holds one .pth file: this checkout's root
# first on sys.path, then the cached environment's site-packages. `.venv/bin/python` (and every process it
# starts with sys.executable) imports this checkout's csd_mm, wherever it runs from.
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

# This checkout's layer. Earlier versions linked .venv to the cached environment itself: drop that link.
overlay="$root/.venv"
if [ -L "$overlay" ]; then
  rm "$overlay"
fi
# rebuilt when missing or made for another cached environment (other requirements may mean another Python)
if [ ! -x "$overlay/bin/python" ] || [ "$(cat "$overlay/base_environment" 2>/dev/null)" != "$venv" ]; then
  rm -rf "$overlay"
  "$venv/bin/python" -m venv --without-pip "$overlay"
fi
base_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
overlay_site=$("$overlay/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# .pth lines run in order: a path line appends this checkout, then addsitedir appends the cached packages (and
# runs their own .pth files), so this checkout's csd_mm comes before anything the cache may hold.
printf '%s\nimport site; site.addsitedir(%s)\n' "$root" "'$base_site'" > "$overlay_site/csd_mm_checkout.pth"
echo "$venv" > "$overlay/base_environment"
# The cached environment's console scripts (pytest, torchrun, ...) re-pointed at this layer's interpreter.
for script in "$venv"/bin/*; do
  name=$(basename "$script")
  [ -f "$script" ] && [ ! -e "$overlay/bin/$name" ] || continue
  if head -n 1 "$script" | grep -Eq "^#!/[^ ]*/bin/python[0-9.]*$"; then
    sed "1s|^#!.*|#!$overlay/bin/python|" "$script" > "$overlay/bin/$name"
    chmod +x "$overlay/bin/$name"
  fi
done
echo "[install] ready: $overlay/bin/python (csd_mm from $root)"
