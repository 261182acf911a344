//! `runtime.toml`: where bitcoind is, where state lives, and which plugins run.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub bitcoind: Bitcoind,
    pub storage: Storage,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<Plugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // credentials are used by the block follower (issue 3)
pub struct Bitcoind {
    pub rpc_url: String,
    #[serde(default)]
    pub rpc_user: Option<String>,
    #[serde(default)]
    pub rpc_password: Option<String>,
    #[serde(default)]
    pub cookie_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    pub name: String,
    pub wasm: String,
    #[serde(default)]
    pub config: toml::Table,
}

impl Runtime {
    pub fn load(path: &Path) -> Result<Runtime> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let rt: Runtime =
            toml::from_str(&text).with_context(|| format!("{} is not a valid runtime file", path.display()))?;
        if !rt.bitcoind.rpc_url.starts_with("http://") && !rt.bitcoind.rpc_url.starts_with("https://") {
            bail!("[bitcoind] rpc_url = {:?}: give an http:// URL such as http://127.0.0.1:18443", rt.bitcoind.rpc_url);
        }
        let mut seen = std::collections::HashSet::new();
        for p in &rt.plugins {
            if !seen.insert(&p.name) {
                bail!("plugin name {:?} appears twice: each [[plugin]] needs its own name", p.name);
            }
        }
        Ok(rt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_runtime_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime.toml");
        let rt = Runtime::load(&path).unwrap();
        assert!(rt.plugins.iter().any(|p| p.name == "phase1-staking"));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempdir();
        let p = dir.join("bad.toml");
        std::fs::write(&p, "[bitcoind]\nrpc_url = \"localhost\"\n[storage]\npath = \"x\"\n").unwrap();
        let e = format!("{:#}", Runtime::load(&p).unwrap_err());
        assert!(e.contains("rpc_url"), "{e}");
        std::fs::write(&p, "[bitcoind]\nrpc_url = \"http://x\"\nbogus = 1\n[storage]\npath = \"x\"\n").unwrap();
        let e = format!("{:#}", Runtime::load(&p).unwrap_err());
        assert!(e.contains("bogus"), "{e}");
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("engine-runtime-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
