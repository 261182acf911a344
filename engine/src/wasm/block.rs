//! A block decoded once on the host, and the manifest's prefilters.

use std::ops::Range;

use bitcoin::consensus::{Decodable, Encodable};
use bitcoin::hashes::Hash;
use bitcoin::script::Instruction;
use bitcoin::{Script, Transaction, VarInt};

use super::{Manifest, WATCH_PREFIX};
use crate::plugin_api::BlockContext;

/// A serialized block decoded once; each transaction keeps the byte range it came from so its
/// raw bytes are handed to plugins without re-serializing. Share it across the plugins that
/// apply the same block.
pub struct DecodedBlock<'a> {
    raw: &'a [u8],
    pub header: bitcoin::block::Header,
    pub txs: Vec<Transaction>,
    ranges: Vec<Range<usize>>,
}

impl<'a> DecodedBlock<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, String> {
        let mut rest: &[u8] = raw;
        let header = bitcoin::block::Header::consensus_decode(&mut rest).map_err(|e| format!("block header: {e}"))?;
        let count = VarInt::consensus_decode(&mut rest).map_err(|e| format!("tx count: {e}"))?.0;
        if count > (raw.len() as u64) / 60 + 1 {
            return Err(format!("tx count {count} impossible for {} bytes", raw.len()));
        }
        let mut txs = Vec::with_capacity(count as usize);
        let mut ranges = Vec::with_capacity(count as usize);
        for i in 0..count {
            let start = raw.len() - rest.len();
            let tx = Transaction::consensus_decode_from_finite_reader(&mut rest).map_err(|e| format!("tx {i}: {e}"))?;
            ranges.push(start..raw.len() - rest.len());
            txs.push(tx);
        }
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes after the last transaction", rest.len()));
        }
        Ok(DecodedBlock { raw, header, txs, ranges })
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Consensus bytes of transaction `i` (a slice of the block).
    pub fn tx_bytes(&self, i: usize) -> &'a [u8] {
        &self.raw[self.ranges[i].clone()]
    }

    /// Indices of the transactions the manifest's prefilters let through, in block order.
    pub fn select(&self, manifest: &Manifest, ctx: &mut dyn BlockContext) -> Vec<usize> {
        if manifest.all_transactions || !manifest.has_prefilter() {
            return (0..self.txs.len()).collect();
        }
        let mut key = Vec::with_capacity(WATCH_PREFIX.len() + 36);
        self.txs
            .iter()
            .enumerate()
            .filter(|(_, tx)| {
                (!manifest.op_return_prefixes.is_empty()
                    && tx.output.iter().any(|o| {
                        op_return_data(&o.script_pubkey)
                            .is_some_and(|d| manifest.op_return_prefixes.iter().any(|p| d.starts_with(p)))
                    }))
                    || (manifest.watch_spends
                        && !tx.is_coinbase()
                        && tx.input.iter().any(|i| {
                            key.clear();
                            key.extend_from_slice(WATCH_PREFIX);
                            key.extend_from_slice(i.previous_output.txid.as_byte_array());
                            key.extend_from_slice(&i.previous_output.vout.to_be_bytes());
                            ctx.get(&key).is_some()
                        }))
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// The data of an OP_RETURN output: the concatenated payloads of the pushes after OP_RETURN, up
/// to the first non-push opcode or malformed push; `None` when the script is not OP_RETURN.
pub fn op_return_data(script: &Script) -> Option<Vec<u8>> {
    if !script.is_op_return() {
        return None;
    }
    let mut data = Vec::new();
    for ins in script.instructions().skip(1) {
        match ins {
            Ok(Instruction::PushBytes(p)) => data.extend_from_slice(p.as_bytes()),
            _ => break,
        }
    }
    Some(data)
}

/// Re-serializes a transaction (for callers that did not get it from a `DecodedBlock`).
pub fn tx_to_bytes(tx: &Transaction) -> Vec<u8> {
    let mut out = Vec::new();
    tx.consensus_encode(&mut out).expect("writing to a Vec cannot fail");
    out
}
