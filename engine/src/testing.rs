//! Helpers for the engine's tests and benchmarks (public so integration tests and benches can
//! use them): synthetic regtest-style blocks and the test plugins built for `wasm32-wasip2`.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, CompactTarget, Transaction, TxMerkleNode};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::source::MemorySource;

/// The test plugins in `plugins/test-plugins/`.
pub const TEST_PLUGINS: [&str; 8] = ["emit", "api", "counter", "trap", "spin", "hog", "noop", "touch"];

/// A one-coinbase block on `prev`; `salt` makes it unique (lock time, time, nonce).
pub fn block(prev: BlockHash, salt: u32) -> Block {
    let mut coinbase: Transaction = bitcoin::consensus::deserialize(
        &hex::decode(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0401020304ffffffff0100f2052a010000000000000000",
        )
        .expect("hex"),
    )
    .expect("coinbase");
    coinbase.lock_time = bitcoin::absolute::LockTime::from_consensus(salt);
    let mut b = Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: salt,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: salt,
        },
        txdata: vec![coinbase],
    };
    b.header.merkle_root = b.compute_merkle_root().expect("merkle root");
    b
}

/// A memory chain of heights 0..=n, block i salted `salt0 + i`.
pub fn chain(n: u32, salt0: u32) -> MemorySource {
    let mut s = MemorySource::new(&block(BlockHash::all_zeros(), salt0));
    for i in 1..=n {
        let b = block(s.tip_hash(), salt0 + i);
        s.push(&b);
    }
    s
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Builds the test plugins once per process (`cargo build --release --target wasm32-wasip2`);
/// returns the directory of their `.wasm` files.
pub fn test_plugins_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2"]);
        for p in TEST_PLUGINS {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().unwrap_or_else(|e| panic!("could not run cargo to build the test plugins: {e}"));
        assert!(
            status.success(),
            "building the test plugins failed ({status}); run `cargo build --release --target wasm32-wasip2 -p {}` \
             in {} (needs the wasm32-wasip2 target, clang and wasi-libc: scripts/install-deps.sh)",
            TEST_PLUGINS.join(" -p "),
            root.display()
        );
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        target.join("wasm32-wasip2").join("release")
    })
}

/// A workspace plugin package (e.g. `phase1-staking`) built for wasm32-wasip2 in release mode,
/// once per process; returns its component.
pub fn workspace_plugin(package: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let root = workspace_root();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--release", "--target", "wasm32-wasip2", "-p", package])
            .status()
            .unwrap_or_else(|e| panic!("could not run cargo to build plugin {package}: {e}"));
        assert!(
            status.success(),
            "building plugin {package} failed ({status}); run `cargo build --release --target wasm32-wasip2 -p {package}` in {}",
            root.display()
        );
        built.push(package.to_string());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("wasm32-wasip2").join("release").join(format!("{}.wasm", package.replace('-', "_")))
}

/// The research data folder beside the checkout (`../shared/research-data`), if present.
pub fn research_data() -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/research-data");
    dir.is_dir().then_some(dir)
}

/// Path of a test plugin's component (built on first use).
pub fn test_plugin(name: &str) -> PathBuf {
    test_plugins_dir().join(format!("{name}.wasm"))
}

/// An in-memory [`BlockContext`](crate::plugin_api::BlockContext) (chain state and published
/// messages only), for benchmarks that call a plugin without a store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryContext {
    pub kv: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    pub published: Vec<(String, Vec<u8>)>,
}

impl crate::plugin_api::BlockContext for MemoryContext {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.kv.get(key).cloned()
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.kv.insert(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<(), String> {
        self.kv.remove(key);
        Ok(())
    }
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.kv
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .take(limit as usize)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        self.kv.range(start.to_vec()..end.to_vec()).take(limit as usize).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String> {
        self.published.push((queue.to_string(), body.to_vec()));
        Ok(())
    }
}
