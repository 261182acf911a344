//! Bitcoin Core's consensus engine (libbitcoinkernel) for regtest: every block this node mines or
//! is given is validated and connected here, and the kernel decides the best chain. The rest of
//! the node mirrors the kernel's active chain (see `chain.rs`); it never decides validity itself.

use anyhow::{anyhow, Context as _, Result};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use bitcoinkernel::prelude::*;
use bitcoinkernel::{
    BlockValidationResult, BlockValidationStateRef, ChainType, ChainstateManager, ContextBuilder, ProcessBlockResult,
    ValidationMode,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Field order matters: the chainstate manager must be dropped before its context.
pub struct Kernel {
    chainman: ChainstateManager,
    _context: bitcoinkernel::Context,
    last_check: Arc<Mutex<Option<(BlockHash, BlockValidationResult)>>>,
    dir: PathBuf,
}

/// The kernel's answer to a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    New,
    Duplicate,
    Rejected(String),
}

impl Kernel {
    pub fn open(dir: &Path) -> Result<Kernel> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let last_check: Arc<Mutex<Option<(BlockHash, BlockValidationResult)>>> = Arc::default();
        let sink = last_check.clone();
        let context = ContextBuilder::new()
            .chain_type(ChainType::Regtest)
            .with_block_checked_validation(move |block: bitcoinkernel::Block, state: BlockValidationStateRef<'_>| {
                if state.mode() != ValidationMode::Valid {
                    let hash = BlockHash::from_byte_array(block.hash().to_bytes());
                    *sink.lock().expect("kernel callback lock") = Some((hash, state.result()));
                }
            })
            .build()
            .map_err(|e| anyhow!("creating the kernel context: {e}"))?;
        let data = dir.to_str().context("kernel directory is not UTF-8")?;
        let blocks = dir.join("blocks");
        let blocks = blocks.to_str().context("kernel directory is not UTF-8")?;
        let chainman = ChainstateManager::builder(&context, data, blocks)
            .map_err(|e| anyhow!("configuring the kernel chainstate in {}: {e}", dir.display()))?
            .worker_threads(2)
            .build()
            .map_err(|e| anyhow!("opening the kernel chainstate in {}: {e}", dir.display()))?;
        Ok(Kernel { chainman, _context: context, last_check, dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Full validation of a block (header, transactions, scripts, contextual rules) and, if it
    /// is valid, storage and best-chain activation.
    pub fn process_block(&self, block: &bitcoin::Block) -> Result<Outcome> {
        let raw = serialize(block);
        let kblock = bitcoinkernel::Block::new(&raw).map_err(|e| anyhow!("block does not decode: {e}"))?;
        *self.last_check.lock().expect("kernel callback lock") = None;
        Ok(match self.chainman.process_block(&kblock) {
            ProcessBlockResult::NewBlock => Outcome::New,
            ProcessBlockResult::Duplicate => Outcome::Duplicate,
            ProcessBlockResult::Rejected => {
                let hash = block.block_hash();
                let reason = match *self.last_check.lock().expect("kernel callback lock") {
                    Some((h, r)) if h == hash => reject_reason(r),
                    _ => "rejected",
                };
                Outcome::Rejected(reason.to_string())
            }
        })
    }

    /// The kernel's active chain as (height, hash) of its tip.
    pub fn tip(&self) -> (u32, BlockHash) {
        let tip = self.chainman.active_chain().tip();
        (tip.height() as u32, BlockHash::from_byte_array(tip.block_hash().to_bytes()))
    }

    /// Hash of the active-chain block at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.chainman
            .active_chain()
            .at_height(height as usize)
            .map(|e| BlockHash::from_byte_array(e.block_hash().to_bytes()))
    }
}

/// Bitcoin Core's submitblock vocabulary where the kernel tells us the class of failure.
fn reject_reason(r: BlockValidationResult) -> &'static str {
    match r {
        BlockValidationResult::MissingPrev => "prev-blk-not-found",
        BlockValidationResult::InvalidPrev => "bad-prevblk",
        BlockValidationResult::InvalidHeader => "high-hash",
        BlockValidationResult::Mutated => "bad-txnmrklroot",
        BlockValidationResult::TimeFuture => "time-too-new",
        BlockValidationResult::CachedInvalid => "duplicate-invalid",
        BlockValidationResult::HeaderLowWork => "too-little-chainwork",
        BlockValidationResult::Consensus | BlockValidationResult::Unset => "invalid",
    }
}

impl Kernel {
    /// Reads a block the kernel stored (used when the kernel knows a block the log lacks, e.g.
    /// after a crash between the kernel's write and ours).
    pub fn read_block(&self, hash: &BlockHash) -> Option<bitcoin::Block> {
        let khash = bitcoinkernel::BlockHash::new(hash.as_byte_array()).ok()?;
        let entry = self.chainman.get_block_tree_entry(&khash)?;
        let block = self.chainman.read_block_data(&entry).ok()?;
        bitcoin::consensus::deserialize(&block.consensus_encode().ok()?).ok()
    }
}
