//! Helpers for the acceptance tests: a real `regtest-node` process, a real `engine` process with
//! its runtime file and data dir in a temporary directory, the test plugins built for
//! wasm32-wasip2, and a small deterministic random generator.
//!
//! When a test panics while an [`Engine`] or a [`Node`] is alive, its `Drop` prints the tail of
//! the process log (shown by the test harness with the failure).
#![allow(dead_code)]

pub mod rabbit;
pub mod unbonding;

use engine::store::Store;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use test_support::{
    free_port, fresh_address, node_binary, strip_ansi, tail, target_dir, wait_exit, wait_until, Node, PASS, USER,
};

/// How long a test waits for an engine to reach a condition (e.g. the node's tip).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a test plugin's Wasm component (`counter`, `trap`, `spin`, `hog`, `touch`, `noop`),
/// built on first use.
pub fn plugin_wasm(name: &str) -> PathBuf {
    engine::testing::test_plugin(name)
}

/// `wasm` with a custom section appended: a different file (so a different version) with the
/// same behaviour.
pub fn wasm_variant(wasm: &Path, tag: &str, out: &Path) -> PathBuf {
    let mut bytes = std::fs::read(wasm).unwrap();
    let name = b"acceptance-variant";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    assert!(payload.len() < 128, "keep the tag short (one-byte LEB128 length)");
    bytes.push(0); // custom section id
    bytes.push(payload.len() as u8);
    bytes.extend_from_slice(&payload);
    std::fs::write(out, bytes).unwrap();
    out.to_path_buf()
}

pub fn engine_binary() -> &'static str {
    env!("CARGO_BIN_EXE_engine")
}

/// xorshift64*: reproducible randomness; the seed comes from `ACCEPTANCE_SEED` or the clock and
/// is printed so a failing run can be repeated.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("ACCEPTANCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: ACCEPTANCE_SEED={seed}");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---------------------------------------------------------------------------------------------
// The engine

/// The queues the test plugins publish to.
pub const TEST_QUEUES: &str = "capabilities = { queues = [\"counter\", \"active_staking_queue\", \"btc_info_queue\"] }";

/// One `[[plugin]]` of the runtime file.
#[derive(Clone, Debug)]
pub struct PluginDef {
    pub name: String,
    pub wasm: PathBuf,
    pub start_height: u32,
    /// Extra TOML lines for the section (`config = {...}`, `limits = {...}`).
    pub extra: String,
}

impl PluginDef {
    /// A plugin allowed to publish to the test plugins' queues.
    pub fn new(name: &str, wasm: &Path) -> PluginDef {
        PluginDef { name: name.to_string(), wasm: wasm.to_path_buf(), start_height: 0, extra: String::new() }
            .with(TEST_QUEUES)
    }

    /// A test plugin under its own name.
    pub fn test(name: &str) -> PluginDef {
        PluginDef::new(name, &plugin_wasm(name))
    }

    pub fn with(mut self, line: &str) -> PluginDef {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }
}

/// An `engine run` process with its runtime file, data dir and log (stdout and stderr) in a
/// temporary directory. Dropping it kills the process.
pub struct Engine {
    child: Option<Child>,
    pub dir: PathBuf,
    pub runtime: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub plugins: Vec<PluginDef>,
    _tmp: tempfile::TempDir,
}

impl Engine {
    /// Writes a runtime file following `node` with `plugins` (fresh data dir) and starts the engine.
    pub fn start(node: &Node, plugins: &[PluginDef]) -> Engine {
        let mut e = Engine::configure(node, plugins);
        e.spawn();
        e
    }

    /// Writes the runtime file without starting the engine.
    pub fn configure(node: &Node, plugins: &[PluginDef]) -> Engine {
        Engine::configure_with(node, plugins, "")
    }

    /// Like [`Engine::configure`] with `top` (e.g. `[[sink]]` sections) after `[engine]`.
    pub fn configure_with(node: &Node, plugins: &[PluginDef], top: &str) -> Engine {
        let tmp = tempfile::Builder::new().prefix("acceptance-engine").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        let data_dir = dir.join("eng");
        let runtime = dir.join("runtime.toml");
        let mut text = format!(
            "[bitcoind]\nurl = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASS}\"\nnetwork = \"regtest\"\n\n\
             [engine]\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:{port}\"\npoll_interval_ms = 50\nundo_window = 144\n",
            node.url(),
            data_dir.display()
        );
        text.push_str(top);
        for p in plugins {
            text.push_str(&format!(
                "\n[[plugin]]\nname = \"{}\"\nwasm = \"{}\"\nstart_height = {}\n{}",
                p.name,
                p.wasm.display(),
                p.start_height,
                p.extra
            ));
        }
        std::fs::write(&runtime, text).unwrap();
        Engine {
            child: None,
            log: dir.join("engine.log"),
            dir,
            runtime,
            data_dir,
            port,
            plugins: plugins.to_vec(),
            _tmp: tmp,
        }
    }

    /// Starts (or restarts) `engine run` on the same runtime file and data dir.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the engine is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        use std::io::Write;
        writeln!(&log, "=== acceptance: engine run {}", self.runtime.display()).unwrap();
        let child = Command::new(engine_binary())
            .arg("run")
            .arg(&self.runtime)
            .env("ENGINE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the engine binary runs");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the engine is running").id()
    }

    /// Whether the process is still running (panics with the log if it exited).
    pub fn assert_alive(&mut self) {
        let status = self.child.as_mut().expect("the engine was started").try_wait().unwrap();
        if let Some(s) = status {
            panic!("the engine exited unexpectedly with {s}\n{}", self.log_tail());
        }
    }

    pub fn log_tail(&self) -> String {
        format!("--- engine log tail ({}) ---\n{}", self.log.display(), strip_ansi(&tail(&self.log, 40)))
    }

    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn get(&self, path: &str) -> Option<Value> {
        let resp = minreq::get(format!("http://127.0.0.1:{}{path}", self.port)).with_timeout(30).send().ok()?;
        if resp.status_code != 200 {
            return None;
        }
        serde_json::from_slice(resp.as_bytes()).ok()
    }

    /// `GET /status/{name}` (None while the engine is not answering).
    pub fn try_status(&self, name: &str) -> Option<Value> {
        self.get(&format!("/status/{name}"))
    }

    pub fn status(&self, name: &str) -> Value {
        self.try_status(name).unwrap_or_else(|| panic!("GET /status/{name} failed\n{}", self.log_tail()))
    }

    /// `GET /status`.
    pub fn statuses(&self) -> Value {
        self.get("/status").unwrap_or_else(|| panic!("GET /status failed\n{}", self.log_tail()))
    }

    /// Polls `cond` on the engine until it gives `Some` (panics with the log after `timeout`).
    pub fn wait_for<T>(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&Engine) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_alive();
            if let Some(v) = cond(self) {
                return v;
            }
            if Instant::now() > deadline {
                let statuses = self.get("/status").map(|s| s.to_string()).unwrap_or_default();
                panic!("timed out after {timeout:?} waiting for {what}\nstatus: {statuses}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until plugin `name` is at the node's best block; returns its status.
    pub fn wait_synced(&mut self, node: &Node, name: &str) -> Value {
        self.wait_for(&format!("plugin {name} to reach the node's tip"), SYNC_TIMEOUT, |e| {
            let (h, hash) = node.tip();
            let s = e.try_status(name)?;
            (s["height"] == json!(h) && s["block"] == json!(hash) && s["rebuild"].is_null()).then_some(s)
        })
    }

    /// Waits until every plugin is at the node's best block; returns name → digest.
    pub fn wait_all_synced(&mut self, node: &Node) -> Vec<(String, String)> {
        let names: Vec<String> = self.plugins.iter().map(|p| p.name.clone()).collect();
        names.iter().map(|n| (n.clone(), self.wait_synced(node, n)["digest"].as_str().unwrap().to_string())).collect()
    }

    /// Waits until the HTTP endpoint answers.
    pub fn wait_ready(&mut self) {
        self.wait_for("the engine's HTTP endpoint", SYNC_TIMEOUT, |e| e.get("/status"));
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("the engine is running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub fn stop(&mut self) {
        let mut c = self.child.take().expect("the engine is running");
        let ok = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -TERM failed");
        wait_exit(&mut c, Duration::from_secs(60), "the engine", || self.log_tail());
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token")).unwrap().trim().to_string()
    }

    /// `POST /admin/plugins/{name}/upgrade?mode=MODE` with the Wasm as body.
    pub fn upgrade(&self, name: &str, wasm: &Path, mode: &str) -> Value {
        let resp = minreq::post(format!("http://127.0.0.1:{}/admin/plugins/{name}/upgrade?mode={mode}", self.port))
            .with_header("Authorization", format!("Bearer {}", self.admin_token()))
            .with_body(std::fs::read(wasm).unwrap())
            .with_timeout(120)
            .send()
            .unwrap_or_else(|e| panic!("upgrade request failed: {e}\n{}", self.log_tail()));
        let body = String::from_utf8_lossy(resp.as_bytes()).into_owned();
        assert_eq!(resp.status_code, 200, "upgrade {name} ({mode}) answered {body}\n{}", self.log_tail());
        serde_json::from_str(&body).unwrap()
    }

    /// Runs `engine ARGS... --runtime <this runtime>` (the CLI talks to the running engine).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(engine_binary())
            .args(args)
            .arg("--runtime")
            .arg(&self.runtime)
            .env("NO_COLOR", "1")
            .output()
            .expect("the engine binary runs")
    }

    /// Opens the engine's RocksDB (only while no engine process holds it).
    pub fn open_store(&self) -> Store {
        assert!(self.child.is_none(), "stop the engine before opening its store");
        Store::open(&self.data_dir.join("state")).unwrap()
    }
}

impl Drop for Engine {
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

// ---------------------------------------------------------------------------------------------
// Store inspection

/// The `block/<height>` entries of a namespace: (height, JSON value), in key order.
pub fn block_entries(store: &Store, namespace: &str) -> Vec<(u32, Value)> {
    store
        .plugin(namespace)
        .scan_prefix(b"block/", None, u32::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let h = std::str::from_utf8(&k[b"block/".len()..]).unwrap().parse().unwrap();
            (h, serde_json::from_slice(&v).unwrap())
        })
        .collect()
}

/// Every message published under plugin label `plugin` to `queue`, in outbox order: what the
/// engine's default jsonl sink delivered (`<data_dir>/queues/<queue>.jsonl`) and what is still
/// pending in the outbox, each sequence number once, bodies parsed as JSON.
pub fn messages(store: &Store, plugin: &str, queue: &str) -> Vec<(u64, Value)> {
    let mut out = std::collections::BTreeMap::new();
    let file = store.path().parent().unwrap().join("queues").join(format!("{queue}.jsonl"));
    if let Ok(text) = std::fs::read_to_string(&file) {
        for line in text.lines() {
            let l: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: bad line {line:?}: {e}", file.display()));
            if l["message_id"].as_str().unwrap().starts_with(&format!("{plugin}:")) {
                let body = serde_json::from_str(l["body"].as_str().unwrap()).unwrap();
                assert!(out.insert(l["seq"].as_u64().unwrap(), body).is_none(), "{}: a sequence twice", file.display());
            }
        }
    }
    for e in store.outbox_pending(usize::MAX).unwrap().into_iter().filter(|e| e.plugin == plugin && e.queue == queue) {
        out.entry(e.seq).or_insert_with(|| serde_json::from_slice(&e.body).unwrap());
    }
    out.into_iter().collect()
}

/// What the `counter` plugin's messages say holds now: its per-block messages (height, hash) in
/// order, each `{"undo":h}` taking back the latest one for height `h`. Panics on an undo of a
/// block that was never announced (an invented event).
pub fn counter_applies(store: &Store, plugin: &str) -> Vec<(u32, String)> {
    let mut net: Vec<(u32, String)> = Vec::new();
    for (seq, v) in messages(store, plugin, "counter") {
        match v.get("undo").and_then(|u| u.as_u64()) {
            Some(h) => {
                let i = net
                    .iter()
                    .rposition(|(x, _)| *x as u64 == h)
                    .unwrap_or_else(|| panic!("{plugin}: message {seq} undoes height {h}, which was never applied"));
                net.remove(i);
            }
            None => net.push((v["height"].as_u64().unwrap() as u32, v["hash"].as_str().unwrap().to_string())),
        }
    }
    net
}

/// Whether a `block/` value has the `counter` plugin's shape (`{"txs","outputs"}`).
pub fn is_counter_shape(v: &Value) -> bool {
    v.get("txs").is_some() && v.get("outputs").is_some() && v.get("value").is_none()
}

/// Whether a `block/` value has the `touch` plugin's shape (`{"txs","outputs","value"}`).
pub fn is_touch_shape(v: &Value) -> bool {
    v.get("txs").is_some() && v.get("outputs").is_some() && v.get("value").is_some()
}
