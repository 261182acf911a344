//! The upstream service's own API cases (`staking-api-service` tests/api/v1_test.go at HEAD,
//! extracted to `v1-api-cases.json`), replayed against the plugin with the same fixtures seeded
//! into chain state: same status, same error code and message, same data minus the Phase-2-only
//! fields. The research data is read in place (never copied into the project); the test is
//! skipped with a message when it is absent.

use std::path::PathBuf;

use guest_sdk::testing::TestHost;
use phase1_staking::state::{self, Delegation, State, Stats, TxRecord};
use phase1_staking::Phase1Staking;
use serde_json::Value;

use crate::support::{self, body};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/research-data/staking-api-service");

/// Fields the post-Phase-2 service adds to `/v1` answers, which Phase-1 never had.
const PHASE2_FIELDS: [&str; 3] = ["is_eligible_for_transition", "is_slashed", "transitioned"];

fn read(rel: &str) -> Option<String> {
    let path = PathBuf::from(DATA).join(rel);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(_) => {
            println!("SKIP: upstream e2e data {} not found", path.display());
            None
        }
    }
}

/// A Mongo extended-JSON number (`{"$numberLong": "5"}` or a plain number).
fn num(v: &Value) -> i64 {
    match v {
        Value::Object(o) => o["$numberLong"].as_str().unwrap().parse().unwrap(),
        other => other.as_i64().unwrap(),
    }
}

fn tx_record(v: &Value) -> TxRecord {
    TxRecord {
        tx_hex: v["tx_hex"].as_str().unwrap().into(),
        output_index: num(&v["output_index"]) as u32,
        start_timestamp: num(&v["start_timestamp"]),
        start_height: num(&v["start_height"]) as u32,
        timelock: num(&v["timelock"]) as u32,
    }
}

/// An upstream `delegations` document as the indexer's record. Phase-2 states (`transitioned`)
/// have no Phase-1 equivalent; they become `unbonded` (not active, as the cases require).
fn delegation(v: &Value) -> Delegation {
    Delegation {
        staking_tx_hash_hex: v["_id"].as_str().unwrap().into(),
        staker_pk_hex: v["staker_pk_hex"].as_str().unwrap().into(),
        finality_provider_pk_hex: v["finality_provider_pk_hex"].as_str().unwrap().into(),
        staking_value: num(&v["staking_value"]) as u64,
        state: State::parse(v["state"].as_str().unwrap()).unwrap_or(State::Unbonded),
        is_overflow: v["is_overflow"].as_bool().unwrap(),
        params_version: 0,
        staking_tx: tx_record(&v["staking_tx"]),
        unbonding_tx: v.get("unbonding_tx").map(tx_record),
        unbonding_tx_hash_hex: None,
        expired: None,
        withdraw_tx_hash_hex: None,
    }
}

/// A host loaded with the upstream fixtures. Page size 2: the upstream test's
/// `max-pagination-limit` (its finality-provider case pages 4 providers as 2 + 2).
fn upstream_host() -> Option<TestHost> {
    let params = read("e2e-HEAD/testdata/global-params.json")?;
    let fps = read("e2e-HEAD/testdata/finality-providers.json")?;
    let delegations: Value = serde_json::from_str(&read("e2e-HEAD/testdata/api/delegations.json")?).unwrap();
    let fp_stats: Value = serde_json::from_str(&read("e2e-HEAD/testdata/api/finality_providers_stats.json")?).unwrap();
    let overall: Value = serde_json::from_str(&read("e2e-HEAD/testdata/api/overall_stats.json")?).unwrap();
    let mut h = TestHost::new(&support::config(&params, Some(&fps), 2, false));
    h.init::<Phase1Staking>().expect("init with the upstream fixtures");
    for d in delegations.as_array().unwrap() {
        let d = delegation(d);
        let txid = state::txid_from_hex(&d.staking_tx_hash_hex).unwrap();
        support::put_delegation(&mut h, &txid, &d);
    }
    for s in fp_stats.as_array().unwrap() {
        let pk = state::parse_hash32(s["_id"].as_str().unwrap()).unwrap();
        let stats = Stats {
            active_tvl: num(&s["active_tvl"]) as u64,
            total_tvl: num(&s["total_tvl"]) as u64,
            active_delegations: num(&s["active_delegations"]) as u64,
            total_delegations: num(&s["total_delegations"]) as u64,
            total_stakers: 0,
        };
        support::put_fp_stats(&mut h, pk, stats);
    }
    // The sharded overall stats, summed (the legacy service sums the shards on read).
    let field = |s: &Value, k: &str| s.get(k).map(num).unwrap_or(0);
    let sum = |k: &str| overall.as_array().unwrap().iter().map(|s| field(s, k)).sum::<i64>() as u64;
    let total = Stats {
        active_tvl: sum("active_tvl"),
        total_tvl: sum("total_tvl"),
        active_delegations: sum("active_delegations"),
        total_delegations: sum("total_delegations"),
        total_stakers: sum("total_stakers"),
    };
    support::put_overall(&mut h, state::STATS, total);
    Some(h)
}

/// `v` without the Phase-2-only fields (recursively).
fn phase1_only(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !PHASE2_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), phase1_only(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(phase1_only).collect()),
        other => other.clone(),
    }
}

#[test]
fn upstream_v1_cases() {
    let Some(cases) = read("e2e-HEAD/v1-api-cases.json") else { return };
    let Some(mut h) = upstream_host() else { return };
    let cases: Value = serde_json::from_str(&cases).unwrap();
    let mut ran = 0;
    for case in cases["cases"].as_array().unwrap() {
        let name = format!("{} / {}", case["test"].as_str().unwrap(), case["name"].as_str().unwrap());
        let endpoint = case["endpoint"].as_str().unwrap();
        let r = support::get(&mut h, endpoint);
        assert_eq!(r.status, case["status"].as_u64().unwrap() as u16, "{name}: {}", r.text_body());
        assert_eq!(r.content_type, "application/json", "{name}");
        assert_eq!(body(&r), phase1_only(&case["expected_json"]), "{name}");
        ran += 1;
    }
    assert_eq!(ran, 21, "every upstream v1 case ran");
}

/// The upstream key order of a delegation (Go struct order), which clients may rely on when
/// they compare raw text.
#[test]
fn upstream_delegation_field_order() {
    let Some(mut h) = upstream_host() else { return };
    let r = support::get(
        &mut h,
        "/v1/delegation?staking_tx_hash_hex=19caaf9dcf7be81120a503b8e007189ecee53e5912c8fa542b187224ce45000a",
    );
    let text = r.text_body();
    let order = [
        "\"staking_tx_hash_hex\"",
        "\"staker_pk_hex\"",
        "\"finality_provider_pk_hex\"",
        "\"state\"",
        "\"staking_value\"",
        "\"staking_tx\"",
        "\"tx_hex\"",
        "\"output_index\"",
        "\"start_timestamp\"",
        "\"start_height\"",
        "\"timelock\"",
        "\"is_overflow\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("unbonding_tx"), "absent unbonding_tx is omitted: {text}");
}

/// The taproot addresses the v0.2 service stored with each delegation
/// (`staker_btc_address.taproot_address`, testnet) are the plugin's derivation of the staker
/// key: the address check and the key lookup find them. (The upstream `pk_address_mappings.json`
/// fixture is synthetic — its addresses are not derived from its keys — so it cannot serve.)
#[test]
fn upstream_taproot_addresses() {
    let Some(text) = read("e2e-HEAD/testdata/api/delegations.json") else { return };
    let Some(mut h) = upstream_host() else { return };
    for d in serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap() {
        let address = d["staker_btc_address"]["taproot_address"].as_str().unwrap();
        let staker = d["staker_pk_hex"].as_str().unwrap();
        let active = d["state"] == "active";
        let r = support::get(&mut h, &format!("/v1/staker/delegation/check?address={address}"));
        assert_eq!(body(&r), serde_json::json!({ "data": active, "code": 0 }), "{address}");
        let r = support::get(&mut h, &format!("/v1/staker/pubkey-lookup?address={address}"));
        assert_eq!(body(&r), serde_json::json!({ "data": { address: staker } }));
    }
}
