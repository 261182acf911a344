//! `GET /v1/finality-providers` (spec §6.5): finality providers by active TVL descending, with
//! the description and commission of the registered ones (finality-provider file); registered
//! providers without statistics come after the last ranked one, with zeros.
//!
//! Page size: `page_size`, as both legacy lines read it from `max-pagination-limit` (the "500"
//! of the v0.3 deployment was that setting, not a constant), which also reproduces the upstream
//! e2e paging. Ties in active TVL are broken by public key (ranking key order: TVL desc, pk
//! desc), so paging never skips or repeats a provider — the fix of upstream
//! staking-api-service#97, whose sort had no tiebreak.

use std::collections::HashMap;

use guest_sdk::{store, HttpRequest};
use phase1_primitives::finality_providers::{Description, FinalityProvider};
use serde::Serialize;

use super::envelope::{self, ApiError, ApiResult};
use super::pagination::{self, FpToken};
use super::{light_config, query};
use crate::state::{self, Hash32, Stats, FP_RANK};

/// The legacy `FpDetailsPublic`.
#[derive(Debug, Serialize)]
pub struct FpDetailsPublic<'a> {
    pub description: &'a Description,
    pub commission: &'a str,
    pub btc_pk: String,
    pub active_tvl: u64,
    pub total_tvl: u64,
    pub active_delegations: u64,
    pub total_delegations: u64,
}

/// The registered providers by key, and the empty description unregistered ones show.
struct Registry<'a> {
    by_pk: HashMap<&'a str, &'a FinalityProvider>,
    empty: Description,
}

impl<'a> Registry<'a> {
    fn new(fps: &'a [FinalityProvider]) -> Self {
        Registry { by_pk: fps.iter().map(|fp| (fp.btc_pk.as_str(), fp)).collect(), empty: Description::default() }
    }

    fn row(&self, pk_hex: String, s: &Stats) -> FpDetailsPublic<'_> {
        let fp = self.by_pk.get(pk_hex.as_str());
        FpDetailsPublic {
            description: fp.map_or(&self.empty, |f| &f.description),
            commission: fp.map_or("", |f| f.commission.as_str()),
            btc_pk: pk_hex,
            active_tvl: s.active_tvl,
            total_tvl: s.total_tvl,
            active_delegations: s.active_delegations,
            total_delegations: s.total_delegations,
        }
    }
}

/// A provider's stats row, `None` when it never had a counted delegation.
fn fp_stats(pk: &Hash32) -> Result<Option<Stats>, ApiError> {
    Ok(store::get_json(state::fp_stats_key(pk))?)
}

/// `GET /v1/finality-providers?fp_btc_pk=&pagination_key=`.
///
/// With `fp_btc_pk` (v0.3): a 0/1-element list without pagination — `{"data": null}` when the
/// provider is neither ranked nor registered. Without: one page of the ranking; the last page
/// also lists the registered providers that have no statistics (public key ascending). An empty
/// list is `null` (the Go service's nil slice).
pub fn list(req: &HttpRequest) -> ApiResult {
    let single = query::public_key(req, "fp_btc_pk")?;
    let page_key = if single.is_none() { query::pagination_key(req)? } else { None };
    let registered = light_config::finality_providers()?;
    let registry = Registry::new(&registered);
    if let Some(pk) = single {
        let pk_hex = hex::encode(pk);
        let row = match fp_stats(&pk)? {
            Some(s) => Some(registry.row(pk_hex, &s)),
            None if registry.by_pk.contains_key(pk_hex.as_str()) => Some(registry.row(pk_hex, &Stats::default())),
            None => None,
        };
        return Ok(envelope::ok(&row.map(|r| vec![r])));
    }
    let after = match page_key {
        None => None,
        Some(key) => {
            let token: FpToken = pagination::decode(key)?;
            let pk = state::parse_hash32(&token.finality_provider_pk_hex)
                .ok_or_else(|| ApiError::bad_request("Invalid pagination token"))?;
            Some(state::rank_key(FP_RANK, token.active_tvl, &pk))
        }
    };
    let (ranked, more) = pagination::scan_page(FP_RANK, after, light_config::page_size(), |key| {
        let (_, pk) = state::parse_rank_key(key).ok_or_else(|| ApiError::internal("malformed provider rank key"))?;
        let s = fp_stats(&pk)?.ok_or_else(|| ApiError::internal("provider rank without stats"))?;
        Ok(Some((pk, s)))
    })?;
    let mut rows: Vec<FpDetailsPublic> = ranked.iter().map(|(pk, s)| registry.row(hex::encode(pk), s)).collect();
    let next_key = match (more, ranked.last()) {
        (true, Some((pk, s))) => {
            pagination::encode(&FpToken { finality_provider_pk_hex: hex::encode(pk), active_tvl: s.active_tvl })
        }
        _ => {
            let mut unranked = Vec::new();
            for fp in &registered {
                let Some(pk) = state::parse_hash32(&fp.btc_pk) else { continue };
                if fp_stats(&pk)?.is_none() {
                    unranked.push(registry.row(fp.btc_pk.clone(), &Stats::default()));
                }
            }
            unranked.sort_by(|a, b| a.btc_pk.cmp(&b.btc_pk));
            unranked.dedup_by(|a, b| a.btc_pk == b.btc_pk);
            rows.extend(unranked);
            String::new()
        }
    };
    let data = (!rows.is_empty()).then_some(rows);
    Ok(envelope::ok_page(&data, &next_key))
}
