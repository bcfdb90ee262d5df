#!/usr/bin/env bash
# Regenerate requirements.lock: a fresh virtual environment gets the newest releases pyproject.toml allows (torch at
# the project's CPU pin), and `pip freeze` writes every package in it, direct and transitive. Run it after
# `bash .ci/run --latest` passed, then run `bash .ci/run` on the new lock and commit both.
#   bash scripts/lock.sh            (from the repository root; about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip install -q -U pip
bash .ci/install.sh fresh
{
    echo "# Every package CI installs, at the versions the suite was last verified with (bash .ci/run)."
    echo "# Made by: bash scripts/lock.sh ($(date -u +%Y-%m-%d), Python $(python -c 'import platform; print(platform.python_version())'), $(uname -m))."
    echo "# Use: pip install torch==2.13.0 && pip install -e . -c requirements.lock"
    bash .ci/freeze.sh
} > requirements.lock
rm -rf "$(dirname "$venv")"
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
