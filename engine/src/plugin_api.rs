//! The contract between the engine's block loop, the plugin store and the Wasm host: what one
//! call into a plugin may do. A block handler works on its own namespace through a write batch
//! (reads see the block's own writes; nothing is visible to anyone else until the block
//! commits); HTTP handlers and jobs get read-only or local-only views and, for jobs, outbound
//! capabilities. The Wasm host exposes it as the WIT `store`, `local`, `queue` and `outbound`
//! interfaces. An `Err(String)` from a method is a misuse the guest is trapped for (the message
//! names what is allowed where); `Ok(Err(..))` from an outbound call is an error the guest sees.

/// Key/value pairs, ascending by key.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One call's view of one plugin's namespace.
pub trait BlockContext {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String>;
    fn delete(&mut self, key: &[u8]) -> Result<(), String>;
    /// Entries whose key starts with `prefix`, in ascending key order, strictly after `after`
    /// when given, at most `limit`.
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Entries with `start <= key < end`, ascending, at most `limit`.
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Queues an outgoing message; it is committed with the block (outbox) and delivered later.
    fn publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String>;

    /// The plugin's off-chain key space (see the WIT `local` interface).
    fn local_get(&mut self, _key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Err(NO_LOCAL.into())
    }
    fn local_put(&mut self, _key: &[u8], _value: &[u8]) -> Result<(), String> {
        Err(NO_LOCAL.into())
    }
    fn local_delete(&mut self, _key: &[u8]) -> Result<(), String> {
        Err(NO_LOCAL.into())
    }
    fn local_scan_prefix(&mut self, _prefix: &[u8], _after: Option<&[u8]>, _limit: u32) -> Result<Entries, String> {
        Err(NO_LOCAL.into())
    }

    /// An outbound HTTP request (jobs only).
    fn http_request(&mut self, _req: OutboundRequest) -> Result<Result<OutboundReply, String>, String> {
        Err(NO_OUTBOUND.into())
    }
    /// A bitcoind JSON-RPC call (jobs only): `params` is a JSON array, the result JSON text.
    fn bitcoind(&mut self, _method: &str, _params: &str) -> Result<Result<String, String>, String> {
        Err(NO_OUTBOUND.into())
    }
}

pub const NO_LOCAL: &str = "local state is not available to block and undo handlers (only to HTTP routes and jobs)";
pub const NO_OUTBOUND: &str = "outbound calls (HTTP, bitcoind) are only available to run-job";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Identity of a block as the engine delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub height: u32,
    /// Block hash in internal byte order (as `bitcoin::BlockHash::to_byte_array`).
    pub hash: [u8; 32],
}
