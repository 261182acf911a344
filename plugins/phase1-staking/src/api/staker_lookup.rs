//! `GET /v1/staker/delegation/check` and `GET /v1/staker/pubkey-lookup` (spec §6.5, v0.3): from
//! a staker's BTC address to its key, and whether it has an active delegation.

use std::collections::BTreeMap;

use guest_sdk::HttpRequest;
use serde::Serialize;

use super::addresses::{self, Program};
use super::delegations;
use super::envelope::{self, ApiError, ApiResult};
use super::{query, time};

/// The legacy `MAX_NUM_PK_LOOKUP_ADDRESSES`.
pub const MAX_LOOKUP_ADDRESSES: usize = 10;

/// The v0.3 answer of the check: `{"data": bool, "code": 0}` (not the usual envelope).
#[derive(Debug, Serialize)]
struct DelegationCheckPublicResponse {
    data: bool,
    code: i32,
}

/// A required, valid address query.
fn address(req: &HttpRequest) -> Result<Program, ApiError> {
    let value = query::get(req, "address");
    if value.is_empty() {
        return Err(ApiError::bad_request("address is required"));
    }
    addresses::parse(value).map_err(ApiError::bad_request)
}

/// The newest block time the plugin has seen (the plugin has no clock: "today" is the UTC day of
/// the newest block's header time); `None` before any block.
fn latest_block_time() -> Option<i64> {
    guest_sdk::store::get(crate::state::TIP_TIME).map(|_| guest_sdk::store::get_u64(crate::state::TIP_TIME) as i64)
}

/// `timeframe`: `""` (any time) or `today` (start timestamp at or after 00:00 UTC of the day of
/// the newest block time, see [`latest_block_time`]); else "invalid timeframe value".
fn after_timestamp(req: &HttpRequest) -> Result<i64, ApiError> {
    match query::get(req, "timeframe") {
        "" => Ok(0),
        "today" => Ok(latest_block_time().map_or(0, time::start_of_day)),
        _ => Err(ApiError::bad_request("invalid timeframe value")),
    }
}

/// `GET /v1/staker/delegation/check?address=&timeframe=` — whether the address's staker has a
/// delegation shown `active` (started within the timeframe).
pub fn check(req: &HttpRequest) -> ApiResult {
    let program = address(req)?;
    let after = after_timestamp(req)?;
    let exists = match addresses::stakers_of(&[program])[0] {
        Some(staker) => delegations::has_active_delegation(&staker, after)?,
        None => false,
    };
    Ok(envelope::json_response(200, &DelegationCheckPublicResponse { data: exists, code: 0 }))
}

/// `GET /v1/staker/pubkey-lookup?address=...` (repeated, at most 10) — `{"data": {"<address>":
/// "<staker pk hex>"}}` for the addresses of known stakers (keys sorted, as Go marshals maps).
pub fn pubkey_lookup(req: &HttpRequest) -> ApiResult {
    let given: Vec<&str> = query::all(req, "address").collect();
    if given.is_empty() {
        return Err(ApiError::bad_request("address is required"));
    }
    if given.len() > MAX_LOOKUP_ADDRESSES {
        return Err(ApiError::bad_request(format!("Maximum {MAX_LOOKUP_ADDRESSES} address allowed")));
    }
    let programs =
        given.iter().map(|a| addresses::parse(a).map_err(ApiError::bad_request)).collect::<Result<Vec<_>, _>>()?;
    let stakers = addresses::stakers_of(&programs);
    let found: BTreeMap<&str, String> =
        given.iter().zip(stakers).filter_map(|(a, s)| s.map(|pk| (*a, hex::encode(pk)))).collect();
    Ok(envelope::ok(&found))
}
