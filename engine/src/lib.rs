//! The host engine: follows bitcoind with reorg-safe block delivery and runs indexing rules as
//! sandboxed Wasm plugins with atomic RocksDB state. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod bitcoind;
pub mod call_context;
pub mod crypto;
pub mod dashboard;
pub mod devnet;
pub mod fetcher;
pub mod follower;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod outbox;
pub mod plugin_api;
pub mod progress;
pub mod registry;
pub mod routes;
pub mod runner;
pub mod runtime;
pub mod source;
pub mod store;
pub mod supervisor;
#[doc(hidden)]
pub mod testing;
pub mod wasm;

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn atomic_write(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
