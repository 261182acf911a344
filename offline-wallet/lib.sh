# shellcheck shell=bash
# Shared by start.sh and create-covenant-keys.sh: JSON-RPC to the offline wallet with curl (JSON is
# built and read with python3, so no jq is needed). Secrets (RPC password, wallet passphrase) go
# to curl through a config file descriptor and stdin, never through a command line that `ps` shows.

OW_DEFAULT_PORT=18543

ow_die() {
  echo "offline-wallet: $*" >&2
  exit 1
}

ow_need_tools() {
  local t
  for t in curl python3; do
    command -v "$t" >/dev/null 2>&1 || ow_die "$t is required: apt-get install $t (or bash scripts/install-deps.sh)"
  done
}

ow_check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && (("$1" >= 1 && "$1" <= 65535)) || ow_die "port '$1' is not a number from 1 to 65535"
}

# A JSON string literal for $1 (read from stdin, so the value never appears in a process list).
ow_json_str() {
  printf '%s' "$1" | python3 -c 'import json,sys; sys.stdout.write(json.dumps(sys.stdin.read()))'
}

# curl's config line carrying basic auth for OW_RPCUSER:OW_RPCPASSWORD.
ow_curl_auth() {
  local s="$OW_RPCUSER:$OW_RPCPASSWORD"
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf 'user = "%s"\n' "$s"
}

# ow_call METHOD PARAMS_JSON [WALLET]: prints the result as JSON and returns 0, or prints why not
# and returns 1. Talks to 127.0.0.1:$OW_PORT (the offline wallet listens on loopback only).
ow_call() {
  local method=$1 params=$2 wallet=${3:-} path=/ reply status
  [ -n "$wallet" ] && path="/wallet/$wallet"
  reply=$(printf '{"jsonrpc":"1.0","id":"offline-wallet","method":"%s","params":%s}' "$method" "$params" |
    curl -sS --max-time 120 -K <(ow_curl_auth) -H 'Content-Type: application/json' --data-binary @- \
      -w '\n%{http_code}' "http://127.0.0.1:$OW_PORT$path" 2>&1) || {
    echo "no offline wallet answers on 127.0.0.1:$OW_PORT (${reply%%$'\n'*}): start it with offline-wallet/start.sh, or give its port"
    return 1
  }
  status=${reply##*$'\n'}
  reply=${reply%$'\n'*}
  if [ "$status" = 401 ]; then
    echo "RPC authentication failed on 127.0.0.1:$OW_PORT: give the rpcuser/rpcpassword the wallet was started with"
    return 1
  fi
  printf '%s' "$reply" | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
except ValueError:
    print("unexpected reply from the offline wallet (is 127.0.0.1 port '"$OW_PORT"' another service?)")
    sys.exit(1)
if r.get("error"):
    print("%s (code %s)" % (r["error"]["message"], r["error"]["code"]))
    sys.exit(1)
print(json.dumps(r["result"]))
'
}

# ow_rpc METHOD PARAMS_JSON [WALLET]: as ow_call, but exits with the error.
ow_rpc() {
  local out
  out=$(ow_call "$@") || ow_die "$1: $out"
  printf '%s\n' "$out"
}
