//! The staking indexer's Prometheus series (spec §4.7), kept as chain state (store keys `m` +
//! series), so they are deterministic and follow reorgs. Served as Prometheus text by the
//! plugin's `GET /metrics` route.

use crate::state::{metric_key, METRIC};
use guest_sdk::store;

pub const START_HEIGHT: &str = "si_start_btc_height";
pub const LAST_PROCESSED_HEIGHT: &str = "si_last_processed_btc_height";
pub const LAST_CALCULATED_ACTIVE_TVL: &str = "si_last_calculated_active_tvl";
pub const LAST_FOUND_STAKING_HEIGHT: &str = "si_last_found_staking_tx_height";
pub const LAST_FOUND_UNBONDING_HEIGHT: &str = "si_last_found_unbonding_tx_height";
pub const LAST_FOUND_WITHDRAW_STAKING_HEIGHT: &str = "si_last_found_withdraw_tx_from_staking_height";
pub const LAST_FOUND_WITHDRAW_UNBONDING_HEIGHT: &str = "si_last_found_withdraw_tx_from_unbonding_height";

pub const STAKING_ACTIVE: &str = "si_total_staking_txs{tx_type=\"active\"}";
pub const STAKING_OVERFLOW: &str = "si_total_staking_txs{tx_type=\"overflow\"}";
pub const UNBONDING: &str = "si_total_unbonding_txs";
pub const WITHDRAW_FROM_STAKING: &str = "si_total_withdraw_txs_from_staking";
pub const WITHDRAW_FROM_UNBONDING: &str = "si_total_withdraw_txs_from_unbonding";
pub const FAILED_UNCONFIRMED_BLOCK: &str = "si_failed_processing_unconfirmed_block_counter";

/// `si_invalid_txs_counter{tx_type=...}` label values.
pub mod invalid {
    pub const CONFIRMED_STAKING: &str = "confirmed_staking_transaction";
    pub const CONFIRMED_UNBONDING: &str = "confirmed_unbonding_transactions";
    pub const CONFIRMED_WITHDRAW_STAKING: &str = "confirmed_withdraw_staking_transactions";
    pub const CONFIRMED_WITHDRAW_UNBONDING: &str = "confirmed_withdraw_unbonding_transactions";
    pub const UNCONFIRMED_STAKING: &str = "unconfirmed_staking_transaction";
    pub const UNCONFIRMED_UNBONDING: &str = "unconfirmed_unbonding_transactions";
    pub const UNCONFIRMED_UNKNOWN: &str = "unconfirmed_unknown_transaction";
}

/// The series `si_invalid_txs_counter{tx_type="<label>"}`.
pub fn invalid_series(label: &str) -> String {
    format!("si_invalid_txs_counter{{tx_type=\"{label}\"}}")
}

pub fn get(series: &str) -> u64 {
    store::get_u64(metric_key(series))
}

pub fn inc(series: &str) {
    add(series, 1);
}

pub fn add(series: &str, n: u64) {
    if n == 0 {
        return;
    }
    let k = metric_key(series);
    store::put_u64(&k, store::get_u64(&k) + n);
}

pub fn inc_invalid(label: &str) {
    inc(&invalid_series(label));
}

pub fn set(series: &str, value: u64) {
    store::put_u64(metric_key(series), value);
}

/// (metric name, type, help) of every family, in exposition order.
const FAMILIES: &[(&str, &str, &str)] = &[
    ("si_start_btc_height", "gauge", "The BTC height the indexer started from"),
    ("si_last_processed_btc_height", "gauge", "The last confirmed BTC height processed"),
    ("si_last_calculated_active_tvl", "gauge", "The last calculated TVL (confirmed plus the unconfirmed window)"),
    ("si_last_found_staking_tx_height", "gauge", "Height of the last found staking transaction"),
    ("si_last_found_unbonding_tx_height", "gauge", "Height of the last found unbonding transaction"),
    ("si_last_found_withdraw_tx_from_staking_height", "gauge", "Height of the last withdrawal from a staking output"),
    (
        "si_last_found_withdraw_tx_from_unbonding_height",
        "gauge",
        "Height of the last withdrawal from an unbonding output",
    ),
    ("si_total_staking_txs", "counter", "Total staking transactions, by tx_type (active or overflow)"),
    ("si_total_unbonding_txs", "counter", "Total unbonding transactions"),
    ("si_total_withdraw_txs_from_staking", "counter", "Total withdrawals from staking outputs"),
    ("si_total_withdraw_txs_from_unbonding", "counter", "Total withdrawals from unbonding outputs"),
    ("si_failed_processing_staking_txs_counter", "counter", "Staking transactions that failed processing"),
    ("si_failed_processing_unconfirmed_block_counter", "counter", "Unconfirmed windows that failed processing"),
    ("si_invalid_txs_counter", "counter", "Invalid transactions, by tx_type"),
    ("si_failed_checking_unbonding_txs_counter", "counter", "Unbonding checks that failed"),
    ("si_failed_processing_unbonding_txs_counter", "counter", "Unbonding transactions that failed processing"),
    ("si_failed_processing_withdraw_txs_from_staking_counter", "counter", "Withdrawals from staking that failed"),
    ("si_failed_processing_withdraw_txs_from_unbonding_counter", "counter", "Withdrawals from unbonding that failed"),
    ("si_major_reorgs_counter", "counter", "Major reorgs (the engine undoes them; kept for dashboards)"),
];

/// Prometheus text exposition of every series. Unlabelled families always appear (0 when never
/// set); labelled ones appear once a label value has been counted, as in the Go client.
pub fn render() -> String {
    let series: Vec<(String, u64)> = store::scan_prefix(METRIC, None, u32::MAX)
        .into_iter()
        .filter_map(|(k, v)| {
            let name = String::from_utf8(k[METRIC.len()..].to_vec()).ok()?;
            let value = u64::from_be_bytes(v.as_slice().try_into().ok()?);
            Some((name, value))
        })
        .collect();
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        let labelled: Vec<&(String, u64)> =
            series.iter().filter(|(s, _)| s.strip_prefix(name).is_some_and(|rest| rest.starts_with('{'))).collect();
        if labelled.is_empty() {
            let value = series.iter().find(|(s, _)| s == name).map(|(_, v)| *v).unwrap_or(0);
            if *name != "si_total_staking_txs" && *name != "si_invalid_txs_counter" {
                out.push_str(&format!("{name} {value}\n"));
            }
        } else {
            for (s, v) in labelled {
                out.push_str(&format!("{s} {v}\n"));
            }
        }
    }
    out
}
