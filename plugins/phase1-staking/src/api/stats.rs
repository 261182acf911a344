//! Statistics (spec §6.4, §6.5): `GET /v1/stats` (legacy), `GET /stats` under the plugin's mount
//! point (the accurate second view) and `GET /v1/stats/staker` (top stakers, or one staker).
//! Hot routes: two store reads, no config.

use guest_sdk::{store, HttpRequest};
use serde::Serialize;

use super::envelope::{self, ApiError, ApiResult};
use super::pagination::{self, StakerToken};
use super::{light_config, query};
use crate::state::{self, BtcInfo, Hash32, Stats, STAKER_RANK, STATS, STATS_ACCURATE};

/// The legacy `OverallStatsPublic` (v0.3: with `pending_tvl`; no `btc_price_usd`, the plugin
/// has no price feed).
#[derive(Debug, Serialize)]
pub struct OverallStatsPublic {
    pub active_tvl: u64,
    pub total_tvl: u64,
    pub active_delegations: u64,
    pub total_delegations: u64,
    pub total_stakers: u64,
    pub unconfirmed_tvl: u64,
    pub pending_tvl: u64,
}

/// What `GET /stats` shows: the overall figures with accurate semantics.
#[derive(Debug, Serialize)]
pub struct AccurateStatsPublic {
    pub active_tvl: u64,
    pub total_tvl: u64,
    pub active_delegations: u64,
    pub total_delegations: u64,
    pub total_stakers: u64,
    pub unconfirmed_tvl: u64,
    /// `unconfirmed_tvl - confirmed_tvl`, signed (negative when the unconfirmed window unbonds
    /// more than it stakes) instead of the legacy wrapped u64.
    pub pending_tvl: i64,
    pub semantics: &'static str,
}

/// The legacy `StakerStatsPublic`.
#[derive(Debug, Serialize)]
pub struct StakerStatsPublic {
    pub staker_pk_hex: String,
    pub active_tvl: u64,
    pub total_tvl: u64,
    pub active_delegations: u64,
    pub total_delegations: u64,
}

const ACCURATE_SEMANTICS: &str = "active_tvl and active_delegations exclude stake whose timelock expired or that was \
     unbonded or withdrawn; overflow stake is never counted; pending_tvl = unconfirmed_tvl - confirmed_tvl (signed)";

/// `GET /v1/stats`: the legacy sharded figures (`active_tvl` = the stats' active TVL), the
/// indexer's unconfirmed TVL (0 before the first `btc_info`) and `pending_tvl =
/// unconfirmed_tvl - confirmed_tvl` in u64 wrapping arithmetic, as the legacy service computed it.
pub fn overall(_req: &HttpRequest) -> ApiResult {
    let s = state::stats(STATS)?;
    let info = state::btc_info()?.unwrap_or_default();
    Ok(envelope::ok(&OverallStatsPublic {
        active_tvl: s.active_tvl,
        total_tvl: s.total_tvl,
        active_delegations: s.active_delegations,
        total_delegations: s.total_delegations,
        total_stakers: s.total_stakers,
        unconfirmed_tvl: info.unconfirmed_tvl,
        pending_tvl: info.unconfirmed_tvl.wrapping_sub(info.confirmed_tvl),
    }))
}

/// `GET /stats` (mount point): the accurate overall view (`STATS_ACCURATE`).
pub fn accurate(_req: &HttpRequest) -> ApiResult {
    let s = state::stats(STATS_ACCURATE)?;
    let BtcInfo { confirmed_tvl, unconfirmed_tvl, .. } = state::btc_info()?.unwrap_or_default();
    let pending = i128::from(unconfirmed_tvl) - i128::from(confirmed_tvl);
    Ok(envelope::ok(&AccurateStatsPublic {
        active_tvl: s.active_tvl,
        total_tvl: s.total_tvl,
        active_delegations: s.active_delegations,
        total_delegations: s.total_delegations,
        total_stakers: s.total_stakers,
        unconfirmed_tvl,
        pending_tvl: pending.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        semantics: ACCURATE_SEMANTICS,
    }))
}

fn staker_row(pk: &Hash32, s: &Stats) -> StakerStatsPublic {
    StakerStatsPublic {
        staker_pk_hex: hex::encode(pk),
        active_tvl: s.active_tvl,
        total_tvl: s.total_tvl,
        active_delegations: s.active_delegations,
        total_delegations: s.total_delegations,
    }
}

/// A staker's stats row, `None` when the staker has none.
fn staker_stats(pk: &Hash32) -> Result<Option<Stats>, ApiError> {
    Ok(store::get_json(state::staker_stats_key(pk))?)
}

/// `GET /v1/stats/staker?staker_btc_pk=&pagination_key=` — with `staker_btc_pk` (v0.3) a 0/1
/// element list without pagination; otherwise the stakers by active TVL descending. Ties are
/// broken by public key (the ranking index orders pk descending), so pages neither skip nor
/// repeat stakers of equal TVL (the bug of upstream staking-api-service#97, whose sort had no
/// tiebreak). An empty list is `null`, as the Go service's nil slice was.
pub fn stakers(req: &HttpRequest) -> ApiResult {
    if let Some(pk) = query::public_key(req, "staker_btc_pk")? {
        let rows: Option<Vec<StakerStatsPublic>> = staker_stats(&pk)?.map(|s| vec![staker_row(&pk, &s)]);
        return Ok(envelope::ok(&rows));
    }
    let after = match query::pagination_key(req)? {
        None => None,
        Some(key) => {
            let token: StakerToken = pagination::decode(key)?;
            let pk = state::parse_hash32(&token.staker_pk_hex)
                .ok_or_else(|| ApiError::bad_request("Invalid pagination token"))?;
            Some(state::rank_key(STAKER_RANK, token.active_tvl, &pk))
        }
    };
    let (rows, more) = pagination::scan_page(STAKER_RANK, after, light_config::page_size(), |key| {
        let (_, pk) = state::parse_rank_key(key).ok_or_else(|| ApiError::internal("malformed staker rank key"))?;
        let s = staker_stats(&pk)?.ok_or_else(|| ApiError::internal("staker rank without stats"))?;
        Ok(Some(staker_row(&pk, &s)))
    })?;
    let next_key = match (more, rows.last()) {
        (true, Some(r)) => {
            pagination::encode(&StakerToken { staker_pk_hex: r.staker_pk_hex.clone(), active_tvl: r.active_tvl })
        }
        _ => String::new(),
    };
    let data = (!rows.is_empty()).then_some(rows);
    Ok(envelope::ok_page(&data, &next_key))
}
