//! The unconfirmed window and its `btc_info` event (spec §4.5).
//!
//! For each new tip that is not confirmed yet the engine calls `apply_unconfirmed`. As Phase-1
//! did after every chain update, the whole window (every block not confirmed yet, oldest
//! first, each with its own parameters) is then evaluated:
//!
//! - a transaction that parses as a staking transaction and passes the amount/time checks adds
//!   its value (no cap applied); one that fails them counts
//!   `si_invalid_txs_counter{tx_type="unconfirmed_staking_transaction"}`;
//! - an input spending a stored staking output, or else a staking output of the window: a valid
//!   unbonding of non-overflow stake subtracts its value; an invalid unbonding counts
//!   `unconfirmed_unbonding_transactions`; anything else (a withdrawal) counts
//!   `unconfirmed_unknown_transaction`;
//! - `unconfirmed_tvl = confirmed_tvl + delta` is published to `btc_info_queue` and kept for
//!   `/v1/stats`; a negative result counts `si_failed_processing_unconfirmed_block_counter`.
//!
//! The staking checks of a block depend only on its transactions and its parameters, so they run
//! once, when the block arrives, and the window keeps their outcome ([`WindowBlock`]); only the
//! spends, whose outcome depends on what is stored by then, are classified at every tip. The
//! counters grow once per evaluation, as Phase-1's did (with depth 2 the window is one block).

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Transaction};
use guest_sdk::{bitcoin, store, BlockInfo, Tx};
use phase1_primitives::staking::StakingInfo;
use phase1_primitives::staking_tx::{is_possible_v0_staking_tx, parse_v0_staking_tx, validate_staking_amount_time};
use phase1_primitives::unbonding::{classify_staking_spend, StakingSpend};

use crate::config::{self, Config};
use crate::events::{self, BtcInfoEvent, BTC_INFO_QUEUE};
use crate::indexer::staking_info;
use crate::metrics::{self, invalid};
use crate::state::{self, BtcInfo, WindowBlock, WindowStake};

/// Adds the tip to the window and publishes the window's `btc_info`.
pub fn apply_unconfirmed(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
    let cfg = config::get()?;
    store::put_u64(state::TIP_TIME, block.time as u64);
    if let Some(entry) = summarize(cfg, block, txs)? {
        store::put_json(state::window_key(block.height), &entry)?;
    }
    evaluate(cfg, block)
}

/// The block's staking outcome and the spends to classify later (None before activation).
fn summarize(cfg: &Config, block: &BlockInfo, txs: &[Tx]) -> Result<Option<WindowBlock>, String> {
    let Some((version, params)) = cfg.params.for_height(block.height as u64) else {
        return Ok(None);
    };
    let mut w =
        WindowBlock { height: block.height, block_hash: guest_sdk::hash_hex(&block.hash), ..Default::default() };
    for tx in txs {
        let t: Transaction =
            deserialize(&tx.raw).map_err(|e| format!("tx {} of block {}: {e}", tx.index, block.height))?;
        let txid = t.compute_txid();
        if is_possible_v0_staking_tx(&t, params.tag_bytes()) {
            if let Ok(parsed) = parse_v0_staking_tx(&t, params.tag_bytes(), params.committee()) {
                if validate_staking_amount_time(parsed.staking_value, parsed.op_return.staking_time, params).is_ok() {
                    w.valid_value += parsed.staking_value;
                    w.stakes.push(txid.to_string());
                    let id = txid.to_byte_array();
                    store::put_json(
                        state::window_stake_key(&id),
                        &WindowStake {
                            vout: parsed.staking_output_index,
                            value: parsed.staking_value,
                            staker_pk_hex: state::to_hex(&parsed.op_return.staker_pk.serialize()),
                            finality_provider_pk_hex: state::to_hex(&parsed.op_return.fp_pk.serialize()),
                            staking_time: parsed.op_return.staking_time,
                            params_version: version as u32,
                        },
                    )?;
                    // Spends of it in later blocks must reach the window too.
                    store::watch_outpoint(&id, parsed.staking_output_index);
                } else {
                    w.invalid += 1;
                    w.invalid_txids.push(txid.to_string());
                }
            }
        }
        for (i, input) in t.input.iter().enumerate() {
            if spends_known_stake(&input.previous_output)? {
                w.spends.push((state::to_hex(&tx.raw), i as u32));
            }
        }
    }
    Ok(Some(w))
}

/// Whether `prev` is a stored staking output or a valid staking output of the window.
fn spends_known_stake(prev: &OutPoint) -> Result<bool, String> {
    let id = prev.txid.to_byte_array();
    if let Some(d) = state::delegation(&id)? {
        return Ok(d.staking_tx.output_index == prev.vout);
    }
    Ok(window_stake(&id)?.is_some_and(|s| s.vout == prev.vout))
}

fn window_stake(id: &state::Hash32) -> Result<Option<WindowStake>, String> {
    store::get_json(state::window_stake_key(id))
}

/// Evaluates the whole window at tip `block` and publishes its `btc_info`.
fn evaluate(cfg: &Config, block: &BlockInfo) -> Result<(), String> {
    let confirmed_tvl = state::confirmed_tvl(cfg.start_confirmed_tvl);
    let mut delta: i128 = 0;
    let mut any = false;
    for (_, value) in store::scan_prefix(state::WINDOW, None, u32::MAX) {
        let w: WindowBlock = serde_json::from_slice(&value).map_err(|e| format!("window entry: {e}"))?;
        any = true;
        delta += w.valid_value as i128;
        metrics::add(&metrics::invalid_series(invalid::UNCONFIRMED_STAKING), w.invalid);
        for (raw, input) in &w.spends {
            let bytes = hex::decode(raw).map_err(|e| format!("window tx: {e}"))?;
            let t: Transaction = deserialize(&bytes).map_err(|e| format!("window tx: {e}"))?;
            let i = *input as usize;
            let prev = t.input[i].previous_output;
            let id = prev.txid.to_byte_array();
            let (spend, value, overflow) = if let Some(d) = state::delegation(&id)? {
                let p = cfg.params.versions.get(d.params_version as usize).ok_or("unknown params version")?;
                let info = staking_info(&d, p)?;
                (classify_staking_spend(&t, i, &info, prev, d.staking_value, p), d.staking_value, d.is_overflow)
            } else if let Some(s) = window_stake(&id)? {
                let p = cfg.params.versions.get(s.params_version as usize).ok_or("unknown params version")?;
                let info = window_stake_info(&s, p)?;
                (classify_staking_spend(&t, i, &info, prev, s.value, p), s.value, false)
            } else {
                continue;
            };
            match spend {
                StakingSpend::ValidUnbonding => {
                    if !overflow {
                        delta -= value as i128;
                    }
                }
                StakingSpend::InvalidUnbonding(_) => metrics::inc_invalid(invalid::UNCONFIRMED_UNBONDING),
                StakingSpend::Withdrawal | StakingSpend::InvalidWithdrawal(..) => {
                    metrics::inc_invalid(invalid::UNCONFIRMED_UNKNOWN)
                }
            }
        }
    }
    if !any {
        return Ok(());
    }
    let unconfirmed = confirmed_tvl as i128 + delta;
    if unconfirmed < 0 {
        metrics::inc(metrics::FAILED_UNCONFIRMED_BLOCK);
        return Ok(());
    }
    let info = BtcInfo { height: block.height, confirmed_tvl, unconfirmed_tvl: unconfirmed as u64 };
    store::put_json(state::BTC_INFO, &info)?;
    metrics::set(metrics::LAST_CALCULATED_ACTIVE_TVL, info.unconfirmed_tvl);
    events::publish(
        BTC_INFO_QUEUE,
        &BtcInfoEvent {
            event_type: 6,
            height: block.height as u64,
            confirmed_tvl,
            unconfirmed_tvl: info.unconfirmed_tvl,
        },
    )
}

fn window_stake_info(s: &WindowStake, p: &phase1_primitives::ParamsVersion) -> Result<StakingInfo, String> {
    let key = |h: &str| {
        state::parse_hash32(h)
            .and_then(|b| phase1_primitives::curve::xonly_key(&b))
            .ok_or_else(|| format!("window stake key {h:?} is not an x-only key"))
    };
    StakingInfo::new(&key(&s.staker_pk_hex)?, &[key(&s.finality_provider_pk_hex)?], p.committee(), s.staking_time)
        .map_err(|e| e.to_string())
}

/// A block confirmed: it leaves the window (its entry and its window stakes).
/// `entry` is the block's window entry, as the caller already read it.
pub fn leave_window(height: u32, entry: Option<&WindowBlock>) {
    let Some(w) = entry else { return };
    for txid in &w.stakes {
        if let Some(id) = state::txid_from_hex(txid) {
            store::delete(state::window_stake_key(&id));
        }
    }
    store::delete(state::window_key(height));
}
