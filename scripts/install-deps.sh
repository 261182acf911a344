#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test this project:
# C/C++ toolchain pieces for libbitcoinkernel (cmake, boost headers, clang) and RocksDB (libclang), wasi-libc and the
# wasm32-wasip2 Rust target for plugins, RabbitMQ for queue tests, curl/python3 for scripts,
# Chromium and the dashboard's npm packages (playwright-core) for the browser tests.
# Idempotent: it only calls apt-get when a package is missing.
set -euo pipefail

packages=(cmake libboost-dev clang libclang-dev wasi-libc rabbitmq-server curl python3 pkg-config chromium)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cd "$(dirname "$0")/.."
# rust-toolchain.toml pins the toolchain; make sure its wasm target is present.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "==> adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi
# The dashboard's browser tests drive Chromium through playwright-core (pinned in package-lock.json).
if [ ! -d dashboard/node_modules/playwright-core ]; then
  echo "==> installing the dashboard's npm packages (npm ci in dashboard/)"
  (cd dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
