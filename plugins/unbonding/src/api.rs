//! The pipeline's routes (read-only, under `/plugins/unbonding`):
//!
//! - `GET /requests?after=<seq>&limit=<n>`: requests in arrival order with their state,
//!   attempts, next attempt (job run), last error and signed transaction (`{"data": [...]}`);
//! - `GET /requests/{staking_tx_hash_hex}`: one request;
//! - `GET /metrics`: Prometheus text (legacy counter names, requests per state);
//! - `GET /status`: job runs so far, the feed cursor and the feed's last error.

use guest_sdk::{local, HttpRequest, HttpResponse, Route};
use serde_json::json;

use crate::metrics;
use crate::state::{self, Progress};

pub fn routes() -> Vec<Route> {
    ["/requests", "/requests/{staking_tx_hash_hex}", "/metrics", "/status"]
        .iter()
        .map(|p| guest_sdk::route_get(p))
        .collect()
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::json(
        status,
        &json!({ "errorCode": if status == 404 { "NOT_FOUND" } else { "BAD_REQUEST" }, "message": message }),
    )
}

pub fn handle(req: &HttpRequest) -> HttpResponse {
    match req.route.as_str() {
        "/requests" => list(req),
        "/requests/{staking_tx_hash_hex}" => one(req),
        "/metrics" => HttpResponse {
            status: 200,
            content_type: "text/plain; version=0.0.4".into(),
            body: metrics::render().into_bytes(),
        },
        "/status" => {
            let cursor = local::get(state::CURSOR).and_then(|v| v.try_into().ok()).map(u64::from_be_bytes);
            let feed_error = local::get(state::FEED_ERROR).map(|v| String::from_utf8_lossy(&v).into_owned());
            HttpResponse::json(
                200,
                &json!({ "job_runs": local::get_u64(state::RUNS), "feed_cursor": cursor, "feed_error": feed_error }),
            )
        }
        _ => HttpResponse::not_found(),
    }
}

fn list(req: &HttpRequest) -> HttpResponse {
    let number = |name: &str| req.query_param(name).map(|v| v.parse::<u64>().map_err(|_| name.to_string())).transpose();
    let (after, limit) = match (number("after"), number("limit")) {
        (Ok(a), Ok(l)) => (a, l.unwrap_or(100).clamp(1, 1000) as u32),
        (Err(n), _) | (_, Err(n)) => return error(400, &format!("{n} must be a non-negative integer")),
    };
    let start = after.map(state::order_key);
    let mut out: Vec<Progress> = Vec::new();
    for (_, txid) in local::scan_prefix(state::ORDER, start.as_deref(), limit) {
        let Ok(txid) = <[u8; 32]>::try_from(txid.as_slice()) else { continue };
        match state::progress(&txid) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err(e) => return HttpResponse::json(500, &json!({ "errorCode": "INTERNAL_SERVICE_ERROR", "message": e })),
        }
    }
    HttpResponse::json(200, &json!({ "data": out }))
}

fn one(req: &HttpRequest) -> HttpResponse {
    let hash = req.param("staking_tx_hash_hex").unwrap_or_default();
    let Some(txid) = state::txid_of(hash) else {
        return error(400, "staking_tx_hash_hex must be a 32-byte hash in hex");
    };
    match state::progress(&txid) {
        Ok(Some(p)) => HttpResponse::json(200, &json!({ "data": p })),
        Ok(None) => error(404, "no unbonding request for this staking transaction"),
        Err(e) => HttpResponse::json(500, &json!({ "errorCode": "INTERNAL_SERVICE_ERROR", "message": e })),
    }
}
