#!/usr/bin/env bash
# Runs once inside the new envs/mfa.yaml env: makes polysent (this checkout) importable for
# scripts/align.py without pulling torch & co. into the MFA env.
set -euo pipefail
python -m pip install --no-cache-dir --no-deps -e .
