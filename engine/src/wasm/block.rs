//! A block decoded once on the host, and the manifest's prefilters.

use std::ops::Range;

use bitcoin::consensus::Encodable;
use bitcoin::hashes::Hash;
use bitcoin::script::Instruction;
use bitcoin::{Script, Transaction};

use super::{Manifest, WATCH_PREFIX};
use crate::plugin_api::BlockContext;

/// A serialized block indexed once without decoding it: per transaction, the byte ranges of
/// the whole transaction, its inputs and its outputs. Prefilters walk those ranges in place (no
/// allocation per transaction, input or witness), and only transactions that pass are hashed and
/// copied for the plugin. Share it across the plugins that apply the same block.
///
/// The layout checks are those of consensus deserialization (bounds, minimal compact sizes,
/// segwit marker and flag, no trailing bytes), so a block that parses here also decodes with the
/// `bitcoin` crate inside a plugin.
#[derive(Debug)]
pub struct DecodedBlock<'a> {
    raw: &'a [u8],
    pub header: bitcoin::block::Header,
    txs: Vec<TxLayout>,
}

#[derive(Debug, Clone)]
struct TxLayout {
    /// The whole transaction.
    all: Range<usize>,
    /// From the input count to the end of the outputs (what the txid hashes besides version and
    /// lock time).
    body: Range<usize>,
    /// The inputs (after the input count) and their number.
    inputs: Range<usize>,
    n_inputs: u64,
    /// The outputs (after the output count) and their number.
    outputs: Range<usize>,
    n_outputs: u64,
}

/// A cursor over block bytes with consensus-style bounds and compact-size checks.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// The transaction being read (for error messages; None in the block header part).
    tx: Option<u64>,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &str, problem: &str) -> String {
        match self.tx {
            Some(i) => format!("tx {i} {what}: {problem} (byte {})", self.pos),
            None => format!("{what}: {problem} (byte {})", self.pos),
        }
    }
    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        if self.b.len() - self.pos < n {
            return Err(self.err(what, "truncated"));
        }
        Ok(())
    }
    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        self.need(n, what)?;
        self.pos += n;
        Ok(())
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        self.need(n, what)?;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.bytes(1, what)?[0])
    }
    fn compact(&mut self, what: &str) -> Result<u64, String> {
        let n = match self.u8(what)? {
            0xff => {
                let v = u64::from_le_bytes(self.bytes(8, what)?.try_into().expect("8 bytes"));
                if v < 0x1_0000_0000 {
                    return Err(self.err(what, "non-minimal compact size"));
                }
                v
            }
            0xfe => {
                let v = u32::from_le_bytes(self.bytes(4, what)?.try_into().expect("4 bytes")) as u64;
                if v < 0x1_0000 {
                    return Err(self.err(what, "non-minimal compact size"));
                }
                v
            }
            0xfd => {
                let v = u16::from_le_bytes(self.bytes(2, what)?.try_into().expect("2 bytes")) as u64;
                if v < 0xfd {
                    return Err(self.err(what, "non-minimal compact size"));
                }
                v
            }
            v => v as u64,
        };
        Ok(n)
    }
    /// A count of items at least `min_size` bytes each that must fit in what is left.
    fn count(&mut self, min_size: usize, what: &str) -> Result<u64, String> {
        let n = self.compact(what)?;
        if n.saturating_mul(min_size as u64) > (self.b.len() - self.pos) as u64 {
            return Err(self.err(what, &format!("count {n} impossible for the bytes left")));
        }
        Ok(n)
    }
    fn var_bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.count(1, what)?;
        self.bytes(n as usize, what)
    }
}

fn scan_tx(r: &mut Reader<'_>, i: u64) -> Result<TxLayout, String> {
    r.tx = Some(i);
    let start = r.pos;
    r.skip(4, "version")?;
    let mut segwit = false;
    if r.b.get(r.pos) == Some(&0) {
        // Segwit marker; the flag must be 1.
        r.skip(1, "marker")?;
        if r.u8("flag")? != 1 {
            return Err(r.err("flag", "unknown segwit flag"));
        }
        segwit = true;
    }
    let body_start = r.pos;
    let n_inputs = r.count(41, "input count")?;
    let in_start = r.pos;
    for _ in 0..n_inputs {
        r.skip(36, "prevout")?;
        r.var_bytes("script_sig")?;
        r.skip(4, "sequence")?;
    }
    let in_end = r.pos;
    let n_outputs = r.count(9, "output count")?;
    let out_start = r.pos;
    for _ in 0..n_outputs {
        r.skip(8, "value")?;
        r.var_bytes("script_pubkey")?;
    }
    let body_end = r.pos;
    if segwit {
        if n_inputs == 0 {
            return Err(r.err("inputs", "segwit flag but no inputs"));
        }
        let mut any = false;
        for _ in 0..n_inputs {
            let items = r.count(1, "witness count")?;
            any |= items > 0;
            for _ in 0..items {
                r.var_bytes("witness item")?;
            }
        }
        if !any {
            return Err(r.err("witness", "segwit flag but no witness"));
        }
    }
    r.skip(4, "lock time")?;
    Ok(TxLayout {
        all: start..r.pos,
        body: body_start..body_end,
        inputs: in_start..in_end,
        n_inputs,
        outputs: out_start..body_end,
        n_outputs,
    })
}

impl<'a> DecodedBlock<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, String> {
        if raw.len() < 80 {
            return Err(format!("block header: only {} bytes", raw.len()));
        }
        let header: bitcoin::block::Header =
            bitcoin::consensus::deserialize(&raw[..80]).map_err(|e| format!("block header: {e}"))?;
        let mut r = Reader { b: raw, pos: 80, tx: None };
        let count = r.count(10, "tx count")?;
        let mut txs = Vec::with_capacity(count as usize);
        for i in 0..count {
            txs.push(scan_tx(&mut r, i)?);
        }
        r.tx = None;
        if r.pos != raw.len() {
            return Err(format!("{} trailing bytes after the last transaction", raw.len() - r.pos));
        }
        Ok(DecodedBlock { raw, header, txs })
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Consensus bytes of transaction `i` (a slice of the block).
    pub fn tx_bytes(&self, i: usize) -> &'a [u8] {
        &self.raw[self.txs[i].all.clone()]
    }

    /// Txid of transaction `i`: double SHA-256 of its serialization without witness, hashed from
    /// the block's bytes.
    pub fn txid(&self, i: usize) -> bitcoin::Txid {
        use bitcoin::hashes::{sha256d, HashEngine};
        let t = &self.txs[i];
        let mut e = sha256d::Hash::engine();
        e.input(&self.raw[t.all.start..t.all.start + 4]);
        e.input(&self.raw[t.body.clone()]);
        e.input(&self.raw[t.all.end - 4..t.all.end]);
        bitcoin::Txid::from_raw_hash(sha256d::Hash::from_engine(e))
    }

    /// Decodes transaction `i` with the `bitcoin` crate.
    pub fn decode_tx(&self, i: usize) -> Transaction {
        bitcoin::consensus::deserialize(self.tx_bytes(i)).expect("the layout was checked by parse")
    }

    fn is_coinbase(&self, t: &TxLayout) -> bool {
        let prevout = &self.raw[t.inputs.start..t.inputs.start + 36];
        t.n_inputs == 1 && prevout[..32].iter().all(|b| *b == 0) && prevout[32..] == [0xff; 4]
    }

    /// Calls `f` with each output script of `t` until it returns true.
    fn any_output(&self, t: &TxLayout, mut f: impl FnMut(&Script) -> bool) -> bool {
        let mut r = Reader { b: &self.raw[..t.outputs.end], pos: t.outputs.start, tx: None };
        for _ in 0..t.n_outputs {
            r.pos += 8;
            let script = r.var_bytes("script").expect("the layout was checked by parse");
            if f(Script::from_bytes(script)) {
                return true;
            }
        }
        false
    }

    /// Calls `f` with each input's prevout (36 bytes: txid, vout LE) of `t` until it returns true.
    fn any_prevout(&self, t: &TxLayout, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let mut r = Reader { b: &self.raw[..t.inputs.end], pos: t.inputs.start, tx: None };
        for _ in 0..t.n_inputs {
            let prevout = r.bytes(36, "prevout").expect("checked");
            r.var_bytes("script_sig").expect("checked");
            r.pos += 4;
            if f(prevout) {
                return true;
            }
        }
        false
    }

    /// Indices of the transactions the manifest's prefilters let through, in block order. With
    /// `watch_spends`, a transaction spending an output of an earlier selected transaction of
    /// the same block is selected too (a watch the plugin places for it only takes effect from
    /// the next block).
    pub fn select(&self, manifest: &Manifest, ctx: &mut dyn BlockContext) -> Vec<usize> {
        if manifest.all_transactions || !manifest.has_prefilter() {
            return (0..self.txs.len()).collect();
        }
        let mut key = Vec::with_capacity(WATCH_PREFIX.len() + 36);
        let mut data = Vec::new();
        let mut selected = Vec::new();
        // Txids of the selected transactions (only kept when spends are watched).
        let mut parents: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
        for (i, t) in self.txs.iter().enumerate() {
            let by_op_return = !manifest.op_return_prefixes.is_empty()
                && self.any_output(t, |script| {
                    op_return_data_into(script, &mut data)
                        && manifest.op_return_prefixes.iter().any(|p| data.starts_with(p))
                });
            let by_spend = !by_op_return
                && manifest.watch_spends
                && !self.is_coinbase(t)
                && self.any_prevout(t, |prevout| {
                    if parents.contains(&prevout[..32]) {
                        return true;
                    }
                    key.clear();
                    key.extend_from_slice(WATCH_PREFIX);
                    key.extend_from_slice(&prevout[..32]);
                    let vout = u32::from_le_bytes(prevout[32..36].try_into().expect("4 bytes"));
                    key.extend_from_slice(&vout.to_be_bytes());
                    ctx.get(&key).is_some()
                });
            if by_op_return || by_spend {
                selected.push(i);
                if manifest.watch_spends {
                    parents.insert(self.txid(i).to_byte_array());
                }
            }
        }
        selected
    }
}

/// [`op_return_data`] into a reused buffer; false when the script is not OP_RETURN.
fn op_return_data_into(script: &Script, data: &mut Vec<u8>) -> bool {
    data.clear();
    if !script.is_op_return() {
        return false;
    }
    for ins in script.instructions().skip(1) {
        match ins {
            Ok(Instruction::PushBytes(p)) => data.extend_from_slice(p.as_bytes()),
            _ => break,
        }
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mainnet_block() -> Option<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/research-data/mainnet/block-864790.bin");
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(e) => {
                println!("SKIP: {} not readable ({e})", p.display());
                None
            }
        }
    }

    #[test]
    fn the_layout_scan_agrees_with_the_bitcoin_crate() {
        let mut blocks = vec![bitcoin::consensus::serialize(&bitcoin::blockdata::constants::genesis_block(
            bitcoin::Network::Bitcoin,
        ))];
        blocks.extend(mainnet_block());
        for raw in &blocks {
            let block: bitcoin::Block = bitcoin::consensus::deserialize(raw).unwrap();
            let d = DecodedBlock::parse(raw).unwrap();
            assert_eq!(d.len(), block.txdata.len());
            for (i, tx) in block.txdata.iter().enumerate() {
                assert_eq!(d.txid(i), tx.compute_txid(), "txid of tx {i}");
                assert_eq!(d.tx_bytes(i), bitcoin::consensus::serialize(tx).as_slice(), "bytes of tx {i}");
                assert_eq!(d.is_coinbase(&d.txs[i]), tx.is_coinbase());
            }
        }
    }

    #[test]
    fn malformed_blocks_are_refused_like_consensus_decoding_refuses_them() {
        let raw =
            bitcoin::consensus::serialize(&bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Bitcoin));
        for cut in [79, 81, 100, raw.len() - 1] {
            assert!(DecodedBlock::parse(&raw[..cut]).is_err(), "truncated at {cut}");
            assert!(bitcoin::consensus::deserialize::<bitcoin::Block>(&raw[..cut]).is_err());
        }
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(DecodedBlock::parse(&trailing).unwrap_err().contains("trailing"));
        // A non-minimal tx count (0xfd 0x01 0x00 for 1).
        let mut loose = raw[..80].to_vec();
        loose.extend_from_slice(&[0xfd, 0x01, 0x00]);
        loose.extend_from_slice(&raw[81..]);
        assert!(DecodedBlock::parse(&loose).unwrap_err().contains("non-minimal"));
    }
}
