#!/usr/bin/env bash
# Creates .venv (when missing or incomplete) and installs everything WIML needs, including the
# native builds of GeodisTK, SimpleCRF (NumPy-1 era C++ sources) and FastGeodis (needs torch first).
# Idempotent: a complete environment is detected by a stamp file and the script returns in seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${WIML_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
stamp="$venv/.wiml-installed"
want="$(cat "$root/requirements.txt" "$root/requirements-native.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[bootstrap] setting up $venv (first run takes a few minutes: torch, then native builds)" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install --quiet --upgrade "pip<26" "setuptools<81" wheel
# NumPy first: the native packages compile against it without build isolation.
$pip install --quiet "$(grep -E '^numpy==' "$root/requirements.txt")"
$pip install --quiet -r "$root/requirements.txt"
echo "[bootstrap] building GeodisTK and SimpleCRF (C++)" >&2
CPPFLAGS="-DNPY_IN_ARRAY=NPY_ARRAY_IN_ARRAY" $pip install --quiet --no-build-isolation \
  "$(grep -E '^GeodisTK==' "$root/requirements-native.txt")" \
  "$(grep -E '^SimpleCRF==' "$root/requirements-native.txt")"
echo "[bootstrap] building FastGeodis (C++/OpenMP, about 2-3 minutes)" >&2
$pip install --quiet --no-build-isolation "$(grep -E '^FastGeodis==' "$root/requirements-native.txt")"
$pip install --quiet --no-build-isolation --no-deps -e "$root"
"$venv/bin/python" -c "import torch, SimpleITK, monai, GeodisTK, denseCRF, maxflow, FastGeodis, wiml" 
echo "$want" > "$stamp"
echo "[bootstrap] done" >&2
