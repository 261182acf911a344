#!/usr/bin/env python3
"""Writes the deployment's configuration from the covenant keys that setup.sh made.

Reads CONFIG_DIR/covenant-pks.json and the templates (demo/global-params.json and
demo/finality-providers.json, copied to TEMPLATE_DIR), then writes:
  CONFIG_DIR/global-params.json        the seed's demo parameters with covenant_pks = our keys
  CONFIG_DIR/finality-providers.json   unchanged copy
  CONFIG_DIR/runtime.toml              the engine's runtime file (both plugins, RabbitMQ sink)
  SIGNER_CONFIG_DIR/covenant-signer.toml  (mode 0600: holds the offline wallet's RPC password)
Everything else comes from the environment (defaults: the compose file's service names).
"""
import json
import os
import sys


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None or v == "":
        sys.exit(f"render-config: set {name}")
    return v


def q(s):
    """A TOML basic string (JSON's escapes are TOML's, with ensure_ascii)."""
    return json.dumps(str(s))


def write(path, text, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    print(f"render-config: wrote {path}", file=sys.stderr)


config_dir = env("CONFIG_DIR", "/config")
signer_dir = env("SIGNER_CONFIG_DIR", "/signer-config")
template_dir = env("TEMPLATE_DIR", "/opt/phase1/templates")

node_host = env("NODE_RPC_HOST", "bitcoindsim:18443")
node_user = env("NODE_RPC_USER", "demo")
node_pass = env("NODE_RPC_PASSWORD", "demo")
rabbitmq_url = env("RABBITMQ_URL", "amqp://guest:guest@rabbitmq:5672/%2f")
rabbitmq_queue_type = env("RABBITMQ_QUEUE_TYPE", "quorum")
wallet_port = int(env("OFFLINE_WALLET_PORT", "18543"))
wallet_user = env("OFFLINE_WALLET_RPCUSER")
wallet_pass = env("OFFLINE_WALLET_RPCPASSWORD")
signer_addr = env("COVENANT_SIGNER_ADDR", "covenant-signer:9791")  # as the engine reaches it
signer_port = int(env("COVENANT_SIGNER_PORT", "9791"))
signer_metrics_port = int(env("COVENANT_SIGNER_METRICS_PORT", "2112"))
engine_listen = env("ENGINE_LISTEN", "0.0.0.0:8090")
engine_data_dir = env("ENGINE_DATA_DIR", "/data/engine")
plugin_dir = env("ENGINE_PLUGIN_DIR", "/opt/engine/plugins")
engine_port = int(engine_listen.rsplit(":", 1)[1])

with open(os.path.join(config_dir, "covenant-pks.json")) as f:
    pks = json.load(f)
if not (isinstance(pks, list) and pks and all(isinstance(k, str) and len(k) == 66 for k in pks)):
    sys.exit(f"render-config: {config_dir}/covenant-pks.json is not a JSON array of 33-byte hex keys")

# Global params: the seed's demo values; only the covenant committee is ours.
with open(os.path.join(template_dir, "global-params.json")) as f:
    params = json.load(f)
for v in params["versions"]:
    if v["covenant_quorum"] > len(pks):
        sys.exit(
            f"render-config: params version {v['version']} needs a covenant quorum of "
            f"{v['covenant_quorum']} but there are only {len(pks)} keys: raise COVENANT_KEYS"
        )
    v["covenant_pks"] = list(pks)
write(os.path.join(config_dir, "global-params.json"), json.dumps(params, indent=2) + "\n")

with open(os.path.join(template_dir, "finality-providers.json")) as f:
    fps = f.read()
json.loads(fps)
write(os.path.join(config_dir, "finality-providers.json"), fps)

# The engine's runtime file (the repository's runtime.toml, with container addresses).
queues = ["active_staking_queue", "unbonding_staking_queue", "withdraw_staking_queue",
          "expired_staking_queue", "btc_info_queue"]
signers = [f"http://{pk}@{signer_addr}" for pk in pks]
engine_self = f"http://127.0.0.1:{engine_port}"


def toml_list(items, indent="  "):
    return "[\n" + "".join(f"{indent}{q(i)},\n" for i in items) + "]"


runtime = f"""# Written by docker/setup.sh (docker/render-config.py); rewritten at every setup run.
[bitcoind]
url = {q("http://" + node_host)}
user = {q(node_user)}
password = {q(node_pass)}
network = "regtest"

[engine]
data_dir = {q(engine_data_dir)}
listen = {q(engine_listen)}
undo_window = 144
poll_interval_ms = 100

[[sink]]
type = "rabbitmq"
url = {q(rabbitmq_url)}
queue_type = {q(rabbitmq_queue_type)}

# Indexer, expiry checker and staking API (/v1/...) of Phase-1.
[[plugin]]
name = "phase1-staking"
wasm = {q(plugin_dir + "/phase1_staking.wasm")}
start_height = 0
config = {{ global_params_file = "global-params.json", finality_providers_file = "finality-providers.json" }}
limits = {{ fuel_per_block = 20_000_000_000, memory_mb = 512, timeout_ms = 30_000 }}
capabilities = {{ queues = {toml_list(queues)} }}

# The unbonding pipeline: one covenant signer (in bitcoindsim-signer's network namespace) serves
# every member's key.
[[plugin]]
name = "unbonding"
wasm = {q(plugin_dir + "/unbonding.wasm")}
start_height = 0
config = {{ requests_url = {q(engine_self + "/plugins/phase1-staking/unbonding-requests")}, global_params_file = "global-params.json", covenant_signers = {toml_list(signers)} }}
limits = {{ job_timeout_ms = 30_000 }}
capabilities = {{ http = {toml_list([engine_self + "/plugins/phase1-staking/", f"http://{signer_addr}/"])}, bitcoind = ["getrawtransaction", "getblockheader", "gettxout", "sendrawtransaction"] }}

# The dashboard (served at /) signs with bitcoindsim's wallet `miner` (regtest only).
[devnet]
wallet = "miner"
global_params_file = "global-params.json"
"""
write(os.path.join(config_dir, "runtime.toml"), runtime)

signer = f"""# Written by docker/setup.sh (docker/render-config.py); rewritten at every setup run.
[btc-config]
host = {q(node_host)}
user = {q(node_user)}
pass = {q(node_pass)}
network = "regtest"

[btc-signer-config]
host = {q(f"127.0.0.1:{wallet_port}/wallet/covenant")}
user = {q(wallet_user)}
pass = {q(wallet_pass)}

[server-config]
host = "0.0.0.0"
port = {signer_port}
read-timeout = 15
write-timeout = 15
idle-timeout = 120
max-content-length = 8192

[metrics-config]
enabled = true
host = "0.0.0.0"
port = {signer_metrics_port}

[signer-app-config]
max-staking-transaction-height = 4294967295
covenant-keys = {json.dumps(pks)}
"""
write(os.path.join(signer_dir, "covenant-signer.toml"), signer, 0o600)
