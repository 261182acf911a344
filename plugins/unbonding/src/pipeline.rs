//! The unbonding pipeline (spec §8.3), one job run at a time:
//!
//! 1. take new requests from phase1-staking's feed (`requests_url?after=<cursor>`) as `INSERTED`;
//! 2. for each request due (at most `batch`, soonest first): find the staking transaction in a
//!    block (bitcoind with `-txindex`), check the request's staking output against it with the
//!    parameters version of its height, ask every covenant member for a signature, verify each,
//!    and with at least `quorum` build the witness (§2.2), check the staking output is unspent
//!    and send the transaction.
//!
//! Unlike the legacy pipeline, one bad request never stops the others: each ends its attempt in a
//! state (`SEND`, `INPUT_ALREADY_SPENT`, `FAILED`, `FAILED_TO_GET_COVENANT_SIGNATURES`), and
//! failed ones are retried after 1, 2, 4, … (at most 64) job runs, `max_attempts` times.

use guest_sdk::{local, outbound};
use phase1_primitives::bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use phase1_primitives::bitcoin::Transaction;
use phase1_primitives::sighash::{unbonding_sighash, unbonding_witness};
use phase1_primitives::staking::StakingInfo;
use serde_json::{json, Value};

use crate::config::Config;
use crate::covenants;
use crate::metrics;
use crate::state::{self, states, Hash32, Progress, Request};

/// Requests taken from the feed per run.
const FEED_PAGE: u32 = 100;
/// Longest wait between two attempts, in job runs.
const MAX_BACKOFF_RUNS: u64 = 64;

/// One job run.
pub fn run(cfg: &Config) -> Result<(), String> {
    let run = local::get_u64(state::RUNS) + 1;
    local::put_u64(state::RUNS, run);
    match take_new_requests(cfg, run) {
        Ok(()) => local::delete(state::FEED_ERROR),
        Err(e) => {
            guest_sdk::log(guest_sdk::Level::Warn, &format!("unbonding requests feed: {e}"));
            local::put(state::FEED_ERROR, e.as_bytes());
        }
    }
    let mut due: Vec<(u64, Hash32)> = Vec::new();
    for (k, _) in local::scan_prefix(state::DUE, None, cfg.batch) {
        match state::parse_due_key(&k) {
            Some((r, txid)) if r <= run => due.push((r, txid)),
            Some(_) => break,
            None => return Err(format!("malformed due key {}", hex::encode(&k))),
        }
    }
    for (old_run, txid) in due {
        let Some(mut p) = state::progress(&txid)? else {
            local::delete(state::due_key(old_run, &txid));
            continue;
        };
        attempt(cfg, run, &mut p);
        state::put_progress(&txid, &p, Some(old_run))?;
    }
    Ok(())
}

fn take_new_requests(cfg: &Config, run: u64) -> Result<(), String> {
    let cursor = local::get(state::CURSOR).map(|v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])));
    let url = match cursor {
        Some(c) => format!("{}?after={c}&limit={FEED_PAGE}", cfg.requests_url),
        None => format!("{}?limit={FEED_PAGE}", cfg.requests_url),
    };
    let reply = outbound::http_get(&url)?;
    if reply.status != 200 {
        return Err(format!("{url} answered {}: {}", reply.status, reply.text().chars().take(300).collect::<String>()));
    }
    let body: Value = reply.json()?;
    let list = body.get("data").and_then(Value::as_array).ok_or_else(|| format!("{url}: no `data` array"))?;
    for item in list {
        let req: Request = serde_json::from_value(item.clone())
            .map_err(|e| format!("{url}: a request is not the expected record: {e}"))?;
        let txid = state::txid_of(&req.staking_tx_hash_hex)
            .ok_or_else(|| format!("{url}: request {} has a bad staking_tx_hash_hex", req.seq))?;
        local::put_u64(state::CURSOR, req.seq);
        if state::progress(&txid)?.is_some() {
            continue; // the cursor was behind its own commit (never expected: writes are atomic)
        }
        local::put(state::order_key(req.seq), txid);
        let p = Progress {
            request: req,
            state: states::INSERTED.into(),
            attempts: 0,
            next_run: Some(run),
            last_error: None,
            covenant_signatures: 0,
            signed_tx_hex: None,
            inserted_run: run,
            updated_run: run,
        };
        state::put_progress(&txid, &p, None)?;
    }
    Ok(())
}

/// How an attempt ended.
enum Outcome {
    Sent(String),
    Spent,
    /// Worth another attempt later.
    Retry(&'static str, String),
    /// No later attempt can succeed (the request does not match the chain).
    GiveUp(String),
}

fn attempt(cfg: &Config, run: u64, p: &mut Progress) {
    p.attempts += 1;
    p.updated_run = run;
    let outcome = try_send(cfg, p);
    match outcome {
        Outcome::Sent(signed) => {
            metrics::add(metrics::SEND_OK, 1);
            p.state = states::SEND.into();
            p.next_run = None;
            p.last_error = None;
            p.signed_tx_hex = Some(signed);
        }
        Outcome::Spent => {
            p.state = states::INPUT_ALREADY_SPENT.into();
            p.next_run = None;
            p.last_error = Some("the staking output is already spent".into());
        }
        Outcome::Retry(s, e) => {
            p.state = s.into();
            p.last_error = Some(e);
            p.next_run =
                (p.attempts < cfg.max_attempts).then(|| run + (1u64 << (p.attempts - 1).min(6)).min(MAX_BACKOFF_RUNS));
        }
        Outcome::GiveUp(e) => {
            p.state = states::FAILED.into();
            p.last_error = Some(e);
            p.next_run = None;
        }
    }
}

fn try_send(cfg: &Config, p: &mut Progress) -> Outcome {
    let r = &p.request;
    // The staking transaction, confirmed in a block (spec §8.3 a).
    let found = match outbound::bitcoind("getrawtransaction", json!([r.staking_tx_hash_hex, true])) {
        Ok(v) => v,
        Err(e) => return Outcome::Retry(states::FAILED, format!("staking tx {}: {e}", r.staking_tx_hash_hex)),
    };
    let Some(block_hash) = found.get("blockhash").and_then(Value::as_str) else {
        return Outcome::Retry(states::FAILED, format!("staking tx {} is not in a block yet", r.staking_tx_hash_hex));
    };
    let height = match outbound::bitcoind("getblockheader", json!([block_hash, true])) {
        Ok(h) => match h.get("height").and_then(Value::as_u64) {
            Some(h) => h,
            None => return Outcome::Retry(states::FAILED, format!("getblockheader {block_hash}: no height")),
        },
        Err(e) => return Outcome::Retry(states::FAILED, format!("getblockheader {block_hash}: {e}")),
    };
    let staking_tx: Transaction = match found.get("hex").and_then(Value::as_str).map(deserialize_hex) {
        Some(Ok(tx)) => tx,
        _ => return Outcome::Retry(states::FAILED, "bitcoind returned the staking tx without a decodable hex".into()),
    };
    // The request's staking output, rebuilt with the params of the inclusion height (§8.3 b).
    let Some((_, params)) = cfg.params.for_height(height) else {
        return Outcome::GiveUp(format!("no parameters version is active at the staking tx's height {height}"));
    };
    let key = |h: &str| hex::decode(h).ok().and_then(|b| phase1_primitives::curve::xonly_key(&b));
    let (Some(staker), Some(fp)) = (key(&r.staker_pk_hex), key(&r.finality_pk_hex)) else {
        return Outcome::GiveUp("the request's staker or finality provider key is not an x-only key".into());
    };
    let Ok(timelock) = u16::try_from(r.staking_timelock) else {
        return Outcome::GiveUp(format!("staking timelock {} does not fit 16 bits", r.staking_timelock));
    };
    let staking = match StakingInfo::new(&staker, &[fp], params.committee(), timelock) {
        Ok(s) => s,
        Err(e) => return Outcome::GiveUp(format!("rebuilding the staking output: {e}")),
    };
    let Some(output) = staking_tx.output.get(r.staking_output_index as usize) else {
        return Outcome::GiveUp(format!("the staking tx has no output {}", r.staking_output_index));
    };
    if !staking.matches_pk_script(&output.script_pubkey) || output.value.to_sat() != r.staking_amount {
        return Outcome::GiveUp(format!(
            "output {} of staking tx {} is not the staking output the request describes (keys, timelock, value {} \
             with params version {})",
            r.staking_output_index, r.staking_tx_hash_hex, r.staking_amount, params.version
        ));
    }
    let unbonding_tx: Transaction = match deserialize_hex(&r.unbonding_tx_hex) {
        Ok(tx) => tx,
        Err(e) => return Outcome::GiveUp(format!("the request's unbonding tx does not decode: {e}")),
    };
    let Some(staker_sig) = hex::decode(&r.unbonding_tx_sig_hex).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return Outcome::GiveUp("the request's staker signature is not 64 bytes of hex".into());
    };
    let sighash = match unbonding_sighash(&unbonding_tx, output, &staking.unbonding_script()) {
        Ok(s) => s,
        Err(e) => return Outcome::GiveUp(format!("unbonding sighash: {e}")),
    };
    // Every member, then the first `quorum` valid signatures (§8.3 c–e).
    let pk_script_hex = hex::encode(output.script_pubkey.as_bytes());
    let got = covenants::collect(cfg, params, &sighash, &pk_script_hex, &r.unbonding_tx_hex, &r.unbonding_tx_sig_hex);
    metrics::add(metrics::SIGNING_OK, got.signatures.len() as u64);
    metrics::add(metrics::SIGNING_FAILED, got.failures.len() as u64);
    p.covenant_signatures = got.signatures.len() as u32;
    let quorum = params.covenant_quorum as usize;
    if got.signatures.len() < quorum {
        metrics::add(metrics::QUORUM_FAILED, 1);
        return Outcome::Retry(
            states::FAILED_TO_GET_COVENANT_SIGNATURES,
            format!("{} of the {quorum} covenant signatures needed: {}", got.signatures.len(), got.failures.join("; ")),
        );
    }
    let mut signed = unbonding_tx.clone();
    match unbonding_witness(&got.signatures[..quorum], &staker_sig, &staking, params.committee()) {
        Ok(w) => signed.input[0].witness = w,
        Err(e) => return Outcome::GiveUp(format!("assembling the witness: {e}")),
    }
    let signed_hex = serialize_hex(&signed);
    // Unspent? (§8.3 f: a failed check still tries to send.)
    let outpoint = unbonding_tx.input[0].previous_output;
    if let Ok(Value::Null) = outbound::bitcoind("gettxout", json!([outpoint.txid.to_string(), outpoint.vout, true])) {
        return Outcome::Spent;
    }
    match outbound::bitcoind("sendrawtransaction", json!([signed_hex])) {
        Ok(_) => Outcome::Sent(signed_hex),
        Err(e)
            if e.contains("already in block chain")
                || e.contains("txn-already-known")
                || e.contains("txn-already-in-mempool") =>
        {
            Outcome::Sent(signed_hex)
        }
        Err(e) => {
            metrics::add(metrics::SEND_FAILED, 1);
            Outcome::Retry(states::FAILED, format!("sendrawtransaction: {e}"))
        }
    }
}
