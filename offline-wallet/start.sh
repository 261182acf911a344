#!/usr/bin/env bash
# Starts the offline wallet: `regtest-node -walletonly` (wallets only, loopback RPC, keys never leave).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat >&2 <<USAGE
Usage: offline-wallet/start.sh [--datadir DIR] [--port PORT] [--rpcuser USER] [--rpcpassword PASS]
                               [--bin PATH] [--background] [-- more regtest-node options]

Starts regtest-node -walletonly: descriptor wallets and their RPCs only (no chain, mining, peers or
REST), listening on 127.0.0.1 only, with RPC authentication, refusing to export private keys.
Each option may come from the environment instead:
  --datadir      OFFLINE_WALLET_DATADIR      required; wallets live in DIR/regtest/wallets
  --port         OFFLINE_WALLET_PORT         JSON-RPC port on 127.0.0.1 (default $OW_DEFAULT_PORT)
  --rpcuser      OFFLINE_WALLET_RPCUSER      required
  --rpcpassword  OFFLINE_WALLET_RPCPASSWORD  required (no '#', no line breaks)
  --bin          REGTEST_NODE_BIN            default: target/release/regtest-node of this repository
  --background   start it in the background: log DIR/offline-wallet.log, pid DIR/offline-wallet.pid;
                 returns once it answers RPC
Without --background it runs in the foreground until Ctrl-C or the 'stop' RPC.
USAGE
  exit 2
}

datadir=${OFFLINE_WALLET_DATADIR:-}
OW_PORT=${OFFLINE_WALLET_PORT:-$OW_DEFAULT_PORT}
OW_RPCUSER=${OFFLINE_WALLET_RPCUSER:-}
OW_RPCPASSWORD=${OFFLINE_WALLET_RPCPASSWORD:-}
bin=${REGTEST_NODE_BIN:-$here/../target/release/regtest-node}
background=0
extra=()
while (($#)); do
  case "$1" in
    --datadir | --port | --rpcuser | --rpcpassword | --bin)
      (($# >= 2)) || { echo "offline-wallet: $1 needs a value" >&2; usage; }
      case "$1" in
        --datadir) datadir=$2 ;;
        --port) OW_PORT=$2 ;;
        --rpcuser) OW_RPCUSER=$2 ;;
        --rpcpassword) OW_RPCPASSWORD=$2 ;;
        --bin) bin=$2 ;;
      esac
      shift 2
      ;;
    --background) background=1 && shift ;;
    -h | --help) usage ;;
    --) shift && extra=("$@") && break ;;
    *) echo "offline-wallet: unknown argument '$1'" >&2 && usage ;;
  esac
done

[ -n "$datadir" ] || { echo "offline-wallet: no data directory: give --datadir or OFFLINE_WALLET_DATADIR" >&2; usage; }
[ -n "$OW_RPCUSER" ] || { echo "offline-wallet: no RPC user: give --rpcuser or OFFLINE_WALLET_RPCUSER" >&2; usage; }
[ -n "$OW_RPCPASSWORD" ] || {
  echo "offline-wallet: no RPC password: give --rpcpassword or OFFLINE_WALLET_RPCPASSWORD" >&2
  usage
}
ow_check_port "$OW_PORT"
case "$OW_RPCUSER$OW_RPCPASSWORD" in
  *'#'* | *$'\n'* | *$'\r'*) ow_die "rpcuser/rpcpassword may not contain '#' or line breaks (bitcoin.conf syntax)" ;;
esac
if [[ "$OW_RPCUSER" =~ [[:space:]]$ || "$OW_RPCPASSWORD" =~ [[:space:]]$ ]]; then
  ow_die "rpcuser/rpcpassword may not end with whitespace (bitcoin.conf syntax trims it)"
fi
[ -x "$bin" ] || ow_die "no regtest-node binary at $bin: build it with 'cargo build --release -p regtest-node' or give --bin"

mkdir -p "$datadir"
datadir=$(cd "$datadir" && pwd)
# The credentials go in a config file only the owner can read, not on the command line.
conf="$datadir/offline-wallet.conf"
(
  umask 077
  printf '# written by offline-wallet/start.sh at each start\nrpcuser=%s\nrpcpassword=%s\n' \
    "$OW_RPCUSER" "$OW_RPCPASSWORD" >"$conf"
)
args=(-walletonly -regtest "-datadir=$datadir" "-conf=$conf" -rpcbind=127.0.0.1 "-rpcport=$OW_PORT" ${extra[@]+"${extra[@]}"})

if ((background == 0)); then
  exec "$bin" "${args[@]}"
fi

ow_need_tools
pidfile="$datadir/offline-wallet.pid"
log="$datadir/offline-wallet.log"
if [ -f "$pidfile" ] && ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null | grep -qv Z; then
  ow_die "an offline wallet already runs from $datadir (pid $(cat "$pidfile")); stop it first (RPC 'stop')"
fi
nohup "$bin" "${args[@]}" >>"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$log" >&2
    ow_die "regtest-node -walletonly exited at startup (log: $log)"
  fi
  if ow_call uptime '[]' >/dev/null 2>&1; then
    echo "offline wallet running: pid $pid, RPC http://127.0.0.1:$OW_PORT, log $log" >&2
    exit 0
  fi
  sleep 0.1
done
ow_die "regtest-node -walletonly (pid $pid) did not answer RPC within 30 s (log: $log)"
