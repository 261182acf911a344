//! A Bitcoin regtest node whose consensus is Bitcoin Core's own code (libbitcoinkernel), with
//! bitcoind's JSON-RPC, REST and descriptor-wallet interfaces. The binary is `regtest-node`;
//! the library exposes the same parts to tests and benchmarks.
//!
//! Map: `config` (bitcoind options) → `node` (owns everything below) → `kernel` (consensus,
//! best chain) + `chain` (mirror: UTXO set, tx index) + `mempool` (acceptance) + `miner` +
//! `blockstore` (durable log) + `wallet`; `rpc` and `rest` expose it over HTTP. With
//! `-walletonly`, `walletonly` replaces `node`: the wallets alone, behind the same RPC server.

pub mod atomic_file;
pub mod blockstore;
pub mod chain;
pub mod config;
pub mod kernel;
pub mod mempool;
pub mod miner;
pub mod node;
pub mod rest;
pub mod rpc;
pub mod script_diag;
pub mod wallet;
pub mod walletonly;
pub mod walletview;
