//! One plugin at work: its Wasm code, its namespace in the store, and the rule that a block's
//! effects (state writes, undo record, cursor, digest, outgoing messages) commit together or
//! not at all. A fault in the plugin (trap, fuel, timeout, memory) halts that plugin at that
//! block with the reason recorded; nothing of the failed block is written.
//!
//! Confirmations: the plugin's manifest gives a confirmation depth per height. When a new tip
//! arrives, one store transaction (tied to the tip) runs `apply-block` for every block the tip
//! made confirmed, oldest first, then `apply-unconfirmed` for the tip if it is not confirmed
//! yet. The height of the last confirmed block is kept in the plugin's namespace under
//! [`CONFIRMED_KEY`] (absent = the cursor itself is confirmed), so undoing the tip takes its
//! confirmations back with everything else.

use crate::follower::Indexer;
use crate::plugin_api::{BlockContext, BlockRef};
use crate::source::BlockSource;
use crate::store::{BlockTx, PluginStore, Status};
use crate::wasm::{BlockInfo, DecodedBlock, LoadedPlugin, Manifest, PluginFault, WasmHost};
use anyhow::{anyhow, bail, Context, Result};
use bitcoin::hashes::Hash;
use sha2::{Digest, Sha256};

/// Reserved key (in the plugin's namespace) holding the height (u32 big-endian) of the last
/// confirmed block when it is below the cursor.
pub const CONFIRMED_KEY: &[u8] = b"\x00engine\x00confirmed";

/// A plugin's code as loaded for one namespace: the compiled component, its manifest, its
/// content-addressed version.
pub struct PluginCode {
    pub plugin: LoadedPlugin,
    pub manifest: Manifest,
    /// sha256(sha256(wasm) ‖ config): what `engine plugin status` shows as the version.
    pub version: [u8; 32],
}

impl PluginCode {
    /// Loads `wasm` (or takes it from the compile cache), runs `init(config)` and checks the
    /// manifest against the store's undo window.
    pub fn load(host: &WasmHost, name: &str, wasm: &[u8], config: &str, undo_window: u32) -> Result<PluginCode> {
        let mut plugin = host.load_bytes(wasm).with_context(|| format!("plugin {name}: loading its Wasm"))?;
        let manifest = plugin.init(config).map_err(|f| anyhow!("plugin {name}: init failed: {f}"))?;
        manifest.validate(undo_window).map_err(|e| anyhow!("plugin {name}: {e}"))?;
        Ok(PluginCode { version: version_of(&plugin.content_hash(), config), plugin, manifest })
    }
}

/// The content address of a plugin version.
pub fn version_of(wasm_hash: &[u8; 32], config: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(wasm_hash);
    h.update(config.as_bytes());
    h.finalize().into()
}

pub struct PluginRunner {
    pub name: String,
    pub start_height: u32,
    store: PluginStore,
    code: PluginCode,
    metrics: Option<std::sync::Arc<crate::metrics::PluginMetrics>>,
}

impl PluginRunner {
    /// Loads the plugin from a file and records its version (convenience for tools and tests).
    pub fn start(
        host: &WasmHost,
        store: &crate::store::Store,
        name: &str,
        wasm: &std::path::Path,
        config: &str,
        start_height: u32,
    ) -> Result<PluginRunner> {
        let bytes = std::fs::read(wasm).with_context(|| format!("plugin {name}: reading {}", wasm.display()))?;
        let code = PluginCode::load(host, name, &bytes, config, store.undo_window())?;
        PluginRunner::new(name, store.plugin(name), code, start_height)
    }

    /// A runner over namespace `store` with `code`; records the version in the namespace.
    pub fn new(name: &str, store: PluginStore, code: PluginCode, start_height: u32) -> Result<PluginRunner> {
        store.set_meta("version", hex::encode(code.version).as_bytes())?;
        store.set_meta("start_height", start_height.to_string().as_bytes())?;
        Ok(PluginRunner { name: name.to_string(), start_height, store, code, metrics: None })
    }

    /// Records block metrics (height, handler time, fuel) into `m` from now on.
    pub fn set_metrics(&mut self, m: std::sync::Arc<crate::metrics::PluginMetrics>) {
        self.metrics = Some(m);
    }

    /// The code and namespace HTTP routes and jobs should use.
    pub fn serving(&self) -> crate::live::Serving {
        crate::live::Serving {
            plugin: self.code.plugin.clone(),
            manifest: self.code.manifest.clone(),
            store: self.store.clone(),
        }
    }

    pub fn status(&self) -> Result<Status> {
        self.store.status()
    }

    /// The cursor and the state digest after it.
    pub fn cursor_with_digest(&self) -> Result<Option<crate::store::Cursor>> {
        self.store.cursor()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.code.manifest
    }

    pub fn version(&self) -> [u8; 32] {
        self.code.version
    }

    pub fn wasm_hash(&self) -> [u8; 32] {
        self.code.plugin.content_hash()
    }

    pub fn store(&self) -> &PluginStore {
        &self.store
    }

    /// Height of the last confirmed block (None before the first).
    pub fn confirmed_height(&self) -> Result<Option<u32>> {
        confirmed_height_of(&self.store)
    }

    /// Turns the namespace's outbox writes off (a rebuild in the background) or on.
    pub fn set_muted(&mut self, muted: bool) {
        if self.store.is_muted() != muted {
            self.store = self.store.clone().muted(muted);
        }
    }

    /// Replaces the code at a block boundary, keeping the namespace (keep-state upgrade). A
    /// halted plugin becomes active again: the new code gets to retry the block that failed.
    pub fn swap_code(&mut self, code: PluginCode) -> Result<PluginCode> {
        self.store.set_meta("version", hex::encode(code.version).as_bytes())?;
        if matches!(self.store.status()?, Status::Halted { .. }) {
            self.store.set_status(&Status::Active)?;
        }
        Ok(std::mem::replace(&mut self.code, code))
    }

    /// Moves the cursor back to `height` by undoing blocks newest first (each with the plugin's
    /// undo hook). Errors without changing anything beyond the blocks already undone if a block
    /// is beyond the undo window.
    pub fn rewind(&mut self, height: u32, source: &mut dyn BlockSource) -> Result<u32> {
        let mut undone = 0;
        while let Some(c) = self.store.cursor()? {
            if c.height <= height {
                break;
            }
            if !self.store.can_undo(c.height)? {
                bail!(
                    "plugin {}: cannot rewind below height {}: block {} is beyond the undo window of {} blocks",
                    self.name,
                    c.height,
                    c.height,
                    self.store.store().undo_window()
                );
            }
            self.undo_one(c.block(), source)?;
            undone += 1;
        }
        Ok(undone)
    }

    fn halt(&self, height: u32, reason: String) -> Result<()> {
        tracing::error!("plugin {} halted at height {height}: {reason}", self.name);
        self.store.set_status(&Status::Halted { height, reason })
    }

    /// Runs the handlers of a new tip inside `tx` (see the module doc).
    fn run_tip(
        &self,
        tx: &mut BlockTx,
        tip: &BlockInfo,
        raw: &[u8],
        source: &mut dyn BlockSource,
    ) -> Result<Result<(), PluginFault>> {
        let decoded = match DecodedBlock::parse(raw) {
            Ok(d) => d,
            Err(e) => return Ok(Err(PluginFault { kind: crate::wasm::FaultKind::Host, message: e })),
        };
        let m = &self.code.manifest;
        // The confirmed-height record as of the cursor (absent: the cursor itself is confirmed).
        let stored = tx.get(CONFIRMED_KEY);
        let confirmed_before = match &stored {
            Some(v) => decode_height(v)?,
            None => self.store.cursor()?.map(|c| c.height),
        };
        let first = match confirmed_before {
            Some(h) => h + 1,
            None => self.start_height.min(tip.height),
        };
        let mut confirmed = first.checked_sub(1);
        let mut h = first;
        let mut fuel = 0u64;
        let mut record = |r: Result<crate::wasm::ApplyStats, PluginFault>| match r {
            Ok(s) => {
                fuel += s.fuel_used;
                Ok(())
            }
            Err(f) => Err(f),
        };
        while h <= tip.height && h as u64 + m.depth_at(h) as u64 - 1 <= tip.height as u64 {
            let r = record(if h == tip.height {
                self.code.plugin.apply_decoded(tx, tip, &decoded, m)
            } else {
                let (hash, _) = self.store.digest_at(h)?.ok_or_else(|| {
                    anyhow!("plugin {}: no history for height {h} (below the undo window?)", self.name)
                })?;
                let older = source
                    .block(&bitcoin::BlockHash::from_byte_array(hash))
                    .with_context(|| format!("fetching block {h} to confirm it"))?;
                let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&older[..80.min(older.len())])?;
                let info =
                    BlockInfo { height: h, hash, prev_hash: header.prev_blockhash.to_byte_array(), time: header.time };
                self.code.plugin.apply_block(tx, &info, &older, m)
            });
            if let Err(f) = r {
                return Ok(Err(f));
            }
            confirmed = Some(h);
            h += 1;
        }
        if confirmed != Some(tip.height) && m.unconfirmed_blocks {
            if let Err(f) = record(self.code.plugin.apply_unconfirmed(tx, tip, &decoded, m)) {
                return Ok(Err(f));
            }
        }
        if let Some(mm) = &self.metrics {
            mm.fuel.inc_by(fuel);
        }
        // Record the confirmed height unless it is the tip (the common depth-1 case writes nothing).
        match confirmed {
            Some(c) if c == tip.height => {
                if stored.is_some() {
                    tx.remove(CONFIRMED_KEY);
                }
            }
            Some(c) => tx.set(CONFIRMED_KEY, &c.to_be_bytes()),
            // Nothing confirmed yet.
            None => tx.set(CONFIRMED_KEY, &[]),
        }
        Ok(Ok(()))
    }

    fn undo_one(&mut self, block: BlockRef, source: &mut dyn BlockSource) -> Result<()> {
        let info = match source.block(&bitcoin::BlockHash::from_byte_array(block.hash)) {
            Ok(raw) if raw.len() >= 80 => {
                let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&raw[..80])?;
                BlockInfo {
                    height: block.height,
                    hash: block.hash,
                    prev_hash: header.prev_blockhash.to_byte_array(),
                    time: header.time,
                }
            }
            // The source no longer has it: the hook still learns which block goes.
            _ => BlockInfo {
                height: block.height,
                hash: block.hash,
                prev_hash: block
                    .height
                    .checked_sub(1)
                    .and_then(|h| self.store.digest_at(h).ok().flatten())
                    .map_or([0; 32], |x| x.0),
                time: 0,
            },
        };
        let mut ctx = UndoContext { store: &self.store, publishes: Vec::new() };
        if let Err(f) = self.code.plugin.undo_block(&mut ctx, &info) {
            let reason = format!("undo-block failed: {f}");
            self.halt(block.height, reason.clone())?;
            bail!("plugin {} halted at height {}: {reason}", self.name, block.height);
        }
        self.store.undo_block_publishing(block, &ctx.publishes).map(|_| ())
    }
}

/// Height of the last confirmed block of a namespace (None before the first).
pub fn confirmed_height_of(store: &PluginStore) -> Result<Option<u32>> {
    let Some(c) = store.cursor()? else { return Ok(None) };
    match store.get(CONFIRMED_KEY)? {
        Some(v) => decode_height(&v),
        None => Ok(Some(c.height)),
    }
}

/// The confirmed-height record: empty = nothing confirmed yet, else the height (u32 BE).
fn decode_height(v: &[u8]) -> Result<Option<u32>> {
    if v.is_empty() {
        return Ok(None);
    }
    Ok(Some(u32::from_be_bytes(v.try_into().map_err(|_| anyhow!("corrupt confirmed-height record"))?)))
}

/// What `undo-block` sees: the state as of the block being taken back, read-only, plus publish.
struct UndoContext<'a> {
    store: &'a PluginStore,
    publishes: Vec<(String, Vec<u8>)>,
}

const UNDO_READ_ONLY: &str = "undo-block may only publish: the host restores the state itself";

impl BlockContext for UndoContext<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.store.get(key).ok().flatten()
    }
    fn put(&mut self, _: &[u8], _: &[u8]) -> Result<(), String> {
        Err(UNDO_READ_ONLY.into())
    }
    fn delete(&mut self, _: &[u8]) -> Result<(), String> {
        Err(UNDO_READ_ONLY.into())
    }
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.store.scan_prefix(prefix, after, limit).unwrap_or_default()
    }
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.store.scan_range(start, end, limit).unwrap_or_default()
    }
    fn publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String> {
        self.store.may_publish(queue)?;
        self.publishes.push((queue.to_string(), body.to_vec()));
        Ok(())
    }
}

impl Indexer for PluginRunner {
    fn cursor(&self) -> Result<Option<BlockRef>> {
        Ok(self.store.cursor()?.map(|c| c.block()))
    }

    fn apply(&mut self, block: BlockRef, parent: [u8; 32], raw: &[u8], source: &mut dyn BlockSource) -> Result<()> {
        if let Status::Halted { height, reason } = self.store.status()? {
            bail!("plugin {} is halted at height {height}: {reason}", self.name);
        }
        let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&raw[..80])?;
        let info = BlockInfo { height: block.height, hash: block.hash, prev_hash: parent, time: header.time };
        let mut tx = self.store.begin_block(block, parent)?;
        let t0 = std::time::Instant::now();
        match self.run_tip(&mut tx, &info, raw, source)? {
            Ok(()) => {
                tx.commit()?;
                if let Some(m) = &self.metrics {
                    m.handler_seconds.observe(t0.elapsed().as_secs_f64());
                    m.blocks.inc();
                    m.height.set(block.height as i64);
                }
                Ok(())
            }
            Err(fault) => {
                tx.abort();
                self.halt(block.height, fault.to_string())?;
                Err(anyhow!(fault)).with_context(|| format!("plugin {} halted at height {}", self.name, block.height))
            }
        }
    }

    fn undo(&mut self, block: BlockRef, source: &mut dyn BlockSource) -> Result<()> {
        if !self.store.can_undo(block.height)? {
            let reason = format!(
                "reorg deeper than the undo window: block {} at height {} left the best chain but the window keeps \
                 only the last {} blocks; state is intact at height {}. Raise [engine] undo_window and rebuild \
                 (`engine plugin upgrade {} FILE --mode rebuild`)",
                crate::follower::hex_hash(&block.hash),
                block.height,
                self.store.store().undo_window(),
                block.height,
                self.name
            );
            self.halt(block.height, reason.clone())?;
            bail!("plugin {}: {reason}", self.name);
        }
        self.undo_one(block, source)?;
        if let Some(m) = &self.metrics {
            m.undone.inc();
            m.height.set(block.height as i64 - 1);
        }
        Ok(())
    }
}
