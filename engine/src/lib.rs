//! The host engine: follows bitcoind with reorg-safe block delivery and runs indexing rules as
//! sandboxed Wasm plugins with atomic RocksDB state. See ARCHITECTURE.md for the map.

pub mod bitcoind;
pub mod follower;
pub mod plugin_api;
pub mod runner;
pub mod runtime;
pub mod source;
pub mod store;
pub mod wasm;
