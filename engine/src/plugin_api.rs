//! The contract between the engine's block loop, the plugin store and the Wasm host: what a
//! plugin's block handler may do to its own namespace while one block is being applied. The
//! store implements it over a RocksDB write batch (reads see the block's own writes; nothing is
//! visible to anyone else until the block commits); the Wasm host exposes it to plugins as the
//! WIT `store` and `queue` interfaces.

/// One block's view of one plugin's namespace.
pub trait BlockContext {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: &[u8], value: &[u8]);
    fn delete(&mut self, key: &[u8]);
    /// Entries whose key starts with `prefix`, in ascending key order, strictly after `after`
    /// when given, at most `limit`.
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Entries with `start <= key < end`, ascending, at most `limit`.
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Queues an outgoing message; it is committed with the block (outbox) and delivered later.
    fn publish(&mut self, queue: &str, body: &[u8]);
}

/// Identity of a block as the engine delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub height: u32,
    /// Block hash in internal byte order (as `bitcoin::BlockHash::to_byte_array`).
    pub hash: [u8; 32],
}
