//! One block's transaction over one plugin's namespace, and the merged scans it needs.

use std::collections::BTreeMap;
use std::ops::Bound;

use anyhow::{anyhow, bail, Context, Result};
use rocksdb::{ReadOptions, WriteBatch, DB};

use super::codec::{self, UndoRecord};
use super::{Cursor, PluginStore, Status};
use crate::plugin_api::{BlockContext, BlockRef};

/// A block being applied to one plugin's namespace. Reads see the block's own pending writes over
/// the committed state; writes and publishes are buffered and reach the database only through
/// [`BlockTx::commit`], as one synced `WriteBatch`. Dropping it (or [`BlockTx::abort`]) writes
/// nothing.
///
/// `BlockContext` methods cannot return errors; if a database read fails, the read returns
/// nothing, the error is kept, and `commit` refuses with it (nothing is written).
pub struct BlockTx {
    pub(super) plugin: PluginStore,
    pub(super) block: BlockRef,
    pub(super) parent: [u8; 32],
    /// The cursor at `begin_block`; `commit` re-checks it under the write lock.
    pub(super) base: Option<Cursor>,
    pub(super) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub(super) publishes: Vec<(String, Vec<u8>)>,
    pub(super) error: Option<anyhow::Error>,
}

impl BlockTx {
    pub fn block(&self) -> BlockRef {
        self.block
    }

    pub fn parent(&self) -> [u8; 32] {
        self.parent
    }

    /// Number of distinct keys written so far in this block.
    pub fn pending_writes(&self) -> usize {
        self.writes.len()
    }

    /// The first database error a read hit, if any (commit will refuse).
    pub fn error(&self) -> Option<&anyhow::Error> {
        self.error.as_ref()
    }

    /// Writes `key` in the block (host bookkeeping; plugins go through [`BlockContext`]).
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
    }

    /// Deletes `key` in the block (host bookkeeping).
    pub fn remove(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), None);
    }

    /// Discards the block: nothing is written.
    pub fn abort(self) {}

    /// Writes the block in one synced `WriteBatch`: the data writes, the undo record, the new
    /// cursor and digest, the digest-history entry, the outbox entries, and the pruning of the
    /// undo record and history entry that fall out of the undo window. Returns the new cursor.
    pub fn commit(mut self) -> Result<Cursor> {
        if let Some(e) = self.error.take() {
            return Err(e.context(format!(
                "block {} of plugin {:?} not committed: a read failed during the block",
                self.block.height, self.plugin.name
            )));
        }
        let prev_digest = self.base.map_or([0u8; 32], |c| c.digest);
        let digest = codec::block_digest(
            &prev_digest,
            &self.block,
            self.writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
            self.publishes.iter().map(|(q, b)| (q.as_str(), b.as_slice())),
        );
        let cursor = Cursor { height: self.block.height, hash: self.block.hash, digest };

        let inner = &self.plugin.store.inner;
        let db = &inner.db;
        let p = &self.plugin.prefix;
        let mut w = inner.lock();

        // The namespace must still be where it was at begin_block (another BlockTx, an undo or a
        // drop may have committed in between).
        let now = self.plugin.cursor()?;
        if now != self.base {
            bail!(
                "block {} of plugin {:?} not committed: the namespace's cursor moved since begin_block \
                 (was {}, now {})",
                self.block.height,
                self.plugin.name,
                super::describe(&self.base),
                super::describe(&now)
            );
        }
        if let Status::Halted { height, reason } = self.plugin.status()? {
            bail!("plugin {:?} is halted at height {height} ({reason}); block not committed", self.plugin.name);
        }

        // Values before the block, for the undo record.
        let data_keys: Vec<Vec<u8>> = self.writes.keys().map(|k| codec::sub_key(p, codec::SUB_DATA, k)).collect();
        let olds = db.multi_get(&data_keys);
        let mut before = Vec::with_capacity(self.writes.len());
        let mut batch = WriteBatch::default();
        for ((k, v), (dk, old)) in self.writes.iter().zip(data_keys.iter().zip(olds)) {
            let old = old.with_context(|| format!("reading plugin {:?}'s state", self.plugin.name))?;
            before.push((k.clone(), old));
            match v {
                Some(v) => batch.put(dk, v),
                None => batch.delete(dk),
            }
        }

        let mut seqs = Vec::with_capacity(self.publishes.len());
        let next = self.plugin.append_outbox(&mut batch, &w, &self.block, &self.publishes, &mut seqs)?;

        let undo = UndoRecord { prev: self.base, block_hash: self.block.hash, before, seqs };
        let h = self.block.height;
        batch.put(codec::height_key(p, codec::SUB_UNDO, h), codec::encode_undo(&undo));
        batch.put(codec::height_key(p, codec::SUB_HISTORY, h), codec::encode_history(&self.block.hash, &digest));
        batch.put(codec::sub_key(p, codec::SUB_CURSOR, &[]), codec::encode_cursor(&cursor));
        if let Some(old) = h.checked_sub(inner.undo_window) {
            batch.delete(codec::height_key(p, codec::SUB_UNDO, old));
            batch.delete(codec::height_key(p, codec::SUB_HISTORY, old));
        }

        inner
            .write(batch)
            .with_context(|| format!("committing block {} of plugin {:?}", self.block.height, self.plugin.name))?;
        self.plugin.store.published(&mut w, next);
        Ok(cursor)
    }

    fn fail(&mut self, e: anyhow::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}

impl BlockContext for BlockTx {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(v) = self.writes.get(key) {
            return v.clone();
        }
        match self.plugin.get(key) {
            Ok(v) => v,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.set(key, value);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), String> {
        self.remove(key);
        Ok(())
    }

    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = match prefix_bounds(prefix, after) {
            Some((lo, hi)) => merged_scan(&self.plugin, Space::DATA, &lo, hi.as_deref(), &self.writes, limit),
            None => Ok(Vec::new()),
        };
        r.unwrap_or_else(|e| {
            self.fail(e);
            Vec::new()
        })
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        merged_scan(&self.plugin, Space::DATA, start, Some(end), &self.writes, limit).unwrap_or_else(|e| {
            self.fail(e);
            Vec::new()
        })
    }

    fn publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String> {
        self.plugin.may_publish(queue)?;
        self.publishes.push((queue.to_string(), body.to_vec()));
        Ok(())
    }
}

/// Which key space of a namespace a read goes to, and at which snapshot (`None`: latest).
#[derive(Clone, Copy)]
pub(super) struct Space<'a> {
    pub sub: u8,
    pub snapshot: Option<&'a rocksdb::Snapshot<'a>>,
}

impl Space<'static> {
    pub const DATA: Space<'static> = Space { sub: codec::SUB_DATA, snapshot: None };
    pub const LOCAL: Space<'static> = Space { sub: codec::SUB_LOCAL, snapshot: None };
}

/// User-key bounds `[lo, hi)` of a prefix scan strictly after `after`; `hi = None` means the end of
/// the namespace. `None` if the range is empty.
pub(super) fn prefix_bounds(prefix: &[u8], after: Option<&[u8]>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let mut lo = prefix.to_vec();
    if let Some(a) = after {
        let mut a1 = a.to_vec();
        a1.push(0);
        if a1 > lo {
            lo = a1;
        }
    }
    let hi = codec::prefix_successor(prefix);
    if let Some(hi) = &hi {
        if &lo >= hi {
            return None;
        }
    }
    Some((lo, hi))
}

/// Entries with `lo <= key < hi` (user keys), ascending, at most `limit`: `pending` (the block's
/// writes; `None` = deleted) merged over the committed state of the namespace.
pub(super) fn merged_scan(
    plugin: &PluginStore,
    space: Space<'_>,
    lo: &[u8],
    hi: Option<&[u8]>,
    pending: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    limit: u32,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let limit = limit as usize;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let p = &plugin.prefix;
    let db: &DB = &plugin.store.inner.db;
    let sub = space.sub;
    let lower = codec::sub_key(p, sub, lo);
    let upper = match hi {
        Some(h) => codec::sub_key(p, sub, h),
        None => codec::sub_key(p, sub + 1, &[]),
    };
    let strip = p.len() + 1;
    let mut ro = ReadOptions::default();
    if let Some(snap) = space.snapshot {
        ro.set_snapshot(snap);
    }
    ro.set_iterate_lower_bound(lower.clone());
    ro.set_iterate_upper_bound(upper);
    let mut it = db.raw_iterator_opt(ro);
    it.seek(&lower);
    let hi_bound = match hi {
        Some(h) => Bound::Excluded(h),
        None => Bound::Unbounded,
    };
    let mut pend = pending.range::<[u8], _>((Bound::Included(lo), hi_bound)).peekable();
    while out.len() < limit {
        let committed = if it.valid() { it.key().map(|k| &k[strip..]) } else { None };
        match (committed, pend.peek()) {
            (None, None) => break,
            (Some(ck), pk) if pk.is_none_or(|(pk, _)| ck < pk.as_slice()) => {
                out.push((ck.to_vec(), it.value().unwrap_or_default().to_vec()));
                it.next();
            }
            (ck, Some((pk, pv))) => {
                if ck == Some(pk.as_slice()) {
                    it.next();
                }
                if let Some(v) = pv {
                    out.push((pk.to_vec(), v.clone()));
                }
                pend.next();
            }
            (Some(_), None) => unreachable!(),
        }
    }
    it.status().map_err(|e| anyhow!("scanning plugin {:?}'s state: {e}", plugin.name))?;
    Ok(out)
}
