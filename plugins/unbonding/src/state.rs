//! The plugin's off-chain state (`local`): the pipeline's progress per request. The requests
//! themselves belong to phase1-staking (`POST /v1/unbonding`); this plugin copies each one once,
//! when the feed delivers it, and never reads phase1-staking's keys.
//!
//! | key | value |
//! |---|---|
//! | `c` | the largest request `seq` taken from the feed (u64 BE); absent before the first |
//! | `n` | job runs so far (u64 BE): the pipeline's clock for backoff (runs are deterministic) |
//! | `p` staking txid(32) | [`Progress`] (JSON) |
//! | `o` seq(8 BE) | staking txid (32): requests in arrival order |
//! | `t` next run(8 BE) staking txid(32) | empty: requests due for an attempt, soonest first |
//! | `m` name | counter (u64 BE), see `metrics.rs` |
//! | `feed` | the last error reading the feed (text), absent when the last read worked |

use guest_sdk::local;
use serde::{Deserialize, Serialize};

pub type Hash32 = [u8; 32];

pub const CURSOR: &[u8] = b"c";
pub const RUNS: &[u8] = b"n";
pub const PROGRESS: &[u8] = b"p";
pub const ORDER: &[u8] = b"o";
pub const DUE: &[u8] = b"t";
pub const METRIC: &[u8] = b"m";
pub const FEED_ERROR: &[u8] = b"feed";

/// The legacy `unbonding_queue` states (spec §8.3).
pub mod states {
    pub const INSERTED: &str = "INSERTED";
    pub const SEND: &str = "SEND";
    pub const INPUT_ALREADY_SPENT: &str = "INPUT_ALREADY_SPENT";
    pub const FAILED: &str = "FAILED";
    pub const FAILED_TO_GET_COVENANT_SIGNATURES: &str = "FAILED_TO_GET_COVENANT_SIGNATURES";
}

/// One accepted request as phase1-staking's feed serves it (the legacy document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub seq: u64,
    pub staking_tx_hash_hex: String,
    pub staker_pk_hex: String,
    pub finality_pk_hex: String,
    pub unbonding_tx_sig_hex: String,
    pub unbonding_tx_hash_hex: String,
    pub unbonding_tx_hex: String,
    pub staking_tx_hex: String,
    pub staking_output_index: u32,
    pub staking_timelock: u32,
    pub staking_amount: u64,
}

/// The pipeline's record of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub request: Request,
    /// One of [`states`].
    pub state: String,
    /// Attempts made (signatures asked for, or a send tried).
    pub attempts: u32,
    /// The job run of the next attempt; `None` when the request is settled (sent, input spent,
    /// or out of attempts).
    pub next_run: Option<u64>,
    /// Why the last attempt did not send (empty after a send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Valid covenant signatures the last attempt collected.
    pub covenant_signatures: u32,
    /// The signed unbonding transaction, once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_tx_hex: Option<String>,
    pub inserted_run: u64,
    pub updated_run: u64,
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub fn progress_key(txid: &Hash32) -> Vec<u8> {
    key(PROGRESS, &[txid])
}

pub fn order_key(seq: u64) -> Vec<u8> {
    key(ORDER, &[&seq.to_be_bytes()])
}

pub fn due_key(run: u64, txid: &Hash32) -> Vec<u8> {
    key(DUE, &[&run.to_be_bytes(), txid])
}

/// The run and txid of a `t` key.
pub fn parse_due_key(k: &[u8]) -> Option<(u64, Hash32)> {
    let rest = k.strip_prefix(DUE)?;
    if rest.len() != 40 {
        return None;
    }
    Some((u64::from_be_bytes(rest[..8].try_into().ok()?), rest[8..].try_into().ok()?))
}

pub fn metric_key(name: &str) -> Vec<u8> {
    key(METRIC, &[name.as_bytes()])
}

/// A display-order txid (as the API shows it) in internal byte order.
pub fn txid_of(display_hex: &str) -> Option<Hash32> {
    let mut b: Hash32 = hex::decode(display_hex).ok()?.try_into().ok()?;
    b.reverse();
    Some(b)
}

pub fn progress(txid: &Hash32) -> Result<Option<Progress>, String> {
    local::get_json(progress_key(txid))
}

/// Writes `p` and moves its due entry from `old_run` (if any) to `p.next_run`.
pub fn put_progress(txid: &Hash32, p: &Progress, old_run: Option<u64>) -> Result<(), String> {
    if let Some(r) = old_run {
        local::delete(due_key(r, txid));
    }
    if let Some(r) = p.next_run {
        local::put(due_key(r, txid), []);
    }
    local::put_json(progress_key(txid), p)
}
