//! The node's mirror of the kernel's active chain: block metadata for every stored block, the
//! active chain by height, the UTXO set (with per-block undo data) and the transaction index.
//! It is changed only by connecting or disconnecting a block at the tip, which the node does to
//! follow the kernel; so it always equals the kernel's view after `Node::sync_to_kernel`.

use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, OutPoint, Transaction, TxOut, Txid, Work};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const COINBASE_MATURITY: u32 = 100;

#[derive(Debug, Clone)]
pub struct Coin {
    pub txout: TxOut,
    pub height: u32,
    pub is_coinbase: bool,
}

#[derive(Debug, Clone)]
pub struct BlockMeta {
    pub height: u32,
    pub chainwork: Work,
    pub size: usize,
    pub stripped_size: usize,
    pub weight: u64,
}

/// Where a confirmed transaction sits.
#[derive(Debug, Clone, Copy)]
pub struct TxLocation {
    pub block: BlockHash,
    pub index: u32,
}

#[derive(Default)]
pub struct Chain {
    blocks: HashMap<BlockHash, Arc<Block>>,
    meta: HashMap<BlockHash, BlockMeta>,
    /// Block hashes in the order they were first accepted; parents always precede children.
    arrival: Vec<BlockHash>,
    active: Vec<BlockHash>,
    utxos: HashMap<OutPoint, Coin>,
    undo: HashMap<BlockHash, Vec<(OutPoint, Coin)>>,
    txindex: HashMap<Txid, TxLocation>,
}

impl Chain {
    /// A chain holding only the regtest genesis block, connected.
    pub fn new() -> Chain {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let mut chain = Chain::default();
        let hash = genesis.block_hash();
        chain.meta.insert(hash, Self::meta_for(&genesis, 0, Work::from_be_bytes([0; 32])));
        chain.blocks.insert(hash, Arc::new(genesis));
        chain.connect(hash).expect("genesis connects");
        chain
    }

    fn meta_for(block: &Block, height: u32, parent_work: Work) -> BlockMeta {
        let size = bitcoin::consensus::serialize(block).len();
        let weight = block.weight().to_wu();
        BlockMeta {
            height,
            chainwork: parent_work + block.header.work(),
            size,
            stripped_size: ((weight as usize) - size) / 3,
            weight,
        }
    }

    /// Records a block the kernel accepted (on any branch). Its parent must be known.
    pub fn add_block(&mut self, block: Block) -> Option<()> {
        let hash = block.block_hash();
        if self.meta.contains_key(&hash) {
            return Some(());
        }
        let parent = self.meta.get(&block.header.prev_blockhash)?;
        let meta = Self::meta_for(&block, parent.height + 1, parent.chainwork);
        self.meta.insert(hash, meta);
        self.blocks.insert(hash, Arc::new(block));
        self.arrival.push(hash);
        Some(())
    }

    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.meta.contains_key(hash)
    }

    pub fn block(&self, hash: &BlockHash) -> Option<&Arc<Block>> {
        self.blocks.get(hash)
    }

    pub fn meta(&self, hash: &BlockHash) -> Option<&BlockMeta> {
        self.meta.get(hash)
    }

    /// Stored non-genesis blocks in arrival order.
    pub fn arrival_order(&self) -> &[BlockHash] {
        &self.arrival
    }

    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    pub fn tip(&self) -> BlockHash {
        *self.active.last().expect("genesis is always connected")
    }

    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.meta.get(hash).and_then(|m| self.active.get(m.height as usize)) == Some(hash)
    }

    /// Successor on the active chain.
    pub fn next_on_active(&self, hash: &BlockHash) -> Option<BlockHash> {
        if !self.is_active(hash) {
            return None;
        }
        self.hash_at(self.meta[hash].height + 1)
    }

    /// Bitcoin's median-time-past of the block `hash` (median of it and its 10 ancestors).
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(11);
        let mut cursor = Some(*hash);
        while let Some(h) = cursor {
            if times.len() == 11 {
                break;
            }
            let Some(block) = self.blocks.get(&h) else { break };
            times.push(block.header.time);
            cursor = (block.header.prev_blockhash != BlockHash::all_zeros()).then_some(block.header.prev_blockhash);
        }
        times.sort_unstable();
        times[times.len() / 2]
    }

    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxos.get(outpoint)
    }

    pub fn utxos(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.utxos.iter()
    }

    pub fn utxo_count(&self) -> usize {
        self.utxos.len()
    }

    pub fn tx_location(&self, txid: &Txid) -> Option<TxLocation> {
        self.txindex.get(txid).copied()
    }

    pub fn confirmed_tx(&self, txid: &Txid) -> Option<(&Transaction, TxLocation)> {
        let loc = self.txindex.get(txid)?;
        let block = self.blocks.get(&loc.block)?;
        Some((&block.txdata[loc.index as usize], *loc))
    }

    /// Connects a stored block on top of the active tip. The kernel has already validated it;
    /// a missing input here means the mirror and the kernel disagree, which is a bug.
    pub fn connect(&mut self, hash: BlockHash) -> Result<(), String> {
        let block = self.blocks.get(&hash).cloned().ok_or("connect: unknown block")?;
        let height = self.meta[&hash].height;
        if height as usize != self.active.len() {
            return Err(format!("connect: block {hash} at height {height} is not on the tip"));
        }
        let mut spent = Vec::new();
        for (index, tx) in block.txdata.iter().enumerate() {
            let coinbase = index == 0;
            if !coinbase {
                for input in &tx.input {
                    let coin = self
                        .utxos
                        .remove(&input.previous_output)
                        .ok_or_else(|| format!("connect {hash}: input {} missing", input.previous_output))?;
                    spent.push((input.previous_output, coin));
                }
            }
            let txid = tx.compute_txid();
            // BIP30: the two historic duplicate coinbases cannot occur on regtest with BIP34.
            for (vout, out) in tx.output.iter().enumerate() {
                if out.script_pubkey.is_op_return() {
                    continue;
                }
                self.utxos.insert(
                    OutPoint::new(txid, vout as u32),
                    Coin { txout: out.clone(), height, is_coinbase: coinbase },
                );
            }
            self.txindex.insert(txid, TxLocation { block: hash, index: index as u32 });
        }
        self.undo.insert(hash, spent);
        self.active.push(hash);
        Ok(())
    }

    /// Disconnects the tip block, restoring the coins it spent; returns the block.
    pub fn disconnect_tip(&mut self) -> Arc<Block> {
        assert!(self.active.len() > 1, "genesis cannot be disconnected");
        let hash = self.active.pop().expect("non-empty");
        let block = self.blocks[&hash].clone();
        for tx in block.txdata.iter().rev() {
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() {
                self.utxos.remove(&OutPoint::new(txid, vout as u32));
            }
            self.txindex.remove(&txid);
        }
        for (outpoint, coin) in self.undo.remove(&hash).unwrap_or_default() {
            self.utxos.insert(outpoint, coin);
        }
        block
    }

    /// The stored blocks that are invalid: those in `invalidated` and all their descendants.
    pub fn invalid_closure(&self, invalidated: &HashSet<BlockHash>) -> HashSet<BlockHash> {
        let mut out = HashSet::new();
        for hash in &self.arrival {
            let parent = self.blocks[hash].header.prev_blockhash;
            if invalidated.contains(hash) || out.contains(&parent) {
                out.insert(*hash);
            }
        }
        out
    }

    /// Chain tips: stored blocks with no stored child.
    pub fn tips(&self) -> Vec<BlockHash> {
        let parents: HashSet<BlockHash> = self.blocks.values().map(|b| b.header.prev_blockhash).collect();
        let mut tips: Vec<BlockHash> = self.meta.keys().filter(|h| !parents.contains(*h)).copied().collect();
        tips.sort_by_key(|h| std::cmp::Reverse(self.meta[h].height));
        tips
    }

    /// The highest common ancestor of `hash` and the active chain.
    pub fn fork_point(&self, mut hash: BlockHash) -> BlockHash {
        while !self.is_active(&hash) {
            hash = self.blocks[&hash].header.prev_blockhash;
        }
        hash
    }
}
