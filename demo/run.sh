#!/usr/bin/env bash
# The main job. For now (issue 2): start the regtest node (Bitcoin Core consensus through
# libbitcoinkernel), fund a wallet, mine, spend, reorg, and show the chain. The seven-scenario
# Phase-1 demo will grow here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -p regtest-node

DATADIR="${DATADIR:-$(mktemp -d /tmp/regtest-demo.XXXXXX)}"
PORT="${PORT:-18443}"
NODE=target/release/regtest-node
"$NODE" -regtest -datadir="$DATADIR" -rpcport="$PORT" -rpcuser=demo -rpcpassword=demo -fallbackfee=0.0002 \
  >"$DATADIR/node.log" 2>&1 &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true' EXIT

rpc() { # rpc [wallet] method [json-params]
  local path=/ ; if [ "$1" = "-w" ]; then path="/wallet/$2"; shift 2; fi
  local out
  out=$(curl -sS --user demo:demo --data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":${2:-[]}}" "http://127.0.0.1:$PORT$path")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]);
if r.get("error"): sys.exit("RPC error: %s" % r["error"])
v=r["result"]; print(v if isinstance(v,str) else json.dumps(v))' "$out"
}
for _ in $(seq 100); do rpc getblockcount >/dev/null 2>&1 && break; sleep 0.1; done

echo "== regtest node up (datadir $DATADIR, RPC 127.0.0.1:$PORT)"
rpc createwallet '["demo"]' >/dev/null
ADDR=$(rpc -w demo getnewaddress)
echo "== mining 101 blocks to $ADDR (every block validated by libbitcoinkernel)"
rpc generatetoaddress "[101,\"$ADDR\"]" >/dev/null
echo "   balance: $(rpc -w demo getbalance) BTC"
DEST=$(rpc -w demo getnewaddress)
TXID=$(rpc -w demo sendtoaddress "[\"$DEST\",1.5]")
echo "== sent 1.5 BTC in $TXID; mempool: $(rpc getrawmempool)"
TIP=$(rpc generatetoaddress "[1,\"$ADDR\"]" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
echo "== mined $TIP; confirmations of $TXID: $(rpc getrawtransaction "[\"$TXID\",true]" | python3 -c 'import json,sys; print(json.load(sys.stdin)["confirmations"])')"
echo "== 1-block reorg: invalidateblock $TIP"
rpc invalidateblock "[\"$TIP\"]" >/dev/null
echo "   height $(rpc getblockcount), mempool back to: $(rpc getrawmempool)"
NEW=$(rpc generatetoaddress "[1,\"$ADDR\"]" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
echo "   re-mined in $NEW"
echo "== the chain (last 5 blocks)"
H=$(rpc getblockcount)
printf '   %-6s %-64s %s\n' height hash txs
for h in $(seq $((H-4)) "$H"); do
  B=$(rpc getblockhash "[$h]")
  N=$(rpc getblockheader "[\"$B\"]" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nTx"])')
  printf '   %-6s %-64s %s\n' "$h" "$B" "$N"
done
rpc getchaintips | python3 -c 'import json,sys; [print("   tip %(height)s %(status)s %(hash)s" % t) for t in json.load(sys.stdin)]'
rpc stop >/dev/null
wait $NODE_PID || true
trap - EXIT
echo "== node stopped cleanly; chain data kept in $DATADIR"
