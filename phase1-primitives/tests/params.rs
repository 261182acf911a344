//! Global parameters: every real params file parses and re-serialises to the API shape; each
//! §3.2 rule (and the JSON-shape rules) rejects a bad file with an error naming the field; version
//! selection boundaries.

mod common;

use common::*;
use phase1_primitives::params::{GlobalParams, ParamsError};
use serde_json::{json, Value};

const REAL_FILES: [&str; 6] = [
    "networks-bbn-1/global-params.json",
    "networks-bbn-test-4/global-params.json",
    "staking-api-service/v0.2.12/config_global-params.json",
    "staking-api-service/v0.2.12/tests_config_global-params-test.json",
    "staking-api-service/v0.3.8/config_global-params.json",
    "staking-api-service/v0.3.8/tests_config_global-params-test.json",
];
const E2E_FILE: &str = "staking-api-service/e2e-HEAD/testdata/global-params.json";

#[test]
fn real_params_files_parse_and_round_trip() {
    for rel in REAL_FILES.iter().chain([&E2E_FILE]) {
        let Some(text) = common::read_text(rel) else { continue };
        let gp = GlobalParams::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        // Re-serialising gives the same versions (all fields present, zero caps emitted).
        let out = gp.to_json();
        let again = GlobalParams::parse(&out).unwrap();
        assert_eq!(again, gp, "{rel}: round trip");
        let v: Value = serde_json::from_str(&out).unwrap();
        for entry in v["versions"].as_array().unwrap() {
            assert_eq!(entry.as_object().unwrap().len(), 14, "{rel}: all 14 fields emitted");
        }
        // Same numbers and strings as the source file (the source omits the unset cap field).
        let src: Value = serde_json::from_str(&text).unwrap();
        for (a, b) in src["versions"].as_array().unwrap().iter().zip(v["versions"].as_array().unwrap()) {
            for (k, val) in a.as_object().unwrap() {
                assert_eq!(&b[k], val, "{rel}: field {k}");
            }
            for k in ["staking_cap", "cap_height"] {
                if a.get(k).is_none() {
                    assert_eq!(b[k], 0, "{rel}: absent {k} is emitted as 0");
                }
            }
        }
        // serde Deserialize validates too.
        assert_eq!(serde_json::from_str::<GlobalParams>(&text).unwrap(), gp);
    }
}

#[test]
fn real_files_have_expected_content() {
    let Some(text) = common::read_text("networks-bbn-1/global-params.json") else { return };
    let gp = GlobalParams::parse(&text).unwrap();
    assert_eq!(gp.versions.len(), 3);
    let v0 = &gp.versions[0];
    assert_eq!(v0.tag_bytes(), *b"bbn1");
    assert_eq!((v0.staking_cap, v0.cap_height), (100_000_000_000, 0));
    assert_eq!((gp.versions[1].staking_cap, gp.versions[1].cap_height), (0, 864_799));
    assert_eq!(v0.committee().len(), 9);
    assert_eq!(v0.committee().quorum(), 6);
    assert_eq!(v0.unbonding_fee, 64000);
    assert_eq!(gp.versions[1].unbonding_fee, 32000);
    assert_eq!(gp.versions[2].max_staking_amount, 500_000_000_000);
    if let Some(text) = common::read_text("networks-bbn-test-4/global-params.json") {
        let t4 = GlobalParams::parse(&text).unwrap();
        assert_eq!(t4.versions.len(), 5);
        assert!(t4.versions.iter().all(|v| v.tag_bytes() == *b"bbt4"));
    }
}

/// The API's `/v1/global-params` body for the e2e fixture equals our serialisation.
#[test]
fn e2e_fixture_serialises_to_the_api_response() {
    let Some(text) = common::read_text(E2E_FILE) else { return };
    let cases = json_or_skip!("staking-api-service/e2e-HEAD/v1-api-cases.json");
    let expected = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["endpoint"] == "/v1/global-params")
        .expect("global params case")["expected_json"]["data"]
        .clone();
    let gp = GlobalParams::parse(&text).unwrap();
    assert_eq!(serde_json::to_value(&gp).unwrap(), expected);
}

fn base_version() -> Value {
    json!({
        "version": 0,
        "activation_height": 857910,
        "staking_cap": 100000000000u64,
        "tag": "62626e31",
        "covenant_pks": [
            "03d45c70d28f169e1f0c7f4a78e2bc73497afe585b70aa897955989068f3350aaa",
            "034b15848e495a3a62283daaadb3f458a00859fe48e321f0121ebabbdd6698f9fa",
            "0223b29f89b45f4af41588dcaf0ca572ada32872a88224f311373917f1b37d08d1"
        ],
        "covenant_quorum": 2,
        "unbonding_time": 1008,
        "unbonding_fee": 64000,
        "max_staking_amount": 5000000,
        "min_staking_amount": 500000,
        "max_staking_time": 64000,
        "min_staking_time": 64000,
        "confirmation_depth": 10
    })
}

fn one(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = base_version();
    edit(&mut v);
    json!({ "versions": [v] }).to_string()
}

fn two(edit: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut a = base_version();
    let mut b = base_version();
    b["version"] = json!(1);
    b["activation_height"] = json!(864790);
    edit(&mut a, &mut b);
    json!({ "versions": [a, b] }).to_string()
}

fn expect_err(name: &str, json: &str, field: Option<&str>) -> ParamsError {
    let e = GlobalParams::parse(json).expect_err(name);
    let text = e.to_string();
    eprintln!("{name:>42}: {text}");
    assert_eq!(e.field(), field, "{name}: {text}");
    if let Some(f) = field {
        assert!(text.contains(f), "{name}: message names the field: {text}");
    }
    e
}

#[test]
fn base_fixture_is_valid() {
    GlobalParams::parse(&one(|_| {})).unwrap();
    GlobalParams::parse(&two(|_, _| {})).unwrap();
}

#[test]
fn every_rule_rejects_with_a_named_field() {
    let i64_over = (i64::MAX as u64) + 1;
    let cases: Vec<(&str, String, &str)> = vec![
        // per version, in the Go parser's order
        ("tag not hex", one(|v| v["tag"] = json!("zz626e31")), "tag"),
        ("tag not 4 bytes", one(|v| v["tag"] = json!("62626e")), "tag"),
        ("covenant_pks empty", one(|v| v["covenant_pks"] = json!([])), "covenant_pks"),
        ("quorum above #keys", one(|v| v["covenant_quorum"] = json!(4)), "covenant_quorum"),
        ("quorum zero", one(|v| v["covenant_quorum"] = json!(0)), "covenant_quorum"),
        ("covenant key not hex", one(|v| v["covenant_pks"][1] = json!("03xx")), "covenant_pks"),
        (
            "covenant key x-only (32 bytes)",
            one(|v| v["covenant_pks"][1] = json!("4b15848e495a3a62283daaadb3f458a00859fe48e321f0121ebabbdd6698f9fa")),
            "covenant_pks",
        ),
        (
            "covenant key not on curve",
            one(|v| v["covenant_pks"][1] = json!(format!("02{}", "ff".repeat(32)))),
            "covenant_pks",
        ),
        (
            "covenant keys share an x coordinate",
            one(|v| v["covenant_pks"][2] = json!("024b15848e495a3a62283daaadb3f458a00859fe48e321f0121ebabbdd6698f9fa")),
            "covenant_pks",
        ),
        ("max_staking_amount zero", one(|v| v["max_staking_amount"] = json!(0)), "max_staking_amount"),
        ("max_staking_amount > 2^63-1", one(|v| v["max_staking_amount"] = json!(i64_over)), "max_staking_amount"),
        ("min_staking_amount zero", one(|v| v["min_staking_amount"] = json!(0)), "min_staking_amount"),
        ("min_staking_amount > 2^63-1", one(|v| v["min_staking_amount"] = json!(i64_over)), "min_staking_amount"),
        ("max < min staking amount", one(|v| v["max_staking_amount"] = json!(499999)), "max_staking_amount"),
        ("unbonding_time zero", one(|v| v["unbonding_time"] = json!(0)), "unbonding_time"),
        ("unbonding_time > 65535", one(|v| v["unbonding_time"] = json!(65536)), "unbonding_time"),
        ("unbonding_fee zero", one(|v| v["unbonding_fee"] = json!(0)), "unbonding_fee"),
        ("unbonding_fee > 2^63-1", one(|v| v["unbonding_fee"] = json!(i64_over)), "unbonding_fee"),
        (
            "min_staking_amount < fee + 1000",
            one(|v| {
                v["unbonding_fee"] = json!(500);
                v["min_staking_amount"] = json!(1499);
            }),
            "min_staking_amount",
        ),
        ("max_staking_time zero", one(|v| v["max_staking_time"] = json!(0)), "max_staking_time"),
        ("max_staking_time > 65535", one(|v| v["max_staking_time"] = json!(70000)), "max_staking_time"),
        ("min_staking_time zero", one(|v| v["min_staking_time"] = json!(0)), "min_staking_time"),
        ("min_staking_time > 65535", one(|v| v["min_staking_time"] = json!(65536)), "min_staking_time"),
        ("max < min staking time", one(|v| v["max_staking_time"] = json!(63999)), "max_staking_time"),
        ("confirmation_depth 1", one(|v| v["confirmation_depth"] = json!(1)), "confirmation_depth"),
        ("confirmation_depth 0", one(|v| v["confirmation_depth"] = json!(0)), "confirmation_depth"),
        ("confirmation_depth > 65535", one(|v| v["confirmation_depth"] = json!(65536)), "confirmation_depth"),
        ("activation_height zero", one(|v| v["activation_height"] = json!(0)), "activation_height"),
        ("both caps set", one(|v| v["cap_height"] = json!(900000)), "staking_cap"),
        (
            "neither cap set",
            one(|v| {
                v.as_object_mut().unwrap().remove("staking_cap");
            }),
            "staking_cap",
        ),
        ("staking_cap > 2^63-1", one(|v| v["staking_cap"] = json!(i64_over)), "staking_cap"),
        ("staking_cap < max_staking_amount", one(|v| v["staking_cap"] = json!(4999999)), "staking_cap"),
        // across versions
        ("version gap", two(|_, b| b["version"] = json!(2)), "version"),
        ("version repeated", two(|_, b| b["version"] = json!(0)), "version"),
        ("staking cap decreases", two(|_, b| b["staking_cap"] = json!(99999999999u64)), "staking_cap"),
        ("activation height equal", two(|_, b| b["activation_height"] = json!(857910)), "activation_height"),
        ("activation height lower", two(|_, b| b["activation_height"] = json!(1)), "activation_height"),
        // JSON shape
        (
            "missing field",
            one(|v| {
                v.as_object_mut().unwrap().remove("tag");
            }),
            "tag",
        ),
        ("negative number", one(|v| v["unbonding_fee"] = json!(-1)), "unbonding_fee"),
        ("float number", one(|v| v["unbonding_fee"] = json!(1.5)), "unbonding_fee"),
        ("string number", one(|v| v["unbonding_fee"] = json!("1000")), "unbonding_fee"),
        ("tag not a string", one(|v| v["tag"] = json!(62626)), "tag"),
        ("unknown field (typo)", one(|v| v["staking_capp"] = json!(1)), "staking_capp"),
        ("empty versions", r#"{"versions": []}"#.to_string(), "versions"),
        ("missing versions", r#"{}"#.to_string(), "versions"),
        ("unknown top-level field", r#"{"versions": [], "verison": 1}"#.to_string(), "verison"),
    ];
    for (name, json, field) in &cases {
        expect_err(name, json, Some(field));
    }
    expect_err("not JSON", "{", None);
}

#[test]
fn errors_say_where_and_how_to_fix() {
    let e = expect_err(
        "min_staking_amount < fee + 1000 (v1)",
        &two(|_, b| {
            b["unbonding_fee"] = json!(2000);
            b["min_staking_amount"] = json!(1500);
            b["max_staking_amount"] = json!(1500000);
        }),
        Some("min_staking_amount"),
    );
    assert_eq!((e.index(), e.version()), (Some(1), Some(1)));
    assert_eq!(
        e.to_string(),
        "global params versions[1] (version 1): min_staking_amount 1500 must be >= unbonding_fee + 1000 = 3000 \
         (raise min_staking_amount or lower unbonding_fee)"
    );
    let e = expect_err("unknown field hint", &one(|v| v["staking_capp"] = json!(1)), Some("staking_capp"));
    assert!(e.to_string().contains("did you mean \"staking_cap\""), "{e}");
    assert_eq!(e.index(), Some(0));
    // Earlier rules win: a bad tag is reported before a zero quorum.
    expect_err(
        "two faults, first rule reported",
        &one(|v| {
            v["tag"] = json!("00");
            v["covenant_quorum"] = json!(0);
        }),
        Some("tag"),
    );
    // Per-version rules of entry 1 come before the cross-version rules of entry 1.
    expect_err(
        "per-version before cross-version",
        &two(|_, b| {
            b["version"] = json!(5);
            b["confirmation_depth"] = json!(1);
        }),
        Some("confirmation_depth"),
    );
}

#[test]
fn staking_cap_rule_skips_time_capped_versions() {
    // v0 cap 1000 BTC, v1 time-capped, v2 value cap 999 BTC < last non-zero cap → rejected.
    let mut a = base_version();
    let mut b = base_version();
    let mut c = base_version();
    b["version"] = json!(1);
    b["activation_height"] = json!(864790);
    b.as_object_mut().unwrap().remove("staking_cap");
    b["cap_height"] = json!(864799);
    c["version"] = json!(2);
    c["activation_height"] = json!(874088);
    c["staking_cap"] = json!(99_900_000_000u64);
    let bad = json!({ "versions": [a.clone(), b.clone(), c.clone()] }).to_string();
    let e = expect_err("cap decreases across a time-capped version", &bad, Some("staking_cap"));
    assert_eq!(e.index(), Some(2));
    c["staking_cap"] = json!(100_000_000_000u64);
    a["staking_cap"] = json!(100_000_000_000u64);
    GlobalParams::parse(&json!({ "versions": [a, b, c] }).to_string()).unwrap();
    // cap_height is not required to increase (README only).
    let mut x = base_version();
    x.as_object_mut().unwrap().remove("staking_cap");
    x["cap_height"] = json!(900000);
    let mut y = x.clone();
    y["version"] = json!(1);
    y["activation_height"] = json!(900001);
    y["cap_height"] = json!(800000);
    GlobalParams::parse(&json!({ "versions": [x, y] }).to_string()).unwrap();
}

#[test]
fn for_height_boundaries() {
    let Some(text) = common::read_text("networks-bbn-1/global-params.json") else { return };
    let gp = GlobalParams::parse(&text).unwrap();
    let at = |h: u64| gp.for_height(h).map(|(i, v)| (i, v.version));
    assert_eq!(at(0), None);
    assert_eq!(at(857909), None);
    assert_eq!(at(857910), Some((0, 0)));
    assert_eq!(at(864789), Some((0, 0)));
    assert_eq!(at(864790), Some((1, 1)));
    assert_eq!(at(874087), Some((1, 1)));
    assert_eq!(at(874088), Some((2, 2)));
    assert_eq!(at(u64::MAX), Some((2, 2)));
}

#[test]
fn committee_is_precomputed_per_version() {
    let gp = GlobalParams::parse(&one(|_| {})).unwrap();
    let v = &gp.versions[0];
    let c = v.committee();
    assert_eq!(c.quorum(), 2);
    assert_eq!(c.keys_compressed(), v.covenant_pks.as_slice());
    let sorted: Vec<String> = c.keys_xonly_sorted().iter().map(|k| k.to_string()).collect();
    let mut expect = sorted.clone();
    expect.sort();
    assert_eq!(sorted, expect);
    assert_eq!(
        to_hex(c.multisig_script().as_bytes()),
        format!(
            "20{}ac20{}ba20{}ba529c",
            "23b29f89b45f4af41588dcaf0ca572ada32872a88224f311373917f1b37d08d1",
            "4b15848e495a3a62283daaadb3f458a00859fe48e321f0121ebabbdd6698f9fa",
            "d45c70d28f169e1f0c7f4a78e2bc73497afe585b70aa897955989068f3350aaa"
        )
    );
    assert_eq!(phase1_primitives::CovenantCommittee::from_params(v).unwrap(), *c);
}
