//! Transactions waiting for a block, and the acceptance rules that let them in: Bitcoin Core's
//! pre-checks (finality, inputs, BIP68, coinbase maturity, fees, a few standardness rules) in
//! Core's order with Core's reject reasons, then script verification by libbitcoinkernel with
//! all consensus flags and the spent outputs (so taproot key and script paths are checked).

use crate::chain::{Chain, Coin, COINBASE_MATURITY};
use bitcoin::consensus::serialize;
use bitcoin::{Amount, FeeRate, OutPoint, Sequence, Transaction, TxOut, Txid, Wtxid};
use bitcoinkernel::{PrecomputedTransactionData, VERIFY_ALL};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const LOCKTIME_THRESHOLD: u32 = 500_000_000;
const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// A coin created by a mempool transaction counts as confirmed at the next block's height.
const MEMPOOL_HEIGHT: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Entry {
    pub tx: Arc<Transaction>,
    pub txid: Txid,
    pub wtxid: Wtxid,
    pub fee: Amount,
    pub vsize: u64,
    pub weight: u64,
    pub time: u64,
    pub height: u32,
    pub spent: Vec<TxOut>,
    seq: u64,
}

/// Why a transaction was refused, in Core's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: String,
    pub debug: Option<String>,
    pub kind: RejectKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// An input is neither in the UTXO set nor created by a mempool transaction.
    MissingInputs,
    /// Already in the mempool (same txid).
    AlreadyInMempool,
    /// Its outputs are already confirmed.
    AlreadyConfirmed,
    Invalid,
}

impl Reject {
    fn new(reason: impl Into<String>) -> Reject {
        Reject { reason: reason.into(), debug: None, kind: RejectKind::Invalid }
    }
    fn with_debug(mut self, debug: impl Into<String>) -> Reject {
        self.debug = Some(debug.into());
        self
    }
    fn kind(mut self, kind: RejectKind) -> Reject {
        self.kind = kind;
        self
    }
    /// Core's `TxValidationState::ToString()`: reason, then ", debug" when there is one.
    pub fn details(&self) -> String {
        match &self.debug {
            Some(d) => format!("{}, {d}", self.reason),
            None => self.reason.clone(),
        }
    }
}

#[derive(Default)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    by_seq: BTreeMap<u64, Txid>,
    spenders: HashMap<OutPoint, Txid>,
    next_seq: u64,
}

/// What a successful check learned about the transaction.
pub struct Accepted {
    pub fee: Amount,
    pub vsize: u64,
    pub weight: u64,
    pub spent: Vec<TxOut>,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }

    /// Entries in acceptance order; parents always precede their children.
    pub fn ordered(&self) -> impl Iterator<Item = &Entry> {
        self.by_seq.values().map(|t| &self.entries[t])
    }

    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    /// An output created by a mempool transaction and not spent by another one.
    pub fn unspent_output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        if self.spenders.contains_key(outpoint) {
            return None;
        }
        self.entries.get(&outpoint.txid)?.tx.output.get(outpoint.vout as usize)
    }

    /// The coin an input would spend: confirmed and unspent in the mempool, or a mempool output.
    fn coin(&self, chain: &Chain, outpoint: &OutPoint) -> Option<Coin> {
        if let Some(coin) = chain.utxo(outpoint) {
            return Some(coin.clone());
        }
        let entry = self.entries.get(&outpoint.txid)?;
        let txout = entry.tx.output.get(outpoint.vout as usize)?;
        Some(Coin { txout: txout.clone(), height: MEMPOOL_HEIGHT, is_coinbase: false })
    }

    /// Runs every acceptance rule without changing anything (testmempoolaccept).
    pub fn check(&self, chain: &Chain, tx: &Transaction, min_relay_fee: FeeRate) -> Result<Accepted, Reject> {
        let txid = tx.compute_txid();
        check_transaction(tx)?;
        if tx.is_coinbase() {
            return Err(Reject::new("coinbase"));
        }
        check_standard(tx)?;
        let next_height = chain.height() + 1;
        let tip_mtp = chain.median_time_past(&chain.tip());
        if !is_final(tx, next_height, tip_mtp) {
            return Err(Reject::new("non-final"));
        }
        if self.entries.contains_key(&txid) {
            return Err(Reject::new("txn-already-in-mempool").kind(RejectKind::AlreadyInMempool));
        }
        for input in &tx.input {
            if let Some(other) = self.spenders.get(&input.previous_output) {
                return Err(Reject::new("txn-mempool-conflict")
                    .with_debug(format!("input {} is spent by {other}", input.previous_output)));
            }
        }
        let mut coins = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            match self.coin(chain, &input.previous_output) {
                Some(c) => coins.push(c),
                None => {
                    let known = (0..tx.output.len() as u32).any(|v| chain.utxo(&OutPoint::new(txid, v)).is_some());
                    if known {
                        return Err(Reject::new("txn-already-known").kind(RejectKind::AlreadyConfirmed));
                    }
                    return Err(Reject::new("bad-txns-inputs-missingorspent").kind(RejectKind::MissingInputs));
                }
            }
        }
        if !sequence_locks_ok(chain, tx, &coins, next_height, tip_mtp) {
            return Err(Reject::new("non-BIP68-final"));
        }
        let mut value_in = Amount::ZERO;
        for coin in &coins {
            if coin.is_coinbase && next_height - coin.height < COINBASE_MATURITY {
                return Err(Reject::new("bad-txns-premature-spend-of-coinbase")
                    .with_debug(format!("tried to spend coinbase at depth {}", next_height - coin.height)));
            }
            value_in += coin.txout.value;
        }
        let value_out: Amount = tx.output.iter().map(|o| o.value).sum();
        if value_in < value_out {
            return Err(Reject::new("bad-txns-in-belowout").with_debug(format!(
                "value in ({}) < value out ({})",
                btc(value_in),
                btc(value_out)
            )));
        }
        let fee = value_in - value_out;
        let weight = tx.weight().to_wu();
        let vsize = tx.vsize() as u64;
        let min_fee = min_relay_fee.fee_vb(vsize).unwrap_or(Amount::MAX_MONEY);
        if fee < min_fee {
            return Err(Reject::new("min relay fee not met").with_debug(format!(
                "{} < {}",
                fee.to_sat(),
                min_fee.to_sat()
            )));
        }
        let spent: Vec<TxOut> = coins.into_iter().map(|c| c.txout).collect();
        verify_scripts(tx, &spent)?;
        Ok(Accepted { fee, vsize, weight, spent })
    }

    /// Checks and, if acceptable, adds the transaction.
    pub fn accept(&mut self, chain: &Chain, tx: Transaction, min_relay_fee: FeeRate, now: u64) -> Result<Txid, Reject> {
        let ok = self.check(chain, &tx, min_relay_fee)?;
        let txid = tx.compute_txid();
        self.insert(Entry {
            wtxid: tx.compute_wtxid(),
            tx: Arc::new(tx),
            txid,
            fee: ok.fee,
            vsize: ok.vsize,
            weight: ok.weight,
            time: now,
            height: chain.height(),
            spent: ok.spent,
            seq: 0,
        });
        Ok(txid)
    }

    fn insert(&mut self, mut entry: Entry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        for input in &entry.tx.input {
            self.spenders.insert(input.previous_output, entry.txid);
        }
        self.by_seq.insert(entry.seq, entry.txid);
        self.entries.insert(entry.txid, entry);
    }

    /// Removes a transaction and everything that spends its outputs.
    pub fn remove_recursive(&mut self, txid: &Txid) {
        let mut stack = vec![*txid];
        while let Some(t) = stack.pop() {
            let Some(entry) = self.entries.remove(&t) else { continue };
            self.by_seq.remove(&entry.seq);
            for input in &entry.tx.input {
                self.spenders.remove(&input.previous_output);
            }
            for vout in 0..entry.tx.output.len() as u32 {
                if let Some(child) = self.spenders.get(&OutPoint::new(t, vout)) {
                    stack.push(*child);
                }
            }
        }
    }

    /// After a block connects: drop its transactions and anything that conflicts with them.
    pub fn remove_for_block(&mut self, block: &bitcoin::Block) {
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if let Some(entry) = self.entries.remove(&txid) {
                self.by_seq.remove(&entry.seq);
                for input in &entry.tx.input {
                    self.spenders.remove(&input.previous_output);
                }
            }
            for input in &tx.input {
                if let Some(conflict) = self.spenders.get(&input.previous_output).copied() {
                    self.remove_recursive(&conflict);
                }
            }
        }
    }

    /// Empties the mempool, returning its transactions in acceptance order.
    pub fn drain(&mut self) -> Vec<(Arc<Transaction>, u64)> {
        let out = self.ordered().map(|e| (e.tx.clone(), e.time)).collect();
        *self = Mempool { next_seq: self.next_seq, ..Mempool::default() };
        out
    }

    /// Transactions that spend outputs of `txid` (direct children).
    pub fn children(&self, txid: &Txid) -> Vec<Txid> {
        let Some(entry) = self.entries.get(txid) else { return vec![] };
        (0..entry.tx.output.len() as u32).filter_map(|v| self.spenders.get(&OutPoint::new(*txid, v)).copied()).collect()
    }

    /// In-mempool parents of a transaction.
    pub fn parents(&self, txid: &Txid) -> Vec<Txid> {
        let Some(entry) = self.entries.get(txid) else { return vec![] };
        let mut out: Vec<Txid> =
            entry.tx.input.iter().map(|i| i.previous_output.txid).filter(|t| self.entries.contains_key(t)).collect();
        out.dedup();
        out
    }
}

fn btc(a: Amount) -> String {
    format!("{:.8}", a.to_btc())
}

/// Context-free checks (Core's CheckTransaction).
fn check_transaction(tx: &Transaction) -> Result<(), Reject> {
    if tx.input.is_empty() {
        return Err(Reject::new("bad-txns-vin-empty"));
    }
    if tx.output.is_empty() {
        return Err(Reject::new("bad-txns-vout-empty"));
    }
    if tx.base_size() * 4 > 4_000_000 {
        return Err(Reject::new("bad-txns-oversize"));
    }
    let mut total = Amount::ZERO;
    for out in &tx.output {
        if out.value > Amount::MAX_MONEY {
            return Err(Reject::new("bad-txns-vout-toolarge"));
        }
        total = total.checked_add(out.value).ok_or_else(|| Reject::new("bad-txns-txouttotal-toolarge"))?;
        if total > Amount::MAX_MONEY {
            return Err(Reject::new("bad-txns-txouttotal-toolarge"));
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(tx.input.len());
    for input in &tx.input {
        if !seen.insert(input.previous_output) {
            return Err(Reject::new("bad-txns-inputs-duplicate"));
        }
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(Reject::new("bad-cb-length"));
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err(Reject::new("bad-txns-prevout-null"));
    }
    Ok(())
}

/// The subset of Core's IsStandardTx that matters for the transactions this system builds.
fn check_standard(tx: &Transaction) -> Result<(), Reject> {
    let version = tx.version.0;
    if !(1..=3).contains(&version) {
        return Err(Reject::new("version"));
    }
    if tx.weight().to_wu() > MAX_STANDARD_TX_WEIGHT {
        return Err(Reject::new("tx-size"));
    }
    if tx.base_size() < MIN_STANDARD_TX_NONWITNESS_SIZE {
        return Err(Reject::new("tx-size-small"));
    }
    for input in &tx.input {
        if input.script_sig.len() > 1650 {
            return Err(Reject::new("scriptsig-size"));
        }
        if !input.script_sig.is_push_only() {
            return Err(Reject::new("scriptsig-not-pushonly"));
        }
    }
    for out in &tx.output {
        if !out.script_pubkey.is_op_return() && out.value < out.script_pubkey.minimal_non_dust() {
            return Err(Reject::new("dust"));
        }
    }
    Ok(())
}

/// Core's IsFinalTx for the next block.
fn is_final(tx: &Transaction, height: u32, mtp: u32) -> bool {
    let lock = tx.lock_time.to_consensus_u32();
    if lock == 0 {
        return true;
    }
    let limit = if lock < LOCKTIME_THRESHOLD { height } else { mtp };
    if lock < limit {
        return true;
    }
    tx.input.iter().all(|i| i.sequence == Sequence::MAX)
}

/// BIP68 relative lock-times, evaluated for inclusion in the next block (Core's
/// CalculateSequenceLocks + EvaluateSequenceLocks).
fn sequence_locks_ok(chain: &Chain, tx: &Transaction, coins: &[Coin], next_height: u32, tip_mtp: u32) -> bool {
    if tx.version.0 < 2 {
        return true;
    }
    let mut min_height: i64 = -1;
    let mut min_time: i64 = -1;
    for (input, coin) in tx.input.iter().zip(coins) {
        let seq = input.sequence.0;
        if seq & (1 << 31) != 0 {
            continue;
        }
        let coin_height = if coin.height == MEMPOOL_HEIGHT { next_height } else { coin.height };
        let value = (seq & 0xffff) as i64;
        if seq & (1 << 22) != 0 {
            let base = coin_height.saturating_sub(1);
            let coin_time = chain.hash_at(base).map(|h| chain.median_time_past(&h)).unwrap_or(0) as i64;
            min_time = min_time.max(coin_time + (value << 9) - 1);
        } else {
            min_height = min_height.max(coin_height as i64 + value - 1);
        }
    }
    min_height < next_height as i64 && min_time < tip_mtp as i64
}

/// Every input's script, checked by Bitcoin Core's interpreter (libbitcoinkernel).
pub fn verify_scripts(tx: &Transaction, spent: &[TxOut]) -> Result<(), Reject> {
    let raw = serialize(tx);
    let ktx = bitcoinkernel::Transaction::new(&raw).map_err(|_| Reject::new("TX decode failed"))?;
    let kspent: Vec<bitcoinkernel::TxOut> = spent
        .iter()
        .map(|o| {
            let spk = bitcoinkernel::ScriptPubkey::new(o.script_pubkey.as_bytes()).expect("script");
            bitcoinkernel::TxOut::new(&spk, o.value.to_sat() as i64)
        })
        .collect();
    let precomputed = PrecomputedTransactionData::new(&ktx, &kspent)
        .map_err(|e| Reject::new("mandatory-script-verify-flag-failed (unknown error)").with_debug(e.to_string()))?;
    for (index, out) in spent.iter().enumerate() {
        let spk = bitcoinkernel::ScriptPubkey::new(out.script_pubkey.as_bytes()).expect("script");
        if bitcoinkernel::verify(&spk, Some(out.value.to_sat() as i64), &ktx, index, Some(VERIFY_ALL), &precomputed)
            .is_err()
        {
            let why = crate::script_diag::diagnose(tx, index, spent);
            let prev = tx.input[index].previous_output;
            return Err(Reject::new(format!("mandatory-script-verify-flag-failed ({why})")).with_debug(format!(
                "input {index} of {} (wtxid {}), spending {}:{}",
                tx.compute_txid(),
                tx.compute_wtxid(),
                prev.txid,
                prev.vout
            )));
        }
    }
    Ok(())
}
