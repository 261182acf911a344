//! The plugin side of the engine's host/plugin contract.
//!
//! - [`bindings`]: `wit-bindgen` bindings generated from `guest-sdk/wit` (the versioned WIT
//!   package `phase1:indexer`, world `plugin`).
//! - [`Plugin`] + [`export_plugin!`]: the typed entry points a plugin implements.
//! - [`store`], [`local`], [`outbound`], [`publish`], [`log`], [`config`]: typed wrappers over
//!   the host imports, with JSON helpers.
//! - HTTP: [`route_get`], [`route_post`], [`legacy_get`], [`legacy_post`] declare routes;
//!   [`HttpRequest`] and [`HttpResponse`] have small helpers (`param`, `query_param`,
//!   `HttpResponse::json`, ...).
//! - [`testing`]: a native harness — on non-wasm targets the same wrappers talk to an in-memory
//!   host, so a plugin's handlers can be unit-tested with `cargo test` without the engine.
//! - `tx` helpers with the `bitcoin` crate and [`crypto`] (secp256k1 run natively by the host)
//!   (feature `bitcoin`, on by default).
//!
//! Every call runs in a fresh instance (see the WIT): keep durable state in [`store`] (chain
//! state) or [`local`] (off-chain state) only.

extern crate self as guest_sdk;

#[cfg(feature = "bitcoin")]
pub mod crypto;
mod http;
pub use http::{legacy_get, legacy_post, route, route_get, route_post};

/// Version of the host/plugin contract this SDK targets (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.3.1";

/// Reserved key prefix for watched outpoints: `WATCH_PREFIX ++ txid(32) ++ vout(4, BE)`.
pub const WATCH_PREFIX: &[u8] = b"\x00watch\x00";

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[cfg(feature = "bitcoin")]
pub use bitcoin;
pub use serde_json;

/// Generated guest bindings for `world plugin`.
#[allow(clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "guest_sdk::bindings",
        runtime_path: "guest_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::phase1::indexer::log::Level;
pub use bindings::phase1::indexer::outbound::HttpReply;
pub use bindings::phase1::indexer::types::{BlockInfo, DepthFrom, HttpRequest, HttpResponse, Manifest, Route, Tx};

/// A plugin's handlers. Associated functions, not methods: each call runs in a fresh instance,
/// so there is no `self` that could survive from one block to the next.
pub trait Plugin {
    /// Validates `config` and declares the manifest. Store and queue are unavailable here.
    fn init(config: &str) -> Result<Manifest, String>;
    /// Applies one confirmed block; `txs` passed the manifest's prefilters, in block order.
    fn apply_block(block: &BlockInfo, txs: &[Tx]) -> Result<(), String>;
    /// Applies one whole serialized block (only called when the manifest sets `raw_block`).
    fn apply_raw_block(_block: &BlockInfo, _raw: &[u8]) -> Result<(), String> {
        Err("apply-raw-block is not implemented by this plugin".into())
    }
    /// A new tip that is not confirmed yet (only when the manifest sets `unconfirmed_blocks`).
    fn apply_unconfirmed(_block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        Ok(())
    }
    /// Called just before the host takes back the tip `block`; may only publish.
    fn undo_block(_block: &BlockInfo) -> Result<(), String> {
        Ok(())
    }
    /// Serves one request to a route of the manifest's `routes` (`req.route` is the declared
    /// path). Read routes see `store` and `local` read-only; write routes may write `local`
    /// (kept only when the status is below 400). Default: 404 `{"error":"no such route"}`.
    fn handle_request(_req: &HttpRequest) -> HttpResponse {
        HttpResponse::not_found()
    }
    /// The periodic job (only when the manifest's `job_interval_ms` > 0): may read `store`,
    /// read and write `local` (kept only on `Ok`) and use [`outbound`].
    fn run_job() -> Result<(), String> {
        Ok(())
    }
}

/// Reads a number from a plugin's config: either the whole config (`"100"`) or field `key` of a
/// JSON object config (`{"height":100}`, which is how `engine run` passes a runtime.toml
/// `config` table).
pub fn config_number(config: &str, key: &str) -> Result<u64, String> {
    let c = config.trim();
    if c.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(c).map_err(|e| format!("config is not JSON: {e}"))?;
        v.get(key).and_then(|n| n.as_u64()).ok_or_else(|| format!("config needs a number field {key:?}"))
    } else {
        c.parse().map_err(|e| format!("config must be a number ({key}): {e}"))
    }
}

/// A manifest with no prefilter (every transaction is delivered), confirmation depth 1, no
/// routes and no job.
pub fn manifest(name: &str, version: &str) -> Manifest {
    Manifest {
        name: name.into(),
        version: version.into(),
        op_return_prefixes: Vec::new(),
        watch_spends: false,
        all_transactions: false,
        raw_block: false,
        confirmation_depths: Vec::new(),
        unconfirmed_blocks: false,
        routes: Vec::new(),
        job_interval_ms: 0,
    }
}

/// A 32-byte hash given in internal byte order as the hex explorers show (byte-reversed).
pub fn hash_hex(hash: &[u8]) -> String {
    hash.iter().rev().map(|b| format!("{b:02x}")).collect()
}

/// Exports a [`Plugin`] implementation as the component's `plugin` world. Expands to nothing on
/// non-wasm targets (so plugin crates build natively for `cargo test --workspace`).
///
/// ```ignore
/// struct Counter;
/// impl guest_sdk::Plugin for Counter { /* ... */ }
/// guest_sdk::export_plugin!(Counter);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __GuestSdkExport;
            impl $crate::bindings::Guest for __GuestSdkExport {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<$crate::Manifest, ::std::string::String> {
                    <$plugin as $crate::Plugin>::init(&config)
                }
                fn apply_block(
                    block: $crate::BlockInfo,
                    txs: ::std::vec::Vec<$crate::Tx>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::apply_block(&block, &txs)
                }
                fn apply_raw_block(
                    block: $crate::BlockInfo,
                    raw: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::apply_raw_block(&block, &raw)
                }
                fn apply_unconfirmed(
                    block: $crate::BlockInfo,
                    txs: ::std::vec::Vec<$crate::Tx>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::apply_unconfirmed(&block, &txs)
                }
                fn undo_block(block: $crate::BlockInfo) -> ::std::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::undo_block(&block)
                }
                fn handle_request(request: $crate::HttpRequest) -> $crate::HttpResponse {
                    <$plugin as $crate::Plugin>::handle_request(&request)
                }
                fn run_job() -> ::std::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::run_job()
                }
            }
            $crate::bindings::export!(__GuestSdkExport);
        };
    };
}

/// The raw host calls: WIT imports on wasm32, the in-memory [`testing`] host elsewhere.
#[cfg(target_arch = "wasm32")]
mod backend {
    use crate::bindings::phase1::indexer::{env, local, log, outbound, queue, store};
    pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    pub fn store_get(key: &[u8]) -> Option<Vec<u8>> {
        store::get(key)
    }
    pub fn store_put(key: &[u8], value: &[u8]) {
        store::put(key, value)
    }
    pub fn store_delete(key: &[u8]) {
        store::delete(key)
    }
    pub fn store_scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Entries {
        store::scan_prefix(prefix, after, limit)
    }
    pub fn store_scan_range(start: &[u8], end: &[u8], limit: u32) -> Entries {
        store::scan_range(start, end, limit)
    }
    pub fn watch_outpoint(txid: &[u8], vout: u32) {
        store::watch_outpoint(txid, vout)
    }
    pub fn unwatch_outpoint(txid: &[u8], vout: u32) {
        store::unwatch_outpoint(txid, vout)
    }
    pub fn local_get(key: &[u8]) -> Option<Vec<u8>> {
        local::get(key)
    }
    pub fn local_put(key: &[u8], value: &[u8]) {
        local::put(key, value)
    }
    pub fn local_delete(key: &[u8]) {
        local::delete(key)
    }
    pub fn local_scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Entries {
        local::scan_prefix(prefix, after, limit)
    }
    pub fn http_request(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<crate::HttpReply, String> {
        outbound::http_request(method, url, headers, body)
    }
    pub fn bitcoind(method: &str, params: &str) -> Result<String, String> {
        outbound::bitcoind(method, params)
    }
    pub fn publish(queue: &str, body: &[u8]) {
        queue::publish(queue, body)
    }
    pub fn log(level: log::Level, message: &str) {
        log::log(level, message)
    }
    pub fn config() -> String {
        env::config()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    pub use crate::testing::host::*;
}

/// Shared typed helpers of the two key/value spaces ([`store`] and [`local`]).
macro_rules! kv_helpers {
    ($space:literal, $get:path, $put:path) => {
        /// JSON value under `key`; `Ok(None)` when absent, `Err` when it does not decode as `T`.
        pub fn get_json<T: serde::de::DeserializeOwned>(key: impl AsRef<[u8]>) -> Result<Option<T>, String> {
            match $get(key.as_ref()) {
                None => Ok(None),
                Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    format!(concat!($space, " key {}: bad JSON: {}"), String::from_utf8_lossy(key.as_ref()), e)
                }),
            }
        }
        /// Stores `value` as JSON under `key`.
        pub fn put_json<T: serde::Serialize + ?Sized>(key: impl AsRef<[u8]>, value: &T) -> Result<(), String> {
            let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
            $put(key.as_ref(), &bytes);
            Ok(())
        }
        /// A `u64` counter stored as 8 big-endian bytes (0 when absent).
        pub fn get_u64(key: impl AsRef<[u8]>) -> u64 {
            $get(key.as_ref()).and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map(u64::from_be_bytes).unwrap_or(0)
        }
        pub fn put_u64(key: impl AsRef<[u8]>, value: u64) {
            $put(key.as_ref(), &value.to_be_bytes())
        }
    };
}

/// The plugin's chain-state key/value namespace (see the WIT `store` interface).
pub mod store {
    use super::backend;

    pub fn get(key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        backend::store_get(key.as_ref())
    }
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        backend::store_put(key.as_ref(), value.as_ref())
    }
    pub fn delete(key: impl AsRef<[u8]>) {
        backend::store_delete(key.as_ref())
    }
    /// Entries whose key starts with `prefix`, ascending, strictly after `after`, at most `limit`.
    pub fn scan_prefix(prefix: impl AsRef<[u8]>, after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend::store_scan_prefix(prefix.as_ref(), after, limit)
    }
    /// Entries with `start <= key < end`, ascending, at most `limit`.
    pub fn scan_range(start: impl AsRef<[u8]>, end: impl AsRef<[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend::store_scan_range(start.as_ref(), end.as_ref(), limit)
    }
    kv_helpers!("store", backend::store_get, backend::store_put);
    /// Deliver future transactions spending `txid:vout` (needs `watch_spends` in the manifest).
    pub fn watch_outpoint(txid: &[u8; 32], vout: u32) {
        backend::watch_outpoint(txid, vout)
    }
    pub fn unwatch_outpoint(txid: &[u8; 32], vout: u32) {
        backend::unwatch_outpoint(txid, vout)
    }
    /// The reserved store key of a watched outpoint.
    pub fn watch_key(txid: &[u8], vout: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(crate::WATCH_PREFIX.len() + 36);
        k.extend_from_slice(crate::WATCH_PREFIX);
        k.extend_from_slice(txid);
        k.extend_from_slice(&vout.to_be_bytes());
        k
    }
}

/// The plugin's off-chain key/value namespace (see the WIT `local` interface): not touched by
/// blocks or reorgs. Block and undo handlers cannot use it; read routes read it; write routes
/// and the job may write it.
pub mod local {
    use super::backend;

    pub fn get(key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        backend::local_get(key.as_ref())
    }
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        backend::local_put(key.as_ref(), value.as_ref())
    }
    pub fn delete(key: impl AsRef<[u8]>) {
        backend::local_delete(key.as_ref())
    }
    /// Entries whose key starts with `prefix`, ascending, strictly after `after`, at most `limit`.
    pub fn scan_prefix(prefix: impl AsRef<[u8]>, after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend::local_scan_prefix(prefix.as_ref(), after, limit)
    }
    kv_helpers!("local", backend::local_get, backend::local_put);
}

/// Side effects outside the engine (see the WIT `outbound` interface): only the job may call
/// these, and the runtime file's capabilities gate them.
pub mod outbound {
    use super::backend;
    pub use crate::HttpReply;

    /// An HTTP request; `Err` when the URL is not allowed, unreachable, or timed out. Any
    /// status (also 4xx/5xx) is an `Ok` reply.
    pub fn http_request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<HttpReply, String> {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        backend::http_request(method, url, &headers, body.as_ref())
    }
    /// `GET url` with no headers.
    pub fn http_get(url: &str) -> Result<HttpReply, String> {
        http_request("GET", url, &[], [])
    }
    /// A bitcoind JSON-RPC call; `params` must be a JSON array. Returns the `result` value, or
    /// the RPC error text.
    pub fn bitcoind(method: &str, params: serde_json::Value) -> Result<serde_json::Value, String> {
        if !params.is_array() {
            return Err(format!("bitcoind {method}: params must be a JSON array"));
        }
        let out = backend::bitcoind(method, &params.to_string())?;
        serde_json::from_str(&out).map_err(|e| format!("bitcoind {method}: result is not JSON: {e}"))
    }

    impl HttpReply {
        /// The body as UTF-8 (lossy).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
        /// The body decoded as JSON.
        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
            serde_json::from_slice(&self.body).map_err(|e| format!("reply body is not the expected JSON: {e}"))
        }
    }
}

/// Queues a message, committed with the block.
pub fn publish(queue: &str, body: impl AsRef<[u8]>) {
    backend::publish(queue, body.as_ref())
}

/// Queues `value` as a JSON message.
pub fn publish_json<T: serde::Serialize + ?Sized>(queue: &str, value: &T) -> Result<(), String> {
    let body = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    publish(queue, body);
    Ok(())
}

/// Logs a diagnostic (the host may drop it).
pub fn log(level: Level, message: &str) {
    backend::log(level, message)
}

/// The plugin's configuration string (the one given to `init`).
pub fn config() -> String {
    backend::config()
}

/// Transaction helpers with the `bitcoin` crate.
#[cfg(feature = "bitcoin")]
pub mod tx {
    use bitcoin::consensus::deserialize;
    use bitcoin::{Block, Transaction, Txid};

    /// Decodes a delivered transaction's raw bytes.
    pub fn decode(tx: &crate::Tx) -> Result<Transaction, String> {
        deserialize(&tx.raw).map_err(|e| format!("tx {}: {e}", tx.index))
    }
    /// Decodes a whole serialized block (for `apply_raw_block`).
    pub fn decode_block(raw: &[u8]) -> Result<Block, String> {
        deserialize(raw).map_err(|e| format!("block: {e}"))
    }
    /// The txid as `bitcoin`'s type.
    pub fn txid(tx: &crate::Tx) -> Txid {
        use bitcoin::hashes::Hash;
        let bytes: [u8; 32] = tx.txid.as_slice().try_into().unwrap_or([0; 32]);
        Txid::from_byte_array(bytes)
    }
    /// The data of an OP_RETURN output: the concatenated payloads of the pushes after OP_RETURN
    /// (the definition the host's `op-return-prefixes` prefilter uses); `None` if not OP_RETURN.
    pub fn op_return_data(script: &bitcoin::Script) -> Option<Vec<u8>> {
        if !script.is_op_return() {
            return None;
        }
        let mut data = Vec::new();
        for ins in script.instructions().skip(1) {
            match ins {
                Ok(bitcoin::script::Instruction::PushBytes(p)) => data.extend_from_slice(p.as_bytes()),
                _ => break,
            }
        }
        Some(data)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
