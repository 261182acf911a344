//! One confirmed block, as the Phase-1 staking indexer processed it (spec §1.4, §2.4, §4.4),
//! followed by the API's reaction to the events (state machine §6.3, statistics §6.4) and the
//! expiry checker's (§7):
//!
//! 1. blocks below the first activation height are ignored;
//! 2. expiry: delegations whose staking timelock (while `active`) or unbonding time (while
//!    `unbonding`) has elapsed at this height — `height >= start_height + timelock`, the expiry
//!    checker's rule — become `unbonded` (`expired_staking_queue`);
//! 3. each delivered transaction in block order: the staking check (Steps A–E, with the
//!    parameters of this height), then the spend checks of every input (stored staking outputs:
//!    unbonding or withdrawal; stored unbonding outputs: withdrawal), with the parameters of the
//!    staking transaction's height;
//! 4. confirmed TVL, last processed height, metrics.
//!
//! Every effect of a block commits atomically with it (the engine), so there is no
//! publish-then-store window and no duplicate event after a crash.

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Transaction, Txid, XOnlyPublicKey};
use guest_sdk::{bitcoin, store, BlockInfo, Tx};
use phase1_primitives::curve;
use phase1_primitives::params::ParamsVersion;
use phase1_primitives::staking::{StakingInfo, UnbondingInfo};
use phase1_primitives::staking_tx::{is_possible_v0_staking_tx, parse_v0_staking_tx, validate_staking_amount_time};
use phase1_primitives::unbonding::{classify_staking_spend, classify_unbonding_spend, StakingSpend, UnbondingSpend};

use crate::config::{self, Config};
use crate::events::{self, *};
use crate::metrics::{self, invalid};
use crate::state::{self, Delegation, Expiry, Hash32, State, TxRecord, WindowBlock, WindowStake};
use crate::stats;

/// Applies one confirmed block.
pub fn apply_confirmed(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
    let cfg = config::get()?;
    let Some(params) = cfg.params_at(block.height) else {
        return Ok(());
    };
    if store::get(state::metric_key(metrics::START_HEIGHT)).is_none() {
        metrics::set(metrics::START_HEIGHT, block.height as u64);
    }
    expire(block.height)?;
    let entry = store::get_json::<WindowBlock>(state::window_key(block.height))?;
    let window = entry.as_ref().filter(|w| w.block_hash == guest_sdk::hash_hex(&block.hash));
    let mut b = ConfirmedBlock { cfg, block, tvl: state::confirmed_tvl(cfg.start_confirmed_tvl), window };
    for tx in txs {
        let t: Transaction =
            deserialize(&tx.raw).map_err(|e| format!("tx {} of block {}: {e}", tx.index, block.height))?;
        let txid = t.compute_txid();
        b.staking_check(params, tx, &t, &txid)?;
        b.spend_checks(tx, &t, &txid)?;
    }
    // The block is confirmed now: it leaves the unconfirmed window.
    crate::unconfirmed::leave_window(block.height, entry.as_ref());
    store::put_u64(state::TVL, b.tvl);
    store::put_u64(state::HEIGHT, block.height as u64);
    store::put_u64(state::TIP_TIME, block.time as u64);
    metrics::set(metrics::LAST_PROCESSED_HEIGHT, block.height as u64);
    if cfg.extra_events {
        let e = ConfirmedInfoEvent { event_type: 7, height: block.height as u64, tvl: b.tvl };
        events::publish(CONFIRMED_INFO_QUEUE, &e)?;
    }
    Ok(())
}

/// Before the engine takes back a block. The state (delegations, TVL, stats, metrics) is
/// restored by the engine; queue consumers keep what they received: Phase-1's events have no
/// "retract" form, and a reorg below the unconfirmed window (the only kind that takes back
/// confirmed events) is what Phase-1's indexer halted on.
pub fn undo(block: &BlockInfo) -> Result<(), String> {
    guest_sdk::log(
        guest_sdk::Level::Info,
        &format!("phase1-staking: block {} at height {} is taken back", guest_sdk::hash_hex(&block.hash), block.height),
    );
    Ok(())
}

struct ConfirmedBlock<'a> {
    cfg: &'a Config,
    block: &'a BlockInfo,
    tvl: u64,
    /// What the unconfirmed window recorded for this very block, if it passed through it.
    window: Option<&'a WindowBlock>,
}

/// A valid staking transaction's data (Steps A–C passed; the keys are valid x-only points).
struct Stake {
    vout: u32,
    value: u64,
    staker: Hash32,
    fp: Hash32,
    staking_time: u16,
}

enum Recognised {
    NotStaking,
    Invalid,
    Valid(Stake),
}

impl<'a> ConfirmedBlock<'a> {
    fn height(&self) -> u32 {
        self.block.height
    }

    /// Steps A–C of §1.4 for one transaction: what the window found when the block arrived
    /// (the same transactions and parameters, so the same outcome) or else a full parse.
    fn recognise(&self, params: &ParamsVersion, t: &Transaction, txid: &Txid) -> Result<Recognised, String> {
        if let Some(w) = self.window {
            let id = txid.to_byte_array();
            if let Some(s) = store::get_json::<WindowStake>(state::window_stake_key(&id))? {
                return Ok(Recognised::Valid(Stake {
                    vout: s.vout,
                    value: s.value,
                    staker: hash32(&s.staker_pk_hex)?,
                    fp: hash32(&s.finality_provider_pk_hex)?,
                    staking_time: s.staking_time,
                }));
            }
            let hex = txid.to_string();
            return Ok(if w.invalid_txids.contains(&hex) { Recognised::Invalid } else { Recognised::NotStaking });
        }
        if !is_possible_v0_staking_tx(t, params.tag_bytes()) {
            return Ok(Recognised::NotStaking);
        }
        let Ok(parsed) = parse_v0_staking_tx(t, params.tag_bytes(), params.committee()) else {
            return Ok(Recognised::NotStaking); // ignored, not counted
        };
        if validate_staking_amount_time(parsed.staking_value, parsed.op_return.staking_time, params).is_err() {
            return Ok(Recognised::Invalid);
        }
        Ok(Recognised::Valid(Stake {
            vout: parsed.staking_output_index,
            value: parsed.staking_value,
            staker: parsed.op_return.staker_pk.serialize(),
            fp: parsed.op_return.fp_pk.serialize(),
            staking_time: parsed.op_return.staking_time,
        }))
    }

    /// Steps A–E of §1.4 for one transaction.
    fn staking_check(&mut self, params: &ParamsVersion, tx: &Tx, t: &Transaction, txid: &Txid) -> Result<(), String> {
        let stake = match self.recognise(params, t, txid)? {
            Recognised::NotStaking => return Ok(()),
            Recognised::Invalid => {
                metrics::inc_invalid(invalid::CONFIRMED_STAKING);
                return Ok(());
            }
            Recognised::Valid(stake) => stake,
        };
        let id = txid.to_byte_array();
        if state::delegation(&id)?.is_some() {
            return Ok(()); // already stored (a duplicate txid): its decision stands
        }
        let staking_time = stake.staking_time;
        let is_overflow = if params.cap_height != 0 {
            self.height() as u64 > params.cap_height
        } else {
            self.tvl >= params.staking_cap
        };
        let (version_index, _) = self.cfg.params.for_height(self.height() as u64).expect("params exist at this height");
        let d = Delegation {
            staking_tx_hash_hex: txid.to_string(),
            staker_pk_hex: state::to_hex(&stake.staker),
            finality_provider_pk_hex: state::to_hex(&stake.fp),
            staking_value: stake.value,
            state: State::Active,
            is_overflow,
            params_version: version_index as u32,
            staking_tx: TxRecord {
                tx_hex: state::to_hex(&tx.raw),
                output_index: stake.vout,
                start_timestamp: self.block.time as i64,
                start_height: self.height(),
                timelock: staking_time as u32,
            },
            unbonding_tx: None,
            unbonding_tx_hash_hex: None,
            expired: None,
            withdraw_tx_hash_hex: None,
        };
        events::publish(
            ACTIVE_STAKING_QUEUE,
            &ActiveStakingEvent {
                event_type: 1,
                staking_tx_hash_hex: d.staking_tx_hash_hex.clone(),
                staker_pk_hex: d.staker_pk_hex.clone(),
                finality_provider_pk_hex: d.finality_provider_pk_hex.clone(),
                staking_value: d.staking_value,
                staking_start_height: self.height() as u64,
                staking_start_timestamp: self.block.time as i64,
                staking_timelock: staking_time as u64,
                staking_output_index: stake.vout as u64,
                staking_tx_hex: d.staking_tx.tx_hex.clone(),
                is_overflow,
            },
        )?;
        if !is_overflow {
            self.tvl += d.staking_value;
        }
        let staker = stake.staker;
        index_addresses(&staker)?;
        store::put(state::staker_index_key(&staker, self.height(), &id), []);
        store::put(state::expiry_key(self.height() + staking_time as u32, &id, Expiry::Active), []);
        store::watch_outpoint(&id, stake.vout);
        stats::on_active(&d)?;
        state::put_delegation(&id, &d)?;
        metrics::inc(if is_overflow { metrics::STAKING_OVERFLOW } else { metrics::STAKING_ACTIVE });
        metrics::set(metrics::LAST_FOUND_STAKING_HEIGHT, self.height() as u64);
        Ok(())
    }

    /// §2.4 for every input of one transaction.
    fn spend_checks(&mut self, tx: &Tx, t: &Transaction, txid: &Txid) -> Result<(), String> {
        for (i, input) in t.input.iter().enumerate() {
            let prev = input.previous_output;
            let prev_id = prev.txid.to_byte_array();
            if let Some(d) = state::delegation(&prev_id)? {
                if prev.vout == d.staking_tx.output_index {
                    self.staking_spend(tx, t, txid, i, prev, d)?;
                    continue;
                }
            }
            if let Some(staking_id) = store::get(state::unbonding_key(&prev_id)) {
                let staking_id: Hash32 =
                    staking_id.as_slice().try_into().map_err(|_| "unbonding record is not a txid".to_string())?;
                let d = state::delegation(&staking_id)?.ok_or("unbonding record without its delegation")?;
                self.unbonding_spend(t, i, &staking_id, d)?;
            }
        }
        Ok(())
    }

    fn staking_spend(
        &mut self,
        tx: &Tx,
        t: &Transaction,
        txid: &Txid,
        input: usize,
        prev: OutPoint,
        mut d: Delegation,
    ) -> Result<(), String> {
        let staking_id = prev.txid.to_byte_array();
        let params = self.version(&d)?;
        let info = staking_info(&d, params)?;
        match classify_staking_spend(t, input, &info, prev, d.staking_value, params) {
            StakingSpend::ValidUnbonding => {
                let h = self.height();
                let unbonding_id = txid.to_byte_array();
                events::publish(
                    UNBONDING_STAKING_QUEUE,
                    &UnbondingStakingEvent {
                        event_type: 2,
                        staking_tx_hash_hex: d.staking_tx_hash_hex.clone(),
                        unbonding_start_height: h as u64,
                        unbonding_start_timestamp: self.block.time as i64,
                        unbonding_timelock: params.unbonding_time as u64,
                        unbonding_output_index: 0,
                        unbonding_tx_hex: state::to_hex(&tx.raw),
                        unbonding_tx_hash_hex: txid.to_string(),
                    },
                )?;
                store::put(state::unbonding_key(&unbonding_id), staking_id);
                store::unwatch_outpoint(&staking_id, prev.vout);
                store::watch_outpoint(&unbonding_id, 0);
                if !d.is_overflow {
                    self.tvl = self.tvl.checked_sub(d.staking_value).ok_or_else(|| {
                        format!(
                            "confirmed TVL {} would go negative unbonding {} ({} sat): the stored state is inconsistent \
                             (was start_confirmed_tvl set for this start height?)",
                            self.tvl, d.staking_tx_hash_hex, d.staking_value
                        )
                    })?;
                }
                metrics::inc(metrics::UNBONDING);
                metrics::set(metrics::LAST_FOUND_UNBONDING_HEIGHT, h as u64);
                // The API: active (or unbonding_requested) -> unbonding; other states ignore it.
                if d.state == State::Active {
                    let unbonding_time = params.unbonding_time as u32;
                    d.state = State::Unbonding;
                    d.unbonding_tx = Some(TxRecord {
                        tx_hex: state::to_hex(&tx.raw),
                        output_index: 0,
                        start_timestamp: self.block.time as i64,
                        start_height: h,
                        timelock: unbonding_time,
                    });
                    d.unbonding_tx_hash_hex = Some(txid.to_string());
                    store::put(state::expiry_key(h + unbonding_time, &staking_id, Expiry::Unbonding), []);
                    stats::on_unbonded(&d)?;
                    state::put_delegation(&staking_id, &d)?;
                }
            }
            StakingSpend::InvalidUnbonding(_) => metrics::inc_invalid(invalid::CONFIRMED_UNBONDING),
            StakingSpend::Withdrawal => {
                store::unwatch_outpoint(&staking_id, prev.vout);
                self.withdrawal(
                    &staking_id,
                    d,
                    txid,
                    metrics::WITHDRAW_FROM_STAKING,
                    metrics::LAST_FOUND_WITHDRAW_STAKING_HEIGHT,
                )?;
            }
            StakingSpend::InvalidWithdrawal(..) => metrics::inc_invalid(invalid::CONFIRMED_WITHDRAW_STAKING),
        }
        Ok(())
    }

    fn unbonding_spend(
        &mut self,
        t: &Transaction,
        input: usize,
        staking_id: &Hash32,
        d: Delegation,
    ) -> Result<(), String> {
        let params = self.version(&d)?;
        let info = unbonding_info(&d, params)?;
        match classify_unbonding_spend(t, input, &info) {
            UnbondingSpend::Withdrawal => {
                let prev = t.input[input].previous_output;
                store::unwatch_outpoint(&prev.txid.to_byte_array(), prev.vout);
                let txid = t.compute_txid();
                self.withdrawal(
                    staking_id,
                    d,
                    &txid,
                    metrics::WITHDRAW_FROM_UNBONDING,
                    metrics::LAST_FOUND_WITHDRAW_UNBONDING_HEIGHT,
                )
            }
            UnbondingSpend::InvalidWithdrawal(..) => {
                metrics::inc_invalid(invalid::CONFIRMED_WITHDRAW_UNBONDING);
                Ok(())
            }
        }
    }

    /// A valid timelock-path spend: the withdrawal event, and the API's `unbonded -> withdrawn`.
    /// The legacy API requeued a withdrawal that arrived before the expiry; here expiry runs
    /// first in every block and CSV makes a withdrawal impossible before it, but should one come
    /// early it is remembered and applied at the expiry (as the requeue would).
    fn withdrawal(
        &mut self,
        staking_id: &Hash32,
        mut d: Delegation,
        withdraw_txid: &Txid,
        counter: &str,
        gauge: &str,
    ) -> Result<(), String> {
        events::publish(
            WITHDRAW_STAKING_QUEUE,
            &WithdrawStakingEvent { event_type: 3, staking_tx_hash_hex: d.staking_tx_hash_hex.clone() },
        )?;
        metrics::inc(counter);
        metrics::set(gauge, self.height() as u64);
        if d.state == State::Withdrawn {
            return Ok(());
        }
        d.withdraw_tx_hash_hex = Some(withdraw_txid.to_string());
        if d.state == State::Unbonded {
            d.state = State::Withdrawn;
        }
        state::put_delegation(staking_id, &d)
    }

    fn version(&self, d: &Delegation) -> Result<&'a ParamsVersion, String> {
        self.cfg.params.versions.get(d.params_version as usize).ok_or_else(|| {
            format!(
                "delegation {} was indexed with parameters version index {}, which the configured global params no \
                 longer have: restore the params file it was indexed with",
                d.staking_tx_hash_hex, d.params_version
            )
        })
    }
}

/// The staker's addresses (v0.3's `pk_address_mappings`), written with its first delegation:
/// the key-path-only taproot output (`ComputeTaprootKeyNoScript`) and P2WPKH of `02‖x` and
/// `03‖x` (an x-only key does not tell its parity).
pub fn index_addresses(staker: &Hash32) -> Result<(), String> {
    use bitcoin::hashes::hash160;
    let segwit = |parity: u8| {
        let mut compressed = [parity; 33];
        compressed[1..].copy_from_slice(staker);
        hash160::Hash::hash(&compressed).to_byte_array()
    };
    let even = state::address_key(&segwit(2));
    if store::get(&even).is_some() {
        return Ok(()); // indexed with an earlier delegation
    }
    store::put(&even, staker);
    store::put(state::address_key(&segwit(3)), staker);
    let output = curve::key_path_output_key(staker)
        .ok_or_else(|| format!("staker key {} is not a curve point", state::to_hex(staker)))?;
    store::put(state::address_key(&output.serialize()), staker);
    Ok(())
}

fn hash32(hex_pk: &str) -> Result<Hash32, String> {
    state::parse_hash32(hex_pk).ok_or_else(|| format!("stored key {hex_pk:?} is not 32 bytes of hex"))
}

fn xonly(hex_pk: &str) -> Result<XOnlyPublicKey, String> {
    let bytes = state::parse_hash32(hex_pk).ok_or_else(|| format!("stored key {hex_pk:?} is not 32 bytes of hex"))?;
    curve::xonly_key(&bytes).ok_or_else(|| format!("stored key {hex_pk} is not a curve point"))
}

/// The staking scripts of a stored delegation, rebuilt with its parameters version.
pub fn staking_info(d: &Delegation, params: &ParamsVersion) -> Result<StakingInfo, String> {
    let staker = xonly(&d.staker_pk_hex)?;
    let fp = xonly(&d.finality_provider_pk_hex)?;
    StakingInfo::new(&staker, &[fp], params.committee(), d.staking_tx.timelock as u16).map_err(|e| e.to_string())
}

/// The unbonding output's scripts of a stored delegation.
pub fn unbonding_info(d: &Delegation, params: &ParamsVersion) -> Result<UnbondingInfo, String> {
    let staker = xonly(&d.staker_pk_hex)?;
    let fp = xonly(&d.finality_provider_pk_hex)?;
    UnbondingInfo::new(&staker, &[fp], params.committee(), params.unbonding_time).map_err(|e| e.to_string())
}

/// The expiry checker at confirmed height `h`: every queued timelock with
/// `expire_height <= h` fires (`expired_staking_queue`, as the checker published for every due
/// document), and the API applies it when the state allows: `active` (kind active) or
/// `unbonding` (kind unbonding) become `unbonded`.
fn expire(h: u32) -> Result<(), String> {
    let start = state::EXPIRY.to_vec();
    let mut end = state::EXPIRY.to_vec();
    end.extend_from_slice(&(h as u64 + 1).min(u32::MAX as u64).to_be_bytes()[4..]);
    loop {
        let due = store::scan_range(&start, &end, 256);
        if due.is_empty() {
            return Ok(());
        }
        for (key, _) in due {
            store::delete(&key);
            let (_, txid, kind) = state::parse_expiry_key(&key).ok_or("malformed expiry key")?;
            let mut d = state::delegation(&txid)?.ok_or("expiry queued for an unknown delegation")?;
            events::publish(
                EXPIRED_STAKING_QUEUE,
                &ExpiredStakingEvent {
                    event_type: 4,
                    staking_tx_hash_hex: d.staking_tx_hash_hex.clone(),
                    tx_type: match kind {
                        Expiry::Active => "active",
                        Expiry::Unbonding => "unbonding",
                    },
                },
            )?;
            let applies =
                matches!((kind, d.state), (Expiry::Active, State::Active) | (Expiry::Unbonding, State::Unbonding));
            if !applies {
                continue;
            }
            if kind == Expiry::Active {
                stats::on_expired_active(&d)?;
            }
            d.state = if d.withdraw_tx_hash_hex.is_some() { State::Withdrawn } else { State::Unbonded };
            d.expired = Some(kind);
            state::put_delegation(&txid, &d)?;
        }
    }
}
