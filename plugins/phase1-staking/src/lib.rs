//! The `phase1-staking` Wasm plugin: Babylon Phase-1's staking indexer (`sid`), staking expiry
//! checker and staking API service as one sandboxed plugin. Spec:
//! `../shared/spec/babylon-phase1-spec.md` §1–7 and §13.
//!
//! - `indexer.rs`: each confirmed block — staking transactions (recognise, validate, overflow),
//!   spends of staking and unbonding outputs (unbonding / withdrawal), confirmed TVL, expiry.
//! - `unconfirmed.rs`: the unconfirmed window and its `btc_info` (unconfirmed TVL).
//! - `stats.rs`: the API's statistics (legacy semantics, plus an accurate second view).
//! - `metrics.rs`: the indexer's Prometheus series, kept as chain state.
//! - `events.rs`: the legacy queue messages (staking-queue-client v0.4.1).
//! - `state.rs`: key layout and records of chain state and off-chain state.
//! - `api/`: the legacy `/v1` staking API, `/healthcheck` and `/openapi.json`.
//! - `config.rs`: global parameters, finality providers and options from the runtime file.

pub mod api;
pub mod config;
pub mod events;
pub mod indexer;
pub mod metrics;
pub mod state;
pub mod stats;
pub mod unconfirmed;

use guest_sdk::{BlockInfo, DepthFrom, HttpRequest, HttpResponse, Manifest, Plugin, Tx};

pub use guest_sdk::CONTRACT_VERSION;

pub struct Phase1Staking;

/// The plugin's version: the crate's, with `+<label>` when built with `PHASE1_STAKING_BUILD=<label>`
/// (the demo builds a relabelled copy to show a live upgrade to new code).
pub fn version() -> String {
    match option_env!("PHASE1_STAKING_BUILD") {
        Some(label) if !label.is_empty() => format!("{}+{label}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The manifest for a configuration: Step A's OP_RETURN prefix (tag ‖ version 0) of every
/// parameters version, spends of the watched staking and unbonding outputs, each version's
/// confirmation depth from its activation height, the unconfirmed window, and the API routes.
pub fn manifest(cfg: &config::Config) -> Manifest {
    let mut m = guest_sdk::manifest("phase1-staking", &version());
    for v in &cfg.params.versions {
        let mut prefix = v.tag_bytes().to_vec();
        prefix.push(0);
        if !m.op_return_prefixes.contains(&prefix) {
            m.op_return_prefixes.push(prefix);
        }
    }
    m.watch_spends = true;
    let mut depths: Vec<DepthFrom> = Vec::new();
    for v in &cfg.params.versions {
        let depth = v.confirmation_depth as u32;
        if depths.last().map(|d| d.depth) != Some(depth) {
            // Heights below the first activation are never indexed; give them the first depth.
            let from_height = if depths.is_empty() { 0 } else { v.activation_height as u32 };
            depths.push(DepthFrom { from_height, depth });
        }
    }
    m.confirmation_depths = depths;
    m.unconfirmed_blocks = true;
    m.routes = api::routes();
    m
}

impl Plugin for Phase1Staking {
    fn init(config: &str) -> Result<Manifest, String> {
        let cfg = config::Config::parse(config)?;
        Ok(manifest(&cfg))
    }

    fn apply_block(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        indexer::apply_confirmed(block, txs)
    }

    fn apply_unconfirmed(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        unconfirmed::apply_unconfirmed(block, txs)
    }

    fn undo_block(block: &BlockInfo) -> Result<(), String> {
        indexer::undo(block)
    }

    fn handle_request(req: &HttpRequest) -> HttpResponse {
        api::handle(req)
    }
}

guest_sdk::export_plugin!(Phase1Staking);
