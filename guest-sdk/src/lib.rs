//! The plugin side of the engine's host/plugin contract.
//!
//! - [`bindings`]: `wit-bindgen` bindings generated from `guest-sdk/wit` (the versioned WIT
//!   package `phase1:indexer`, world `plugin`).
//! - [`Plugin`] + [`export_plugin!`]: the typed entry points a plugin implements.
//! - [`store`], [`publish`], [`log`], [`config`]: typed wrappers over the host imports, with
//!   JSON helpers.
//! - [`testing`]: a native harness — on non-wasm targets the same wrappers talk to an in-memory
//!   host, so a plugin's handlers can be unit-tested with `cargo test` without the engine.
//! - `tx` helpers with the `bitcoin` crate (feature `bitcoin`, on by default).
//!
//! Every call runs in a fresh instance (see the WIT): keep durable state in [`store`] only.

extern crate self as guest_sdk;

/// Version of the host/plugin contract this SDK targets (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.2.0";

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
    });
}

pub use bindings::phase1::indexer::log::Level;
pub use bindings::phase1::indexer::types::{BlockInfo, DepthFrom, Manifest, Tx};

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

/// A manifest with no prefilter (every transaction is delivered) and confirmation depth 1.
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
    }
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
            }
            $crate::bindings::export!(__GuestSdkExport);
        };
    };
}

/// The raw host calls: WIT imports on wasm32, the in-memory [`testing`] host elsewhere.
#[cfg(target_arch = "wasm32")]
mod backend {
    use crate::bindings::phase1::indexer::{env, log, queue, store};
    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        store::get(key)
    }
    pub fn put(key: &[u8], value: &[u8]) {
        store::put(key, value)
    }
    pub fn delete(key: &[u8]) {
        store::delete(key)
    }
    pub fn scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        store::scan_prefix(prefix, after, limit)
    }
    pub fn scan_range(start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        store::scan_range(start, end, limit)
    }
    pub fn watch_outpoint(txid: &[u8], vout: u32) {
        store::watch_outpoint(txid, vout)
    }
    pub fn unwatch_outpoint(txid: &[u8], vout: u32) {
        store::unwatch_outpoint(txid, vout)
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
    use crate::testing::with_host;
    use crate::Level;
    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        with_host(|h| h.store.get(key).cloned())
    }
    pub fn put(key: &[u8], value: &[u8]) {
        with_host(|h| {
            h.store.insert(key.to_vec(), value.to_vec());
        })
    }
    pub fn delete(key: &[u8]) {
        with_host(|h| {
            h.store.remove(key);
        })
    }
    pub fn scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        with_host(|h| {
            h.store
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
    pub fn scan_range(start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        with_host(|h| {
            if start >= end {
                return Vec::new();
            }
            h.store
                .range(start.to_vec()..end.to_vec())
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
    pub fn watch_outpoint(txid: &[u8], vout: u32) {
        put(&crate::store::watch_key(txid, vout), &[])
    }
    pub fn unwatch_outpoint(txid: &[u8], vout: u32) {
        delete(&crate::store::watch_key(txid, vout))
    }
    pub fn publish(queue: &str, body: &[u8]) {
        with_host(|h| h.published.push((queue.to_string(), body.to_vec())))
    }
    pub fn log(level: Level, message: &str) {
        with_host(|h| h.logs.push((level, message.to_string())))
    }
    pub fn config() -> String {
        with_host(|h| h.config.clone())
    }
}

/// The plugin's key/value namespace (see the WIT `store` interface).
pub mod store {
    use super::backend;
    use serde::{de::DeserializeOwned, Serialize};

    pub fn get(key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        backend::get(key.as_ref())
    }
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        backend::put(key.as_ref(), value.as_ref())
    }
    pub fn delete(key: impl AsRef<[u8]>) {
        backend::delete(key.as_ref())
    }
    /// Entries whose key starts with `prefix`, ascending, strictly after `after`, at most `limit`.
    pub fn scan_prefix(prefix: impl AsRef<[u8]>, after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend::scan_prefix(prefix.as_ref(), after, limit)
    }
    /// Entries with `start <= key < end`, ascending, at most `limit`.
    pub fn scan_range(start: impl AsRef<[u8]>, end: impl AsRef<[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend::scan_range(start.as_ref(), end.as_ref(), limit)
    }
    /// JSON value under `key`; `Ok(None)` when absent, `Err` when it does not decode as `T`.
    pub fn get_json<T: DeserializeOwned>(key: impl AsRef<[u8]>) -> Result<Option<T>, String> {
        match get(key.as_ref()) {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("store key {}: bad JSON: {e}", String::from_utf8_lossy(key.as_ref()))),
        }
    }
    /// Stores `value` as JSON under `key`.
    pub fn put_json<T: Serialize + ?Sized>(key: impl AsRef<[u8]>, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        put(key, bytes);
        Ok(())
    }
    /// A `u64` counter stored as 8 big-endian bytes (0 when absent).
    pub fn get_u64(key: impl AsRef<[u8]>) -> u64 {
        get(key).and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map(u64::from_be_bytes).unwrap_or(0)
    }
    pub fn put_u64(key: impl AsRef<[u8]>, value: u64) {
        put(key, value.to_be_bytes())
    }
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

/// Native test harness: an in-memory host for running a plugin's handlers with `cargo test`.
///
/// ```ignore
/// let mut h = guest_sdk::testing::TestHost::new("config");
/// let manifest = h.init::<MyPlugin>().unwrap();
/// h.apply_block::<MyPlugin>(&block, &txs).unwrap();
/// assert_eq!(h.store.len(), 3);
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use crate::{BlockInfo, Level, Manifest, Plugin, Tx};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// The in-memory host state a plugin sees while a harness call runs.
    #[derive(Debug, Default, Clone)]
    pub struct TestHost {
        pub config: String,
        pub store: BTreeMap<Vec<u8>, Vec<u8>>,
        pub published: Vec<(String, Vec<u8>)>,
        pub logs: Vec<(Level, String)>,
    }

    thread_local! {
        static CURRENT: RefCell<Option<TestHost>> = const { RefCell::new(None) };
    }

    pub(crate) fn with_host<R>(f: impl FnOnce(&mut TestHost) -> R) -> R {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            let host = c.as_mut().expect("guest-sdk host call outside a guest_sdk::testing::TestHost call");
            f(host)
        })
    }

    impl TestHost {
        pub fn new(config: &str) -> Self {
            TestHost { config: config.to_string(), ..Default::default() }
        }

        /// Runs `f` with this host installed as the plugin's host.
        pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
            let taken = std::mem::take(self);
            CURRENT.with(|c| *c.borrow_mut() = Some(taken));
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            *self = CURRENT.with(|c| c.borrow_mut().take()).expect("host state");
            match out {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        }

        pub fn init<P: Plugin>(&mut self) -> Result<Manifest, String> {
            let config = self.config.clone();
            self.run(|| P::init(&config))
        }

        /// Applies a block, delivering `txs` as given (the harness does not prefilter).
        pub fn apply_block<P: Plugin>(&mut self, block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
            self.run(|| P::apply_block(block, txs))
        }

        /// Delivers an unconfirmed tip block, as the engine does with `unconfirmed_blocks`.
        pub fn apply_unconfirmed<P: Plugin>(&mut self, block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
            self.run(|| P::apply_unconfirmed(block, txs))
        }

        pub fn undo_block<P: Plugin>(&mut self, block: &BlockInfo) -> Result<(), String> {
            self.run(|| P::undo_block(block))
        }

        /// Messages published since the last call, drained.
        pub fn take_published(&mut self) -> Vec<(String, Vec<u8>)> {
            std::mem::take(&mut self.published)
        }
    }

    /// A `BlockInfo` for fixtures.
    pub fn block_info(height: u32, hash: [u8; 32], prev_hash: [u8; 32], time: u32) -> BlockInfo {
        BlockInfo { height, hash: hash.to_vec(), prev_hash: prev_hash.to_vec(), time }
    }

    /// All transactions of a serialized block as delivered `Tx`s (no prefilter).
    #[cfg(feature = "bitcoin")]
    pub fn block_fixture(height: u32, raw_block: &[u8]) -> Result<(BlockInfo, Vec<Tx>), String> {
        use bitcoin::consensus::serialize;
        use bitcoin::hashes::Hash;
        let block = crate::tx::decode_block(raw_block)?;
        let info = BlockInfo {
            height,
            hash: block.block_hash().to_byte_array().to_vec(),
            prev_hash: block.header.prev_blockhash.to_byte_array().to_vec(),
            time: block.header.time,
        };
        let txs = block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, tx)| Tx { index: i as u32, txid: tx.compute_txid().to_byte_array().to_vec(), raw: serialize(tx) })
            .collect();
        Ok((info, txs))
    }
}
