//! The node: libbitcoinkernel (consensus and best-chain choice), the mirror of its active chain,
//! the mempool, the durable block log and the wallets, and the operations RPC exposes on them.
//!
//! Invariant: after every public operation, `chain` equals the kernel's active chain, and the
//! mempool only holds transactions valid on top of it.

use crate::blockstore::{BlockStore, Record};
use crate::chain::Chain;
use crate::config::Config;
use crate::kernel::{Kernel, Outcome};
use crate::mempool::{Mempool, Reject};
use crate::miner;
use crate::wallet::{WalletConfig, WalletManager};
use anyhow::{bail, Context, Result};
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Amount, Block, BlockHash, ScriptBuf, Transaction, Txid};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub struct Node {
    pub config: Config,
    pub chain: Chain,
    pub mempool: Mempool,
    pub wallets: Option<WalletManager>,
    pub started: Instant,
    kernel: Kernel,
    store: BlockStore,
    invalidated: HashSet<BlockHash>,
    generation: u64,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why a block was not taken, in submitblock's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockRejected {
    Duplicate,
    Invalid(String),
}

impl Node {
    pub fn open(config: Config) -> Result<Node> {
        let net = config.network_dir();
        std::fs::create_dir_all(&net).with_context(|| format!("creating data directory {}", net.display()))?;
        let (store, records) = BlockStore::open(&net.join("blocks.log"))?;
        let mut chain = Chain::new();
        let mut invalidated = HashSet::new();
        let mut orphans = 0usize;
        for record in records {
            match record {
                Record::Block(b) => {
                    if chain.add_block(b).is_none() {
                        orphans += 1;
                    }
                }
                Record::Invalidate(h) => {
                    invalidated.insert(h);
                }
                Record::Reconsider(h) => {
                    invalidated.remove(&h);
                }
            }
        }
        if orphans > 0 {
            tracing::warn!("block log holds {orphans} blocks whose parents are unknown; ignoring them");
        }
        let generation = read_generation(&net);
        let kernel_dir = kernel_dir(&net, generation);
        let kernel = Kernel::open(&kernel_dir)
            .with_context(|| format!("opening the kernel chainstate in {}", kernel_dir.display()))?;
        let wallets = if config.wallet_enabled {
            Some(WalletManager::open(
                WalletConfig {
                    wallets_dir: net.join("wallets"),
                    fallback_fee: config.fallback_fee,
                    settings_file: net.join("settings.json"),
                },
                &config.wallets,
            )?)
        } else {
            None
        };
        let mut node = Node {
            config,
            chain,
            mempool: Mempool::default(),
            wallets,
            started: Instant::now(),
            kernel,
            store,
            invalidated,
            generation,
        };
        node.recover()?;
        node.load_mempool();
        Ok(node)
    }

    /// Brings the kernel in line with the block log (blocks it lacks, invalidations it has not
    /// seen) and the mirror in line with the kernel.
    fn recover(&mut self) -> Result<()> {
        let invalid = self.chain.invalid_closure(&self.invalidated);
        let kernel_has_invalid = invalid.iter().any(|h| {
            let height = self.chain.meta(h).map(|m| m.height).unwrap_or(0);
            self.kernel.hash_at(height) == Some(*h)
        });
        if kernel_has_invalid {
            tracing::info!("kernel chainstate predates an invalidateblock; rebuilding it");
            return self.rebuild_kernel();
        }
        let hashes: Vec<BlockHash> = self.chain.arrival_order().to_vec();
        for hash in hashes.iter().filter(|h| !invalid.contains(*h)) {
            let block = self.chain.block(hash).expect("stored").clone();
            if let Outcome::Rejected(r) = self.kernel.process_block(&block)? {
                tracing::warn!("kernel rejects logged block {hash} ({r}); it stays out of the chain");
            }
        }
        self.sync_to_kernel()
    }

    /// Blocks marked invalid by invalidateblock, with all their descendants.
    pub fn invalid_blocks(&self) -> HashSet<BlockHash> {
        self.chain.invalid_closure(&self.invalidated)
    }

    /// Makes the mirror equal to the kernel's active chain, moving mempool transactions as
    /// Core does: confirmed ones leave, those of disconnected blocks come back if still valid.
    fn sync_to_kernel(&mut self) -> Result<()> {
        let (kernel_height, kernel_tip) = self.kernel.tip();
        if kernel_tip == self.chain.tip() {
            return Ok(());
        }
        let mut new_hashes = Vec::new();
        let mut height = kernel_height;
        loop {
            let hash = self.kernel.hash_at(height).context("kernel active chain has a gap")?;
            if self.chain.hash_at(height) == Some(hash) || height == 0 {
                break;
            }
            new_hashes.push(hash);
            height -= 1;
        }
        let mut disconnected = Vec::new();
        while self.chain.height() > height {
            disconnected.push(self.chain.disconnect_tip());
        }
        let mut connected = Vec::new();
        for hash in new_hashes.into_iter().rev() {
            if !self.chain.contains(&hash) {
                let block = self.kernel.read_block(&hash).context("kernel block unreadable")?;
                self.store.append(&Record::Block(block.clone()))?;
                self.chain.add_block(block).context("kernel block without parent")?;
            }
            self.chain.connect(hash).map_err(anyhow::Error::msg)?;
            connected.push(self.chain.block(&hash).expect("stored").clone());
        }
        if disconnected.is_empty() {
            for block in &connected {
                self.mempool.remove_for_block(block);
            }
        } else {
            let old = self.mempool.drain();
            let returning = disconnected.iter().rev().flat_map(|b| b.txdata.iter().skip(1).cloned());
            let candidates: Vec<(Transaction, u64)> =
                returning.map(|tx| (tx, now_secs())).chain(old.into_iter().map(|(tx, t)| ((*tx).clone(), t))).collect();
            for (tx, time) in candidates {
                let _ = self.mempool.accept(&self.chain, tx, self.config.min_relay_fee, time);
            }
        }
        Ok(())
    }

    /// Validates a block with the kernel and, if it is new and valid, stores it and follows
    /// the kernel's choice of best chain.
    pub fn submit_block(&mut self, block: Block) -> Result<BlockHash, BlockRejected> {
        let hash = block.block_hash();
        if self.chain.contains(&hash) {
            return Err(BlockRejected::Duplicate);
        }
        match self.kernel.process_block(&block).map_err(|e| BlockRejected::Invalid(format!("{e:#}")))? {
            Outcome::Rejected(reason) => Err(BlockRejected::Invalid(reason)),
            Outcome::New | Outcome::Duplicate => {
                self.store.append(&Record::Block(block.clone())).map_err(internal)?;
                self.chain.add_block(block).ok_or_else(|| BlockRejected::Invalid("prev-blk-not-found".into()))?;
                self.sync_to_kernel().map_err(internal)?;
                Ok(hash)
            }
        }
    }

    /// Mines `count` blocks on the tip, each taking what the mempool holds.
    pub fn generate(&mut self, count: u32, payout: &ScriptBuf) -> Result<Vec<BlockHash>, BlockRejected> {
        let mut hashes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut time = now_secs() as u32;
            let block = loop {
                let block = miner::assemble(
                    &self.chain,
                    miner::Contents::Mempool(&self.mempool),
                    Amount::ZERO,
                    payout.clone(),
                    time,
                );
                // Right after invalidateblock the same inputs in the same second would give
                // back the very block just invalidated; a later timestamp makes a new one.
                if !self.chain.contains(&block.block_hash()) {
                    break block;
                }
                time = block.header.time + 1;
            };
            hashes.push(self.submit_block(block)?);
        }
        Ok(hashes)
    }

    /// Mines one block holding exactly `txs` (generateblock).
    pub fn generate_with(
        &mut self,
        txs: Vec<Transaction>,
        payout: &ScriptBuf,
        submit: bool,
    ) -> Result<Block, BlockRejected> {
        let fees = self.fees_of(&txs);
        let block =
            miner::assemble(&self.chain, miner::Contents::Exactly(txs), fees, payout.clone(), now_secs() as u32);
        if submit {
            self.submit_block(block.clone())?;
        }
        Ok(block)
    }

    /// Fees of a sequence of transactions spending confirmed coins or earlier ones in the list.
    fn fees_of(&self, txs: &[Transaction]) -> Amount {
        let mut created = std::collections::HashMap::new();
        let mut fees = Amount::ZERO;
        for tx in txs {
            let txid = tx.compute_txid();
            let value_in: Option<Amount> = tx
                .input
                .iter()
                .map(|i| {
                    self.chain
                        .utxo(&i.previous_output)
                        .map(|c| c.txout.value)
                        .or_else(|| created.get(&i.previous_output).copied())
                })
                .sum();
            let value_out: Amount = tx.output.iter().map(|o| o.value).sum();
            if let Some(v) = value_in {
                fees += v.checked_sub(value_out).unwrap_or(Amount::ZERO);
            }
            for (n, out) in tx.output.iter().enumerate() {
                created.insert(bitcoin::OutPoint::new(txid, n as u32), out.value);
            }
        }
        fees
    }

    pub fn accept_tx(&mut self, tx: Transaction) -> Result<Txid, Reject> {
        self.mempool.accept(&self.chain, tx, self.config.min_relay_fee, now_secs())
    }

    pub fn test_tx(&self, tx: &Transaction) -> Result<crate::mempool::Accepted, Reject> {
        self.mempool.check(&self.chain, tx, self.config.min_relay_fee)
    }

    /// Marks a block invalid, as Core's invalidateblock: the tip moves to the best chain without
    /// it and the transactions of disconnected blocks go back to the mempool.
    pub fn invalidate(&mut self, hash: BlockHash) -> Result<()> {
        if !self.chain.contains(&hash) {
            bail!("Block not found");
        }
        if self.chain.meta(&hash).map(|m| m.height) == Some(0) {
            bail!("the genesis block cannot be invalidated");
        }
        self.store.append(&Record::Invalidate(hash))?;
        self.invalidated.insert(hash);
        self.rebuild_kernel()
    }

    /// Removes invalidity from a block, its ancestors and descendants (Core's reconsiderblock).
    pub fn reconsider(&mut self, hash: BlockHash) -> Result<()> {
        if !self.chain.contains(&hash) {
            bail!("Block not found");
        }
        let related: Vec<BlockHash> = self
            .invalidated
            .iter()
            .filter(|h| self.is_ancestor(h, &hash) || self.is_ancestor(&hash, h))
            .copied()
            .collect();
        if related.is_empty() {
            return Ok(());
        }
        for h in related {
            self.store.append(&Record::Reconsider(h))?;
            self.invalidated.remove(&h);
        }
        self.rebuild_kernel()
    }

    /// Whether `a` is `b` or an ancestor of `b`.
    fn is_ancestor(&self, a: &BlockHash, b: &BlockHash) -> bool {
        let (Some(ma), Some(mut cursor)) = (self.chain.meta(a), Some(*b)) else { return false };
        loop {
            if cursor == *a {
                return true;
            }
            match self.chain.meta(&cursor) {
                Some(m) if m.height > ma.height => {
                    cursor = self.chain.block(&cursor).expect("stored").header.prev_blockhash;
                }
                _ => return false,
            }
        }
    }

    /// The kernel has no invalidate call, so a fresh kernel chainstate is built from the block
    /// log without the invalid blocks, then swapped in. The current active chain is fed first
    /// so that, among equal-work tips, the kernel keeps the one we are on (as Core does).
    fn rebuild_kernel(&mut self) -> Result<()> {
        let net = self.config.network_dir();
        let generation = self.generation + 1;
        let dir = kernel_dir(&net, generation);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let kernel = Kernel::open(&dir)?;
        let invalid = self.chain.invalid_closure(&self.invalidated);
        let mut order: Vec<BlockHash> = (1..=self.chain.height()).filter_map(|h| self.chain.hash_at(h)).collect();
        let on_active: HashSet<BlockHash> = order.iter().copied().collect();
        order.extend(self.chain.arrival_order().iter().filter(|h| !on_active.contains(*h)));
        for hash in order.iter().filter(|h| !invalid.contains(*h)) {
            let block = self.chain.block(hash).expect("stored").clone();
            if let Outcome::Rejected(r) = kernel.process_block(&block)? {
                tracing::warn!("rebuild: kernel rejects {hash} ({r})");
            }
        }
        let old = std::mem::replace(&mut self.kernel, kernel);
        let old_dir = old.dir().to_path_buf();
        drop(old);
        crate::atomic_file::write(&net.join("kernel.current"), generation.to_string().as_bytes())?;
        self.generation = generation;
        if let Err(e) = std::fs::remove_dir_all(&old_dir) {
            tracing::warn!("could not remove old kernel directory {}: {e}", old_dir.display());
        }
        self.sync_to_kernel()
    }

    /// Transactions survive restarts, as with bitcoind's mempool.dat.
    pub fn save_mempool(&self) -> Result<()> {
        let mut buf = Vec::new();
        for entry in self.mempool.ordered() {
            let raw = serialize(&*entry.tx);
            buf.extend_from_slice(&entry.time.to_le_bytes());
            buf.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            buf.extend_from_slice(&raw);
        }
        crate::atomic_file::write(&self.config.network_dir().join("mempool.dat"), &buf)
    }

    fn load_mempool(&mut self) {
        let path = self.config.network_dir().join("mempool.dat");
        let Ok(buf) = std::fs::read(&path) else { return };
        let mut rest = &buf[..];
        let mut loaded = 0;
        while rest.len() >= 12 {
            let time = u64::from_le_bytes(rest[..8].try_into().expect("8"));
            let len = u32::from_le_bytes(rest[8..12].try_into().expect("4")) as usize;
            if rest.len() < 12 + len {
                break;
            }
            if let Ok(tx) = deserialize::<Transaction>(&rest[12..12 + len]) {
                if self.mempool.accept(&self.chain, tx, self.config.min_relay_fee, time).is_ok() {
                    loaded += 1;
                }
            }
            rest = &rest[12 + len..];
        }
        tracing::info!("loaded {loaded} mempool transactions from {}", path.display());
    }

    /// Flushes what lives outside the kernel (the kernel flushes itself when dropped).
    pub fn shutdown(&mut self) -> Result<()> {
        self.save_mempool()?;
        if let Some(w) = &self.wallets {
            w.flush()?;
        }
        Ok(())
    }

    pub fn block_arc(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        self.chain.block(hash).cloned()
    }
}

fn internal(e: anyhow::Error) -> BlockRejected {
    BlockRejected::Invalid(format!("internal error: {e:#}"))
}

fn kernel_dir(net: &Path, generation: u64) -> PathBuf {
    net.join(format!("kernel-{generation}"))
}

fn read_generation(net: &Path) -> u64 {
    std::fs::read_to_string(net.join("kernel.current")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}
