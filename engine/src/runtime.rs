//! `runtime.toml`: how to reach bitcoind, where the engine keeps its state and listens, and
//! which plugins run with which config, limits and capabilities. Every problem is reported at
//! start, naming the key and what to write instead.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub bitcoind: BitcoindSection,
    pub engine: EngineSection,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginSection>,
    /// Where outbox messages go (`[[sink]]`); none: a jsonl sink in `<data_dir>/queues`.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<crate::outbox::SinkConfig>,
    /// Devnet signing with the node's wallet for the dashboard (`[devnet]`, regtest only).
    #[serde(default)]
    pub devnet: Option<crate::devnet::DevnetSection>,
    /// Directory of the runtime file; relative paths in it are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoindSection {
    pub url: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    #[serde(default = "default_network")]
    pub network: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub data_dir: PathBuf,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_undo_window")]
    pub undo_window: u32,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    pub name: String,
    pub wasm: PathBuf,
    #[serde(default)]
    pub start_height: u32,
    /// The plugin's own settings, handed to its `init` as JSON. A key ending in `_file` names a
    /// file (relative to this runtime file) that must exist; the plugin receives its text under
    /// the key without the suffix (plugins have no filesystem).
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_fuel")]
    pub fuel_per_block: u64,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Per HTTP request.
    #[serde(default = "default_request_fuel")]
    pub request_fuel: u64,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Request instances running at once (more wait).
    #[serde(default = "default_concurrent")]
    pub max_concurrent_requests: u32,
    /// Per job run.
    #[serde(default = "default_fuel")]
    pub job_fuel: u64,
    #[serde(default = "default_timeout_ms")]
    pub job_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_block: default_fuel(),
            memory_mb: default_memory_mb(),
            timeout_ms: default_timeout_ms(),
            request_fuel: default_request_fuel(),
            request_timeout_ms: default_request_timeout_ms(),
            max_concurrent_requests: default_concurrent(),
            job_fuel: default_fuel(),
            job_timeout_ms: default_timeout_ms(),
        }
    }
}

fn default_request_fuel() -> u64 {
    1_000_000_000
}
fn default_request_timeout_ms() -> u64 {
    2_000
}
fn default_concurrent() -> u32 {
    16
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Queues the plugin may publish to (empty: none).
    #[serde(default)]
    pub queues: Vec<String>,
    /// URL prefixes the plugin's job may call (e.g. "http://127.0.0.1:9791/").
    #[serde(default)]
    pub http: Vec<String>,
    /// bitcoind RPC methods the plugin's job may call (e.g. "sendrawtransaction").
    #[serde(default)]
    pub bitcoind: Vec<String>,
}

fn default_network() -> String {
    "regtest".into()
}
fn default_listen() -> String {
    "127.0.0.1:8090".into()
}
fn default_undo_window() -> u32 {
    144
}
fn default_poll_ms() -> u64 {
    100
}
fn default_fuel() -> u64 {
    20_000_000_000
}
fn default_memory_mb() -> u32 {
    512
}
fn default_timeout_ms() -> u64 {
    30_000
}

pub const NETWORKS: &[&str] = &["mainnet", "testnet", "testnet4", "signet", "regtest"];

impl Runtime {
    /// Reads and checks a runtime file. `require_wasm` also demands that plugin Wasm files exist
    /// (for `engine run`; `engine check` reports them as warnings via [`Runtime::missing_wasm`]).
    pub fn load(path: &Path) -> Result<Runtime> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} (give the path of a runtime.toml)", path.display()))?;
        let mut rt: Runtime = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{} is not a valid runtime file: {}", path.display(), e.to_string().trim_end())
        })?;
        rt.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if rt.base_dir.as_os_str().is_empty() {
            rt.base_dir = PathBuf::from(".");
        }
        rt.check().with_context(|| format!("in {}", path.display()))?;
        Ok(rt)
    }

    fn check(&self) -> Result<()> {
        let b = &self.bitcoind;
        if !b.url.starts_with("http://") && !b.url.starts_with("https://") {
            bail!("[bitcoind] url = {:?}: give an http:// URL such as \"http://127.0.0.1:18443\"", b.url);
        }
        match (&b.user, &b.password, &b.cookie_file) {
            (Some(_), Some(_), None) | (None, None, Some(_)) => {}
            (Some(_), None, _) => bail!("[bitcoind] user is set without password: set both, or use cookie_file"),
            (None, Some(_), _) => bail!("[bitcoind] password is set without user: set both, or use cookie_file"),
            (Some(_), Some(_), Some(_)) => {
                bail!("[bitcoind] has both user/password and cookie_file: keep one way to authenticate")
            }
            (None, None, None) => bail!(
                "[bitcoind] needs credentials: user = \"...\" and password = \"...\", or cookie_file = \"<datadir>/regtest/.cookie\""
            ),
        }
        if !NETWORKS.contains(&b.network.as_str()) {
            bail!("[bitcoind] network = {:?}: use one of {}", b.network, NETWORKS.join(", "));
        }
        let e = &self.engine;
        e.listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!("[engine] listen = {:?}: give an address and port such as \"127.0.0.1:8090\"", e.listen)
        })?;
        if e.undo_window < 6 {
            bail!("[engine] undo_window = {}: keep at least 6 blocks of undo (144 recommended)", e.undo_window);
        }
        if e.poll_interval_ms == 0 {
            bail!("[engine] poll_interval_ms = 0: give a positive interval such as 1000");
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.plugins {
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("[[plugin]] name = {:?}: use letters, digits, '-' or '_'", p.name);
            }
            if !seen.insert(&p.name) {
                bail!("[[plugin]] name = {:?} appears twice: each plugin needs its own name", p.name);
            }
            if p.limits.memory_mb < 16 || p.limits.memory_mb > 4096 {
                bail!("plugin {:?}: limits.memory_mb = {}: choose 16 to 4096", p.name, p.limits.memory_mb);
            }
            let l = &p.limits;
            if [l.fuel_per_block, l.timeout_ms, l.request_fuel, l.request_timeout_ms, l.job_fuel, l.job_timeout_ms]
                .contains(&0)
                || l.max_concurrent_requests == 0
            {
                bail!(
                    "plugin {:?}: limits (fuel_per_block, timeout_ms, request_fuel, request_timeout_ms, \
                     max_concurrent_requests, job_fuel, job_timeout_ms) must be positive",
                    p.name
                );
            }
            if l.max_concurrent_requests > 24 {
                bail!(
                    "plugin {:?}: limits.max_concurrent_requests = {}: at most 24 (each holds a Wasm instance)",
                    p.name,
                    l.max_concurrent_requests
                );
            }
            for u in &p.capabilities.http {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    bail!(
                        "plugin {:?}: capabilities.http entry {u:?} must be an http:// or https:// URL prefix",
                        p.name
                    );
                }
            }
            for (key, value) in &p.config {
                if key.ends_with("_file") {
                    let Some(rel) = value.as_str() else {
                        bail!("plugin {:?}: config.{key} must be a path string", p.name);
                    };
                    let path = self.resolve(Path::new(rel));
                    if !path.is_file() {
                        bail!(
                            "plugin {:?}: config.{key} = {rel:?}: no such file ({}; paths are relative to the runtime file)",
                            p.name,
                            path.display()
                        );
                    }
                }
            }
        }
        for sink in &self.sinks {
            sink.check()?;
        }
        if self.devnet.is_some() {
            if b.network != "regtest" {
                bail!(
                    "[devnet] signs with the node's wallet and is for regtest only, but [bitcoind] network = {:?}: remove [devnet]",
                    b.network
                );
            }
            self.devnet()?;
        }
        Ok(())
    }

    /// The devnet signer of `[devnet]`, its params file read and checked.
    pub fn devnet(&self) -> Result<Option<crate::devnet::Devnet>> {
        let Some(d) = &self.devnet else { return Ok(None) };
        Ok(Some(crate::devnet::Devnet::new(d, &self.resolve(&d.global_params_file), self.connection())?))
    }

    /// The sinks to deliver to, paths resolved (the default: jsonl in `<data_dir>/queues`).
    pub fn sinks(&self) -> Vec<crate::outbox::SinkConfig> {
        use crate::outbox::SinkConfig;
        if self.sinks.is_empty() {
            return vec![SinkConfig::Jsonl { dir: self.data_dir().join("queues") }];
        }
        self.sinks
            .iter()
            .map(|s| match s {
                SinkConfig::Jsonl { dir } => SinkConfig::Jsonl { dir: self.resolve(dir) },
                s => s.clone(),
            })
            .collect()
    }

    /// Resolves a path written in the runtime file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.engine.data_dir)
    }

    /// Plugins whose Wasm file is not there (yet): `engine run` refuses to start with them.
    pub fn missing_wasm(&self) -> Vec<(&str, PathBuf)> {
        self.plugins
            .iter()
            .map(|p| (p.name.as_str(), self.resolve(&p.wasm)))
            .filter(|(_, path)| !path.is_file())
            .collect()
    }

    pub fn connection(&self) -> crate::bitcoind::Connection {
        let auth = match (&self.bitcoind.user, &self.bitcoind.password, &self.bitcoind.cookie_file) {
            (Some(u), Some(p), _) => crate::bitcoind::Credentials::UserPass(u.clone(), p.clone()),
            (_, _, Some(c)) => crate::bitcoind::Credentials::CookieFile(self.resolve(c)),
            _ => unreachable!("checked at load"),
        };
        crate::bitcoind::Connection { url: self.bitcoind.url.clone(), auth }
    }

    /// The JSON a plugin's `init` receives: its config table, with every `X_file` key's file
    /// text added under `X`. Deterministic (keys sorted).
    pub fn plugin_init_config(&self, p: &PluginSection) -> Result<String> {
        let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (key, value) in &p.config {
            let json = serde_json::to_value(value).context("config value")?;
            if let (Some(stem), Some(rel)) = (key.strip_suffix("_file"), value.as_str()) {
                let path = self.resolve(Path::new(rel));
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("plugin {:?}: reading config.{key} ({})", p.name, path.display()))?;
                out.insert(stem.to_string(), serde_json::Value::String(text));
            }
            out.insert(key.clone(), json);
        }
        Ok(serde_json::to_string(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `text` as a runtime file beside a params.json; the directory lives as long as the guard.
    fn load_in_dir(text: &str) -> (tempfile::TempDir, Result<Runtime>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runtime.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::write(dir.path().join("params.json"), "{\"versions\":[]}").unwrap();
        let rt = Runtime::load(&p);
        (dir, rt)
    }

    fn load_text(text: &str) -> Result<Runtime> {
        load_in_dir(text).1
    }

    const GOOD: &str = r#"
[bitcoind]
url = "http://127.0.0.1:18443"
user = "u"
password = "p"
[engine]
data_dir = "data"
[[plugin]]
name = "phase1-staking"
wasm = "x.wasm"
config = { global_params_file = "params.json", tag = "01020304" }
"#;

    #[test]
    fn the_repository_runtime_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime.toml");
        let rt = Runtime::load(&path).unwrap();
        assert!(rt.plugins.iter().any(|p| p.name == "phase1-staking"));
    }

    #[test]
    fn file_keys_are_read_for_the_plugin() {
        let (_dir, rt) = load_in_dir(GOOD);
        let rt = rt.unwrap();
        let json: serde_json::Value = serde_json::from_str(&rt.plugin_init_config(&rt.plugins[0]).unwrap()).unwrap();
        assert_eq!(json["global_params"], "{\"versions\":[]}");
        assert_eq!(json["tag"], "01020304");
        assert_eq!(rt.missing_wasm().len(), 1);
        assert_eq!(rt.engine.undo_window, 144);
    }

    #[test]
    fn bad_files_name_the_key_and_the_fix() {
        let cases = [
            (GOOD.replace("http://127.0.0.1:18443", "localhost"), "[bitcoind] url"),
            (GOOD.replace("password = \"p\"\n", ""), "without password"),
            (GOOD.replace("[engine]\n", "[engine]\nbogus = 1\n"), "bogus"),
            (GOOD.replace("params.json", "nope.json"), "config.global_params_file"),
            (GOOD.replace("data_dir = \"data\"", "data_dir = \"data\"\nlisten = \"here\""), "[engine] listen"),
            (GOOD.replace("data_dir = \"data\"", "data_dir = \"data\"\nundo_window = 2"), "undo_window"),
            (format!("{GOOD}\n[[plugin]]\nname = \"phase1-staking\"\nwasm = \"y.wasm\"\n"), "appears twice"),
            (GOOD.replace("url = ", "network = \"moonnet\"\nurl = "), "network"),
        ];
        for (text, needle) in cases {
            let e = format!("{:#}", load_text(&text).unwrap_err());
            assert!(e.contains(needle), "expected {needle:?} in: {e}");
        }
    }

    #[test]
    fn devnet_signing_is_for_regtest_with_real_params() {
        let params = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/global-params.json");
        let devnet =
            format!("{GOOD}\n[devnet]\nwallet = \"staker\"\nglobal_params_file = {:?}\n", params.display().to_string());
        let rt = load_text(&devnet).unwrap();
        assert_eq!(rt.devnet.as_ref().unwrap().withdraw_fee, 2_000);
        assert!(rt.devnet().unwrap().is_some());
        assert!(load_text(GOOD).unwrap().devnet().unwrap().is_none());
        let cases = [
            (devnet.replace("url = ", "network = \"mainnet\"\nurl = "), "regtest only"),
            (devnet.replace("wallet = \"staker\"", "wallet = \"staker\"\nbogus = 1"), "bogus"),
            (devnet.replace("wallet = \"staker\"", "wallet = \"a/b\""), "[devnet] wallet"),
            (devnet.replace(&params.display().to_string(), "params.json"), "[devnet] global_params_file"),
            (devnet.replace(&params.display().to_string(), "nope.json"), "cannot read"),
        ];
        for (text, needle) in cases {
            let e = format!("{:#}", load_text(&text).unwrap_err());
            assert!(e.contains(needle), "expected {needle:?} in: {e}");
        }
    }
}
