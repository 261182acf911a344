//! The `unbonding` Wasm plugin: Phase-1's unbonding pipeline (spec §8.3) as an engine job.
//!
//! - `pipeline.rs`: the job — new requests from phase1-staking's feed, covenant signatures,
//!   witness, unspent check, broadcast, retries with backoff.
//! - `covenants.rs`: the legacy covenant-signer API client; every signature verified.
//! - `state.rs`: the pipeline's progress in `local` (key layout, records, legacy states).
//! - `metrics.rs`: legacy counter names and requests per state, as Prometheus text.
//! - `api.rs`: read routes showing the requests and their states.
//! - `config.rs`: feed URL, global parameters, covenant signer URLs, retry settings.
//!
//! It reads phase1-staking only through that plugin's read route
//! `/plugins/phase1-staking/unbonding-requests` (allow-listed in `capabilities.http`), never its
//! keys: see ARCHITECTURE.md, "Plugins depend on each other through read routes".

pub mod api;
pub mod config;
pub mod covenants;
pub mod metrics;
pub mod pipeline;
pub mod state;

use guest_sdk::{BlockInfo, HttpRequest, HttpResponse, Manifest, Plugin, Tx};

pub use guest_sdk::CONTRACT_VERSION;

pub struct Unbonding;

/// An OP_RETURN prefix no transaction carries: the engine delivers no transactions (the
/// pipeline reads the chain through bitcoind in its job, as the legacy pipeline does).
const NOTHING: &[u8] = b"\xff\xfeunbonding-pipeline";

impl Plugin for Unbonding {
    fn init(config: &str) -> Result<Manifest, String> {
        let cfg = config::Config::parse(config)?;
        let mut m = guest_sdk::manifest("unbonding", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![NOTHING.to_vec()];
        m.job_interval_ms = cfg.job_interval_ms;
        m.routes = api::routes();
        Ok(m)
    }

    fn apply_block(_block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        Ok(())
    }

    fn handle_request(req: &HttpRequest) -> HttpResponse {
        api::handle(req)
    }

    fn run_job() -> Result<(), String> {
        let cfg = config::Config::parse(&guest_sdk::config())?;
        pipeline::run(&cfg)
    }
}

guest_sdk::export_plugin!(Unbonding);
