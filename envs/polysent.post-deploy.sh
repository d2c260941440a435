#!/usr/bin/env bash
# Runs once inside the new envs/polysent.yaml env, from the workflow's working directory (the
# polysent checkout): installs polysent and its exact pinned Python stack (constraints.txt).
set -euo pipefail
if ! grep -qs '^name = "polysent"' pyproject.toml; then
  echo "polysent.post-deploy.sh: run snakemake from the polysent checkout (no pyproject.toml in $PWD)" >&2
  exit 1
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# torch comes from its own index (CPU by default, CUDA if POLYSENT_TORCH_INDEX says so).
grep -v '^torch==' constraints.txt >"$constraints"
python -m pip install --no-cache-dir "torch==2.13.0" \
  --index-url "${POLYSENT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
python -m pip install --no-cache-dir -c "$constraints" numpy
python -m pip install --no-cache-dir -c "$constraints" --no-build-isolation aeneas-ng
python -m pip install --no-cache-dir -c "$constraints" -e .
