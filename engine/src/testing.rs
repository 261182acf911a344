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

/// Path of a test plugin's component (built on first use).
pub fn test_plugin(name: &str) -> PathBuf {
    test_plugins_dir().join(format!("{name}.wasm"))
}
