//! The staking API (spec §6.5, §6.6): the legacy `/v1` routes, `/healthcheck` and
//! `/openapi.json` at their own paths, and `/metrics` and `/stats` under the plugin's mount
//! point. One file per concern:
//!
//! - `envelope.rs`: success envelope and `{errorCode, message}` errors;
//! - `query.rs`, `pagination.rs`, `light_config.rs`: request parameters, page tokens and paging,
//!   cheap config reads;
//! - `delegations.rs`, `unbonding.rs`, `stats.rs`, `finality_providers.rs`, `params.rs`,
//!   `staker_lookup.rs` (+ `addresses.rs`): the endpoints;
//! - `time.rs`: RFC 3339 timestamps; `openapi.rs`: the OpenAPI document.
//!
//! Every request runs in a fresh instance: hot routes (`/v1/stats`, `/v1/delegation`) read a
//! couple of store keys and never parse the configuration.

pub mod addresses;
pub mod delegations;
pub mod envelope;
pub mod finality_providers;
pub mod light_config;
pub mod openapi;
pub mod pagination;
pub mod params;
pub mod query;
pub mod staker_lookup;
pub mod stats;
pub mod time;
pub mod unbonding;

use guest_sdk::{HttpRequest, HttpResponse, Route};

use envelope::{ApiError, ApiResult, ErrorCode};

/// Content type of the Prometheus text exposition.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Method, path, legacy (served at the path itself), write route, handler.
type Entry = (&'static str, &'static str, bool, bool, fn(&HttpRequest) -> ApiResult);

/// Every route, in one table (declaration and dispatch cannot drift apart).
const ROUTES: &[Entry] = &[
    ("GET", "/healthcheck", true, false, healthcheck),
    ("GET", "/v1/staker/delegations", true, false, delegations::staker_delegations),
    ("GET", "/v1/delegation", true, false, delegations::get_delegation),
    ("GET", "/v1/unbonding/eligibility", true, false, unbonding::eligibility),
    ("POST", "/v1/unbonding", true, true, unbonding::submit),
    ("GET", "/v1/global-params", true, false, params::global_params),
    ("GET", "/v1/finality-providers", true, false, finality_providers::list),
    ("GET", "/v1/stats", true, false, stats::overall),
    ("GET", "/v1/stats/staker", true, false, stats::stakers),
    ("GET", "/v1/staker/delegation/check", true, false, staker_lookup::check),
    ("GET", "/v1/staker/pubkey-lookup", true, false, staker_lookup::pubkey_lookup),
    ("GET", "/openapi.json", true, false, openapi::document),
    ("GET", "/metrics", false, false, metrics),
    ("GET", "/stats", false, false, stats::accurate),
    ("GET", "/unbonding-requests", false, false, unbonding::queue),
];

/// The routes for the manifest.
pub fn routes() -> Vec<Route> {
    ROUTES
        .iter()
        .map(|&(method, path, legacy, write, _)| Route { method: method.into(), path: path.into(), legacy, write })
        .collect()
}

/// `(method, path, legacy, write)` of every route (e.g. for the OpenAPI
/// document and tests).
pub fn route_table() -> impl Iterator<Item = (&'static str, &'static str, bool, bool)> {
    ROUTES.iter().map(|&(method, path, legacy, write, _)| (method, path, legacy, write))
}

/// Serves one request (`req.route` is the declared path).
pub fn handle(req: &HttpRequest) -> HttpResponse {
    let handler =
        ROUTES.iter().find(|(method, path, ..)| req.method.eq_ignore_ascii_case(method) && req.route == *path);
    let result = match handler {
        Some((.., handler)) => handler(req),
        None => Err(ApiError::new(404, ErrorCode::NotFound, "no such route")),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// `GET /healthcheck`: `{"data": "Server is up and running"}` (the engine answers requests only
/// while the plugin runs; there is no database to ping).
fn healthcheck(_req: &HttpRequest) -> ApiResult {
    Ok(envelope::ok("Server is up and running"))
}

/// `GET /metrics` (mount point): the indexer's Prometheus series.
fn metrics(_req: &HttpRequest) -> ApiResult {
    Ok(HttpResponse {
        status: 200,
        content_type: PROMETHEUS_CONTENT_TYPE.into(),
        body: crate::metrics::render().into_bytes(),
    })
}
