//! Where blocks come from. Every source answers the same three questions — the tip, the block
//! hash at a height on its best chain, and a block's raw consensus bytes — so the follower does
//! not care whether blocks come from bitcoind (`bitcoind.rs`), from files (`ReplaySource`) or
//! from memory (`MemorySource`, for tests).

use anyhow::{bail, Context, Result};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub trait BlockSource: Send {
    /// Height and hash of the best chain's tip.
    fn tip(&mut self) -> Result<(u32, BlockHash)>;
    /// Hash of the best chain's block at `height`, or None above the tip.
    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>>;
    /// Raw consensus bytes of a block (any branch the source still knows).
    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>>;
}

/// A chain held in memory whose best branch tests can change at will (reorgs of any depth).
#[derive(Default, Clone)]
pub struct MemorySource {
    best: Vec<BlockHash>,
    blocks: HashMap<BlockHash, Vec<u8>>,
}

impl MemorySource {
    /// Starts from a genesis-like first block at height 0.
    pub fn new(first: &Block) -> MemorySource {
        let mut s = MemorySource::default();
        s.push(first);
        s
    }

    /// Appends a block to the best chain (its parent must be the current tip).
    pub fn push(&mut self, block: &Block) {
        if let Some(tip) = self.best.last() {
            assert_eq!(block.header.prev_blockhash, *tip, "block does not extend the tip");
        }
        let hash = block.block_hash();
        self.blocks.insert(hash, bitcoin::consensus::serialize(block));
        self.best.push(hash);
    }

    /// Drops the best chain above `height` (the dropped blocks stay fetchable, as in bitcoind).
    pub fn truncate(&mut self, height: u32) {
        self.best.truncate(height as usize + 1);
    }

    pub fn height(&self) -> u32 {
        (self.best.len() - 1) as u32
    }

    pub fn tip_hash(&self) -> BlockHash {
        *self.best.last().expect("non-empty")
    }
}

impl BlockSource for MemorySource {
    fn tip(&mut self) -> Result<(u32, BlockHash)> {
        Ok((self.height(), self.tip_hash()))
    }

    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>> {
        Ok(self.best.get(height as usize).copied())
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>> {
        self.blocks.get(hash).cloned().with_context(|| format!("block {hash} unknown to the memory source"))
    }
}

/// Raw blocks from files (`*.bin`, one consensus-serialized block each), in file-name order,
/// numbered from `start_height`. With `link_check`, each block's parent must be the previous
/// file's block, as on a real chain. Without it (benchmarks replaying one block shape many
/// times), blocks are chained by position: block i gets a stand-in hash and its header's parent
/// field is rewritten to block i-1's stand-in, so delivery still sees one linked chain.
pub struct ReplaySource {
    files: Vec<PathBuf>,
    start_height: u32,
    hashes: Vec<BlockHash>,
    by_hash: HashMap<BlockHash, usize>,
    link_check: bool,
}

impl ReplaySource {
    pub fn open(dir: &Path, start_height: u32, link_check: bool) -> Result<ReplaySource> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--blocks {}: cannot read the directory", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("--blocks {}: no *.bin block files there (one raw block per file)", dir.display());
        }
        let mut hashes = Vec::with_capacity(files.len());
        let mut prev: Option<BlockHash> = None;
        for (i, f) in files.iter().enumerate() {
            let header = read_header(f)?;
            if link_check {
                if let Some(p) = prev {
                    if header.prev_blockhash != p {
                        bail!(
                            "{}: its parent is {}, not the previous file's block {p}; files must form one chain (or pass --no-link-check)",
                            f.display(),
                            header.prev_blockhash
                        );
                    }
                }
            }
            let hash = if link_check { header.block_hash() } else { positional_hash(i) };
            prev = Some(header.block_hash());
            hashes.push(hash);
        }
        let by_hash = hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        Ok(ReplaySource { files, start_height, hashes, by_hash, link_check })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A stand-in identity for the i-th replayed block when blocks are not chained.
fn positional_hash(i: usize) -> BlockHash {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    BlockHash::from_byte_array(bytes)
}

fn read_header(path: &Path) -> Result<bitcoin::block::Header> {
    use std::io::Read;
    let mut buf = [0u8; 80];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .with_context(|| format!("{}: cannot read an 80-byte block header", path.display()))?;
    bitcoin::consensus::deserialize(&buf).with_context(|| format!("{}: not a block header", path.display()))
}

impl BlockSource for ReplaySource {
    fn tip(&mut self) -> Result<(u32, BlockHash)> {
        let last = self.hashes.len() - 1;
        Ok((self.start_height + last as u32, self.hashes[last]))
    }

    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>> {
        Ok(height.checked_sub(self.start_height).and_then(|i| self.hashes.get(i as usize)).copied())
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>> {
        let i = *self.by_hash.get(hash).with_context(|| format!("block {hash} is not among the replay files"))?;
        let mut raw = std::fs::read(&self.files[i]).with_context(|| format!("reading {}", self.files[i].display()))?;
        if !self.link_check && raw.len() >= 80 {
            let parent = if i == 0 { [0u8; 32] } else { self.hashes[i - 1].to_byte_array() };
            raw[4..36].copy_from_slice(&parent);
        }
        Ok(raw)
    }
}
