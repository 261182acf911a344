//! `store-crash-helper DB_PATH SEED` — drives the plugin store through a deterministic script of
//! block applications and undos (a main chain with short forks that are applied then undone),
//! several thousand writes per block, resuming from wherever the store's cursor is. Prints
//! `resume I` at start (I = ops already done), `op I` after op I is durable, `done` at the end.
//! Used by engine/tests/store.rs to kill -9 the store mid-write; the test includes this file as a
//! module to share the script.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;

use engine::plugin_api::{BlockContext, BlockRef};
use engine::store::{Cursor, PluginStore, Store};
use sha2::{Digest, Sha256};

pub const PLUGIN: &str = "crash";
pub const MAIN_HEIGHT: u32 = 90;
pub const FORK_EVERY: u32 = 8;
pub const FORK_LEN: u32 = 3;
pub const WRITES_PER_BLOCK: usize = 3000;
pub const KEY_SPACE: u64 = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Apply block `height` of `branch` (0 = main; b > 0 = the fork off main height b).
    Apply { branch: u32, height: u32 },
    /// Undo that block.
    Undo { branch: u32, height: u32 },
}

pub fn script() -> Vec<Op> {
    let mut ops = Vec::new();
    for h in 1..=MAIN_HEIGHT {
        ops.push(Op::Apply { branch: 0, height: h });
        if h % FORK_EVERY == 0 && h < MAIN_HEIGHT {
            for f in h + 1..=h + FORK_LEN {
                ops.push(Op::Apply { branch: h, height: f });
            }
            for f in (h + 1..=h + FORK_LEN).rev() {
                ops.push(Op::Undo { branch: h, height: f });
            }
        }
    }
    ops
}

pub fn block_hash(seed: u64, branch: u32, height: u32) -> [u8; 32] {
    if height == 0 {
        return [0u8; 32];
    }
    let mut h = Sha256::new();
    h.update(b"block");
    h.update(seed.to_be_bytes());
    h.update(branch.to_be_bytes());
    h.update(height.to_be_bytes());
    h.finalize().into()
}

pub fn parent_hash(seed: u64, branch: u32, height: u32) -> [u8; 32] {
    if branch != 0 && height == branch + 1 {
        block_hash(seed, 0, branch)
    } else {
        block_hash(seed, branch, height - 1)
    }
}

pub fn block_ref(seed: u64, branch: u32, height: u32) -> BlockRef {
    BlockRef { height, hash: block_hash(seed, branch, height) }
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The block's writes in program order (`None` = delete) and its publishes.
#[allow(clippy::type_complexity)]
pub fn block_ops(seed: u64, branch: u32, height: u32) -> (Vec<(Vec<u8>, Option<Vec<u8>>)>, Vec<(String, Vec<u8>)>) {
    let hb = block_hash(seed, branch, height);
    let mut rng = Rng(u64::from_be_bytes(hb[0..8].try_into().unwrap()));
    let mut writes = Vec::with_capacity(WRITES_PER_BLOCK);
    for _ in 0..WRITES_PER_BLOCK {
        let key = format!("k{:05}", rng.below(KEY_SPACE)).into_bytes();
        if rng.below(4) == 0 {
            writes.push((key, None));
        } else {
            let len = 8 + rng.below(56) as usize;
            let val: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            writes.push((key, Some(val)));
        }
    }
    let publishes = vec![
        ("events".to_string(), format!("block {branch}/{height}").into_bytes()),
        ("stats".to_string(), hb[..8].to_vec()),
    ];
    (writes, publishes)
}

/// Applies block (`branch`, `height`) of the script to `ps`.
pub fn apply(ps: &PluginStore, seed: u64, branch: u32, height: u32) -> anyhow::Result<Cursor> {
    let mut tx = ps.begin_block(block_ref(seed, branch, height), parent_hash(seed, branch, height))?;
    let (writes, publishes) = block_ops(seed, branch, height);
    for (i, (k, v)) in writes.iter().enumerate() {
        if i % 500 == 0 {
            // Reads do not change the outcome; they exercise the read path under load.
            let _ = tx.get(k);
            let _ = tx.scan_prefix(b"k0", None, 10);
        }
        match v {
            Some(v) => tx.set(k, v),
            None => tx.remove(k),
        }
    }
    for (q, b) in &publishes {
        tx.publish(q, b).expect("no queue restriction");
    }
    tx.commit()
}

pub fn run_op(ps: &PluginStore, seed: u64, op: Op) -> anyhow::Result<()> {
    match op {
        Op::Apply { branch, height } => apply(ps, seed, branch, height).map(|_| ()),
        Op::Undo { branch, height } => ps.undo_block(block_ref(seed, branch, height)).map(|_| ()),
    }
}

/// The block the cursor is at after each op of the script (`states[i]` = after op i).
pub fn states(seed: u64) -> Vec<Option<BlockRef>> {
    let mut stack: Vec<BlockRef> = Vec::new();
    script()
        .into_iter()
        .map(|op| {
            match op {
                Op::Apply { branch, height } => stack.push(block_ref(seed, branch, height)),
                Op::Undo { .. } => {
                    stack.pop();
                }
            }
            stack.last().copied()
        })
        .collect()
}

/// Index of the first op to run given the store's cursor: after the first op whose resulting
/// state is the cursor (a repeated state means a fork excursion is simply done again).
pub fn resume_index(seed: u64, cursor: Option<BlockRef>) -> anyhow::Result<usize> {
    let Some(c) = cursor else { return Ok(0) };
    states(seed)
        .iter()
        .position(|s| *s == Some(c))
        .map(|i| i + 1)
        .ok_or_else(|| anyhow::anyhow!("cursor {} is not a state of the script", c.height))
}

/// In-memory model of the namespace content after replaying ops `..n` (for the tests).
pub fn model_content(seed: u64, n: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut stack: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new()];
    for op in script().into_iter().take(n) {
        match op {
            Op::Apply { branch, height } => {
                let mut m = stack.last().unwrap().clone();
                for (k, v) in block_ops(seed, branch, height).0 {
                    match v {
                        Some(v) => m.insert(k, v),
                        None => m.remove(&k),
                    };
                }
                stack.push(m);
            }
            Op::Undo { .. } => {
                stack.pop();
            }
        }
    }
    stack.pop().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(seed)) = (args.first(), args.get(1).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: store-crash-helper DB_PATH SEED");
        std::process::exit(2);
    };
    if let Err(e) = run(std::path::Path::new(path), seed) {
        eprintln!("store-crash-helper: {e:#}");
        std::process::exit(1);
    }
}

fn run(path: &std::path::Path, seed: u64) -> anyhow::Result<()> {
    let store = Store::open(path)?;
    let ps = store.plugin(PLUGIN);
    let start = resume_index(seed, ps.cursor()?.map(|c| c.block()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "resume {start}")?;
    out.flush()?;
    for (i, op) in script().into_iter().enumerate().skip(start) {
        run_op(&ps, seed, op)?;
        writeln!(out, "op {i}")?;
        out.flush()?;
    }
    writeln!(out, "done")?;
    out.flush()?;
    Ok(())
}
