#!/usr/bin/env bash
# Builds everything the demo starts: the regtest node, the engine, the covenant signer, the demo
# runner, the two Wasm plugins, and (for scenario 8, the live upgrade) a rebuilt phase1-staking
# component: the same sources built with PHASE1_STAKING_BUILD=rebuilt, so its code, and so its
# version, differ from the running one. It is rebuilt only when the plugin changed.
# --plugins-only: the Wasm parts only (the tests build the binaries themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--plugins-only" ]; then
  # The whole workspace, as scripts/test.sh builds it (a -p subset would unify features
  # differently and rebuild shared dependencies on every switch).
  cargo build --release --workspace
fi
cargo build --release --target wasm32-wasip2 -p phase1-staking -p unbonding
w=target/wasm32-wasip2/release
if [ ! -f "$w/phase1_staking_rebuilt.wasm" ] || [ "$w/phase1_staking.wasm" -nt "$w/phase1_staking_rebuilt.wasm" ]; then
  echo "demo/build.sh: building the rebuilt phase1-staking component for scenario 8" >&2
  PHASE1_STAKING_BUILD=rebuilt cargo build --release --target wasm32-wasip2 -p phase1-staking
  cp "$w/phase1_staking.wasm" "$w/phase1_staking_rebuilt.wasm.tmp"
  mv "$w/phase1_staking_rebuilt.wasm.tmp" "$w/phase1_staking_rebuilt.wasm"
  cargo build --release --target wasm32-wasip2 -p phase1-staking
  touch "$w/phase1_staking_rebuilt.wasm"
  if cmp -s "$w/phase1_staking.wasm" "$w/phase1_staking_rebuilt.wasm"; then
    echo "demo/build.sh: the rebuilt component is identical to the running one; scenario 8 needs a different build" >&2
    exit 1
  fi
fi
