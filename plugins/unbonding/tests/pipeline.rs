//! The pipeline's decisions with the native test host: the feed, covenant members answering (or
//! not), bitcoind answering (or not). Test doubles for HTTP and bitcoind stand in for the
//! signers and the node here; `engine/tests/unbonding.rs` runs the real ones end to end.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use guest_sdk::bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use guest_sdk::bitcoin::hashes::Hash;
use guest_sdk::bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
use guest_sdk::bitcoin::{absolute, transaction, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, Witness};
use guest_sdk::testing::TestHost;
use guest_sdk::HttpReply;
use phase1_primitives::params::GlobalParams;
use phase1_primitives::sighash::{unbonding_sighash, verify_schnorr};
use phase1_primitives::staking::StakingInfo;
use phase1_primitives::unbonding::build_unbonding_tx_for;
use serde_json::{json, Value};
use unbonding::state::{self, states, Progress};
use unbonding::Unbonding;

const FEED: &str = "http://engine/plugins/phase1-staking/unbonding-requests";
const VALUE: u64 = 500_000_000;
const HEIGHT: u64 = 120;

fn key(i: u8) -> Keypair {
    Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[i; 32]).unwrap())
}

fn covenants() -> Vec<Keypair> {
    (21..24).map(key).collect()
}

fn params_json() -> String {
    let pks: Vec<String> = covenants().iter().map(|k| k.public_key().to_string()).collect();
    json!({ "versions": [{
        "version": 0, "activation_height": 100, "staking_cap": 100_000_000_000u64, "cap_height": 0,
        "tag": "62627434", "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3,
        "unbonding_fee": 500, "max_staking_amount": 1_000_000_000, "min_staking_amount": 100_000_000,
        "max_staking_time": 1000, "min_staking_time": 10, "confirmation_depth": 2
    }]})
    .to_string()
}

fn signer_url(k: &Keypair, port: u16) -> String {
    format!("http://{}@127.0.0.1:{port}", k.public_key())
}

fn config() -> String {
    let signers: Vec<String> = covenants().iter().enumerate().map(|(i, k)| signer_url(k, 9001 + i as u16)).collect();
    json!({ "requests_url": FEED, "global_params": params_json(), "covenant_signers": signers, "max_attempts": 3 })
        .to_string()
}

/// A staking tx and a signed unbonding request for it.
struct Stake {
    tx: Transaction,
    info: StakingInfo,
    unbonding: Transaction,
    staker_sig: [u8; 64],
}

fn stake(n: u8) -> Stake {
    let params = GlobalParams::parse(&params_json()).unwrap();
    let (_, v) = params.for_height(HEIGHT).unwrap();
    let staker = key(n);
    let fp = key(n + 100);
    let info =
        StakingInfo::new(&staker.x_only_public_key().0, &[fp.x_only_public_key().0], v.committee(), 100).unwrap();
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(guest_sdk::bitcoin::Txid::from_byte_array([n; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![info.staking_output(VALUE)],
    };
    let unbonding = build_unbonding_tx_for(&info, OutPoint::new(tx.compute_txid(), 0), VALUE, v).unwrap();
    let sighash = unbonding_sighash(&unbonding, &tx.output[0], &info.unbonding_script()).unwrap();
    let sig = Secp256k1::new().sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &staker);
    Stake { tx, info, unbonding, staker_sig: sig.serialize() }
}

fn request_json(seq: u64, s: &Stake) -> Value {
    json!({
        "seq": seq,
        "staking_tx_hash_hex": s.tx.compute_txid().to_string(),
        "staker_pk_hex": s.info.staker().to_string(),
        "finality_pk_hex": s.info.finality_providers()[0].to_string(),
        "unbonding_tx_sig_hex": hex::encode(s.staker_sig),
        "state": "INSERTED",
        "unbonding_tx_hash_hex": s.unbonding.compute_txid().to_string(),
        "unbonding_tx_hex": serialize_hex(&s.unbonding),
        "staking_tx_hex": serialize_hex(&s.tx),
        "staking_output_index": 0,
        "staking_timelock": 100,
        "staking_amount": VALUE,
    })
}

/// What the doubles answer; tests change it between runs.
#[derive(Default)]
struct World {
    feed: Vec<Value>,
    feed_down: bool,
    /// Staking txs bitcoind knows, confirmed.
    chain: Vec<Transaction>,
    /// Ports of signers that are down.
    down: BTreeSet<u16>,
    /// A signer port answering garbage signatures.
    lying: Option<u16>,
    spent: bool,
    /// sendrawtransaction results.
    sent: Vec<Transaction>,
    send_error: Option<String>,
}

fn host(world: &Arc<Mutex<World>>) -> TestHost {
    let mut h = TestHost::new(&config());
    let w = world.clone();
    h.stub_http(move |call| {
        let w = w.lock().unwrap();
        if call.url.starts_with(FEED) {
            if w.feed_down {
                return Err("connection refused".into());
            }
            let after =
                call.url.split("after=").nth(1).and_then(|s| s.split('&').next()).map(|s| s.parse::<u64>().unwrap());
            let items: Vec<&Value> =
                w.feed.iter().filter(|r| after.is_none_or(|a| r["seq"].as_u64().unwrap() > a)).collect();
            return Ok(HttpReply { status: 200, body: json!({ "data": items }).to_string().into_bytes() });
        }
        let port: u16 = call.url.split(':').nth(2).unwrap().split('/').next().unwrap().parse().unwrap();
        if w.down.contains(&port) {
            return Err(format!("{}: connection refused", call.url));
        }
        assert!(call.url.ends_with("/v1/sign-unbonding-tx"), "{}", call.url);
        let body: Value = serde_json::from_slice(&call.body).unwrap();
        let member = &covenants()[(port - 9001) as usize];
        assert_eq!(body["covenant_public_key"], member.public_key().to_string());
        let unbonding: Transaction = deserialize_hex(body["unbonding_tx_hex"].as_str().unwrap()).unwrap();
        let staking = w.chain.iter().find(|t| t.compute_txid() == unbonding.input[0].previous_output.txid).unwrap();
        assert_eq!(body["staking_output_pk_script_hex"], hex::encode(staking.output[0].script_pubkey.as_bytes()));
        let s = stake_for(staking);
        let sighash = unbonding_sighash(&unbonding, &staking.output[0], &s.info.unbonding_script()).unwrap();
        let mut sig = Secp256k1::new()
            .sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), member)
            .serialize();
        if w.lying == Some(port) {
            sig[0] ^= 1;
        }
        Ok(HttpReply {
            status: 200,
            body: json!({ "data": { "signature_hex": hex::encode(sig) } }).to_string().into_bytes(),
        })
    });
    let w = world.clone();
    h.stub_bitcoind(move |method, params| {
        let mut w = w.lock().unwrap();
        match method {
            "getrawtransaction" => {
                let txid = params[0].as_str().unwrap();
                let tx =
                    w.chain.iter().find(|t| t.compute_txid().to_string() == txid).ok_or(
                        "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
                    )?;
                Ok(json!({ "hex": serialize_hex(tx), "blockhash": "00".repeat(32) }))
            }
            "getblockheader" => Ok(json!({ "height": HEIGHT })),
            "gettxout" => Ok(if w.spent { Value::Null } else { json!({ "value": 5.0 }) }),
            "sendrawtransaction" => {
                if let Some(e) = &w.send_error {
                    return Err(e.clone());
                }
                let tx: Transaction = deserialize_hex(params[0].as_str().unwrap()).unwrap();
                w.sent.push(tx.clone());
                Ok(json!(tx.compute_txid().to_string()))
            }
            m => Err(format!("unexpected bitcoind call {m}")),
        }
    });
    h
}

/// The stake whose staking tx is `tx` (by the staker key byte used to make it).
fn stake_for(tx: &Transaction) -> Stake {
    (1..50).map(stake).find(|s| s.tx == *tx).unwrap()
}

fn progress(h: &TestHost, s: &Stake) -> Progress {
    let txid = s.tx.compute_txid().to_byte_array();
    serde_json::from_slice(&h.local[&state::progress_key(&txid)]).unwrap()
}

/// Every covenant-signature slot of a sent unbonding tx holds a valid signature or nothing, with
/// exactly `quorum` signatures, the staker signature, script and control block after them.
fn check_witness(sent: &Transaction, s: &Stake) {
    let w: Vec<&[u8]> = sent.input[0].witness.iter().collect();
    assert_eq!(w.len(), 3 + 3);
    let sighash = unbonding_sighash(sent, &s.tx.output[0], &s.info.unbonding_script()).unwrap();
    let mut sorted: Vec<_> = covenants().iter().map(|k| k.x_only_public_key().0).collect();
    sorted.sort();
    sorted.reverse(); // descending key order
    let mut signatures = 0;
    for (item, pk) in w[..3].iter().zip(&sorted) {
        if !item.is_empty() {
            assert!(verify_schnorr(&sighash, item, pk), "signature for {pk} does not verify");
            signatures += 1;
        }
    }
    assert_eq!(signatures, 2, "exactly the quorum");
    assert_eq!(w[3], s.staker_sig);
    assert_eq!(w[4], s.info.unbonding_script().as_bytes());
}

#[test]
fn request_is_signed_assembled_and_sent() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(1);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap();
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.attempts, p.next_run, p.covenant_signatures), (states::SEND, 1, None, 3));
    let sent = world.lock().unwrap().sent.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].compute_txid(), s.unbonding.compute_txid(), "the requested unbonding tx, unchanged");
    check_witness(&sent[0], &s);
    assert_eq!(p.signed_tx_hex.as_deref(), Some(serialize_hex(&sent[0]).as_str()));
    // The next run takes nothing again.
    h.run_job::<Unbonding>().unwrap();
    assert_eq!(world.lock().unwrap().sent.len(), 1);
    let m = h.get::<Unbonding>("/metrics").text_body();
    for line in [
        "number_of_successful_signing_requests 3",
        "number_of_successful_unbonding_transactions 1",
        "unbonding_requests{state=\"SEND\"} 1",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    let r = h.get::<Unbonding>(&format!("/requests/{}", s.tx.compute_txid()));
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body::<Value>().unwrap()["data"]["state"], "SEND");
}

#[test]
fn one_member_down_still_meets_the_quorum() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(2);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
        w.down.insert(9002);
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap();
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.covenant_signatures), (states::SEND, 2));
    check_witness(&world.lock().unwrap().sent[0], &s);
}

#[test]
fn two_members_down_then_back_retries_with_backoff() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(3);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
        w.down.extend([9001, 9003]);
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap(); // run 1: attempt 1 fails → next at run 2
    let p = progress(&h, &s);
    assert_eq!(
        (p.state.as_str(), p.attempts, p.next_run, p.covenant_signatures),
        (states::FAILED_TO_GET_COVENANT_SIGNATURES, 1, Some(2), 1)
    );
    assert!(p.last_error.as_deref().unwrap().contains("1 of the 2 covenant signatures needed"), "{:?}", p.last_error);
    h.run_job::<Unbonding>().unwrap(); // run 2: attempt 2 fails → next at run 4
    assert_eq!(progress(&h, &s).next_run, Some(4));
    world.lock().unwrap().down.clear();
    h.run_job::<Unbonding>().unwrap(); // run 3: not due
    assert_eq!(progress(&h, &s).attempts, 2);
    assert!(world.lock().unwrap().sent.is_empty());
    h.run_job::<Unbonding>().unwrap(); // run 4: sent
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.attempts), (states::SEND, 3));
    let m = h.get::<Unbonding>("/metrics").text_body();
    assert!(m.contains("number_of_failed_covenant_quorums 2"), "{m}");
    assert!(m.contains("number_of_failed_signing_requests 4"), "{m}");
}

#[test]
fn out_of_attempts_stays_failed() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(4);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
        w.down.extend([9001, 9002, 9003]);
    }
    let mut h = host(&world);
    for _ in 0..10 {
        h.run_job::<Unbonding>().unwrap();
    }
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.attempts, p.next_run), (states::FAILED_TO_GET_COVENANT_SIGNATURES, 3, None));
}

#[test]
fn an_invalid_signature_does_not_count() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(5);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
        w.lying = Some(9001);
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap();
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.covenant_signatures), (states::SEND, 2));
    check_witness(&world.lock().unwrap().sent[0], &s);
}

#[test]
fn one_bad_request_does_not_block_the_others() {
    let world = Arc::new(Mutex::new(World::default()));
    let (bad, unknown, good, spent) = (stake(6), stake(7), stake(8), stake(9));
    {
        let mut w = world.lock().unwrap();
        let mut wrong = request_json(0, &bad);
        wrong["staking_amount"] = json!(VALUE + 1); // does not match the chain
        w.feed.extend([wrong, request_json(1, &unknown), request_json(2, &good)]);
        w.chain.extend([bad.tx.clone(), good.tx.clone()]);
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap();
    let p = progress(&h, &bad);
    assert_eq!((p.state.as_str(), p.next_run), (states::FAILED, None), "a mismatch is final");
    assert!(p.last_error.unwrap().contains("is not the staking output the request describes"));
    let p = progress(&h, &unknown);
    assert_eq!((p.state.as_str(), p.next_run), (states::FAILED, Some(2)), "an unknown staking tx is retried");
    assert!(p.last_error.unwrap().contains("No such mempool or blockchain transaction"));
    assert_eq!(progress(&h, &good).state, states::SEND);

    // A spent staking output, and a feed that is down for a run: the due requests still run.
    {
        let mut w = world.lock().unwrap();
        w.feed.push(request_json(3, &spent));
        w.chain.push(spent.tx.clone());
    }
    h.run_job::<Unbonding>().unwrap();
    world.lock().unwrap().spent = true;
    world.lock().unwrap().feed_down = true;
    assert_eq!(progress(&h, &spent).state, states::SEND);
    let s10 = stake(10);
    h.run_job::<Unbonding>().unwrap();
    let status = h.get::<Unbonding>("/status").json_body::<Value>().unwrap();
    assert!(status["feed_error"].as_str().unwrap().contains("connection refused"), "{status}");
    assert_eq!(status["feed_cursor"], 3);
    world.lock().unwrap().feed_down = false;
    {
        let mut w = world.lock().unwrap();
        w.feed.push(request_json(4, &s10));
        w.chain.push(s10.tx.clone());
    }
    h.run_job::<Unbonding>().unwrap();
    assert_eq!(progress(&h, &s10).state, states::INPUT_ALREADY_SPENT);
    assert!(h.get::<Unbonding>("/status").json_body::<Value>().unwrap()["feed_error"].is_null());
    // The list shows arrival order.
    let list = h.get::<Unbonding>("/requests").json_body::<Value>().unwrap();
    let seqs: Vec<u64> =
        list["data"].as_array().unwrap().iter().map(|p| p["request"]["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
}

#[test]
fn send_failure_is_retried() {
    let world = Arc::new(Mutex::new(World::default()));
    let s = stake(11);
    {
        let mut w = world.lock().unwrap();
        w.chain.push(s.tx.clone());
        w.feed.push(request_json(0, &s));
        w.send_error = Some("bad-txns-inputs-missingorspent".into());
    }
    let mut h = host(&world);
    h.run_job::<Unbonding>().unwrap();
    let p = progress(&h, &s);
    assert_eq!((p.state.as_str(), p.next_run), (states::FAILED, Some(2)));
    world.lock().unwrap().send_error = None;
    h.run_job::<Unbonding>().unwrap();
    assert_eq!(progress(&h, &s).state, states::SEND);
}

#[test]
fn bad_config_is_refused_with_the_fix() {
    let mut h = TestHost::new(r#"{"global_params": "{}"}"#);
    let e = h.init::<Unbonding>().unwrap_err();
    assert!(e.contains("requests_url"), "{e}");
    let mut cfg: Value = serde_json::from_str(&config()).unwrap();
    cfg["covenant_signers"] = json!(["http://127.0.0.1:9791"]);
    let e = TestHost::new(&cfg.to_string()).init::<Unbonding>().unwrap_err();
    assert!(e.contains("legacy remote-signer-config format"), "{e}");
}
