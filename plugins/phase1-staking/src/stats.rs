//! The staking API's statistics (spec §6.4), updated as the legacy API's stats handler would
//! from the events the indexer emits, in the same order:
//!
//! - "active" (a new non-overflow delegation): finality provider, staker and overall
//!   `+value/+1` on active and total; `total_stakers += 1` when it is the staker's first
//!   counted delegation.
//! - "unbonded" (the unbonding transition of a non-overflow delegation): `active_tvl -= value`,
//!   `active_delegations -= 1` on all three.
//!
//! So overflow stake is never counted and timelock expiry does not lower active TVL (the seed's
//! numbers). A second overall view, `STATS_ACCURATE`, also takes stake out of `active` when its
//! timelock expires (so expired and withdrawn stake is not counted active).

use crate::state::{self, Delegation, Hash32, Stats, FP_RANK, STAKER_RANK, STATS, STATS_ACCURATE};
use guest_sdk::store;

fn pk(hex_pk: &str) -> Result<Hash32, String> {
    state::parse_hash32(hex_pk).ok_or_else(|| format!("stored key {hex_pk:?} is not 32 bytes of hex"))
}

/// Applies `f` to a finality provider's or staker's row and keeps its ranking key in step.
fn update_row(row_key: &[u8], rank_prefix: &[u8], pk: &Hash32, f: impl FnOnce(&mut Stats)) -> Result<Stats, String> {
    let mut s = state::stats(row_key)?;
    let old_rank = state::rank_key(rank_prefix, s.active_tvl, pk);
    f(&mut s);
    store::delete(&old_rank);
    store::put(state::rank_key(rank_prefix, s.active_tvl, pk), []);
    store::put_json(row_key, &s)?;
    Ok(s)
}

fn update_overall(key: &[u8], f: impl FnOnce(&mut Stats)) -> Result<(), String> {
    let mut s = state::stats(key)?;
    f(&mut s);
    store::put_json(key, &s)
}

fn add_active(s: &mut Stats, value: u64) {
    s.active_tvl += value;
    s.total_tvl += value;
    s.active_delegations += 1;
    s.total_delegations += 1;
}

fn remove_active(s: &mut Stats, value: u64) {
    s.active_tvl = s.active_tvl.saturating_sub(value);
    s.active_delegations = s.active_delegations.saturating_sub(1);
}

/// The legacy "active" stats event: a new delegation (skipped for overflow).
pub fn on_active(d: &Delegation) -> Result<(), String> {
    if d.is_overflow {
        return Ok(());
    }
    let v = d.staking_value;
    let fp = pk(&d.finality_provider_pk_hex)?;
    let staker = pk(&d.staker_pk_hex)?;
    update_row(&state::fp_stats_key(&fp), FP_RANK, &fp, |s| add_active(s, v))?;
    let staker_row = update_row(&state::staker_stats_key(&staker), STAKER_RANK, &staker, |s| add_active(s, v))?;
    let new_staker = staker_row.total_delegations == 1;
    for key in [STATS, STATS_ACCURATE] {
        update_overall(key, |s| {
            add_active(s, v);
            if new_staker {
                s.total_stakers += 1;
            }
        })?;
    }
    Ok(())
}

/// The legacy "unbonded" stats event: an `active` delegation's unbonding transaction confirmed
/// (skipped for overflow). `expired` tells whether the accurate view already took it out.
pub fn on_unbonded(d: &Delegation) -> Result<(), String> {
    if d.is_overflow {
        return Ok(());
    }
    let v = d.staking_value;
    let fp = pk(&d.finality_provider_pk_hex)?;
    let staker = pk(&d.staker_pk_hex)?;
    update_row(&state::fp_stats_key(&fp), FP_RANK, &fp, |s| remove_active(s, v))?;
    update_row(&state::staker_stats_key(&staker), STAKER_RANK, &staker, |s| remove_active(s, v))?;
    update_overall(STATS, |s| remove_active(s, v))?;
    update_overall(STATS_ACCURATE, |s| remove_active(s, v))
}

/// The staking timelock of an `active` delegation elapsed: only the accurate view changes.
pub fn on_expired_active(d: &Delegation) -> Result<(), String> {
    if d.is_overflow {
        return Ok(());
    }
    update_overall(STATS_ACCURATE, |s| remove_active(s, d.staking_value))
}
