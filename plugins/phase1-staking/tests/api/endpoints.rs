//! The other endpoints: stats (legacy and accurate), global params, finality providers by key,
//! delegations, address checks and lookups, health, metrics, the OpenAPI document, and the
//! route table.

use guest_sdk::bitcoin::key::CompressedPublicKey;
use guest_sdk::bitcoin::secp256k1::Secp256k1;
use guest_sdk::bitcoin::{Address, Network};
use phase1_staking::state::{self, BtcInfo, State, Stats, TxRecord};
use phase1_staking::Phase1Staking;
use serde_json::json;

use crate::support::{self, assert_error, body};

#[test]
fn overall_stats_legacy_and_accurate() {
    let mut h = support::host(&[]);
    let empty = support::get(&mut h, "/v1/stats");
    assert_eq!(
        body(&empty),
        json!({"data": {"active_tvl": 0, "total_tvl": 0, "active_delegations": 0, "total_delegations": 0,
                        "total_stakers": 0, "unconfirmed_tvl": 0, "pending_tvl": 0}})
    );
    support::put_overall(&mut h, state::STATS, Stats { total_stakers: 7, ..support::stats(900, 1_000, 9, 10) });
    support::put_overall(
        &mut h,
        state::STATS_ACCURATE,
        Stats { total_stakers: 7, ..support::stats(600, 1_000, 6, 10) },
    );
    support::put_btc_info(&mut h, BtcInfo { height: 300, confirmed_tvl: 5_000, unconfirmed_tvl: 7_500 });
    let r = support::get(&mut h, "/v1/stats");
    assert_eq!(
        r.text_body(),
        r#"{"data":{"active_tvl":900,"total_tvl":1000,"active_delegations":9,"total_delegations":10,"total_stakers":7,"unconfirmed_tvl":7500,"pending_tvl":2500}}"#
    );
    // Unbonding in the unconfirmed window: the legacy u64 subtraction wraps, the accurate view
    // is signed.
    support::put_btc_info(&mut h, BtcInfo { height: 301, confirmed_tvl: 5_000, unconfirmed_tvl: 4_000 });
    let r = support::get(&mut h, "/v1/stats");
    assert_eq!(body(&r)["data"]["pending_tvl"], json!(u64::MAX - 999));
    let r = h.get::<Phase1Staking>("/stats");
    let b = body(&r);
    assert_eq!(b["data"]["active_tvl"], 600);
    assert_eq!(b["data"]["active_delegations"], 6);
    assert_eq!(b["data"]["total_tvl"], 1_000);
    assert_eq!(b["data"]["unconfirmed_tvl"], 4_000);
    assert_eq!(b["data"]["pending_tvl"], -1_000);
    assert!(b["data"]["semantics"].as_str().unwrap().contains("expired"));
}

#[test]
fn global_params_emit_every_field() {
    let mut h = support::host(&[]);
    let r = support::get(&mut h, "/v1/global-params");
    let params: serde_json::Value = serde_json::from_str(&support::params_json()).unwrap();
    let mut expected = params["versions"][0].clone();
    expected["cap_height"] = json!(0);
    assert_eq!(body(&r), json!({ "data": { "versions": [expected] } }));
    let text = r.text_body();
    assert!(text.starts_with(r#"{"data":{"versions":[{"version":0,"activation_height":100,"staking_cap":50000000000,"cap_height":0,"tag":"01020304""#), "{text}");
}

#[test]
fn finality_provider_by_key() {
    let mut h = support::host(&[21, 22]);
    support::put_fp_stats(&mut h, support::pk(21), support::stats(10, 20, 1, 2));
    support::put_fp_stats(&mut h, support::pk(23), support::stats(30, 40, 3, 4));
    let one = |h: &mut guest_sdk::testing::TestHost, seed: u32| {
        body(&support::get(h, &format!("/v1/finality-providers?fp_btc_pk={}", support::pk_hex(seed))))
    };
    // Registered with stats.
    assert_eq!(
        one(&mut h, 21),
        json!({"data": [{"description": {"moniker": "FP 21", "identity": "", "website": "", "security_contact": "", "details": ""},
                         "commission": "0.050000000000000000", "btc_pk": support::pk_hex(21),
                         "active_tvl": 10, "total_tvl": 20, "active_delegations": 1, "total_delegations": 2}]})
    );
    // Registered without stats: zeros.
    assert_eq!(one(&mut h, 22)["data"][0]["active_tvl"], 0);
    assert_eq!(one(&mut h, 22)["data"][0]["description"]["moniker"], "FP 22");
    // Unregistered with stats: empty description and commission.
    assert_eq!(one(&mut h, 23)["data"][0]["commission"], "");
    assert_eq!(one(&mut h, 23)["data"][0]["total_delegations"], 4);
    // Unknown.
    assert_eq!(one(&mut h, 24), json!({ "data": null }));
    assert_error(
        &support::get(&mut h, "/v1/finality-providers?fp_btc_pk=invalid"),
        400,
        "BAD_REQUEST",
        "invalid fp_btc_pk",
    );
    // Not a curve point.
    let r = support::get(&mut h, &format!("/v1/finality-providers?fp_btc_pk={}", "f".repeat(64)));
    assert_error(&r, 400, "BAD_REQUEST", "invalid fp_btc_pk");
}

#[test]
fn finality_providers_without_any_stats_list_the_registry() {
    let mut h = support::host(&[31, 32]);
    let b = body(&support::get(&mut h, "/v1/finality-providers"));
    let mut pks = vec![support::pk_hex(31), support::pk_hex(32)];
    pks.sort();
    let got: Vec<&str> = b["data"].as_array().unwrap().iter().map(|r| r["btc_pk"].as_str().unwrap()).collect();
    assert_eq!(got, pks);
    assert_eq!(b["pagination"]["next_key"], "");
    // Nothing registered and nothing ranked: the Go service's nil slice.
    let mut h = support::host_without_fps();
    assert_eq!(
        body(&support::get(&mut h, "/v1/finality-providers")),
        json!({"data": null, "pagination": {"next_key": ""}})
    );
}

#[test]
fn staker_stats_by_key() {
    let mut h = support::host(&[]);
    support::put_staker_stats(&mut h, support::pk(41), support::stats(5, 6, 1, 2));
    let r = support::get(&mut h, &format!("/v1/stats/staker?staker_btc_pk={}", support::pk_hex(41)));
    assert_eq!(
        r.text_body(),
        format!(
            r#"{{"data":[{{"staker_pk_hex":"{}","active_tvl":5,"total_tvl":6,"active_delegations":1,"total_delegations":2}}]}}"#,
            support::pk_hex(41)
        )
    );
    let r = support::get(&mut h, &format!("/v1/stats/staker?staker_btc_pk={}", support::pk_hex(42)));
    assert_eq!(r.text_body(), r#"{"data":null}"#);
    assert_error(
        &support::get(&mut h, "/v1/stats/staker?staker_btc_pk=12"),
        400,
        "BAD_REQUEST",
        "invalid staker_btc_pk",
    );
}

#[test]
fn delegation_shapes_and_errors() {
    let mut h = support::host(&[]);
    let txid = support::txid(1);
    let mut d =
        support::delegation(&txid, &support::pk(1), &support::pk(2), 123_456, 150, 1_716_884_348, State::Unbonding);
    d.is_overflow = true;
    d.unbonding_tx = Some(TxRecord {
        tx_hex: "abcd".into(),
        output_index: 0,
        start_timestamp: 1_716_900_000,
        start_height: 170,
        timelock: 1_000,
    });
    support::put_delegation(&mut h, &txid, &d);
    let r = support::get(&mut h, &format!("/v1/delegation?staking_tx_hash_hex={}", support::display(&txid)));
    assert_eq!(
        r.text_body(),
        format!(
            concat!(
                r#"{{"data":{{"staking_tx_hash_hex":"{}","staker_pk_hex":"{}","finality_provider_pk_hex":"{}","#,
                r#""state":"unbonding","staking_value":123456,"staking_tx":{{"tx_hex":"{}","output_index":0,"#,
                r#""start_timestamp":"2024-05-28T08:19:08Z","start_height":150,"timelock":1000}},"#,
                r#""unbonding_tx":{{"tx_hex":"abcd","output_index":0,"start_timestamp":"2024-05-28T12:40:00Z","#,
                r#""start_height":170,"timelock":1000}},"is_overflow":true}}}}"#
            ),
            support::display(&txid),
            support::pk_hex(1),
            support::pk_hex(2),
            "00".repeat(10)
        )
    );
    // Hex case does not matter.
    let r =
        support::get(&mut h, &format!("/v1/delegation?staking_tx_hash_hex={}", support::display(&txid).to_uppercase()));
    assert_eq!(r.status, 200);
    assert_error(&support::get(&mut h, "/v1/delegation"), 400, "BAD_REQUEST", "staking_tx_hash_hex is required");
    assert_error(
        &support::get(&mut h, "/v1/delegation?staking_tx_hash_hex=invalid"),
        400,
        "BAD_REQUEST",
        "invalid staking_tx_hash_hex",
    );
    assert_error(
        &support::get(&mut h, "/v1/delegation?staking_tx_hash_hex=abc"),
        404,
        "NOT_FOUND",
        "staking delegation not found, please retry",
    );
    assert_error(&support::get(&mut h, "/v1/staker/delegations"), 400, "BAD_REQUEST", "staker_btc_pk is required");
    assert_error(
        &support::get(&mut h, "/v1/staker/delegations?staker_btc_pk=invalid"),
        400,
        "BAD_REQUEST",
        "invalid staker_btc_pk",
    );
}

/// The staker's addresses on `network`: taproot (BIP-86 key path only), P2WPKH of 02‖x and 03‖x.
fn addresses(seed: u32, network: Network) -> [String; 3] {
    let secp = Secp256k1::verification_only();
    let x = support::xonly(seed);
    let segwit = |parity: u8| {
        let mut c = [parity; 33];
        c[1..].copy_from_slice(&x.serialize());
        Address::p2wpkh(&CompressedPublicKey::from_slice(&c).unwrap(), network).to_string()
    };
    [Address::p2tr(&secp, x, None, network).to_string(), segwit(2), segwit(3)]
}

#[test]
fn delegation_check_by_address() {
    let mut h = support::host(&[]);
    let staker = 51;
    let day = 1_716_854_400; // 2024-05-28T00:00:00Z
                             // An active stake from the day before the newest one, and an unbonded one on the newest day.
    let old = support::txid(1);
    support::put_delegation(
        &mut h,
        &old,
        &support::delegation(&old, &support::pk(staker), &support::pk(2), 1, 150, day - 10, State::Active),
    );
    let new = support::txid(2);
    support::put_delegation(
        &mut h,
        &new,
        &support::delegation(&new, &support::pk(staker), &support::pk(2), 1, 160, day + 30_000, State::Unbonded),
    );
    let check = |h: &mut guest_sdk::testing::TestHost, address: &str, timeframe: &str| {
        let r = support::get(h, &format!("/v1/staker/delegation/check?address={address}&timeframe={timeframe}"));
        assert_eq!(r.status, 200, "{}", r.text_body());
        body(&r)
    };
    for network in [Network::Bitcoin, Network::Testnet, Network::Signet, Network::Regtest] {
        for a in addresses(staker, network) {
            assert_eq!(check(&mut h, &a, ""), json!({ "data": true, "code": 0 }), "{a}");
            // "today" = since 00:00 UTC of the newest block time known (the newest stake's day).
            assert_eq!(check(&mut h, &a, "today"), json!({ "data": false, "code": 0 }), "{a}");
        }
    }
    let other = &addresses(52, Network::Bitcoin)[0];
    assert_eq!(check(&mut h, other, ""), json!({ "data": false, "code": 0 }));
    // Once its unbonding is requested, a delegation no longer counts as active.
    h.local.insert(state::request_key(&old), b"{}".to_vec());
    assert_eq!(check(&mut h, &addresses(staker, Network::Bitcoin)[0], ""), json!({ "data": false, "code": 0 }));
    h.local.clear();
    // Active on the newest day.
    let today = support::txid(3);
    support::put_delegation(
        &mut h,
        &today,
        &support::delegation(&today, &support::pk(staker), &support::pk(2), 1, 161, day + 40_000, State::Active),
    );
    assert_eq!(check(&mut h, &addresses(staker, Network::Bitcoin)[1], "today"), json!({ "data": true, "code": 0 }));

    assert_error(&support::get(&mut h, "/v1/staker/delegation/check"), 400, "BAD_REQUEST", "address is required");
    let a = &addresses(staker, Network::Bitcoin)[0];
    let r = support::get(&mut h, &format!("/v1/staker/delegation/check?address={a}&timeframe=week"));
    assert_error(&r, 400, "BAD_REQUEST", "invalid timeframe value");
    // P2PKH decodes but is not supported; garbage does not decode.
    let r = support::get(&mut h, "/v1/staker/delegation/check?address=1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2");
    assert_error(&r, 400, "BAD_REQUEST", "unsupported btc address type");
    let r = support::get(&mut h, "/v1/staker/delegation/check?address=bc1qnotanaddress");
    let (status, code, message) = support::error_of(&r);
    assert_eq!((status, code.as_str()), (400, "BAD_REQUEST"));
    assert!(message.starts_with("can not decode btc address: "), "{message}");
}

#[test]
fn pubkey_lookup() {
    let mut h = support::host(&[]);
    for (i, seed) in [61u32, 62].iter().enumerate() {
        let txid = support::txid(100 + i as u32);
        support::put_delegation(
            &mut h,
            &txid,
            &support::delegation(&txid, &support::pk(*seed), &support::pk(2), 1, 150, 0, State::Withdrawn),
        );
    }
    let a61 = addresses(61, Network::Bitcoin);
    let a62 = addresses(62, Network::Testnet);
    let unknown = addresses(63, Network::Bitcoin);
    let target = format!(
        "/v1/staker/pubkey-lookup?address={}&address={}&address={}&address={}",
        a62[2], a61[0], unknown[0], a61[1]
    );
    let r = support::get(&mut h, &target);
    assert_eq!(
        body(&r),
        json!({ "data": { &a61[0]: support::pk_hex(61), &a61[1]: support::pk_hex(61), &a62[2]: support::pk_hex(62) } })
    );
    let r = support::get(&mut h, &format!("/v1/staker/pubkey-lookup?address={}", unknown[1]));
    assert_eq!(r.text_body(), r#"{"data":{}}"#);
    assert_error(&support::get(&mut h, "/v1/staker/pubkey-lookup"), 400, "BAD_REQUEST", "address is required");
    let eleven = (0..11).map(|_| format!("address={}", a61[0])).collect::<Vec<_>>().join("&");
    let r = support::get(&mut h, &format!("/v1/staker/pubkey-lookup?{eleven}"));
    assert_error(&r, 400, "BAD_REQUEST", "Maximum 10 address allowed");
    let ten = (0..10).map(|_| format!("address={}", a61[0])).collect::<Vec<_>>().join("&");
    assert_eq!(support::get(&mut h, &format!("/v1/staker/pubkey-lookup?{ten}")).status, 200);
    let r = support::get(
        &mut h,
        &format!("/v1/staker/pubkey-lookup?address={}&address=3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", a61[0]),
    );
    assert_error(&r, 400, "BAD_REQUEST", "unsupported btc address type");
}

#[test]
fn healthcheck_metrics_and_openapi() {
    let mut h = support::host(&[]);
    let r = support::get(&mut h, "/healthcheck");
    assert_eq!((r.status, r.text_body()), (200, r#"{"data":"Server is up and running"}"#.to_string()));

    let r = h.get::<Phase1Staking>("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; version=0.0.4");
    let rendered = h.run(phase1_staking::metrics::render);
    assert_eq!(r.text_body(), rendered);

    let r = support::get(&mut h, "/openapi.json");
    assert_eq!(r.status, 200);
    let doc = body(&r);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path, legacy, _) in phase1_staking::api::route_table() {
        let served =
            if legacy { path.to_string() } else { format!("{}{path}", phase1_staking::api::openapi::MOUNT_POINT) };
        assert!(
            doc["paths"][&served][method.to_ascii_lowercase()].is_object(),
            "{method} {served} missing from the OpenAPI document"
        );
    }
    // Every schema reference resolves.
    let text = r.text_body();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
}

#[test]
fn routes_are_declared_as_specified() {
    let mut h = support::host(&[]);
    let manifest = h.init::<Phase1Staking>().unwrap();
    let routes: Vec<(String, String, bool, bool)> =
        manifest.routes.iter().map(|r| (r.method.clone(), r.path.clone(), r.legacy, r.write)).collect();
    let legacy_reads = [
        "/healthcheck",
        "/v1/staker/delegations",
        "/v1/delegation",
        "/v1/unbonding/eligibility",
        "/v1/global-params",
        "/v1/finality-providers",
        "/v1/stats",
        "/v1/stats/staker",
        "/v1/staker/delegation/check",
        "/v1/staker/pubkey-lookup",
        "/openapi.json",
    ];
    let mut expected: Vec<(String, String, bool, bool)> =
        legacy_reads.iter().map(|p| ("GET".to_string(), p.to_string(), true, false)).collect();
    expected.push(("POST".into(), "/v1/unbonding".into(), true, true));
    expected.push(("GET".into(), "/metrics".into(), false, false));
    expected.push(("GET".into(), "/stats".into(), false, false));
    expected.push(("GET".into(), "/unbonding-requests".into(), false, false));
    let mut got = routes.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}
