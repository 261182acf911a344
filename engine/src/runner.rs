//! One plugin at work: its Wasm code, its namespace in the store, and the rule that a block's
//! effects (state writes, undo record, cursor, digest, outgoing messages) commit together or
//! not at all. A fault in the plugin (trap, fuel, timeout, memory) halts that plugin at that
//! block with the reason recorded; nothing of the failed block is written.

use crate::follower::Indexer;
use crate::plugin_api::BlockRef;
use crate::store::{PluginStore, Status, Store};
use crate::wasm::{BlockInfo, LoadedPlugin, Manifest, WasmHost};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

pub struct PluginRunner {
    pub name: String,
    pub start_height: u32,
    /// Content address of this plugin version: sha256(Wasm bytes' hash ‖ init config).
    pub version: [u8; 32],
    store: PluginStore,
    plugin: LoadedPlugin,
    manifest: Manifest,
}

impl PluginRunner {
    /// Loads (or fetches from the compile cache) the plugin, runs its `init` with `config`, and
    /// records its version in the store.
    pub fn start(
        host: &WasmHost,
        store: &Store,
        name: &str,
        wasm: &Path,
        config: &str,
        start_height: u32,
    ) -> Result<PluginRunner> {
        let mut plugin = host.load(wasm).with_context(|| format!("plugin {name}: loading {}", wasm.display()))?;
        let manifest = plugin.init(config).map_err(|f| anyhow!("plugin {name}: init failed: {f}"))?;
        let mut h = Sha256::new();
        h.update(plugin.content_hash());
        h.update(config.as_bytes());
        let version: [u8; 32] = h.finalize().into();
        let ps = store.plugin(name);
        ps.set_meta("version", hex::encode(version).as_bytes())?;
        ps.set_meta("start_height", start_height.to_string().as_bytes())?;
        Ok(PluginRunner { name: name.to_string(), start_height, version, store: ps, plugin, manifest })
    }

    pub fn status(&self) -> Result<Status> {
        self.store.status()
    }

    /// The cursor and the state digest after it.
    pub fn cursor_with_digest(&self) -> Result<Option<crate::store::Cursor>> {
        self.store.cursor()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

impl Indexer for PluginRunner {
    fn cursor(&self) -> Result<Option<BlockRef>> {
        Ok(self.store.cursor()?.map(|c| c.block()))
    }

    fn apply(&mut self, block: BlockRef, parent: [u8; 32], raw: &[u8]) -> Result<()> {
        if let Status::Halted { height, reason } = self.store.status()? {
            bail!("plugin {} is halted at height {height}: {reason}", self.name);
        }
        let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&raw[..80])?;
        let info = BlockInfo { height: block.height, hash: block.hash, prev_hash: parent, time: header.time };
        let mut tx = self.store.begin_block(block, parent)?;
        match self.plugin.apply_block(&mut tx, &info, raw, &self.manifest) {
            Ok(_) => {
                tx.commit()?;
                Ok(())
            }
            Err(fault) => {
                tx.abort();
                let reason = fault.to_string();
                self.store.set_status(&Status::Halted { height: block.height, reason: reason.clone() })?;
                tracing::error!("plugin {} halted at height {}: {reason}", self.name, block.height);
                Err(anyhow!(fault)).with_context(|| format!("plugin {} halted at height {}", self.name, block.height))
            }
        }
    }

    fn undo(&mut self, block: BlockRef) -> Result<()> {
        self.store.undo_block(block).map(|_| ())
    }
}
