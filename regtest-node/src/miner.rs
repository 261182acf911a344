//! Block assembly for regtest: a BIP34 coinbase paying subsidy plus fees, the BIP141 witness
//! commitment, mempool transactions in acceptance order (parents first) up to the weight limit,
//! and a nonce search against regtest's minimum difficulty.

use crate::chain::Chain;
use crate::mempool::Mempool;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    absolute::LockTime, Amount, Block, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode,
    TxOut, Txid, Witness,
};
use std::collections::HashSet;

const REGTEST_BITS: u32 = 0x207f_ffff;
const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Room kept for the header, coinbase and transaction count (Core reserves 4000 WU).
const COINBASE_RESERVED_WEIGHT: u64 = 4_000;
const HALVING_INTERVAL: u32 = 150;

pub fn block_subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000) >> halvings)
}

/// What goes into the block besides the coinbase.
pub enum Contents<'a> {
    /// Everything the mempool holds that fits.
    Mempool(&'a Mempool),
    /// Exactly these transactions, in this order (generateblock).
    Exactly(Vec<Transaction>),
}

/// Builds and solves a block on the active tip. `fees` for `Exactly` must be supplied by the
/// caller (they are needed for the coinbase value).
pub fn assemble(chain: &Chain, contents: Contents<'_>, extra_fees: Amount, payout: ScriptBuf, now: u32) -> Block {
    let height = chain.height() + 1;
    let prev = chain.tip();
    let (txs, fees) = match contents {
        Contents::Mempool(pool) => select(pool),
        Contents::Exactly(txs) => (txs, extra_fees),
    };
    let mut height_push = Builder::new().push_int(height as i64);
    // scriptSig must be at least 2 bytes (bad-cb-length): Core appends OP_0 likewise.
    height_push = height_push.push_opcode(bitcoin::opcodes::OP_0);
    let mut coinbase_witness = Witness::new();
    coinbase_witness.push([0u8; 32]);
    let coinbase = Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: height_push.into_script(),
            sequence: Sequence::MAX,
            witness: coinbase_witness,
        }],
        output: vec![TxOut { value: block_subsidy(height) + fees, script_pubkey: payout }],
    };
    let mut txdata = Vec::with_capacity(txs.len() + 1);
    txdata.push(coinbase);
    txdata.extend(txs);
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: now.max(chain.median_time_past(&prev) + 1),
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };
    // BIP141 commitment: OP_RETURN 0xaa21a9ed || SHA256d(witness root || reserved value).
    let witness_root = block.witness_root().expect("coinbase present");
    let commitment = Block::compute_witness_commitment(&witness_root, &[0u8; 32]);
    let mut data = PushBytesBuf::from([0xaa, 0x21, 0xa9, 0xed]);
    data.extend_from_slice(commitment.as_byte_array()).expect("36 bytes fit");
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: Builder::new().push_opcode(bitcoin::opcodes::all::OP_RETURN).push_slice(data).into_script(),
    });
    block.header.merkle_root = block.compute_merkle_root().expect("non-empty");
    solve(&mut block.header);
    block
}

/// Mempool transactions in acceptance order, skipping any whose parent did not fit.
fn select(pool: &Mempool) -> (Vec<Transaction>, Amount) {
    let mut weight = COINBASE_RESERVED_WEIGHT;
    let mut fees = Amount::ZERO;
    let mut chosen = Vec::new();
    let mut skipped: HashSet<Txid> = HashSet::new();
    for entry in pool.ordered() {
        let parent_skipped = entry.tx.input.iter().any(|i| skipped.contains(&i.previous_output.txid));
        if parent_skipped || weight + entry.weight > MAX_BLOCK_WEIGHT {
            skipped.insert(entry.txid);
            continue;
        }
        weight += entry.weight;
        fees += entry.fee;
        chosen.push((*entry.tx).clone());
    }
    (chosen, fees)
}

/// Regtest's target is so easy that about every second nonce works.
fn solve(header: &mut Header) {
    let target = header.target();
    while !target.is_met_by(header.block_hash()) {
        header.nonce = header.nonce.wrapping_add(1);
        if header.nonce == 0 {
            header.time += 1;
        }
    }
}
