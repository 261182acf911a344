//! On-demand unbonding end to end (seed scenario 3, issue 6) on the real stack of
//! `testing::unbonding` (chain node, offline wallet, three covenant signers, engine with
//! phase1-staking and the unbonding plugin, staking-cli):
//!
//! request → `unbonding_requested` → covenant signatures → broadcast → mined → `unbonding` →
//! after `unbonding_time` → `unbonded` → withdrawal from the unbonding output → `withdrawn`; then
//! the same with one of three signers down (quorum 2 still met), with two down
//! (`FAILED_TO_GET_COVENANT_SIGNATURES`, then sent once they are back), and with the offline
//! wallet locked (the reason shown, then sent once unlocked).

mod testing;

use std::time::Duration;

use bitcoin::consensus::encode::serialize_hex;
use serde_json::json;
use testing::unbonding::{staking_cli, World, BTC, PASSPHRASE};
use testing::wait_until;

#[test]
fn on_demand_unbonding_end_to_end_with_signers_down() {
    let mut w = World::start();

    // --- all three signers up: the full lifecycle ------------------------------------------
    let s = w.stake(2 * BTC);
    let req = w.request_unbonding(&s);
    let unbonding_txid = req["unbonding_tx_hash_hex"].as_str().unwrap().to_string();
    let signed = w.wait_sent(&s, &unbonding_txid);
    assert_eq!(signed.compute_txid().to_string(), unbonding_txid);
    let witness: Vec<&[u8]> = signed.input[0].witness.iter().collect();
    assert_eq!(witness[..3].iter().filter(|i| !i.is_empty()).count(), 2, "exactly the quorum of covenant signatures");
    w.mine(1);
    let unbonding_height = w.node.height();
    w.mine(1);
    assert_eq!(w.state(&s.tx), "unbonding");
    // Unbonded once the confirmed height (tip − 1 at depth 2) reaches the unbonding tx's height
    // plus the unbonding time (3): the expiry checker's rule. One block earlier it is not.
    let expires = unbonding_height + 3;
    w.mine(expires - w.node.height());
    assert_eq!(w.state(&s.tx), "unbonding", "confirmed height {} is below {expires}", expires - 1);
    w.mine(1);
    assert_eq!(w.state(&s.tx), "unbonded");
    // Withdraw from the unbonding output (staking-cli), accepted by the node, mined, confirmed.
    let to = w.node.call("getnewaddress", json!([])).as_str().unwrap().to_string();
    let withdraw = staking_cli(&[
        "create-withdraw-tx",
        "--from",
        "unbonding",
        "--staker-key",
        &hex::encode(w.staker.secret_bytes()),
        "--staking-tx",
        &serialize_hex(&s.tx),
        "--unbonding-tx",
        &serialize_hex(&signed),
        "--params",
        w.params_file.to_str().unwrap(),
        "--height",
        &s.height.to_string(),
        "--to",
        &to,
        "--fee",
        "1000",
        "--raw",
    ]);
    w.node.call("sendrawtransaction", json!([withdraw.trim()]));
    w.mine(2);
    assert_eq!(w.state(&s.tx), "withdrawn");

    // --- one of three signers down: the quorum of two is still met --------------------------
    w.signers[2].stop();
    let s2 = w.stake(3 * BTC);
    let req = w.request_unbonding(&s2);
    w.wait_sent(&s2, req["unbonding_tx_hash_hex"].as_str().unwrap());
    let p = w.progress(&s2);
    assert_eq!(p["covenant_signatures"], 2, "{p}");
    w.mine(2);
    assert_eq!(w.state(&s2.tx), "unbonding");

    // --- two down: FAILED_TO_GET_COVENANT_SIGNATURES, then sent once they are back ----------
    w.signers[1].stop();
    let s3 = w.stake(4 * BTC);
    let req = w.request_unbonding(&s3);
    let failed = wait_until(
        "the pipeline to report the missing quorum",
        Duration::from_secs(30),
        || w.context(&s3),
        || {
            let p = w.progress(&s3);
            (p["state"] == "FAILED_TO_GET_COVENANT_SIGNATURES").then_some(p)
        },
    );
    assert!(failed["last_error"].as_str().unwrap().contains("1 of the 2 covenant signatures needed"), "{failed}");
    assert!(w.node.call("getrawmempool", json!([])).as_array().unwrap().is_empty(), "nothing sent without a quorum");
    let metrics = w.metrics();
    assert!(!metrics.contains("number_of_failed_covenant_quorums 0"), "{metrics}");
    assert!(metrics.contains("unbonding_requests{state=\"FAILED_TO_GET_COVENANT_SIGNATURES\"} 1"), "{metrics}");
    w.signers[1].start();
    w.signers[2].start();
    w.wait_sent(&s3, req["unbonding_tx_hash_hex"].as_str().unwrap());
    w.mine(2);
    assert_eq!(w.state(&s3.tx), "unbonding");
    let m = w.metrics();
    assert!(m.contains("number_of_successful_unbonding_transactions 3"), "{m}");
    assert!(m.contains("unbonding_requests{state=\"SEND\"} 3"), "{m}");

    // --- the offline wallet locked: signers refuse with the reason, then sign once unlocked --
    w.wallet.call("walletlock", json!([]));
    let s4 = w.stake(5 * BTC);
    let req = w.request_unbonding(&s4);
    let failed = wait_until(
        "the pipeline to report the locked wallet",
        Duration::from_secs(30),
        || w.context(&s4),
        || {
            let p = w.progress(&s4);
            (p["state"] == "FAILED_TO_GET_COVENANT_SIGNATURES").then_some(p)
        },
    );
    assert!(failed["last_error"].as_str().unwrap().contains("walletpassphrase"), "{failed}");
    w.wallet.call("walletpassphrase", json!([PASSPHRASE, 3600]));
    w.wait_sent(&s4, req["unbonding_tx_hash_hex"].as_str().unwrap());
}
