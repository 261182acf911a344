//! The seed's seven scenarios, at the seed's heights, with its checks and output style. Where
//! the seed's sample output shows a state a block or two later than its step list (the
//! confirmation depth of 2 and the expiry checker's `tip >= start + timelock`), the checks sit
//! at the height where Phase-1's rules produce the state.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcoin::Txid;
use serde_json::json;

use crate::chain::{Chain, Sent};
use crate::checks::{achieved, Api};
use crate::deployment::BTC;
use crate::processes::wait_for;
use crate::queues::Tap;

/// What the scenarios share.
pub struct Demo<'a> {
    pub chain: &'a Chain,
    pub api: &'a Api,
    pub queues: &'a Tap,
    /// Stakes later scenarios refer to.
    pub unbonded: Option<Sent>,
    pub unbonding_tx: Option<bitcoin::Transaction>,
}

pub fn title(n: &str, text: &str) {
    println!("\n===== Scenario {n}: {text} ===== ");
}

/// Scenario 1: a stake sent before the first activation height (115) is never processed.
pub fn one(d: &mut Demo) -> Result<()> {
    title("1", "No transactions are processed by the system before the first activation height");
    let early = d.chain.stake(6 * BTC, 1000)?;
    d.chain.next_block()?; // 112: the stake is in it
    d.chain.next_block()?; // 113: confirmed, below the activation height
    d.api.expect_metric(
        "si_invalid_txs_counter{tx_type=\"confirmed_staking_transaction\"}",
        "Invalid transaction count on Staking Indexer",
        0,
    )?;
    d.api.expect_metric(
        "si_total_staking_txs{tx_type=\"active\"}",
        "Staking transaction count on Staking Indexer",
        0,
    )?;
    d.api.expect_stat("active_delegations", "Active delegation count", 0)?;
    d.api.expect_stat("total_delegations", "Total delegation count", 0)?;
    d.api.expect_unknown(&early.txid)
}

/// Scenario 2: 2 + 8 BTC fill the 10 BTC cap; 1 BTC in the next block overflows.
pub fn two(d: &mut Demo) -> Result<()> {
    title("2", "Submit Staking Transactions and fill the staking cap");
    d.chain.reach(115)?;
    let a = d.chain.stake(2 * BTC, 1000)?;
    let b = d.chain.stake(8 * BTC, 1000)?;
    d.chain.next_block()?; // 116
    let c = d.chain.stake(BTC, 1000)?;
    d.chain.next_block()?; // 117: a and b confirmed
    d.api.expect_delegation(&a.txid, "active", false)?;
    d.api.expect_delegation(&b.txid, "active", false)?;
    d.chain.next_block()?; // 118: c confirmed, over the cap
    d.api.expect_delegation(&c.txid, "active", true)?;
    d.api.expect_stat("active_delegations", "Active delegation count", 2)?;
    d.api.expect_stat("total_delegations", "Total delegation count", 2)?;
    d.api.expect_stat("active_tvl", "Active TVL", 10 * BTC)?;
    expect_queue(d, "active_staking_queue", &[a.txid, b.txid, c.txid])?;
    d.unbonded = Some(a);
    Ok(())
}

/// Scenario 3: the staker asks the API to unbond the 2 BTC stake; the unbonding pipeline gets
/// the covenant signatures from the covenant signer (which signs through the offline wallet)
/// and sends the transaction; its confirmation reopens the cap, and a new stake becomes active.
pub fn three(d: &mut Demo) -> Result<()> {
    title("3", "Submit on-demand unbonding transaction and ensure the system re-opens");
    let a = d.unbonded.clone().context("scenario 2 made no stake")?;
    d.chain.next_block()?; // 119
    let (request, unbonding_txid) = d.chain.unbonding_request(&a)?;
    println!("{}", staking_cli::to_legacy_json(&request));
    let resp = minreq::post(format!("{}/v1/unbonding", d.api.base))
        .with_header("Content-Type", "application/json")
        .with_body(serde_json::to_string(&request)?)
        .with_timeout(30)
        .send()?;
    let body = resp.as_str().unwrap_or_default().trim().to_string();
    println!("{body}");
    if resp.status_code != 202 {
        bail!("POST /v1/unbonding: expected HTTP 202, got {}: {body}", resp.status_code);
    }
    d.api.expect_delegation(&a.txid, "unbonding_requested", false)?;
    // The pipeline (unbonding plugin's job) asks the covenant signer and broadcasts.
    let progress =
        wait_for("the unbonding pipeline to send the unbonding transaction", Duration::from_secs(30), || {
            let (_, v) = d.api.get(&format!("/plugins/unbonding/requests/{}", a.txid)).ok()?;
            (v["data"]["state"] == "SEND" && d.chain.in_mempool(&unbonding_txid)).then_some(v)
        })
        .with_context(|| {
            let (_, v) = d.api.get(&format!("/plugins/unbonding/requests/{}", a.txid)).unwrap_or_default();
            format!("the unbonding pipeline's record of the request: {v}")
        })?;
    println!(
        "The unbonding pipeline collected {} covenant signatures and sent unbonding transaction {unbonding_txid} ",
        progress["data"]["covenant_signatures"]
    );
    d.unbonding_tx = Some(d.chain.transaction(&unbonding_txid)?);
    d.chain.next_block()?; // 120: the unbonding transaction is in it
    d.chain.next_block()?; // 121: confirmed
    d.api.expect_delegation(&a.txid, "unbonding", false)?;
    d.api.expect_stat("active_delegations", "Active delegation count", 1)?;
    d.api.expect_stat("total_delegations", "Total delegation count", 2)?;
    d.api.expect_stat("active_tvl", "Active TVL", 8 * BTC)?;
    let new = d.chain.stake(BTC, 1000)?;
    d.chain.next_block()?; // 122
    d.chain.next_block()?; // 123: the new stake is confirmed, under the reopened cap
    d.api.expect_delegation(&new.txid, "active", false)?;
    d.chain.next_block()?; // 124: the unbonding time (3) elapsed at 123
    d.api.expect_delegation(&a.txid, "unbonded", false)?;
    let msgs = d.queues.messages("unbonding_staking_queue")?;
    if !msgs.iter().any(|m| m.body["staking_tx_hash_hex"] == json!(a.txid.to_string())) {
        bail!("no unbonding event for {} on unbonding_staking_queue (saw {})", a.txid, msgs.len());
    }
    achieved("Unbonding event on unbonding_staking_queue: 1");
    Ok(())
}

/// Scenario 4: the staker withdraws from the unbonding output once its timelock passed.
pub fn four(d: &mut Demo) -> Result<()> {
    title("4", "Withdraw an on-demand unbonded transaction");
    let a = d.unbonded.clone().context("scenario 2 made no stake")?;
    let unbonding = d.unbonding_tx.clone().context("scenario 3 sent no unbonding transaction")?;
    d.chain.withdraw(&a, Some(&unbonding))?;
    d.chain.next_block()?; // 125: the withdrawal is in it
    d.chain.next_block()?; // 126: confirmed
    d.api.expect_delegation(&a.txid, "withdrawn", false)?;
    d.api.expect_stat("active_delegations", "Active delegation count", 2)?;
    d.api.expect_stat("total_delegations", "Total delegation count", 3)?;
    d.api.expect_metric("si_total_withdraw_txs_from_unbonding", "Withdrawals from unbonding on Staking Indexer", 1)
}

/// Scenario 5: from height 130 (version 1) the minimum stake is 2 BTC; 1.5 BTC is invalid.
pub fn five(d: &mut Demo) -> Result<()> {
    title("5", "Ensure staking parameter update is enforced");
    d.chain.reach(130)?;
    println!("Current Active Global Parameters");
    let (_, v) = d.api.get("/v1/global-params")?;
    let tip = d.chain.height()? as u64;
    let active = v["data"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().rfind(|p| p["activation_height"].as_u64().is_some_and(|h| h <= tip)).cloned())
        .with_context(|| format!("GET /v1/global-params has no version active at {tip}: {v}"))?;
    println!("{}", serde_json::to_string_pretty(&active)?);
    if active["version"] != 1 || active["min_staking_amount"] != 2 * BTC {
        bail!("expected version 1 with min_staking_amount {} active at {tip}, the API shows {active}", 2 * BTC);
    }
    let small = d.chain.stake(150_000_000, 1000)?;
    d.chain.next_block()?; // 131
    d.chain.next_block()?; // 132: confirmed and rejected
    d.api.expect_metric(
        "si_invalid_txs_counter{tx_type=\"confirmed_staking_transaction\"}",
        "Invalid transaction count on Staking Indexer",
        1,
    )?;
    d.api.expect_unknown(&small.txid)
}

/// Scenario 6: a 5 BTC stake with a 2-block timelock expires (the expiry checker) and is
/// withdrawn. The legacy API does not lower active TVL on expiry; the seed's values show that.
pub fn six(d: &mut Demo) -> Result<()> {
    title("6", "Withdraw a transaction that has exceeded its timelock");
    d.chain.reach(133)?;
    let e = d.chain.stake(5 * BTC, 2)?;
    d.chain.next_block()?; // 134: in a block, not yet confirmed
    d.api.expect_stat("active_tvl", "Active TVL", 9 * BTC)?;
    d.api.expect_stat("total_tvl", "Total TVL", 11 * BTC)?;
    d.api.expect_stat("unconfirmed_tvl", "Unconfirmed TVL", 14 * BTC)?;
    d.chain.next_block()?; // 135: confirmed
    d.api.expect_delegation(&e.txid, "active", false)?;
    d.api.expect_stat("active_tvl", "Active TVL", 14 * BTC)?;
    d.api.expect_stat("total_tvl", "Total TVL", 16 * BTC)?;
    d.api.expect_stat("unconfirmed_tvl", "Unconfirmed TVL", 14 * BTC)?;
    d.chain.next_block()?; // 136: the timelock (134 + 2) is reached
    d.chain.next_block()?; // 137: 136 confirmed; the expiry checker unbonds it
    d.api.expect_delegation(&e.txid, "unbonded", false)?;
    d.api.expect_stat("active_tvl", "Active TVL", 14 * BTC)?;
    let msgs = d.queues.messages("expired_staking_queue")?;
    if !msgs.iter().any(|m| m.body["staking_tx_hash_hex"] == json!(e.txid.to_string())) {
        bail!("no expiry event for {} on expired_staking_queue", e.txid);
    }
    achieved("Expiry event on expired_staking_queue: 1");
    d.chain.withdraw(&e, None)?;
    d.chain.next_block()?; // 138
    d.chain.next_block()?; // 139: confirmed
    d.api.expect_delegation(&e.txid, "withdrawn", false)?;
    d.api.expect_stat("active_delegations", "Active delegation count", 3)?;
    d.api.expect_stat("total_delegations", "Total delegation count", 4)?;
    d.api.expect_metric("si_total_withdraw_txs_from_staking", "Withdrawals from staking on Staking Indexer", 1)
}

/// Scenario 7: a 7 BTC stake mined in a block that is then invalidated (a 1-block reorg) is
/// mined again and ends up active, with exactly one event.
pub fn seven(d: &mut Demo) -> Result<()> {
    title("7", "Ensure the system can survive BTC forks");
    d.chain.reach(140)?;
    let f = d.chain.stake(7 * BTC, 1000)?;
    d.chain.next_block()?; // 141 with the stake
    let orphaned = d.chain.invalidate_tip()?;
    d.chain.next_block()?; // a new 141, the stake again
    let (h, hash) = d.chain.node.tip()?;
    if hash == orphaned {
        bail!("block {h} is still {orphaned} after invalidateblock");
    }
    d.chain.next_block()?; // 142: confirmed
    d.api.expect_delegation(&f.txid, "active", false)?;
    d.api.expect_metric(
        "si_total_staking_txs{tx_type=\"active\"}",
        "Active staking transactions on Staking Indexer",
        5,
    )?;
    expect_queue(d, "active_staking_queue", &[f.txid])
}

/// Each of `txids` appears exactly once on `queue`.
fn expect_queue(d: &Demo, queue: &str, txids: &[Txid]) -> Result<()> {
    let msgs = wait_for(&format!("the events on {queue}"), Duration::from_secs(10), || {
        let msgs = d.queues.messages(queue).ok()?;
        txids.iter().all(|t| msgs.iter().any(|m| m.body["staking_tx_hash_hex"] == json!(t.to_string()))).then_some(msgs)
    })
    .with_context(|| format!("{queue} should carry an event for each of {txids:?}"))?;
    for t in txids {
        let n = msgs.iter().filter(|m| m.body["staking_tx_hash_hex"] == json!(t.to_string())).count();
        if n != 1 {
            bail!("{queue}: expected one event for {t}, saw {n}");
        }
    }
    achieved(&format!("Events on {queue}: one for each of {} transaction(s)", txids.len()));
    Ok(())
}
