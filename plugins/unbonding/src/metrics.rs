//! The pipeline's counters under the legacy names (spec §8.3: the pushgateway job
//! `unbonding-pipeline`), kept in `local` and served as Prometheus text at
//! `/plugins/unbonding/metrics`, plus a gauge of requests per state.

use guest_sdk::local;

use crate::state::{self, metric_key, Progress};

pub const SIGNING_OK: &str = "number_of_successful_signing_requests";
pub const SIGNING_FAILED: &str = "number_of_failed_signing_requests";
pub const SEND_OK: &str = "number_of_successful_unbonding_transactions";
pub const SEND_FAILED: &str = "number_of_failed_unbonding_transactions";
pub const QUORUM_FAILED: &str = "number_of_failed_covenant_quorums";

const COUNTERS: &[(&str, &str)] = &[
    (SIGNING_OK, "Covenant signing requests answered with a valid signature"),
    (SIGNING_FAILED, "Covenant signing requests that failed (unreachable, refused, or an invalid signature)"),
    (SEND_OK, "Unbonding transactions sent to bitcoind"),
    (SEND_FAILED, "Unbonding transactions bitcoind refused"),
    (QUORUM_FAILED, "Attempts that collected fewer covenant signatures than the quorum"),
];

pub fn get(name: &str) -> u64 {
    local::get_u64(metric_key(name))
}

pub fn add(name: &str, n: u64) {
    if n > 0 {
        let k = metric_key(name);
        local::put_u64(&k, local::get_u64(&k) + n);
    }
}

/// Prometheus text: the counters, then `unbonding_requests{state="..."}`.
pub fn render() -> String {
    let mut out = String::new();
    for (name, help) in COUNTERS {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", get(name)));
    }
    let mut by_state: std::collections::BTreeMap<String, u64> = [
        state::states::INSERTED,
        state::states::SEND,
        state::states::INPUT_ALREADY_SPENT,
        state::states::FAILED,
        state::states::FAILED_TO_GET_COVENANT_SIGNATURES,
    ]
    .iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = local::scan_prefix(state::PROGRESS, after.as_deref(), 500);
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, v) in &page {
            if let Ok(p) = serde_json::from_slice::<Progress>(v) {
                *by_state.entry(p.state).or_default() += 1;
            }
        }
    }
    out.push_str("# HELP unbonding_requests Unbonding requests by pipeline state\n# TYPE unbonding_requests gauge\n");
    for (s, n) in by_state {
        out.push_str(&format!("unbonding_requests{{state=\"{s}\"}} {n}\n"));
    }
    out
}
