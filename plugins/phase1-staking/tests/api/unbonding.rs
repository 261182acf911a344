//! `POST /v1/unbonding` and `GET /v1/unbonding/eligibility` with real transactions: a staking
//! output and a canonical unbonding transaction built with `phase1-primitives`, signed by the
//! staker's fixed test key; then every payload check (400), every service check (403) and every
//! `VerifyUnbondingRequest` failure (403 VALIDATION_ERROR).

use guest_sdk::bitcoin::absolute::LockTime;
use guest_sdk::bitcoin::consensus::encode::serialize_hex;
use guest_sdk::bitcoin::hashes::Hash;
use guest_sdk::bitcoin::secp256k1::{Message, Secp256k1};
use guest_sdk::bitcoin::transaction::Version;
use guest_sdk::bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use guest_sdk::testing::TestHost;
use phase1_primitives::params::GlobalParams;
use phase1_primitives::sighash::unbonding_sighash;
use phase1_primitives::staking::StakingInfo;
use phase1_primitives::unbonding::{build_unbonding_tx_for, UnbondingParams};
use phase1_staking::state::{self, Hash32, State, UnbondingRequest};
use phase1_staking::Phase1Staking;
use serde_json::json;

use crate::support::{self, assert_error, body, error_of};

const STAKER: u32 = 11;
const FP: u32 = 12;
const OTHER: u32 = 13;
const VALUE: u64 = 1_000_000;
const STAKING_TIME: u16 = 1_000;

/// A stake indexed by the plugin: its staking transaction and delegation record.
struct Stake {
    txid: Hash32,
    info: StakingInfo,
    value: u64,
}

fn staking_info() -> StakingInfo {
    let params = GlobalParams::parse(&support::params_json()).unwrap();
    StakingInfo::new(&support::xonly(STAKER), &[support::xonly(FP)], params.versions[0].committee(), STAKING_TIME)
        .unwrap()
}

/// Stores a stake of `value` (start height `height`, `state`, `overflow`) with a real staking
/// transaction (output 0 = the staking output).
fn stake(h: &mut TestHost, seed: u32, value: u64, height: u32, st: State, overflow: bool) -> Stake {
    let info = staking_info();
    let funding = OutPoint { txid: Txid::from_byte_array(support::txid(seed)), vout: 0 };
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: funding,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![info.staking_output(value)],
    };
    let txid = tx.compute_txid().to_byte_array();
    let mut d = support::delegation(&txid, &support::pk(STAKER), &support::pk(FP), value, height, 1_716_884_348, st);
    d.staking_tx.tx_hex = serialize_hex(&tx);
    d.staking_tx.timelock = u32::from(STAKING_TIME);
    d.is_overflow = overflow;
    support::put_delegation(h, &txid, &d);
    Stake { txid, info, value }
}

fn outpoint(s: &Stake) -> OutPoint {
    OutPoint { txid: Txid::from_byte_array(s.txid), vout: 0 }
}

/// The canonical unbonding transaction of `s`.
fn unbonding_tx(s: &Stake) -> Transaction {
    let params =
        UnbondingParams { unbonding_fee: support::UNBONDING_FEE, unbonding_time: support::UNBONDING_TIME as u16 };
    build_unbonding_tx_for(&s.info, outpoint(s), s.value, params).unwrap()
}

/// `signer`'s BIP-340 signature over the unbonding sighash of `tx`.
fn sign(s: &Stake, tx: &Transaction, signer: u32) -> [u8; 64] {
    let sighash = unbonding_sighash(tx, &s.info.staking_output(s.value), &s.info.unbonding_script()).unwrap();
    let msg = Message::from_digest(sighash.to_byte_array());
    Secp256k1::new().sign_schnorr_no_aux_rand(&msg, &support::keypair(signer)).serialize()
}

fn payload(s: &Stake, tx: &Transaction, sig: &[u8; 64]) -> serde_json::Value {
    json!({
        "staking_tx_hash_hex": support::display(&s.txid),
        "unbonding_tx_hash_hex": tx.compute_txid().to_string(),
        "unbonding_tx_hex": serialize_hex(tx),
        "staker_signed_signature_hex": hex::encode(sig),
    })
}

/// A correctly signed request for `tx`.
fn signed(s: &Stake, tx: &Transaction) -> String {
    payload(s, tx, &sign(s, tx, STAKER)).to_string()
}

fn submit(h: &mut TestHost, body: impl AsRef<[u8]>) -> guest_sdk::HttpResponse {
    support::post(h, "/v1/unbonding", body)
}

fn eligibility(h: &mut TestHost, s: &Stake) -> guest_sdk::HttpResponse {
    support::get(h, &format!("/v1/unbonding/eligibility?staking_tx_hash_hex={}", support::display(&s.txid)))
}

#[test]
fn valid_request_is_accepted_recorded_and_shown() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let r = eligibility(&mut h, &s);
    assert_eq!((r.status, r.text_body()), (200, "null".to_string()));

    let tx = unbonding_tx(&s);
    let r = submit(&mut h, signed(&s, &tx));
    assert_eq!((r.status, r.text_body(), r.content_type.as_str()), (202, "null".to_string(), "application/json"));

    // The legacy unbonding_queue document, in local state, with its indexes.
    let unbonding_txid = tx.compute_txid().to_byte_array();
    let rec: UnbondingRequest = serde_json::from_slice(&h.local[&state::request_key(&s.txid)]).unwrap();
    assert_eq!(rec.seq, 0);
    assert_eq!(rec.state, "INSERTED");
    assert_eq!(rec.staking_tx_hash_hex, support::display(&s.txid));
    assert_eq!(rec.staker_pk_hex, support::pk_hex(STAKER));
    assert_eq!(rec.finality_pk_hex, support::pk_hex(FP));
    assert_eq!(rec.unbonding_tx_hash_hex, tx.compute_txid().to_string());
    assert_eq!(rec.unbonding_tx_hex, serialize_hex(&tx));
    assert_eq!(rec.unbonding_tx_sig_hex, hex::encode(sign(&s, &tx, STAKER)));
    assert_eq!((rec.staking_output_index, rec.staking_timelock, rec.staking_amount), (0, 1_000, VALUE));
    assert_eq!(h.local[&state::request_by_unbonding_key(&unbonding_txid)], s.txid.to_vec());
    assert_eq!(h.local[&state::request_queue_key(0)], s.txid.to_vec());
    assert_eq!(h.local[state::REQUEST_SEQ], 1u64.to_be_bytes().to_vec());

    // Shown as unbonding_requested everywhere; no longer eligible; a second request is refused.
    let r = support::get(&mut h, &format!("/v1/delegation?staking_tx_hash_hex={}", support::display(&s.txid)));
    assert_eq!(body(&r)["data"]["state"], "unbonding_requested");
    let r = support::get(
        &mut h,
        &format!("/v1/staker/delegations?staker_btc_pk={}&state=unbonding_requested", support::pk_hex(STAKER)),
    );
    assert_eq!(body(&r)["data"].as_array().unwrap().len(), 1);
    assert_error(&eligibility(&mut h, &s), 403, "FORBIDDEN", "delegation state is not active");
    assert_error(&submit(&mut h, signed(&s, &tx)), 403, "FORBIDDEN", "delegation state is not active");

    // A second stake gets the next sequence number.
    let s2 = stake(&mut h, 2, VALUE, 151, State::Active, false);
    assert_eq!(submit(&mut h, signed(&s2, &unbonding_tx(&s2))).status, 202);
    assert_eq!(h.local[&state::request_queue_key(1)], s2.txid.to_vec());
    assert_eq!(h.local[state::REQUEST_SEQ], 2u64.to_be_bytes().to_vec());

    // The pipeline's feed: arrival order, `after` exclusive, `limit`, bad numbers refused.
    let feed = |h: &mut TestHost, q: &str| -> Vec<(u64, String)> {
        let r = h.get::<Phase1Staking>(&format!("/unbonding-requests{q}"));
        assert_eq!(r.status, 200, "{}", r.text_body());
        body(&r)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["seq"].as_u64().unwrap(), v["staking_tx_hash_hex"].as_str().unwrap().to_string()))
            .collect()
    };
    let (d1, d2) = (support::display(&s.txid), support::display(&s2.txid));
    assert_eq!(feed(&mut h, ""), vec![(0, d1.clone()), (1, d2.clone())]);
    assert_eq!(feed(&mut h, "?after=0"), vec![(1, d2)]);
    assert_eq!(feed(&mut h, "?limit=1"), vec![(0, d1)]);
    assert!(feed(&mut h, "?after=1").is_empty());
    let r = h.get::<Phase1Staking>("/unbonding-requests?after=x");
    assert_error(&r, 400, "BAD_REQUEST", "after must be a non-negative integer, got \"x\"");
    let full = body(&h.get::<Phase1Staking>("/unbonding-requests?limit=1"))["data"][0].clone();
    assert_eq!(serde_json::from_value::<UnbondingRequest>(full).unwrap(), rec);
}

#[test]
fn duplicate_unbonding_txid_is_forbidden() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let tx = unbonding_tx(&s);
    assert_eq!(submit(&mut h, signed(&s, &tx)).status, 202);
    // The request record gone but its unbonding txid still taken (the legacy unique index).
    h.local.remove(&state::request_key(&s.txid));
    let before = h.local.clone();
    assert_error(&submit(&mut h, signed(&s, &tx)), 403, "FORBIDDEN", "unbonding transaction already exists");
    assert_eq!(h.local, before, "a refused request writes nothing");
}

#[test]
fn overflow_delegations_can_unbond() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, true);
    assert_eq!(submit(&mut h, signed(&s, &unbonding_tx(&s))).status, 202);
}

#[test]
fn service_checks_in_order() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let tx = unbonding_tx(&s);
    // Unknown staking hash (a valid request for another stake).
    let mut p = payload(&s, &tx, &sign(&s, &tx, STAKER));
    p["staking_tx_hash_hex"] = json!(support::display(&support::txid(999)));
    assert_error(&submit(&mut h, p.to_string()), 403, "NOT_FOUND", "delegation not found");
    // A short hash passes the legacy format check but names nothing.
    p["staking_tx_hash_hex"] = json!("abc");
    assert_error(&submit(&mut h, p.to_string()), 403, "NOT_FOUND", "delegation not found");
    // Not active.
    for st in [State::Unbonding, State::Unbonded, State::Withdrawn] {
        let mut h = support::host(&[]);
        let s = stake(&mut h, 1, VALUE, 150, st, false);
        assert_error(
            &submit(&mut h, signed(&s, &unbonding_tx(&s))),
            403,
            "FORBIDDEN",
            "delegation state is not active",
        );
        assert_error(&eligibility(&mut h, &s), 403, "FORBIDDEN", "delegation state is not active");
    }
    // No parameters version at the staking height: 500 with the message hidden.
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, support::ACTIVATION - 1, State::Active, false);
    assert_error(
        &submit(&mut h, signed(&s, &unbonding_tx(&s))),
        500,
        "INTERNAL_SERVICE_ERROR",
        "Internal service error",
    );
    assert!(h.local.is_empty());
}

/// Each `VerifyUnbondingRequest` failure: 403 VALIDATION_ERROR naming the reason.
#[test]
fn verification_failures_are_validation_errors() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let good = unbonding_tx(&s);
    let resigned = |tx: Transaction| signed(&s, &tx);
    let mut cases: Vec<(&str, String, &str)> = Vec::new();

    let mut t = good.clone();
    t.output.push(TxOut { value: Amount::from_sat(1_000), script_pubkey: ScriptBuf::new_op_return([1u8; 4]) });
    cases.push(("two outputs", resigned(t), "simple transfer"));
    let mut t = good.clone();
    t.input.push(TxIn {
        previous_output: OutPoint { txid: Txid::from_byte_array([7; 32]), vout: 3 },
        ..t.input[0].clone()
    });
    cases.push(("two inputs", payload(&s, &t, &[1u8; 64]).to_string(), "simple transfer"));
    let mut t = good.clone();
    t.input[0].sequence = Sequence(0xffff_fffd);
    cases.push(("RBF sequence", resigned(t), "simple transfer"));
    let mut t = good.clone();
    t.lock_time = LockTime::from_consensus(5);
    cases.push(("lock time", resigned(t), "simple transfer"));
    let mut p = payload(&s, &good, &sign(&s, &good, STAKER));
    p["unbonding_tx_hash_hex"] = json!(support::display(&support::txid(5)));
    cases.push(("claimed txid", p.to_string(), "does not match"));
    let mut t = good.clone();
    t.input[0].previous_output.vout = 1;
    cases.push(("wrong input", resigned(t), "staking output"));
    let mut t = good.clone();
    t.output[0].value = Amount::from_sat(VALUE - support::UNBONDING_FEE - 1);
    cases.push(("output value", resigned(t), "output value"));
    let mut t = good.clone();
    t.output[0].script_pubkey = s.info.pk_script();
    cases.push(("output script", resigned(t), "pkScript"));
    cases.push(("other signer", payload(&s, &good, &sign(&s, &good, OTHER)).to_string(), "signature"));
    let mut p = payload(&s, &good, &sign(&s, &good, STAKER));
    let mut wrong = good.clone();
    wrong.version = Version::ONE;
    p["staker_signed_signature_hex"] = json!(hex::encode(sign(&s, &wrong, STAKER)));
    cases.push(("signature over another tx", p.to_string(), "signature"));

    for (name, request, reason) in cases {
        let (status, code, message) = error_of(&submit(&mut h, request));
        assert_eq!((status, code.as_str()), (403, "VALIDATION_ERROR"), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message:?} should mention {reason:?}");
    }
    assert!(h.local.is_empty(), "nothing recorded");

    // A stake too small to pay the unbonding fee.
    let tiny = stake(&mut h, 2, support::UNBONDING_FEE, 150, State::Active, false);
    let mut t = unbonding_tx(&s);
    t.input[0].previous_output = outpoint(&tiny);
    t.output[0].value = Amount::from_sat(1);
    let (status, code, message) = error_of(&submit(&mut h, signed(&tiny, &t)));
    assert_eq!((status, code.as_str()), (403, "VALIDATION_ERROR"), "{message}");
    assert!(message.contains("unbonding fee"), "{message}");
}

#[test]
fn unbonding_version_rule_follows_the_config() {
    let version_1 = |s: &Stake| {
        let mut t = unbonding_tx(s);
        t.version = Version::ONE;
        t
    };
    // v0.2 line: any version.
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    assert_eq!(submit(&mut h, signed(&s, &version_1(&s))).status, 202);
    // v0.3.8 line: exactly 2.
    let mut h = support::host_with(&[], 10, true);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let (status, code, message) = error_of(&submit(&mut h, signed(&s, &version_1(&s))));
    assert_eq!((status, code.as_str()), (403, "VALIDATION_ERROR"));
    assert!(message.contains("version"), "{message}");
    assert_eq!(submit(&mut h, signed(&s, &unbonding_tx(&s))).status, 202);
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let tx = unbonding_tx(&s);
    let good = payload(&s, &tx, &sign(&s, &tx, STAKER));
    let with = |field: &str, value: serde_json::Value| {
        let mut p = good.clone();
        p[field] = value;
        p.to_string()
    };
    let invalid_payload = "invalid request payload";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), invalid_payload),
        ("not json".into(), invalid_payload),
        ("[1, 2]".into(), invalid_payload),
        ("\"text\"".into(), invalid_payload),
        (with("staking_tx_hash_hex", json!(42)), invalid_payload),
        ("{}".into(), "invalid unbonding transaction hex"),
        (with("staking_tx_hash_hex", json!("xyz")), "invalid staking transaction hash"),
        (with("staking_tx_hash_hex", json!("0".repeat(65))), "invalid staking transaction hash"),
        (with("unbonding_tx_hash_hex", json!("invalid")), "invalid unbonding transaction hash"),
        (with("unbonding_tx_hex", json!("zz")), "invalid unbonding transaction hex"),
        (with("unbonding_tx_hex", json!("0200")), "invalid unbonding transaction hex"),
        (with("staker_signed_signature_hex", json!("abcd")), "invalid staker signed signature hex"),
        (with("staker_signed_signature_hex", json!("ff".repeat(64))), "invalid staker signed signature hex"),
        (with("staker_signed_signature_hex", json!("zz".repeat(64))), "invalid staker signed signature hex"),
    ];
    for (request, message) in cases {
        assert_error(&submit(&mut h, &request), 400, "BAD_REQUEST", message);
    }
    // Go's decoder reads the first JSON value and ignores the rest.
    let trailing = format!("{good} trailing");
    assert_eq!(submit(&mut h, trailing).status, 202);
    assert!(!h.local.is_empty());
}

#[test]
fn oversize_bodies_are_refused_with_413() {
    let mut h = support::host(&[]);
    let s = stake(&mut h, 1, VALUE, 150, State::Active, false);
    let tx = unbonding_tx(&s);
    let mut p = payload(&s, &tx, &sign(&s, &tx, STAKER));
    p["padding"] = json!("x".repeat(4096));
    assert_error(&submit(&mut h, p.to_string()), 413, "BAD_REQUEST", "Request Entity Too Large");
    // Exactly the limit is fine.
    let base = payload(&s, &tx, &sign(&s, &tx, STAKER)).to_string();
    let pad = 4096 - base.len() - ",\"padding\":\"\"".len();
    p["padding"] = json!("x".repeat(pad));
    let text = p.to_string();
    assert_eq!(text.len(), 4096);
    assert_eq!(submit(&mut h, text).status, 202);
}

#[test]
fn eligibility_parameter_errors() {
    let mut h = support::host(&[]);
    let r = support::get(&mut h, "/v1/unbonding/eligibility");
    assert_error(&r, 400, "BAD_REQUEST", "staking_tx_hash_hex is required");
    let r = support::get(&mut h, "/v1/unbonding/eligibility?staking_tx_hash_hex=xyz");
    assert_error(&r, 400, "BAD_REQUEST", "invalid staking_tx_hash_hex");
    let r = support::get(&mut h, &format!("/v1/unbonding/eligibility?staking_tx_hash_hex={}", "a".repeat(64)));
    assert_error(&r, 403, "NOT_FOUND", "delegation not found");
}
