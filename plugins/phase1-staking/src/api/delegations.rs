//! `GET /v1/delegation` and `GET /v1/staker/delegations` (spec §6.5): delegations as
//! `DelegationPublic`, with the state the API shows ([`state::shown_state`]: chain state plus an
//! accepted unbonding request).

use guest_sdk::{store, HttpRequest};
use serde::Serialize;

use super::envelope::{self, ApiError, ApiResult};
use super::pagination::{self, DelegationToken};
use super::{light_config, query, time};
use crate::state::{self, Delegation, Hash32, State, TxRecord};

/// The legacy `TransactionPublic`.
#[derive(Debug, Serialize)]
pub struct TransactionPublic<'a> {
    pub tx_hex: &'a str,
    pub output_index: u32,
    pub start_timestamp: String,
    pub start_height: u32,
    pub timelock: u32,
}

impl<'a> From<&'a TxRecord> for TransactionPublic<'a> {
    fn from(t: &'a TxRecord) -> Self {
        TransactionPublic {
            tx_hex: &t.tx_hex,
            output_index: t.output_index,
            start_timestamp: time::rfc3339(t.start_timestamp),
            start_height: t.start_height,
            timelock: t.timelock,
        }
    }
}

/// The legacy `DelegationPublic` (Phase-1 fields only: no `is_eligible_for_transition`,
/// `is_slashed`, `transitioned`).
#[derive(Debug, Serialize)]
pub struct DelegationPublic<'a> {
    pub staking_tx_hash_hex: &'a str,
    pub staker_pk_hex: &'a str,
    pub finality_provider_pk_hex: &'a str,
    pub state: &'static str,
    pub staking_value: u64,
    pub staking_tx: TransactionPublic<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbonding_tx: Option<TransactionPublic<'a>>,
    pub is_overflow: bool,
}

impl<'a> DelegationPublic<'a> {
    /// `d` shown with `state`.
    pub fn new(d: &'a Delegation, state: State) -> Self {
        DelegationPublic {
            staking_tx_hash_hex: &d.staking_tx_hash_hex,
            staker_pk_hex: &d.staker_pk_hex,
            finality_provider_pk_hex: &d.finality_provider_pk_hex,
            state: state.as_str(),
            staking_value: d.staking_value,
            staking_tx: (&d.staking_tx).into(),
            unbonding_tx: d.unbonding_tx.as_ref().map(Into::into),
            is_overflow: d.is_overflow,
        }
    }
}

/// `GET /v1/delegation?staking_tx_hash_hex=` — 404 NOT_FOUND "staking delegation not found,
/// please retry" when unknown.
pub fn get_delegation(req: &HttpRequest) -> ApiResult {
    let txid = query::tx_hash(req, "staking_tx_hash_hex")?;
    let not_found = || ApiError::new(404, envelope::ErrorCode::NotFound, "staking delegation not found, please retry");
    let txid = txid.ok_or_else(not_found)?;
    let d = state::delegation(&txid)?.ok_or_else(not_found)?;
    let shown = state::shown_state(&txid, &d)?;
    Ok(envelope::ok(&DelegationPublic::new(&d, shown)))
}

/// The delegation an index key `s ‖ staker ‖ !height ‖ hash (display order)` points to.
fn delegation_of_index_key(key: &[u8]) -> Result<(Hash32, Delegation), ApiError> {
    let display: Hash32 = key
        .len()
        .checked_sub(32)
        .and_then(|at| key[at..].try_into().ok())
        .ok_or_else(|| ApiError::internal("malformed staker index key"))?;
    let txid = state::reversed(&display);
    let d = state::delegation(&txid)?.ok_or_else(|| ApiError::internal("staker index names an unknown delegation"))?;
    Ok((txid, d))
}

/// `GET /v1/staker/delegations?staker_btc_pk=&state=&pagination_key=` — the staker's
/// delegations, start height descending then hash ascending, `page_size` per page, optionally
/// only those whose shown state is `state` (v0.3).
pub fn staker_delegations(req: &HttpRequest) -> ApiResult {
    let staker = query::required_public_key(req, "staker_btc_pk")?;
    let page_key = query::pagination_key(req)?;
    let filter = query::state_filter(req)?;
    let prefix = state::staker_index_prefix(&staker);
    let after = match page_key {
        None => None,
        Some(key) => Some(after_key(&staker, &pagination::decode::<DelegationToken>(key)?)?),
    };
    let limit = light_config::page_size();
    let (rows, more) = pagination::scan_page(&prefix, after, limit, |key| {
        let (txid, d) = delegation_of_index_key(key)?;
        let shown = state::shown_state(&txid, &d)?;
        Ok(filter.is_none_or(|f| f == shown).then_some((d, shown)))
    })?;
    let next_key = match (more, rows.last()) {
        (true, Some((d, _))) => pagination::encode(&DelegationToken {
            staking_tx_hash_hex: d.staking_tx_hash_hex.clone(),
            staking_start_height: u64::from(d.staking_tx.start_height),
        }),
        _ => String::new(),
    };
    let data: Vec<DelegationPublic> = rows.iter().map(|(d, s)| DelegationPublic::new(d, *s)).collect();
    Ok(envelope::ok_page(&data, &next_key))
}

/// The index key a page token resumes after. The legacy filter is `(start_height < N) OR
/// (start_height = N AND hash > H)`, which is exactly "keys strictly after
/// `s ‖ staker ‖ !N ‖ H`"; an empty hash resumes at the first row of height N (as the legacy
/// string comparison `hash > ""` did).
fn after_key(staker: &Hash32, token: &DelegationToken) -> Result<Vec<u8>, ApiError> {
    let height = u32::try_from(token.staking_start_height).unwrap_or(u32::MAX);
    if token.staking_tx_hash_hex.is_empty() {
        let mut key = state::staker_index_prefix(staker);
        key.extend_from_slice(&(!height).to_be_bytes());
        return Ok(key);
    }
    let txid = state::txid_from_hex(&token.staking_tx_hash_hex)
        .ok_or_else(|| ApiError::bad_request("Invalid pagination token"))?;
    Ok(state::staker_index_key(staker, height, &txid))
}

/// Whether any delegation of `staker` is shown `active` with a start timestamp `>= after`
/// (the legacy `CheckStakerHasActiveDelegationByPk`).
pub fn has_active_delegation(staker: &Hash32, after: i64) -> Result<bool, ApiError> {
    let prefix = state::staker_index_prefix(staker);
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let chunk = store::scan_prefix(&prefix, cursor.as_deref(), 256);
        for (key, _) in &chunk {
            let (txid, d) = delegation_of_index_key(key)?;
            if d.staking_tx.start_timestamp >= after && state::shown_state(&txid, &d)? == State::Active {
                return Ok(true);
            }
        }
        if chunk.len() < 256 {
            return Ok(false);
        }
        cursor = chunk.into_iter().next_back().map(|(k, _)| k);
    }
}
