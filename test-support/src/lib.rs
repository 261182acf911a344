//! Helpers the workspace's integration tests and benches share (a dev-dependency only): the
//! workspace's binaries built on first use, free ports, waiting with a timeout, log tails,
//! JSON-RPC with the test credentials, and [`Node`], a real `regtest-node` process — a chain node
//! or (`-walletonly`) the offline wallet. When a test panics while a [`Node`] is alive, its `Drop`
//! prints the tail of the node's log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bitcoin::base64::Engine as _;
use serde_json::{json, Value};

/// RPC credentials of every node and wallet the tests start.
pub const USER: &str = "u";
pub const PASS: &str = "p";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("test-support sits in the workspace").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// `target/release/<name>` of workspace package `package`, built (once per process) if missing.
/// Tests run after `cargo build --release --workspace --all-targets` (scripts/test.sh), so this
/// only builds when a test runs on its own.
pub fn workspace_binary(package: &str, name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let bin = target_dir().join("release").join(name);
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", package])
            .status()
            .expect("running cargo");
        assert!(status.success(), "building {package} failed ({status})");
    }
    bin
}

/// The `regtest-node` binary.
pub fn node_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_binary("regtest-node", "regtest-node"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The last `lines` lines of a log file, without ANSI colours.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    strip_ansi(&all[all.len().saturating_sub(lines)..].join("\n"))
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what` and `context()`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit successfully within `timeout` (killing it and failing otherwise).
pub fn wait_exit(child: &mut Child, timeout: Duration, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status}\n{}", log());
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not stop within {timeout:?}\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One JSON-RPC call to `url` with the test credentials; `Err` carries a transport error or the
/// node's error object.
pub fn rpc_at(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).to_string();
    let auth = bitcoin::base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    let resp = minreq::post(url)
        .with_header("Authorization", format!("Basic {auth}"))
        .with_header("Content-Type", "application/json")
        .with_body(body)
        .with_timeout(60)
        .send()
        .map_err(|e| format!("{method}: {e}"))?;
    let v: Value = serde_json::from_slice(resp.as_bytes())
        .map_err(|e| format!("{method}: HTTP {} non-JSON answer: {e}", resp.status_code))?;
    if !v["error"].is_null() {
        return Err(format!("{method}: {}", v["error"]));
    }
    Ok(v["result"].clone())
}

static ADDRESS_SEQ: AtomicU32 = AtomicU32::new(1);

/// A fresh valid regtest address (P2WSH of a unique script): blocks mined after an
/// `invalidateblock` never repeat an invalidated block.
pub fn fresh_address() -> String {
    let n = ADDRESS_SEQ.fetch_add(1, Ordering::Relaxed);
    let script = bitcoin::ScriptBuf::from_bytes([&[0x04][..], &n.to_le_bytes()[..], &[0x75, 0x51][..]].concat());
    bitcoin::Address::p2wsh(&script, bitcoin::Network::Regtest).to_string()
}

/// A `regtest-node` process on a free loopback port with its own datadir: a chain node
/// ([`Node::start`], `-txindex` by default) or the offline wallet ([`Node::start_offline_wallet`],
/// `-walletonly`). Can be stopped and started again on the same datadir and port. Dropping it
/// kills the process.
pub struct Node {
    child: Option<Child>,
    pub datadir: PathBuf,
    pub port: u16,
    /// Started with `-walletonly`.
    pub wallet_only: bool,
    _tmp: tempfile::TempDir,
}

impl Node {
    pub fn start() -> Node {
        Node::new(false)
    }

    pub fn start_offline_wallet() -> Node {
        Node::new(true)
    }

    fn new(wallet_only: bool) -> Node {
        let tmp = tempfile::Builder::new().prefix("test-node").tempdir().unwrap();
        let mut node =
            Node { child: None, datadir: tmp.path().join("node"), port: free_port(), wallet_only, _tmp: tmp };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the node is already running");
        std::fs::create_dir_all(&self.datadir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut args = vec![
            "-regtest".to_string(),
            format!("-datadir={}", self.datadir.display()),
            format!("-rpcport={}", self.port),
            format!("-rpcuser={USER}"),
            format!("-rpcpassword={PASS}"),
        ];
        args.push(if self.wallet_only { "-walletonly" } else { "-fallbackfee=0.0002" }.to_string());
        let child = Command::new(node_binary())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("regtest-node runs");
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.rpc("uptime", json!([])).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("regtest-node exited with {status}\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("regtest-node did not answer RPC within 60 s\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    pub fn log_path(&self) -> PathBuf {
        self.datadir.join("node.log")
    }

    pub fn log_tail(&self) -> String {
        format!("--- node log tail ({}) ---\n{}", self.log_path().display(), tail(&self.log_path(), 20))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn wallet_url(&self, wallet: &str) -> String {
        format!("{}/wallet/{wallet}", self.url())
    }

    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        rpc_at(&self.url(), method, params)
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.rpc(method, params).unwrap_or_else(|e| panic!("node RPC failed: {e}\n{}", self.log_tail()))
    }

    /// A call to wallet `wallet` (`/wallet/<name>`).
    pub fn wallet_call(&self, wallet: &str, method: &str, params: Value) -> Value {
        rpc_at(&self.wallet_url(wallet), method, params)
            .unwrap_or_else(|e| panic!("wallet RPC failed: {e}\n{}", self.log_tail()))
    }

    pub fn height(&self) -> u32 {
        self.call("getblockcount", json!([])).as_u64().unwrap() as u32
    }

    pub fn hash_at(&self, height: u32) -> String {
        self.call("getblockhash", json!([height])).as_str().unwrap().to_string()
    }

    /// (height, hash) of the best block.
    pub fn tip(&self) -> (u32, String) {
        loop {
            let h = self.height();
            // A block can arrive between the two calls; the hash at h is still the best chain's.
            if let Ok(v) = self.rpc("getblockhash", json!([h])) {
                return (h, v.as_str().unwrap().to_string());
            }
        }
    }

    /// The best chain's hashes at heights 0..=tip.
    pub fn chain(&self) -> Vec<String> {
        (0..=self.height()).map(|h| self.hash_at(h)).collect()
    }

    /// Mines `n` blocks (to a fresh address); returns their hashes.
    pub fn generate(&self, n: u32) -> Vec<String> {
        let v = self.call("generatetoaddress", json!([n, fresh_address()]));
        v.as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect()
    }

    pub fn invalidate(&self, hash: &str) {
        self.call("invalidateblock", json!([hash]));
    }

    /// Invalidates the last `depth` blocks and mines `new_blocks` on the fork point.
    pub fn reorg(&self, depth: u32, new_blocks: u32) {
        let tip = self.height();
        assert!(depth >= 1 && depth <= tip, "reorg depth {depth} at height {tip}");
        self.invalidate(&self.hash_at(tip - depth + 1));
        assert_eq!(self.height(), tip - depth, "invalidateblock did not take the tip back");
        if new_blocks > 0 {
            self.generate(new_blocks);
        }
    }

    /// `stop` over RPC, then waits for the process to exit.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        self.rpc("stop", json!([])).unwrap_or_else(|e| panic!("stop: {e}\n{}", self.log_tail()));
        wait_exit(&mut child, Duration::from_secs(30), "the node", || self.log_tail());
    }

    /// Starts the node again on the same datadir and port.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}
