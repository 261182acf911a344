//! A namespace's off-chain ("local") key space: data that does not come from the chain, such as
//! requests users submitted over HTTP or a job's progress. Only HTTP write routes and jobs write
//! it, through [`PluginStore::commit_local`]; blocks and reorgs never touch it, and it is not part
//! of the state digest (so the digest stays a function of the chain alone).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rocksdb::WriteBatch;

use super::block::{self, Space};
use super::{codec, PluginStore};

impl PluginStore {
    /// Committed local value of `key`.
    pub fn local_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db().get(self.key(codec::SUB_LOCAL, key))?)
    }

    /// Committed local entries whose key starts with `prefix`, ascending, strictly after `after`,
    /// at most `limit`.
    pub fn local_scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        local_scan(self, Space::LOCAL, prefix, after, &BTreeMap::new(), limit)
    }

    /// Writes local puts (`Some`) and deletes (`None`) in one synced batch, serialised with the
    /// namespace's blocks by the store's writer lock.
    pub fn commit_local(&self, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let _w = self.store.inner.lock();
        let mut batch = WriteBatch::default();
        for (k, v) in writes {
            let key = self.key(codec::SUB_LOCAL, k);
            match v {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        self.store.inner.write(batch).with_context(|| format!("writing plugin {:?}'s local state", self.name))
    }
}

/// A local prefix scan in `space`, with `pending` writes merged over the committed entries.
pub(super) fn local_scan(
    plugin: &PluginStore,
    space: Space<'_>,
    prefix: &[u8],
    after: Option<&[u8]>,
    pending: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    limit: u32,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    match block::prefix_bounds(prefix, after) {
        Some((lo, hi)) => block::merged_scan(plugin, space, &lo, hi.as_deref(), pending, limit),
        None => Ok(Vec::new()),
    }
}
