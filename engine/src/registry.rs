//! Which code runs each plugin, and in which namespace: the engine's own records, kept in the
//! store (pseudo-namespace `~engine`) next to the plugins' state, plus a content-addressed
//! directory of the Wasm files the engine has run (`<data_dir>/wasm/<sha256>.wasm`).
//!
//! - `active/<plugin>`: the namespace and Wasm the plugin runs now. Written on first start
//!   (from runtime.toml), on a keep-state upgrade, and at a rebuild's takeover.
//! - `rebuild/<plugin>`: a version indexing from its start height in the background, in its
//!   own namespace. Survives restarts (the rebuild resumes); cleared at takeover, in the same
//!   write that switches `active`.
//!
//! On restart, an upgrade made with `engine plugin upgrade` stays in force as long as runtime.toml
//! names the same file content as before; a changed file is taken as the operator's newer
//! intent (a keep-state switch, logged). runtime.toml's config is read at every start.

use crate::store::{PluginStore, Store};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const NAMESPACE: &str = "~engine";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub namespace: String,
    /// sha256 of the Wasm, hex.
    pub wasm: String,
    /// Content address of wasm + config, hex.
    pub version: String,
    /// Height of the cursor when this version took over (None: from the start).
    pub since_height: Option<u32>,
    /// sha256 of the Wasm file runtime.toml named when the engine last started: if the file
    /// changes, the next start switches to it (keeping state); if not, an upgrade made with
    /// `engine plugin upgrade` stays in force.
    #[serde(default)]
    pub runtime_wasm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuild {
    pub namespace: String,
    pub wasm: String,
    pub version: String,
}

#[derive(Clone)]
pub struct Registry {
    meta: PluginStore,
    wasm_dir: PathBuf,
}

impl Registry {
    pub fn open(store: &Store, data_dir: &Path) -> Result<Registry> {
        let wasm_dir = data_dir.join("wasm");
        std::fs::create_dir_all(&wasm_dir).with_context(|| format!("creating {}", wasm_dir.display()))?;
        Ok(Registry { meta: store.plugin(NAMESPACE), wasm_dir })
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        match self.meta.get_meta(key)? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v).with_context(|| format!("corrupt engine record {key}"))?)),
        }
    }

    pub fn active(&self, plugin: &str) -> Result<Option<Active>> {
        self.get(&format!("active/{plugin}"))
    }

    pub fn rebuild(&self, plugin: &str) -> Result<Option<Rebuild>> {
        self.get(&format!("rebuild/{plugin}"))
    }

    pub fn set_active(&self, plugin: &str, a: &Active) -> Result<()> {
        self.meta.set_meta(&format!("active/{plugin}"), &serde_json::to_vec(a)?)
    }

    pub fn set_rebuild(&self, plugin: &str, r: Option<&Rebuild>) -> Result<()> {
        let key = format!("rebuild/{plugin}");
        match r {
            Some(r) => self.meta.set_meta(&key, &serde_json::to_vec(r)?),
            None => self.meta.delete_meta(&key),
        }
    }

    /// The takeover of a rebuild: `active` switches and the rebuild record goes, in one write.
    pub fn take_over(&self, plugin: &str, a: &Active) -> Result<()> {
        self.meta.set_metas(&[
            (&format!("active/{plugin}"), Some(serde_json::to_vec(a)?.as_slice())),
            (&format!("rebuild/{plugin}"), None),
        ])
    }

    /// Stores Wasm bytes under their hash; returns the hash (hex).
    pub fn put_wasm(&self, bytes: &[u8]) -> Result<String> {
        let hash = hex::encode(Sha256::digest(bytes));
        let path = self.wasm_dir.join(format!("{hash}.wasm"));
        if !path.is_file() {
            crate::atomic_write(&path, bytes)?;
        }
        Ok(hash)
    }

    /// The Wasm bytes recorded under `hash`, checked against it.
    pub fn wasm(&self, hash: &str) -> Result<Vec<u8>> {
        let path = self.wasm_dir.join(format!("{hash}.wasm"));
        let bytes = std::fs::read(&path).with_context(|| {
            format!("the engine's copy of plugin code {hash} is missing ({}); restore it or re-upgrade", path.display())
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != hash {
            bail!("{} is corrupt: its sha256 is {actual}", path.display());
        }
        Ok(bytes)
    }

    /// A namespace name for a new version of `plugin` that is not `avoid`.
    pub fn new_namespace(plugin: &str, version: &str, avoid: &str) -> String {
        let ns = format!("{plugin}~{}", &version[..16.min(version.len())]);
        if ns == avoid {
            format!("{ns}b")
        } else {
            ns
        }
    }

    /// Namespaces of `plugin` (its own name or `plugin~…`) that neither record references:
    /// leftovers of a takeover or an abandoned rebuild interrupted by a crash.
    pub fn orphans(&self, store: &Store, plugin: &str) -> Result<Vec<String>> {
        let active = self.active(plugin)?.ok_or_else(|| anyhow!("no active record for {plugin}"))?;
        let rebuild = self.rebuild(plugin)?;
        let prefix = format!("{plugin}~");
        Ok(store
            .plugins()?
            .into_iter()
            .filter(|ns| ns == plugin || ns.starts_with(&prefix))
            .filter(|ns| *ns != active.namespace && rebuild.as_ref().is_none_or(|r| r.namespace != *ns))
            .collect())
    }
}
