#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration against real node processes, conformance
# vectors from ../shared/research-data when present), after installing what is missing.
# Tests build in release mode: libbitcoinkernel is C++ and one optimised build serves tests,
# benchmarks and the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo build --release --workspace --all-targets
cargo test --release --workspace
