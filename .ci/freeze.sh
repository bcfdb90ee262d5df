#!/usr/bin/env bash
# The active environment's packages as requirements.lock writes them: `pip freeze` without the editable project
# or comments, and torch's local build tag dropped (torch==2.13.0+cpu -> torch==2.13.0, which a CUDA build of the
# same release also satisfies). Used by scripts/lock.sh (the lock) and .ci/run --latest (its difference from it).
set -euo pipefail
pip freeze --exclude-editable | grep -v '^#' | sed -E 's/^(torch==[0-9.]+)\+[a-z0-9.]+$/\1/'
