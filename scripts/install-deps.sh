#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test this project:
# C/C++ toolchain pieces for libbitcoinkernel (cmake, boost headers, clang) and RocksDB (libclang), wasi-libc and the
# wasm32-wasip2 Rust target for plugins, RabbitMQ for queue tests, curl/python3 for scripts.
# Idempotent: it only calls apt-get when a package is missing.
set -euo pipefail

packages=(cmake libboost-dev clang libclang-dev wasi-libc rabbitmq-server curl python3 pkg-config)
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
