#!/usr/bin/env bash
# Creates the encrypted descriptor wallet `covenant` in a running offline wallet, makes N keys in
# it and prints their compressed public keys as a JSON array (the covenant_pks of global params).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat >&2 <<USAGE
Usage: offline-wallet/create-covenant-keys.sh N [--port PORT] [--rpcuser USER] [--rpcpassword PASS]

In the offline wallet on 127.0.0.1 (started with offline-wallet/start.sh), creates the descriptor
wallet 'covenant' encrypted with COVENANT_WALLET_PASSPHRASE and loaded at every start, makes N keys
(getnewaddress "" bech32 -> getaddressinfo -> pubkey) and prints them as a JSON array of 33-byte
compressed public keys on stdout, e.g. ["02ab…","03cd…"]. The wallet is left locked.
  N              number of covenant keys, 1 to 100
  --port         OFFLINE_WALLET_PORT         (default $OW_DEFAULT_PORT)
  --rpcuser      OFFLINE_WALLET_RPCUSER      required
  --rpcpassword  OFFLINE_WALLET_RPCPASSWORD  required
  COVENANT_WALLET_PASSPHRASE                 required: the wallet's encryption passphrase
USAGE
  exit 2
}

n=""
OW_PORT=${OFFLINE_WALLET_PORT:-$OW_DEFAULT_PORT}
OW_RPCUSER=${OFFLINE_WALLET_RPCUSER:-}
OW_RPCPASSWORD=${OFFLINE_WALLET_RPCPASSWORD:-}
while (($#)); do
  case "$1" in
    --port | --rpcuser | --rpcpassword)
      (($# >= 2)) || { echo "offline-wallet: $1 needs a value" >&2; usage; }
      case "$1" in
        --port) OW_PORT=$2 ;;
        --rpcuser) OW_RPCUSER=$2 ;;
        --rpcpassword) OW_RPCPASSWORD=$2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage ;;
    -*) echo "offline-wallet: unknown option '$1'" >&2 && usage ;;
    *)
      [ -z "$n" ] || { echo "offline-wallet: one N only (got '$n' and '$1')" >&2; usage; }
      n=$1 && shift
      ;;
  esac
done

[ -n "$n" ] || { echo "offline-wallet: how many keys? give N" >&2; usage; }
[[ "$n" =~ ^[0-9]+$ ]] && ((10#$n >= 1 && 10#$n <= 100)) || {
  echo "offline-wallet: N must be a whole number from 1 to 100, not '$n'" >&2
  usage
}
n=$((10#$n))
[ -n "$OW_RPCUSER" ] && [ -n "$OW_RPCPASSWORD" ] || {
  echo "offline-wallet: give the RPC credentials: --rpcuser/--rpcpassword or OFFLINE_WALLET_RPCUSER/OFFLINE_WALLET_RPCPASSWORD" >&2
  usage
}
[ -n "${COVENANT_WALLET_PASSPHRASE:-}" ] || {
  echo "offline-wallet: set COVENANT_WALLET_PASSPHRASE to the passphrase that encrypts the covenant wallet" >&2
  usage
}
ow_check_port "$OW_PORT"
ow_need_tools

wallet=covenant
existing=$(ow_rpc listwalletdir '[]')
if printf '%s' "$existing" | python3 -c 'import json,sys; sys.exit(0 if any(w["name"]=="covenant" for w in json.load(sys.stdin)["wallets"]) else 1)'; then
  ow_die "a wallet named '$wallet' already exists in this offline wallet; its keys stay as they are (getaddressinfo on its addresses shows them). Use a new data directory for a new committee."
fi

pass=$(ow_json_str "$COVENANT_WALLET_PASSPHRASE")
# createwallet name disable_private_keys blank passphrase avoid_reuse descriptors load_on_startup
ow_rpc createwallet "[\"$wallet\", false, false, $pass, false, true, true]" >/dev/null
keys=()
for _ in $(seq 1 "$n"); do
  addr=$(ow_rpc getnewaddress '["", "bech32"]' "$wallet")
  info=$(ow_rpc getaddressinfo "[$addr]" "$wallet")
  keys+=("$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pubkey"])')")
done
echo "offline-wallet: created wallet '$wallet' (encrypted, locked) with $n covenant key(s)" >&2
printf '%s\n' "${keys[@]}" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))'
