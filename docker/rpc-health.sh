#!/bin/sh
# rpc-health PORT METHOD: the containers' healthcheck. Exits 0 when the bitcoind-style JSON-RPC
# server on 127.0.0.1:PORT answers METHOD (no parameters) without an error, 1 otherwise.
# Credentials: RPC_USER/RPC_PASSWORD, else OFFLINE_WALLET_RPCUSER/OFFLINE_WALLET_RPCPASSWORD.
set -eu
port=${1:?usage: rpc-health PORT METHOD}
method=${2:?usage: rpc-health PORT METHOD}
user=${RPC_USER:-${OFFLINE_WALLET_RPCUSER:-}}
pass=${RPC_PASSWORD:-${OFFLINE_WALLET_RPCPASSWORD:-}}
exec curl -sf --max-time 5 -o /dev/null -u "$user:$pass" -H 'Content-Type: application/json' \
  --data-binary "{\"jsonrpc\":\"1.0\",\"id\":\"health\",\"method\":\"$method\",\"params\":[]}" \
  "http://127.0.0.1:$port/"
