//! The plugin store: each plugin's key-value namespace in one RocksDB database, advanced one
//! block at a time in atomic, fsynced write batches, with per-block undo for reorgs, a state
//! digest chain, and a transactional outbox.
//!
//! Invariants (each kept by one synced `WriteBatch` per operation):
//! - A namespace's data, cursor, undo records, digest history and outbox entries always describe
//!   the same block boundary: a crash leaves the namespace exactly after some committed block.
//! - A block is applied only on top of the cursor (`parent` = cursor hash, height = cursor + 1):
//!   never twice, never skipped. `undo_block` takes back exactly the cursor's block.
//! - The digest after height h is `sha256(digest(h-1) || h || hash || writes || publishes)` (see
//!   [`codec::block_digest`]), so equal chains give equal digests, byte for byte.
//! - Outbox sequence numbers only grow (persisted), across all plugins.
//!
//! Outbox and undo: a committed message is never taken back. `undo_block` leaves the undone
//! block's outbox entries in place (delivered or not), so what consumers receive depends only on
//! the sequence of blocks applied and undone, never on how fast the publisher drained. Compensation
//! is the plugin's business: the engine runs the plugin's `undo-block` handler and passes what it
//! published to [`PluginStore::undo_block_publishing`], which commits those messages in the undo's
//! own batch (so they are published exactly when the undo is durable).
//!
//! Message ids: each namespace counts the messages its blocks and undos emit (also while muted),
//! outside the undo records, so the count never goes back. An outbox entry carries (plugin,
//! block height and hash, that number); [`OutboxEntry::message_id`] is the id sinks attach for
//! consumer dedupe. It is the same on every redelivery and unique across reorgs and rewinds.
//!
//! Local state: next to its chain state each namespace has an off-chain key space (`local`),
//! written only by [`PluginStore::commit_local`] (HTTP write routes, jobs), never undone and not
//! part of the digest.
//!
//! Key layout: see [`codec`].

mod block;
pub mod codec;
mod local;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, bail, Context, Result};
use rocksdb::{DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions, DB};

pub use block::BlockTx;
use codec::UndoRecord;
pub use snapshot::Snapshot;

use crate::plugin_api::BlockRef;

/// Default number of most recent blocks that can be undone.
pub const DEFAULT_UNDO_WINDOW: u32 = 144;

/// Where a namespace stands: the last applied block and the state digest after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub height: u32,
    /// Block hash, internal byte order.
    pub hash: [u8; 32],
    pub digest: [u8; 32],
}

impl Cursor {
    pub fn block(&self) -> BlockRef {
        BlockRef { height: self.height, hash: self.hash }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Active,
    /// The plugin stopped at `height` (e.g. its handler trapped); `begin_block` refuses until the
    /// status is set back to `Active`. Undo is still allowed.
    Halted {
        height: u32,
        reason: String,
    },
}

/// One outbox message, as committed with its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub plugin: String,
    pub height: u32,
    pub block_hash: [u8; 32],
    /// The namespace's message number (see the module doc).
    pub number: u64,
    pub queue: String,
    pub body: Vec<u8>,
}

impl OutboxEntry {
    /// `<plugin>:<height>:<block hash, explorer hex>:<number>`: deterministic, the same on every
    /// redelivery, for consumer dedupe.
    pub fn message_id(&self) -> String {
        format!("{}:{}:{}:{}", self.plugin, self.height, codec::hash_hex(&self.block_hash), self.number)
    }
}

/// One entry of a namespace's digest history: the state digest after the block at `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    pub height: u32,
    pub hash: [u8; 32],
    pub digest: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How many of the most recent blocks keep an undo record (>= 1).
    pub undo_window: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { undo_window: DEFAULT_UNDO_WINDOW }
    }
}

/// The store. Cheap to clone (shared handle); `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    undo_window: u32,
    /// Serialises every write (commit, undo, status, meta, drop, ack): cursor checks and the
    /// outbox sequence are decided under it.
    writer: Mutex<Writer>,
    sync: WriteOptions,
    /// The next outbox sequence number, announced after every commit that added entries.
    outbox_tip: tokio::sync::watch::Sender<u64>,
}

struct Writer {
    next_seq: u64,
    /// No outbox entry below this sequence exists (ack floor; saves iterating tombstones).
    outbox_floor: u64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.db.write_opt(batch, &self.sync).map_err(|e| anyhow!("RocksDB write failed: {e}"))
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).field("undo_window", &self.inner.undo_window).finish()
    }
}

impl Store {
    /// Opens (creating if missing) the store at `path` with the default undo window.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, StoreConfig::default())
    }

    pub fn open_with(path: &Path, config: StoreConfig) -> Result<Store> {
        if config.undo_window == 0 {
            bail!("undo window must be at least 1 block");
        }
        if path.exists() && !path.is_dir() {
            bail!("cannot open store at {}: not a directory", path.display());
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::None);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(4);
        let db = DB::open(&opts, path).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("lock") || msg.contains("LOCK") {
                anyhow!(
                    "cannot open store at {}: it is locked, another process (or another Store in this \
                     process) has it open ({msg})",
                    path.display()
                )
            } else {
                anyhow!("cannot open store at {}: {msg}", path.display())
            }
        })?;

        let mut sync = WriteOptions::default();
        sync.set_sync(true);

        // Format marker: a new database gets one; a foreign or newer one is refused.
        match db.get(codec::KEY_FORMAT)? {
            Some(v) if v == [codec::FORMAT_VERSION] => {}
            Some(v) if v.len() == 1 && v[0] < codec::FORMAT_VERSION => bail!(
                "store at {} was written by an older engine (format {}; this engine writes format {}): move it \
                 away or delete it and let the engine index again from the plugins' start heights",
                path.display(),
                v[0],
                codec::FORMAT_VERSION
            ),
            Some(v) => bail!(
                "store at {} has format {v:?}, newer than this engine's {}: run a newer engine",
                path.display(),
                codec::FORMAT_VERSION
            ),
            None => {
                let mut it = db.raw_iterator();
                it.seek_to_first();
                if it.valid() {
                    bail!("{} holds a RocksDB database that is not an engine store", path.display());
                }
                it.status()?;
                db.put_opt(codec::KEY_FORMAT, [codec::FORMAT_VERSION], &sync)?;
            }
        }

        // Outbox sequence: the persisted counter, or past the last entry, whichever is higher.
        let counter = match db.get(codec::KEY_OUTBOX_SEQ)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| anyhow!("corrupt outbox counter"))?),
            None => 0,
        };
        let (first, last) = {
            let mut ro = ReadOptions::default();
            ro.set_iterate_lower_bound(vec![codec::OUTBOX_TAG]);
            ro.set_iterate_upper_bound(vec![codec::OUTBOX_TAG + 1]);
            let mut it = db.raw_iterator_opt(ro);
            it.seek_to_first();
            let first = it.key().and_then(codec::outbox_seq_of);
            it.seek_to_last();
            let last = it.key().and_then(codec::outbox_seq_of);
            it.status()?;
            (first, last)
        };
        let next_seq = counter.max(last.map_or(0, |s| s + 1));
        let outbox_floor = first.unwrap_or(next_seq);

        Ok(Store {
            inner: Arc::new(Inner {
                db,
                path: path.to_path_buf(),
                undo_window: config.undo_window,
                writer: Mutex::new(Writer { next_seq, outbox_floor }),
                sync,
                outbox_tip: tokio::sync::watch::channel(next_seq).0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn undo_window(&self) -> u32 {
        self.inner.undo_window
    }

    /// The namespace of plugin `name` (any string; isolation does not depend on its bytes). Nothing
    /// is written until the namespace is used.
    pub fn plugin(&self, name: &str) -> PluginStore {
        PluginStore {
            store: self.clone(),
            name: name.to_string(),
            prefix: codec::plugin_prefix(name),
            label: name.to_string(),
            muted: false,
            queues: None,
        }
    }

    /// Names of the namespaces that hold anything (data, cursor, status or metadata), sorted by
    /// their key prefix (name length, then name bytes).
    pub fn plugins(&self) -> Result<Vec<String>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(vec![codec::PLUGIN_TAG]);
        ro.set_iterate_upper_bound(vec![codec::PLUGIN_TAG + 1]);
        let mut it = self.inner.db.raw_iterator_opt(ro);
        it.seek(vec![codec::PLUGIN_TAG]);
        let mut names = Vec::new();
        while let Some(k) = it.key() {
            let (name, _) = codec::plugin_name_of(k).ok_or_else(|| anyhow!("corrupt plugin key {}", hex::encode(k)))?;
            let name = name.to_string();
            match codec::prefix_successor(&codec::plugin_prefix(&name)) {
                Some(next) => it.seek(next),
                None => break,
            }
            names.push(name);
        }
        it.status()?;
        Ok(names)
    }

    /// Deletes namespace `name` entirely (data, cursor, undo, history, status, metadata) in one
    /// synced batch. Its committed outbox messages stay: they belong to the blocks that produced
    /// them and are delivered whatever happens to the namespace later (a rebuilt version taking
    /// over, a plugin removed).
    pub fn drop_plugin(&self, name: &str) -> Result<()> {
        let inner = &self.inner;
        let _w = inner.lock();
        let prefix = codec::plugin_prefix(name);
        let end = codec::prefix_successor(&prefix).expect("plugin prefix starts with 'p'");
        let mut batch = WriteBatch::default();
        batch.delete_range(&prefix, &end);
        inner.write(batch).with_context(|| format!("dropping plugin {name:?}"))?;
        tracing::info!(plugin = name, "dropped plugin namespace");
        Ok(())
    }

    /// Up to `limit` undelivered outbox entries, in sequence order.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let floor = self.inner.lock().outbox_floor;
        self.outbox_read(floor, limit)
    }

    /// Up to `limit` outbox entries with `seq >= from`, in sequence order.
    pub fn outbox_read(&self, from: u64, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.for_each_outbox(from, u64::MAX, |seq, e| {
            out.push(OutboxEntry {
                seq,
                plugin: e.plugin,
                height: e.height,
                block_hash: e.block_hash,
                number: e.number,
                queue: e.queue,
                body: e.body,
            });
            out.len() < limit
        })?;
        Ok(out)
    }

    /// (ack floor, next sequence): no undelivered entry is below the floor; `next - floor` bounds
    /// the outbox depth.
    pub fn outbox_bounds(&self) -> (u64, u64) {
        let w = self.inner.lock();
        (w.outbox_floor, w.next_seq)
    }

    /// Watches the next outbox sequence number (it changes after every commit that added
    /// messages): publishers wait on it instead of polling.
    pub fn outbox_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.outbox_tip.subscribe()
    }

    /// Records a commit's new outbox sequence (under the writer lock) and wakes the publishers.
    fn published(&self, w: &mut Writer, next: u64) {
        if next != w.next_seq {
            w.next_seq = next;
            self.inner.outbox_tip.send_replace(next);
        }
    }

    /// Durably removes every outbox entry with `seq <= up_to_seq` (they have been delivered).
    /// Returns how many were removed.
    pub fn outbox_ack(&self, up_to_seq: u64) -> Result<usize> {
        let mut w = self.inner.lock();
        let mut batch = WriteBatch::default();
        let mut n = 0usize;
        let end = up_to_seq.saturating_add(1);
        self.for_each_outbox_raw(w.outbox_floor, end, |seq, _| {
            batch.delete(codec::outbox_key(seq));
            n += 1;
            true
        })?;
        if n > 0 {
            self.inner.write(batch).context("acknowledging outbox entries")?;
        }
        w.outbox_floor = w.outbox_floor.max(end.min(w.next_seq));
        Ok(n)
    }

    /// Outbox entries with `from <= seq < to`, decoded; `f` returns false to stop.
    fn for_each_outbox(&self, from: u64, to: u64, mut f: impl FnMut(u64, codec::OutboxFields) -> bool) -> Result<()> {
        let mut err = None;
        self.for_each_outbox_raw(from, to, |seq, v| match codec::decode_outbox(v) {
            Ok(e) => f(seq, e),
            Err(e) => {
                err = Some(e.context(format!("corrupt outbox entry {seq}")));
                false
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    fn for_each_outbox_raw(&self, from: u64, to: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> Result<()> {
        let mut ro = ReadOptions::default();
        let lower = codec::outbox_key(from);
        ro.set_iterate_lower_bound(lower.clone());
        ro.set_iterate_upper_bound(if to == u64::MAX { vec![codec::OUTBOX_TAG + 1] } else { codec::outbox_key(to) });
        let mut it = self.inner.db.raw_iterator_opt(ro);
        it.seek(&lower);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let seq = codec::outbox_seq_of(k).ok_or_else(|| anyhow!("corrupt outbox key {}", hex::encode(k)))?;
            if !f(seq, v) {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// Every raw key/value of namespace `name` (data, cursor, undo, history, status, metadata),
    /// in key order. For tests and diagnostics.
    pub fn dump_namespace_raw(&self, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = codec::plugin_prefix(name);
        let end = codec::prefix_successor(&prefix).expect("plugin prefix starts with 'p'");
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(prefix.clone());
        ro.set_iterate_upper_bound(end);
        let mut it = self.inner.db.raw_iterator_opt(ro);
        it.seek(&prefix);
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            out.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status()?;
        Ok(out)
    }
}

/// One plugin's namespace. Cheap to clone; `Send + Sync`; `'static` (holds the store).
#[derive(Clone)]
pub struct PluginStore {
    store: Store,
    name: String,
    prefix: Vec<u8>,
    /// The plugin name written into outbox entries (the namespace name unless relabelled: a
    /// rebuilt version lives in its own namespace but publishes as the plugin).
    label: String,
    /// When set, blocks publish nothing to the outbox (their messages still enter the digest):
    /// a version rebuilding in the background must not repeat history downstream.
    muted: bool,
    /// Queues blocks may publish to (`None`: any; the runtime file's `capabilities.queues`).
    queues: Option<Arc<[String]>>,
}

impl std::fmt::Debug for PluginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStore").field("name", &self.name).finish()
    }
}

fn describe(c: &Option<Cursor>) -> String {
    match c {
        None => "empty".to_string(),
        Some(c) => format!("height {} hash {}", c.height, codec::hash_hex(&c.hash)),
    }
}

impl PluginStore {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same namespace, publishing under `label` in the outbox.
    pub fn labelled(mut self, label: &str) -> PluginStore {
        self.label = label.to_string();
        self
    }

    /// The same namespace with outbox writes on or off (see the `muted` field).
    pub fn muted(mut self, muted: bool) -> PluginStore {
        self.muted = muted;
        self
    }

    /// The same namespace allowing publishes only to `queues` (a block publishing elsewhere
    /// faults).
    pub fn with_queues(mut self, queues: &[String]) -> PluginStore {
        self.queues = Some(queues.iter().cloned().collect());
        self
    }

    /// Whether the namespace may publish to `queue` (see [`with_queues`](Self::with_queues)).
    pub fn may_publish(&self, queue: &str) -> Result<(), String> {
        match &self.queues {
            Some(allowed) if !allowed.iter().any(|q| q == queue) => Err(format!(
                "queue {queue:?} is not in the plugin's capabilities.queues [{}]; add it in the runtime file",
                allowed.join(", ")
            )),
            _ => Ok(()),
        }
    }

    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Whether the block at `height` still has its undo record (can be taken back).
    pub fn can_undo(&self, height: u32) -> Result<bool> {
        Ok(self.db().get_pinned(codec::height_key(&self.prefix, codec::SUB_UNDO, height))?.is_some())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn db(&self) -> &DB {
        &self.store.inner.db
    }

    fn key(&self, sub: u8, rest: &[u8]) -> Vec<u8> {
        codec::sub_key(&self.prefix, sub, rest)
    }

    /// The last applied block and the digest after it; `None` for an empty namespace.
    pub fn cursor(&self) -> Result<Option<Cursor>> {
        match self.db().get(self.key(codec::SUB_CURSOR, &[]))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::decode_cursor(&v)?)),
        }
    }

    pub fn status(&self) -> Result<Status> {
        match self.db().get(self.key(codec::SUB_STATUS, &[]))? {
            None => Ok(Status::Active),
            Some(v) => codec::decode_status(&v),
        }
    }

    pub fn set_status(&self, status: &Status) -> Result<()> {
        let _w = self.store.inner.lock();
        let mut batch = WriteBatch::default();
        let k = self.key(codec::SUB_STATUS, &[]);
        match status {
            Status::Active => batch.delete(k),
            s => batch.put(k, codec::encode_status(s)),
        }
        self.store.inner.write(batch)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db().get(self.key(codec::SUB_META, key.as_bytes()))?)
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        let _w = self.store.inner.lock();
        let mut batch = WriteBatch::default();
        batch.put(self.key(codec::SUB_META, key.as_bytes()), value);
        self.store.inner.write(batch)
    }

    /// Several metadata puts (`Some`) and deletes (`None`) in one synced batch.
    pub fn set_metas(&self, entries: &[(&str, Option<&[u8]>)]) -> Result<()> {
        let _w = self.store.inner.lock();
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            let key = self.key(codec::SUB_META, k.as_bytes());
            match v {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        self.store.inner.write(batch)
    }

    pub fn delete_meta(&self, key: &str) -> Result<()> {
        let _w = self.store.inner.lock();
        let mut batch = WriteBatch::default();
        batch.delete(self.key(codec::SUB_META, key.as_bytes()));
        self.store.inner.write(batch)
    }

    /// Puts `publishes` into `batch` as outbox entries of `block` (none when muted), numbered on
    /// from the namespace's message count, which it advances (also when muted). Returns the
    /// outbox sequence after them; call under the writer lock `w`.
    fn append_outbox(
        &self,
        batch: &mut WriteBatch,
        w: &Writer,
        block: &BlockRef,
        publishes: &[(String, Vec<u8>)],
        seqs: &mut Vec<u64>,
    ) -> Result<u64> {
        let mut next = w.next_seq;
        if publishes.is_empty() {
            return Ok(next);
        }
        let number = self.message_count()?;
        for (i, (q, body)) in publishes.iter().enumerate().filter(|_| !self.muted) {
            batch.put(codec::outbox_key(next), codec::encode_outbox(&self.label, block, number + i as u64, q, body));
            seqs.push(next);
            next += 1;
        }
        batch.put(self.key(codec::SUB_MSGNO, &[]), (number + publishes.len() as u64).to_be_bytes());
        if next != w.next_seq {
            batch.put(codec::KEY_OUTBOX_SEQ, next.to_be_bytes());
        }
        Ok(next)
    }

    /// How many messages the namespace's blocks and undos have emitted so far.
    pub fn message_count(&self) -> Result<u64> {
        match self.db().get(self.key(codec::SUB_MSGNO, &[]))? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| anyhow!("corrupt message counter"))?)),
        }
    }

    /// Raises the message count to at least `n` (a version taking over continues after the
    /// numbers the old one used, so ids never repeat).
    pub fn raise_message_count(&self, n: u64) -> Result<()> {
        let _w = self.store.inner.lock();
        if self.message_count()? < n {
            let mut batch = WriteBatch::default();
            batch.put(self.key(codec::SUB_MSGNO, &[]), n.to_be_bytes());
            self.store.inner.write(batch)?;
        }
        Ok(())
    }

    /// Committed value of `key` (outside any block).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db().get(self.key(codec::SUB_DATA, key))?)
    }

    /// Committed entries whose key starts with `prefix`, ascending, strictly after `after`, at most
    /// `limit`.
    pub fn scan_prefix(&self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match block::prefix_bounds(prefix, after) {
            Some((lo, hi)) => {
                block::merged_scan(self, block::Space::DATA, &lo, hi.as_deref(), &Default::default(), limit)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Committed entries with `start <= key < end`, ascending, at most `limit`.
    pub fn scan_range(&self, start: &[u8], end: &[u8], limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        block::merged_scan(self, block::Space::DATA, start, Some(end), &Default::default(), limit)
    }

    /// (block hash, digest) after the block at `height`, if it is within the undo window.
    pub fn digest_at(&self, height: u32) -> Result<Option<([u8; 32], [u8; 32])>> {
        match self.db().get(codec::height_key(&self.prefix, codec::SUB_HISTORY, height))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::decode_history(&v)?)),
        }
    }

    /// The digest history within the undo window, ascending by height.
    pub fn history(&self) -> Result<Vec<HistoryEntry>> {
        let lower = self.key(codec::SUB_HISTORY, &[]);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lower.clone());
        ro.set_iterate_upper_bound(self.key(codec::SUB_HISTORY + 1, &[]));
        let mut it = self.db().raw_iterator_opt(ro);
        it.seek(&lower);
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let h = k[lower.len()..].try_into().map(u32::from_be_bytes).map_err(|_| anyhow!("corrupt history key"))?;
            let (hash, digest) = codec::decode_history(v)?;
            out.push(HistoryEntry { height: h, hash, digest });
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Starts applying `block` on top of the cursor. Refuses unless `parent` is the cursor's hash
    /// and `block.height` is the cursor's height + 1 (an empty namespace accepts any block), or
    /// if the plugin is halted.
    pub fn begin_block(&self, block: BlockRef, parent: [u8; 32]) -> Result<BlockTx> {
        let base = self.cursor()?;
        match &base {
            Some(c) if c.height.checked_add(1) != Some(block.height) => bail!(
                "plugin {:?}: refusing block {} ({}): the namespace is at height {} ({}), the next block must \
                 be height {}",
                self.name,
                block.height,
                codec::hash_hex(&block.hash),
                c.height,
                codec::hash_hex(&c.hash),
                c.height as u64 + 1
            ),
            Some(c) if c.hash != parent => bail!(
                "plugin {:?}: refusing block {} ({}): its parent {} is not the namespace's tip {} at height {}",
                self.name,
                block.height,
                codec::hash_hex(&block.hash),
                codec::hash_hex(&parent),
                codec::hash_hex(&c.hash),
                c.height
            ),
            _ => {}
        }
        if let Status::Halted { height, reason } = self.status()? {
            bail!("plugin {:?} is halted at height {height} ({reason}); refusing block {}", self.name, block.height);
        }
        Ok(BlockTx {
            plugin: self.clone(),
            block,
            parent,
            base,
            writes: Default::default(),
            publishes: Vec::new(),
            error: None,
        })
    }

    /// Takes back the cursor's block, which must be `expected`, in one synced batch: restores
    /// every key it wrote, deletes its undo record and history entry and its still-pending outbox
    /// entries, and moves the cursor to the parent. Returns the new cursor (`None` if the undone
    /// block was the first the namespace ever applied: the namespace is empty again).
    ///
    /// Outbox entries of the block that were already acknowledged (delivered) cannot be taken
    /// back; they are logged, and compensation is up to the plugin's `undo-block` handler.
    pub fn undo_block(&self, expected: BlockRef) -> Result<Option<Cursor>> {
        self.undo_block_publishing(expected, &[])
    }

    /// [`undo_block`](Self::undo_block), also committing `publishes` (queue, body) to the outbox in
    /// the same batch, tagged with the undone block's height and hash: the compensation messages
    /// of the plugin's `undo-block` handler. They are not part of any block and are not removed
    /// by later undos.
    pub fn undo_block_publishing(&self, expected: BlockRef, publishes: &[(String, Vec<u8>)]) -> Result<Option<Cursor>> {
        let target = expected.height.checked_sub(1);
        self.rewind(target, Some(expected), publishes)
    }

    /// Undoes blocks, newest first, until the cursor is at `height`, as one synced batch (all or
    /// nothing). Errors, changing nothing, if an undo record on the way is missing (beyond the
    /// window) or `height` is above the cursor. Rewinding below the namespace's first block
    /// empties it (cursor `None`).
    pub fn rewind_to(&self, height: u32) -> Result<Option<Cursor>> {
        self.rewind(Some(height), None, &[])
    }

    /// `target = None` means "below height 0" (only reachable by undoing a genesis block).
    fn rewind(
        &self,
        target: Option<u32>,
        expected: Option<BlockRef>,
        publishes: &[(String, Vec<u8>)],
    ) -> Result<Option<Cursor>> {
        let inner = &self.store.inner;
        let mut w = inner.lock();
        let Some(tip) = self.cursor()? else {
            bail!("plugin {:?}: nothing to undo, the namespace is empty", self.name);
        };
        if let Some(e) = expected {
            if e != tip.block() {
                bail!(
                    "plugin {:?}: cannot undo block {} ({}): the namespace's tip is block {} ({})",
                    self.name,
                    e.height,
                    codec::hash_hex(&e.hash),
                    tip.height,
                    codec::hash_hex(&tip.hash)
                );
            }
        }
        let above = |c: &Cursor| target.is_none_or(|t| c.height > t);
        if let Some(t) = target {
            if t > tip.height {
                bail!("plugin {:?}: cannot rewind to height {t}: the namespace is at height {}", self.name, tip.height);
            }
        }

        let p = &self.prefix;
        let mut batch = WriteBatch::default();
        let mut restore: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
        let mut cur = Some(tip);
        let mut undone = 0u32;
        while let Some(c) = cur.filter(above) {
            let raw = self.db().get(codec::height_key(p, codec::SUB_UNDO, c.height))?.ok_or_else(|| {
                anyhow!(
                    "plugin {:?}: cannot undo block {} ({}): it is beyond the undo window of {} blocks (no undo \
                     record); nothing changed",
                    self.name,
                    c.height,
                    codec::hash_hex(&c.hash),
                    inner.undo_window
                )
            })?;
            let rec: UndoRecord = codec::decode_undo(&raw)
                .with_context(|| format!("plugin {:?}: undo record of block {}", self.name, c.height))?;
            if rec.block_hash != c.hash {
                bail!("plugin {:?}: undo record of height {} is for another block; store corrupt", self.name, c.height);
            }
            // Newest first: the oldest undone block's "before" value wins.
            for (k, v) in rec.before {
                restore.insert(k, v);
            }
            batch.delete(codec::height_key(p, codec::SUB_UNDO, c.height));
            batch.delete(codec::height_key(p, codec::SUB_HISTORY, c.height));
            cur = rec.prev;
            undone += 1;
        }
        for (k, v) in &restore {
            let dk = codec::sub_key(p, codec::SUB_DATA, k);
            match v {
                Some(v) => batch.put(dk, v),
                None => batch.delete(dk),
            }
        }
        // The undone blocks' messages stay in the outbox: what was committed is delivered (the
        // plugin's undo handler compensates), so the output never depends on delivery timing.
        let next = self.append_outbox(&mut batch, &w, &tip.block(), publishes, &mut Vec::new())?;
        let ck = self.key(codec::SUB_CURSOR, &[]);
        match &cur {
            Some(c) => batch.put(ck, codec::encode_cursor(c)),
            None => batch.delete(ck),
        }
        inner.write(batch).with_context(|| format!("undoing blocks of plugin {:?}", self.name))?;
        self.store.published(&mut w, next);
        tracing::debug!(plugin = %self.name, undone, to = %describe(&cur), "undo");
        Ok(cur)
    }
}
