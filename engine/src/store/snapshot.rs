//! Consistent reads: a RocksDB snapshot of the whole store. Every write of the store (a block, an
//! undo, a local commit) is one atomic batch, so a snapshot always sits between two of them: a
//! reader never sees half a block.

use std::collections::BTreeMap;

use anyhow::Result;
use rocksdb::ReadOptions;

use super::block::{self, Space};
use super::{codec, local, Cursor, PluginStore, Store};

/// The store as of one moment. Borrowed from the [`Store`]; take one per request.
pub struct Snapshot<'a> {
    snap: rocksdb::Snapshot<'a>,
}

impl Store {
    /// A consistent view of the whole store as of now.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot { snap: self.inner.db.snapshot() }
    }
}

impl Snapshot<'_> {
    fn get_raw(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&self.snap);
        Ok(self.snap.get_opt(key, ro)?)
    }

    /// The namespace's cursor in this snapshot.
    pub fn cursor(&self, ns: &PluginStore) -> Result<Option<Cursor>> {
        self.get_raw(ns.key(codec::SUB_CURSOR, &[]))?.map(|v| codec::decode_cursor(&v)).transpose()
    }

    pub fn get(&self, ns: &PluginStore, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_raw(ns.key(codec::SUB_DATA, key))
    }

    pub fn scan_prefix(
        &self,
        ns: &PluginStore,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match block::prefix_bounds(prefix, after) {
            Some((lo, hi)) => {
                block::merged_scan(ns, self.space(codec::SUB_DATA), &lo, hi.as_deref(), &BTreeMap::new(), limit)
            }
            None => Ok(Vec::new()),
        }
    }

    pub fn scan_range(
        &self,
        ns: &PluginStore,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        block::merged_scan(ns, self.space(codec::SUB_DATA), start, Some(end), &BTreeMap::new(), limit)
    }

    pub fn local_get(&self, ns: &PluginStore, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_raw(ns.key(codec::SUB_LOCAL, key))
    }

    /// Local prefix scan with `pending` (a job's own uncommitted writes) merged over.
    pub fn local_scan_prefix(
        &self,
        ns: &PluginStore,
        prefix: &[u8],
        after: Option<&[u8]>,
        pending: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        local::local_scan(ns, self.space(codec::SUB_LOCAL), prefix, after, pending, limit)
    }

    fn space(&self, sub: u8) -> Space<'_> {
        Space { sub, snapshot: Some(&self.snap) }
    }
}
