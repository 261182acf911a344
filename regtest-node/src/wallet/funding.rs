//! Coin selection, signed-size estimation and change handling for `fundrawtransaction`,
//! `walletcreatefundedpsbt`, `sendtoaddress` and `sendmany`.

use std::collections::BTreeSet;

use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use rand::seq::SliceRandom;
use rand::Rng;

/// A fee rate in satoshis per 1000 virtual bytes (Core's `CFeeRate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeeRate {
    pub sat_per_kvb: u64,
}

impl FeeRate {
    pub fn from_sat_per_kvb(sat_per_kvb: u64) -> FeeRate {
        FeeRate { sat_per_kvb }
    }

    /// Fee for `vsize` virtual bytes, rounded up.
    pub fn fee_vsize(self, vsize: u64) -> u64 {
        u64::try_from((u128::from(self.sat_per_kvb) * u128::from(vsize)).div_ceil(1000)).unwrap_or(u64::MAX)
    }

    /// Fee for `weight` weight units (vsize = ceil(weight / 4)).
    pub fn fee_weight(self, weight: u64) -> u64 {
        self.fee_vsize(weight.div_ceil(4))
    }

    /// Core's `CFeeRate::ToString(FeeRateFormat::SAT_VB)`: "1.000 sat/vB".
    pub fn to_sat_vb_string(self) -> String {
        format!("{}.{:03} sat/vB", self.sat_per_kvb / 1000, self.sat_per_kvb % 1000)
    }
}

/// Core's minimum relay / minimum wallet fee rate (1 sat/vB).
pub const MIN_FEE_RATE: FeeRate = FeeRate { sat_per_kvb: 1000 };
/// Core's default `-maxtxfee` (0.1 BTC).
pub const MAX_TX_FEE_SAT: u64 = 10_000_000;

/// An input that is already in the transaction (or one a coin would add).
#[derive(Clone, Debug)]
pub struct InputInfo {
    pub outpoint: OutPoint,
    pub txout: TxOut,
    /// Weight of the signed input, including outpoint, scriptSig and sequence.
    pub weight: u64,
    /// Whether the input carries a witness once signed.
    pub segwit: bool,
    /// Sequence to use when the input is added by the wallet.
    pub sequence: Sequence,
}

#[derive(Clone, Debug)]
pub struct FundParams {
    pub fee_rate: FeeRate,
    /// Output positions that pay the fee.
    pub subtract_fee_from: BTreeSet<usize>,
    pub change_script: ScriptBuf,
    pub change_position: Option<usize>,
    /// Whether wallet coins may be added.
    pub add_inputs: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FundError {
    InsufficientFunds,
    PresetInsufficient,
    AmountTooSmall,
    TooSmallToPayFee,
    TooSmallAfterFee,
    NegativeAmount,
}

impl FundError {
    /// Core's message for the error.
    pub fn message(&self) -> &'static str {
        match self {
            FundError::InsufficientFunds => "Insufficient funds",
            FundError::PresetInsufficient => "The preselected coins total amount does not cover the transaction target. Please allow other inputs to be automatically selected or include more coins manually",
            FundError::AmountTooSmall => "Transaction amount too small",
            FundError::TooSmallToPayFee => "The transaction amount is too small to pay the fee",
            FundError::TooSmallAfterFee => "The transaction amount is too small to send after the fee has been deducted",
            FundError::NegativeAmount => "Transaction amounts must not be negative",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Funded {
    pub tx: Transaction,
    pub fee: Amount,
    pub change_position: Option<usize>,
    /// Coins the wallet added.
    pub added: Vec<OutPoint>,
    /// Whether the change script was used.
    pub used_change: bool,
}

fn varint_len(n: u64) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x10000..=0xffff_ffff => 5,
        _ => 9,
    }
}

pub fn output_weight(script: &ScriptBuf) -> u64 {
    let len = script.len() as u64;
    (8 + varint_len(len) + len) * 4
}

/// Weight of a transaction with these inputs and outputs once signed.
fn tx_weight(inputs: &[&InputInfo], outputs: &[TxOut]) -> u64 {
    let mut base = 4 + 4 + varint_len(inputs.len() as u64) + varint_len(outputs.len() as u64);
    base += outputs.iter().map(|o| output_weight(&o.script_pubkey) / 4).sum::<u64>();
    let mut weight = base * 4 + inputs.iter().map(|i| i.weight).sum::<u64>();
    if inputs.iter().any(|i| i.segwit) {
        // Marker and flag, plus an empty witness count for each non-witness input.
        weight += 2 + inputs.iter().filter(|i| !i.segwit).count() as u64;
    }
    weight
}

/// Weight of an already-signed input as it stands.
pub fn signed_input_weight(txin: &TxIn) -> u64 {
    let ss = txin.script_sig.len() as u64;
    let base = 32 + 4 + varint_len(ss) + ss + 4;
    let wit = if txin.witness.is_empty() { 0 } else { txin.witness.size() as u64 };
    base * 4 + wit
}

pub fn is_dust(txout: &TxOut) -> bool {
    !txout.script_pubkey.is_op_return() && txout.value < txout.script_pubkey.minimal_non_dust()
}

/// Branch and bound over effective values: a subset whose sum lands in [target, target+window].
fn branch_and_bound(values: &[u64], target: u64, window: u64) -> Option<Vec<usize>> {
    const MAX_TRIES: usize = 100_000;
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*b].cmp(&values[*a]));
    let sorted: Vec<u64> = order.iter().map(|i| values[*i]).collect();
    let mut remaining: Vec<u64> = vec![0; sorted.len() + 1];
    for i in (0..sorted.len()).rev() {
        remaining[i] = remaining[i + 1].saturating_add(sorted[i]);
    }
    let mut best: Option<(u64, Vec<usize>)> = None;
    let mut tries = 0usize;
    let mut stack: Vec<(usize, u64, Vec<usize>)> = vec![(0, 0, Vec::new())];
    while let Some((depth, sum, chosen)) = stack.pop() {
        tries += 1;
        if tries > MAX_TRIES {
            break;
        }
        if sum > target.saturating_add(window) {
            continue;
        }
        if sum >= target {
            let waste = sum - target;
            if best.as_ref().is_none_or(|(w, _)| waste < *w) {
                best = Some((waste, chosen.clone()));
                if waste == 0 {
                    break;
                }
            }
            continue;
        }
        if depth >= sorted.len() || sum.saturating_add(remaining[depth]) < target {
            continue;
        }
        // Explore "omit" after "include" (stack order).
        stack.push((depth + 1, sum, chosen.clone()));
        let mut with = chosen;
        with.push(depth);
        stack.push((depth + 1, sum.saturating_add(sorted[depth]), with));
    }
    best.map(|(_, chosen)| chosen.into_iter().map(|i| order[i]).collect())
}

/// Funds `tx` (its inputs are `presets`, in order) from `candidates`.
pub fn fund(
    tx: &Transaction,
    presets: &[InputInfo],
    candidates: &[InputInfo],
    params: &FundParams,
) -> Result<Funded, FundError> {
    let fee_rate = params.fee_rate;
    let sffo = !params.subtract_fee_from.is_empty();
    // Core: amounts beyond the signed 64-bit range read as negative.
    let mut recipients: u64 = 0;
    for o in &tx.output {
        recipients = recipients.checked_add(o.value.to_sat()).ok_or(FundError::NegativeAmount)?;
    }
    if recipients > i64::MAX as u64 {
        return Err(FundError::NegativeAmount);
    }
    for (i, out) in tx.output.iter().enumerate() {
        if !params.subtract_fee_from.contains(&i) && is_dust(out) {
            return Err(FundError::AmountTooSmall);
        }
    }
    let change_txout = TxOut { value: Amount::ZERO, script_pubkey: params.change_script.clone() };
    let change_weight = output_weight(&params.change_script);
    let change_dust = params.change_script.minimal_non_dust().to_sat();
    let preset_value: u64 = presets.iter().map(|p| p.txout.value.to_sat()).sum();
    let preset_refs: Vec<&InputInfo> = presets.iter().collect();
    let fixed_weight = tx_weight(&preset_refs, &tx.output);

    // What the presets alone leave to cover.
    let need_fee = |w: u64| if sffo { 0 } else { fee_rate.fee_weight(w) };
    let covered_by_presets = preset_value >= recipients.saturating_add(need_fee(fixed_weight));

    let mut chosen: Vec<&InputInfo> = Vec::new();
    if !covered_by_presets || presets.is_empty() {
        if !params.add_inputs {
            return Err(FundError::PresetInsufficient);
        }
        let eligible: Vec<&InputInfo> = candidates
            .iter()
            .filter(|c| !presets.iter().any(|p| p.outpoint == c.outpoint))
            .filter(|c| sffo || c.txout.value.to_sat() > fee_rate.fee_weight(c.weight))
            .collect();
        let eff = |c: &InputInfo| {
            if sffo {
                c.txout.value.to_sat()
            } else {
                c.txout.value.to_sat() - fee_rate.fee_weight(c.weight)
            }
        };
        let target = recipients.saturating_add(need_fee(fixed_weight)).saturating_sub(preset_value);
        // Exact match without change first (not with subtract-fee-from-outputs).
        let mut picked: Option<Vec<usize>> = None;
        if !sffo {
            let values: Vec<u64> = eligible.iter().map(|c| eff(c)).collect();
            let cost_of_change = fee_rate
                .fee_weight(change_weight)
                .saturating_add(fee_rate.fee_weight(super::keys::P2TR_KEYPATH_INPUT_WEIGHT));
            picked = branch_and_bound(&values, target, cost_of_change);
        }
        let picked = match picked {
            Some(p) => p,
            None => {
                let mut order: Vec<usize> = (0..eligible.len()).collect();
                order.sort_by(|a, b| eff(eligible[*b]).cmp(&eff(eligible[*a])));
                let with_change = target.saturating_add(fee_rate.fee_weight(change_weight)).saturating_add(change_dust);
                let mut sum = 0u64;
                let mut sel = Vec::new();
                for i in order {
                    if sum >= with_change {
                        break;
                    }
                    sum = sum.saturating_add(eff(eligible[i]));
                    sel.push(i);
                }
                if sum < target || (sel.is_empty() && target > 0) {
                    return Err(FundError::InsufficientFunds);
                }
                sel
            }
        };
        chosen = picked.into_iter().map(|i| eligible[i]).collect();
        chosen.shuffle(&mut rand::thread_rng());
    }

    let mut all_inputs: Vec<&InputInfo> = presets.iter().collect();
    all_inputs.extend(chosen.iter().copied());
    if all_inputs.is_empty() {
        return Err(FundError::InsufficientFunds);
    }
    let total_in: u64 = all_inputs.iter().map(|i| i.txout.value.to_sat()).sum();

    let mut outputs = tx.output.clone();
    let mut with_change = outputs.clone();
    with_change.push(change_txout.clone());
    let weight_with_change = tx_weight(&all_inputs, &with_change);
    let weight_without = tx_weight(&all_inputs, &outputs);

    let mut change_position = None;
    if !sffo {
        let fee_with = fee_rate.fee_weight(weight_with_change);
        let fee_without = fee_rate.fee_weight(weight_without);
        if total_in < recipients.saturating_add(fee_without) {
            return Err(if params.add_inputs { FundError::InsufficientFunds } else { FundError::PresetInsufficient });
        }
        let change = total_in.saturating_sub(recipients.saturating_add(fee_with));
        if total_in >= recipients.saturating_add(fee_with) && change >= change_dust {
            let pos = params.change_position.unwrap_or_else(|| rand::thread_rng().gen_range(0..=outputs.len()));
            let pos = pos.min(outputs.len());
            outputs.insert(pos, TxOut { value: Amount::from_sat(change), script_pubkey: params.change_script.clone() });
            change_position = Some(pos);
        }
    } else {
        if total_in < recipients {
            return Err(if params.add_inputs { FundError::InsufficientFunds } else { FundError::PresetInsufficient });
        }
        let leftover = total_in - recipients;
        let (weight, change) =
            if leftover >= change_dust { (weight_with_change, Some(leftover)) } else { (weight_without, None) };
        let fee_needed = fee_rate.fee_weight(weight);
        let to_deduct = match change {
            Some(_) => fee_needed,
            None => fee_needed.saturating_sub(leftover),
        };
        let n = params.subtract_fee_from.len() as u64;
        let share = to_deduct / n;
        let mut remainder = to_deduct % n;
        for pos in &params.subtract_fee_from {
            let Some(out) = outputs.get_mut(*pos) else {
                continue;
            };
            let deduct = share + std::mem::take(&mut remainder);
            if out.value.to_sat() < deduct {
                return Err(FundError::TooSmallToPayFee);
            }
            out.value = Amount::from_sat(out.value.to_sat() - deduct);
            if is_dust(out) {
                return Err(FundError::TooSmallAfterFee);
            }
        }
        if let Some(change) = change {
            let pos = params.change_position.unwrap_or_else(|| rand::thread_rng().gen_range(0..=outputs.len()));
            let pos = pos.min(outputs.len());
            outputs.insert(pos, TxOut { value: Amount::from_sat(change), script_pubkey: params.change_script.clone() });
            change_position = Some(pos);
        }
    }

    let mut inputs: Vec<TxIn> = tx.input.clone();
    for c in &chosen {
        inputs.push(TxIn {
            previous_output: c.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: c.sequence,
            witness: Witness::new(),
        });
    }
    let out_value: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
    let funded = Transaction { version: tx.version, lock_time: tx.lock_time, input: inputs, output: outputs };
    Ok(Funded {
        tx: funded,
        fee: Amount::from_sat(total_in - out_value),
        change_position,
        added: chosen.iter().map(|c| c.outpoint).collect(),
        used_change: change_position.is_some(),
    })
}

/// An empty version-2 transaction paying `outputs` (for `sendtoaddress`/`sendmany`).
pub fn new_payment(outputs: Vec<TxOut>, lock_time: absolute::LockTime) -> Transaction {
    Transaction { version: transaction::Version::TWO, lock_time, input: Vec::new(), output: outputs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn coin(n: u8, sat: u64) -> InputInfo {
        InputInfo {
            outpoint: OutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
            txout: TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([n; 32]).collect()),
            },
            weight: super::super::keys::P2TR_KEYPATH_INPUT_WEIGHT,
            segwit: true,
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        }
    }

    fn params(sffo: &[usize]) -> FundParams {
        FundParams {
            fee_rate: FeeRate::from_sat_per_kvb(2000),
            subtract_fee_from: sffo.iter().copied().collect(),
            change_script: coin(9, 0).txout.script_pubkey,
            change_position: None,
            add_inputs: true,
        }
    }

    #[test]
    fn funds_with_change_and_meets_fee_rate() {
        let out = TxOut { value: Amount::from_sat(50_000), script_pubkey: coin(7, 0).txout.script_pubkey };
        let tx = new_payment(vec![out], absolute::LockTime::ZERO);
        let coins = vec![coin(1, 30_000), coin(2, 100_000), coin(3, 40_000)];
        let f = fund(&tx, &[], &coins, &params(&[])).unwrap();
        let pos = f.change_position.expect("change");
        assert_eq!(f.tx.output.len(), 2);
        let weight = tx_weight(
            &f.tx
                .input
                .iter()
                .map(|i| coins.iter().find(|c| c.outpoint == i.previous_output).unwrap())
                .collect::<Vec<_>>(),
            &f.tx.output,
        );
        assert!(f.fee.to_sat() >= FeeRate::from_sat_per_kvb(2000).fee_weight(weight));
        assert!(f.tx.output[pos].value.to_sat() > 0);
    }

    #[test]
    fn insufficient_and_subtract_fee() {
        let out = TxOut { value: Amount::from_sat(500_000), script_pubkey: coin(7, 0).txout.script_pubkey };
        let tx = new_payment(vec![out.clone()], absolute::LockTime::ZERO);
        assert_eq!(fund(&tx, &[], &[coin(1, 1000)], &params(&[])).unwrap_err(), FundError::InsufficientFunds);
        let exact = new_payment(vec![TxOut { value: Amount::from_sat(100_000), ..out }], absolute::LockTime::ZERO);
        let f = fund(&exact, &[], &[coin(1, 100_000)], &params(&[0])).unwrap();
        assert_eq!(f.tx.output.len(), 1);
        assert_eq!(f.tx.output[0].value.to_sat() + f.fee.to_sat(), 100_000);
    }

    #[test]
    fn bnb_finds_exact_match() {
        let r = branch_and_bound(&[5, 9, 3, 7], 12, 0).unwrap();
        let s: u64 = r.iter().map(|i| [5u64, 9, 3, 7][*i]).sum();
        assert_eq!(s, 12);
    }
}
