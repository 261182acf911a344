//! Starts the Phase-1 system as the seed deployed it, each part its own process:
//! the regtest node (bitcoindsim), the offline wallet holding the covenant keys
//! (bitcoindsim-signer), a RabbitMQ broker, the covenant signer, and the engine running
//! `phase1-staking` (indexer, expiry checker, staking API) and `unbonding` (the pipeline).
//! The global parameters are the seed's demo configuration with the keys the offline wallet made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::processes::{port, wait_for, Supervisor};
use crate::rpc::Rpc;

pub const BTC: u64 = 100_000_000;
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
pub const QUEUES: [&str; 5] = [
    "active_staking_queue",
    "unbonding_staking_queue",
    "withdraw_staking_queue",
    "expired_staking_queue",
    "btc_info_queue",
];

/// Where the programs and plugins are.
pub struct Build {
    pub bin_dir: PathBuf,
    pub wasm_dir: PathBuf,
    /// The repository (for demo/finality-providers.json).
    pub root: PathBuf,
}

impl Build {
    /// Next to this executable (target/release), or one level up when it runs from deps/.
    pub fn locate(bin_dir: Option<PathBuf>) -> Result<Build> {
        let bin_dir = match bin_dir {
            Some(d) => d,
            None => {
                let exe = std::env::current_exe()?;
                let dir = exe.parent().unwrap().to_path_buf();
                if dir.join("engine").is_file() {
                    dir
                } else {
                    dir.parent().unwrap().to_path_buf()
                }
            }
        };
        for b in ["engine", "regtest-node", "covenant-signer"] {
            if !bin_dir.join(b).is_file() {
                bail!(
                    "no {b} binary in {}: build the workspace first (`cargo build --release --workspace`), or run `bash demo/run.sh` which builds everything",
                    bin_dir.display()
                );
            }
        }
        let wasm_dir = bin_dir.join("../wasm32-wasip2/release");
        for w in ["phase1_staking.wasm", "unbonding.wasm"] {
            if !wasm_dir.join(w).is_file() {
                bail!(
                    "no plugin {w} in {}: build the plugins with `cargo build --release --target wasm32-wasip2 -p phase1-staking -p unbonding` (demo/run.sh does)",
                    wasm_dir.display()
                );
            }
        }
        let root = bin_dir.join("../..").canonicalize()?;
        Ok(Build { bin_dir, wasm_dir, root })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

pub struct Options {
    pub work: PathBuf,
    pub block_interval: u32,
    pub rabbitmq: bool,
}

/// The running system's public interfaces.
pub struct Deployment {
    pub node: Rpc,
    /// The engine's HTTP endpoint: the staking API (/v1), /status, /metrics, plugin routes.
    pub api: String,
    /// The engine's runtime file (for `engine plugin upgrade`).
    pub runtime: PathBuf,
    pub params_file: PathBuf,
    pub params_text: String,
    /// amqp:// URL, or None with the jsonl sink.
    pub rabbitmq: Option<String>,
    pub rabbitmq_management: Option<String>,
    /// Folder of the jsonl sink's files (without RabbitMQ).
    pub queues_dir: Option<PathBuf>,
    pub signer: String,
    pub wallet: String,
    bitcoind: String,
    staking_plugin: StakingPlugin,
    pub engine_bin: PathBuf,
    pub work: PathBuf,
    /// Started elsewhere: the demo has no engine CLI or data dir of it.
    pub attached: bool,
}

pub const NODE_USER: &str = "demo";
pub const NODE_PASS: &str = "demo";

pub fn start(sup: &Supervisor, build: &Build, opt: &Options) -> Result<Deployment> {
    let w = &opt.work;
    let step = |s: &str| {
        sup.doing(&format!("starting: {s}"));
        println!(" {s}");
    };

    // bitcoindsim: the chain, mining every block_interval seconds in real-time mode.
    let node_port = port(18443);
    let node_dir = w.join("node");
    std::fs::create_dir_all(&node_dir)?;
    step(&format!("regtest node (bitcoindsim) on 127.0.0.1:{node_port}"));
    let mut cmd = Command::new(build.bin("regtest-node"));
    cmd.args(["-regtest", "-txindex", "-fallbackfee=0.0002", "-wallet=staker", "-rpcbind=127.0.0.1"])
        .arg(format!("-datadir={}", node_dir.display()))
        .arg(format!("-rpcport={node_port}"))
        .arg(format!("-rpcuser={NODE_USER}"))
        .arg(format!("-rpcpassword={NODE_PASS}"))
        .arg(format!("-blockinterval={}", opt.block_interval));
    sup.spawn("regtest-node", "regtest node", &mut cmd)?;
    let node = Rpc::new("the regtest node", &format!("http://127.0.0.1:{node_port}"), NODE_USER, NODE_PASS);
    wait_for("the regtest node's RPC", Duration::from_secs(60), || node.height().ok())?;

    // bitcoindsim-signer: the offline wallet, loopback only, holding the covenant keys.
    let wallet_port = port(18543);
    let wallet_dir = w.join("offline-wallet");
    std::fs::create_dir_all(&wallet_dir)?;
    let wallet_pass = random_hex(16);
    step(&format!("offline wallet (bitcoindsim-signer) on 127.0.0.1:{wallet_port}"));
    let mut cmd = Command::new("bash");
    cmd.arg(build.root.join("offline-wallet/start.sh"))
        .arg("--datadir")
        .arg(&wallet_dir)
        .args(["--port", &wallet_port.to_string(), "--rpcuser", "signer", "--rpcpassword", &wallet_pass])
        .arg("--bin")
        .arg(build.bin("regtest-node"));
    sup.spawn("offline-wallet", "offline wallet", &mut cmd)?;
    let wallet = Rpc::new("the offline wallet", &format!("http://127.0.0.1:{wallet_port}"), "signer", &wallet_pass);
    wait_for("the offline wallet's RPC", Duration::from_secs(60), || wallet.call("uptime", json!([])).ok())?;
    let keys = covenant_keys(build, &wallet, wallet_port, &wallet_pass, 3)?;
    println!("   covenant keys made in the offline wallet: {}", keys.join(", "));

    // The seed's demo global parameters with those keys; the seed's finality providers.
    let params_text = serde_json::to_string_pretty(&demo_params(&build.root.join("demo/global-params.json"), &keys)?)?;
    phase1_primitives::params::GlobalParams::parse(&params_text)
        .map_err(|e| anyhow::anyhow!("the demo's global parameters do not parse: {e}"))?;
    let params_file = w.join("global-params.json");
    std::fs::write(&params_file, &params_text)?;
    let fp_file = w.join("finality-providers.json");
    std::fs::copy(build.root.join("demo/finality-providers.json"), &fp_file)
        .context("copying demo/finality-providers.json")?;

    // RabbitMQ (or the jsonl sink).
    let (rabbitmq, rabbitmq_management) = if opt.rabbitmq {
        let (url, mgmt) = start_rabbitmq(sup, w)?;
        (Some(url), Some(mgmt))
    } else {
        println!(" no RabbitMQ (--no-rabbitmq): the engine writes the queues as jsonl files");
        (None, None)
    };

    // The covenant signer: one process for the three members, as in the seed.
    let signer_port = port(9791);
    let metrics_port = port(2112);
    let signer_conf = w.join("covenant-signer.toml");
    std::fs::write(
        &signer_conf,
        format!(
            "[btc-config]\nhost = \"127.0.0.1:{node_port}\"\nuser = \"{NODE_USER}\"\npass = \"{NODE_PASS}\"\nnetwork = \"regtest\"\n\n\
             [btc-signer-config]\nhost = \"127.0.0.1:{wallet_port}/wallet/covenant\"\nuser = \"signer\"\npass = \"{wallet_pass}\"\n\n\
             [server-config]\nhost = \"127.0.0.1\"\nport = {signer_port}\n\n\
             [metrics-config]\nenabled = true\nhost = \"127.0.0.1\"\nport = {metrics_port}\n\n\
             [signer-app-config]\ncovenant-keys = [{}]\n",
            keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
        ),
    )?;
    step(&format!("covenant signer on 127.0.0.1:{signer_port}"));
    let mut cmd = Command::new(build.bin("covenant-signer"));
    cmd.arg("start").arg("--config").arg(&signer_conf).arg("--params").arg(&params_file);
    sup.spawn("covenant-signer", "covenant signer", &mut cmd)?;
    wait_for("the covenant signer to listen", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", signer_port)).ok()
    })?;

    // The engine with phase1-staking and unbonding.
    let engine_port = port(8090);
    let api = format!("http://127.0.0.1:{engine_port}");
    let runtime = w.join("runtime.toml");
    let sink = match &rabbitmq {
        Some(url) => format!("[[sink]]\ntype = \"rabbitmq\"\nurl = \"{url}\"\nqueue_type = \"quorum\"\n"),
        None => format!("[[sink]]\ntype = \"jsonl\"\ndir = \"{}\"\n", w.join("queues").display()),
    };
    let signers: Vec<String> = keys.iter().map(|k| format!("\"http://{k}@127.0.0.1:{signer_port}\"")).collect();
    let bitcoind = format!(
        "[bitcoind]\nurl = \"http://127.0.0.1:{node_port}\"\nuser = \"{NODE_USER}\"\npassword = \"{NODE_PASS}\"\nnetwork = \"regtest\"\n"
    );
    let staking_plugin = StakingPlugin { params: params_file.clone(), fps: fp_file.clone() };
    std::fs::write(
        &runtime,
        format!(
            "# Written by phase1-demo for this run.\n{bitcoind}\n{engine}\n{sink}\n{staking}\n\
             [[plugin]]\nname = \"unbonding\"\nwasm = \"{unbonding}\"\nstart_height = 0\n\
             config = {{ requests_url = \"{api}/plugins/phase1-staking/unbonding-requests\", global_params_file = \"{params}\", \
             covenant_signers = [{signers}], job_interval_ms = 250 }}\n\
             limits = {{ job_timeout_ms = 30_000 }}\n\
             capabilities = {{ http = [\"{api}/plugins/phase1-staking/\", \"http://127.0.0.1:{signer_port}/\"], \
             bitcoind = [\"getrawtransaction\", \"getblockheader\", \"gettxout\", \"sendrawtransaction\"] }}\n\n\
             # The dashboard signs with the node's staker wallet (regtest only).\n\
             [devnet]\nwallet = \"{wallet}\"\nglobal_params_file = \"{params}\"\n",
            wallet = crate::chain::WALLET,
            engine = engine_section(&w.join("engine"), engine_port),
            staking = staking_plugin.section(&build.wasm_dir.join("phase1_staking.wasm").canonicalize()?),
            unbonding = build.wasm_dir.join("unbonding.wasm").canonicalize()?.display(),
            params = params_file.display(),
            signers = signers.join(", "),
        ),
    )?;
    let check = Command::new(build.bin("engine")).arg("check").arg(&runtime).output()?;
    if !check.status.success() {
        bail!("engine check {} failed: {}", runtime.display(), String::from_utf8_lossy(&check.stderr));
    }
    step(&format!("engine (phase1-staking: indexer, expiry checker, staking API; unbonding: the pipeline) on {api}"));
    let mut cmd = Command::new(build.bin("engine"));
    cmd.arg("run").arg(&runtime).env("ENGINE_LOG", "info");
    sup.spawn("engine", "engine", &mut cmd)?;
    wait_for("the engine's HTTP endpoint", Duration::from_secs(120), || {
        let v = get_json(&format!("{api}/status/phase1-staking")).ok()?;
        v["status"].is_string().then_some(())
    })?;

    Ok(Deployment {
        node,
        api,
        runtime,
        params_file,
        params_text,
        rabbitmq,
        rabbitmq_management,
        queues_dir: (!opt.rabbitmq).then(|| w.join("queues")),
        signer: format!("http://127.0.0.1:{signer_port}"),
        wallet: format!("http://127.0.0.1:{wallet_port}"),
        bitcoind,
        staking_plugin,
        engine_bin: build.bin("engine"),
        work: w.clone(),
        attached: false,
    })
}

fn engine_section(data_dir: &Path, port: u16) -> String {
    format!(
        "[engine]\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:{port}\"\npoll_interval_ms = 50\nundo_window = 144\n",
        data_dir.display()
    )
}

/// The `phase1-staking` plugin's section of a runtime file.
pub struct StakingPlugin {
    params: PathBuf,
    fps: PathBuf,
}

impl StakingPlugin {
    fn section(&self, wasm: &Path) -> String {
        let queues: Vec<String> = QUEUES.iter().map(|q| format!("\"{q}\"")).collect();
        format!(
            "[[plugin]]\nname = \"phase1-staking\"\nwasm = \"{}\"\nstart_height = 0\n\
             config = {{ global_params_file = \"{}\", finality_providers_file = \"{}\" }}\n\
             limits = {{ fuel_per_block = 20_000_000_000, memory_mb = 512, timeout_ms = 30_000 }}\n\
             capabilities = {{ queues = [{}] }}\n",
            wasm.display(),
            self.params.display(),
            self.fps.display(),
            queues.join(", ")
        )
    }
}

impl Deployment {
    /// A deployment started elsewhere (e.g. docker/compose.yml), reached through its URLs only.
    pub fn attached(node: Rpc, api: &str, params_file: &Path, rabbitmq: Option<String>) -> Result<Deployment> {
        let params_text = std::fs::read_to_string(params_file)
            .with_context(|| format!("reading the deployment's global parameters {}", params_file.display()))?;
        phase1_primitives::params::GlobalParams::parse(&params_text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", params_file.display()))?;
        Ok(Deployment {
            node,
            api: api.trim_end_matches('/').to_string(),
            runtime: PathBuf::new(),
            params_file: params_file.to_path_buf(),
            params_text,
            rabbitmq,
            rabbitmq_management: None,
            queues_dir: None,
            signer: "(attached deployment)".into(),
            wallet: "(attached deployment)".into(),
            bitcoind: String::new(),
            staking_plugin: StakingPlugin { params: params_file.to_path_buf(), fps: PathBuf::new() },
            engine_bin: PathBuf::new(),
            work: PathBuf::new(),
            attached: true,
        })
    }

    /// A second engine's runtime file: `phase1-staking` alone from `wasm`, its own data dir and
    /// port, the jsonl sink, the same node (a reference to compare digests and events with).
    pub fn reference_runtime(&self, wasm: &Path) -> Result<(PathBuf, String)> {
        let dir = self.work.join("reference");
        std::fs::create_dir_all(&dir)?;
        let port = port(0);
        let runtime = dir.join("runtime.toml");
        std::fs::write(
            &runtime,
            format!(
                "# The reference engine of scenario 8.\n{}\n{}\n[[sink]]\ntype = \"jsonl\"\ndir = \"{}\"\n\n{}",
                self.bitcoind,
                engine_section(&dir.join("engine"), port),
                dir.join("queues").display(),
                self.staking_plugin.section(wasm)
            ),
        )?;
        Ok((runtime, format!("http://127.0.0.1:{port}")))
    }
}

/// The seed's demo global configuration (`demo/global-params.json`: v0 from 115, cap 10 BTC,
/// 1–10 BTC; v1 from 130, cap 20 BTC, 2–20 BTC; depth 2, quorum 2 of 3, unbonding time 3, fee
/// 500), plus our v2 from 150 (cap 30 BTC, for the dashboard), with `keys` as every version's
/// covenant committee.
pub fn demo_params(template: &Path, keys: &[String]) -> Result<Value> {
    let text = std::fs::read_to_string(template).with_context(|| format!("reading {}", template.display()))?;
    let mut params: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", template.display()))?;
    for v in params["versions"].as_array_mut().context("no \"versions\" in the demo params")? {
        v["covenant_pks"] = json!(keys);
    }
    Ok(params)
}

/// Makes `n` covenant keys with the operator's script (`offline-wallet/create-covenant-keys.sh`:
/// an encrypted descriptor wallet `covenant`), then unlocks it for the covenant signer. The
/// passphrase is random and not kept.
fn covenant_keys(build: &Build, wallet: &Rpc, port: u16, password: &str, n: usize) -> Result<Vec<String>> {
    let passphrase = random_hex(16);
    let out = Command::new("bash")
        .arg(build.root.join("offline-wallet/create-covenant-keys.sh"))
        .arg(n.to_string())
        .args(["--port", &port.to_string()])
        .env("OFFLINE_WALLET_RPCUSER", "signer")
        .env("OFFLINE_WALLET_RPCPASSWORD", password)
        .env("COVENANT_WALLET_PASSPHRASE", &passphrase)
        .output()
        .context("running offline-wallet/create-covenant-keys.sh")?;
    if !out.status.success() {
        bail!("offline-wallet/create-covenant-keys.sh failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let keys: Vec<String> = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("create-covenant-keys.sh printed {}", String::from_utf8_lossy(&out.stdout)))?;
    // Unlocked while the system runs (the signer signs only then).
    wallet.wallet("covenant", "walletpassphrase", json!([passphrase, 10_000_000]))?;
    Ok(keys)
}

/// A private broker: its own node name, data, ports and management page, in the work folder.
fn start_rabbitmq(sup: &Supervisor, w: &Path) -> Result<(String, String)> {
    if !Path::new(RABBITMQ_SERVER).is_file() {
        bail!(
            "RabbitMQ is not installed ({RABBITMQ_SERVER} is missing): run `bash scripts/install-deps.sh` \
             (installs rabbitmq-server), or pass --no-rabbitmq to use the engine's jsonl sink"
        );
    }
    let dir = w.join("rabbitmq");
    std::fs::create_dir_all(dir.join("mnesia"))?;
    std::fs::create_dir_all(dir.join("log"))?;
    let amqp = port(5672);
    let mgmt = port(15672);
    let mut dist = port(25672);
    while dist == amqp || dist == mgmt {
        dist = port(0);
    }
    std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_management].\n")?;
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!(
            "listeners.tcp.default = {amqp}\nmanagement.tcp.port = {mgmt}\nmanagement.tcp.ip = 127.0.0.1\nloopback_users = none\n"
        ),
    )?;
    if !epmd_running() {
        sup.owns_epmd();
    }
    let node_name = format!("demo{}@localhost", std::process::id());
    println!(" RabbitMQ broker on 127.0.0.1:{amqp} (management page http://127.0.0.1:{mgmt}/)");
    sup.doing("starting: RabbitMQ broker");
    let mut cmd = Command::new(RABBITMQ_SERVER);
    cmd.current_dir(&dir)
        .env("RABBITMQ_NODENAME", &node_name)
        .env("RABBITMQ_NODE_PORT", amqp.to_string())
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbit.pid"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .env("HOME", &dir);
    sup.spawn_with("rabbitmq", "RabbitMQ broker", &mut cmd, Some(format!("home {} ", dir.display())))?;
    let url = format!("amqp://guest:guest@127.0.0.1:{amqp}/%2f");
    wait_for("the RabbitMQ broker to accept AMQP connections", Duration::from_secs(120), || {
        crate::queues::ping(&url).ok()
    })?;
    Ok((url, format!("http://127.0.0.1:{mgmt}/")))
}

fn epmd_running() -> bool {
    Command::new("pgrep").args(["-x", "epmd"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("reading /dev/urandom");
    hex::encode(b)
}

/// GET a JSON document.
pub fn get_json(url: &str) -> Result<Value> {
    let resp = minreq::get(url).with_timeout(30).send().with_context(|| format!("GET {url}"))?;
    let text = resp.as_str().unwrap_or_default();
    serde_json::from_str(text).with_context(|| format!("GET {url}: HTTP {}: {}", resp.status_code, text.trim()))
}
