#!/usr/bin/env bash
# The main job: the seed's seven-scenario Phase-1 demo plus a live plugin upgrade, every part
# started locally as its own process. Installs what is missing, builds, then runs
# target/release/phase1-demo with the given options (--help lists them), e.g.
#   bash demo/run.sh                      # fast mode (blocks mined when needed)
#   bash demo/run.sh --block-interval 10  # the seed's real-time mode
#   bash demo/run.sh --keep-running       # leave the system up afterwards (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash demo/build.sh
exec target/release/phase1-demo "$@"
