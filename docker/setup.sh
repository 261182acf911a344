#!/usr/bin/env bash
# The one-shot `setup` service of docker/compose.yml. It runs in bitcoindsim-signer's network
# namespace (the offline wallet answers on 127.0.0.1 only) and:
#   1. waits for the offline wallet's RPC;
#   2. creates the encrypted wallet `covenant` with COVENANT_KEYS keys
#      (offline-wallet/create-covenant-keys.sh), or, on a later run, reuses the keys it recorded;
#   3. unlocks the wallet for COVENANT_UNLOCK_SECONDS (it locks again whenever
#      bitcoindsim-signer restarts: run the setup service again then);
#   4. writes CONFIG_DIR/{covenant-pks.json, global-params.json, finality-providers.json,
#      runtime.toml} and SIGNER_CONFIG_DIR/covenant-signer.toml (docker/render-config.py);
#   5. runs `covenant-signer check` against the node and the wallet (SETUP_CHECK=0 skips it).
# Every other service starts after it exited 0. Safe to run again: it changes nothing that exists.
set -euo pipefail

: "${OFFLINE_WALLET_RPCUSER:?set OFFLINE_WALLET_RPCUSER (RPC user of the offline wallet)}"
: "${OFFLINE_WALLET_RPCPASSWORD:?set OFFLINE_WALLET_RPCPASSWORD (RPC password of the offline wallet)}"
: "${COVENANT_WALLET_PASSPHRASE:?set COVENANT_WALLET_PASSPHRASE (encrypts the covenant wallet)}"
OFFLINE_WALLET_SCRIPTS=${OFFLINE_WALLET_SCRIPTS:-/opt/offline-wallet}
COVENANT_KEYS=${COVENANT_KEYS:-3}
COVENANT_UNLOCK_SECONDS=${COVENANT_UNLOCK_SECONDS:-100000000}
CONFIG_DIR=${CONFIG_DIR:-/config}
SIGNER_CONFIG_DIR=${SIGNER_CONFIG_DIR:-/signer-config}
SETUP_CHECK=${SETUP_CHECK:-1}
here=$(cd "$(dirname "$0")" && pwd)
export CONFIG_DIR SIGNER_CONFIG_DIR

# ow_call / ow_rpc / ow_json_str talk to 127.0.0.1:$OW_PORT with these credentials.
OW_PORT=${OFFLINE_WALLET_PORT:-18543}
OW_RPCUSER=$OFFLINE_WALLET_RPCUSER
OW_RPCPASSWORD=$OFFLINE_WALLET_RPCPASSWORD
# shellcheck source=../offline-wallet/lib.sh
. "$OFFLINE_WALLET_SCRIPTS/lib.sh"
ow_need_tools
ow_check_port "$OW_PORT"

log() { echo "setup: $*" >&2; }
die() {
  echo "setup: error: $*" >&2
  exit 1
}

if ! [[ "$COVENANT_UNLOCK_SECONDS" =~ ^[0-9]+$ ]] ||
  ((10#$COVENANT_UNLOCK_SECONDS < 1 || 10#$COVENANT_UNLOCK_SECONDS > 100000000)); then
  die "COVENANT_UNLOCK_SECONDS must be 1 to 100000000 (the cap of Core), not '$COVENANT_UNLOCK_SECONDS'"
fi
COVENANT_UNLOCK_SECONDS=$((10#$COVENANT_UNLOCK_SECONDS))
mkdir -p "$CONFIG_DIR" "$SIGNER_CONFIG_DIR"

log "waiting for the offline wallet on 127.0.0.1:$OW_PORT"
reason=""
for _ in $(seq 1 120); do
  if reason=$(ow_call uptime '[]'); then
    reason=""
    break
  fi
  sleep 0.5
done
[ -z "$reason" ] || die "the offline wallet does not answer: $reason"

pks_file="$CONFIG_DIR/covenant-pks.json"
has_wallet() { # has_wallet LIST_JSON: is 'covenant' in a listwalletdir/listwallets answer?
  printf '%s' "$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
names = [w["name"] for w in r["wallets"]] if isinstance(r, dict) else r
sys.exit(0 if "covenant" in names else 1)'
}

if has_wallet "$(ow_rpc listwalletdir '[]')"; then
  [ -s "$pks_file" ] || die "the offline wallet already has a 'covenant' wallet but $pks_file is missing, \
so its keys are unknown here; start over with empty volumes (docker compose -f docker/compose.yml down -v)"
  log "reusing the covenant wallet and the keys in $pks_file"
  if ! has_wallet "$(ow_rpc listwallets '[]')"; then
    ow_rpc loadwallet '["covenant"]' >/dev/null
  fi
else
  if [ -s "$pks_file" ]; then
    log "warning: $pks_file exists but the offline wallet has no 'covenant' wallet (its volume was reset): \
making new keys; the engine's state was built with the old covenant keys, reset its volume too"
  fi
  log "creating the covenant wallet with $COVENANT_KEYS key(s)"
  tmp="$pks_file.tmp"
  "$OFFLINE_WALLET_SCRIPTS/create-covenant-keys.sh" "$COVENANT_KEYS" >"$tmp"
  mv "$tmp" "$pks_file"
fi
log "covenant keys: $(cat "$pks_file")"

pass=$(ow_json_str "$COVENANT_WALLET_PASSPHRASE")
ow_rpc walletpassphrase "[$pass, $COVENANT_UNLOCK_SECONDS]" covenant >/dev/null
log "covenant wallet unlocked for $COVENANT_UNLOCK_SECONDS s"

python3 "$here/render-config.py"

if [ "$SETUP_CHECK" = 1 ]; then
  log "covenant-signer check (full node and offline wallet)"
  covenant-signer check --config "$SIGNER_CONFIG_DIR/covenant-signer.toml" --params "$CONFIG_DIR/global-params.json"
fi
log "done"
