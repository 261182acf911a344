//! Fixtures for the API tests: deterministic keys, a params file and a finality-provider file
//! built from them, a `TestHost` with the plugin's config, and chain-state seeding with the
//! plugin's own `state.rs` layout (as the indexer writes it).

#![allow(dead_code)]

use guest_sdk::bitcoin::hashes::{sha256, Hash};
use guest_sdk::bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use guest_sdk::bitcoin::XOnlyPublicKey;
use guest_sdk::testing::TestHost;
use guest_sdk::{store, HttpResponse};
use phase1_staking::state::{self, BtcInfo, Delegation, Hash32, State, Stats, TxRecord};
use phase1_staking::Phase1Staking;
use serde_json::{json, Value};

/// A keypair from a small seed (secret key = sha256("key" ‖ seed)).
pub fn keypair(seed: u32) -> Keypair {
    let secret = sha256::Hash::hash(format!("key{seed}").as_bytes()).to_byte_array();
    Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&secret).unwrap())
}

/// The x-only key of `keypair(seed)`.
pub fn xonly(seed: u32) -> XOnlyPublicKey {
    keypair(seed).x_only_public_key().0
}

/// The x-only key bytes of `keypair(seed)`.
pub fn pk(seed: u32) -> Hash32 {
    xonly(seed).serialize()
}

pub fn pk_hex(seed: u32) -> String {
    hex::encode(pk(seed))
}

/// A fake txid (internal order) from a seed.
pub fn txid(seed: u32) -> Hash32 {
    sha256::Hash::hash(format!("tx{seed}").as_bytes()).to_byte_array()
}

/// Display-order hex of an internal-order txid.
pub fn display(txid: &Hash32) -> String {
    guest_sdk::hash_hex(txid)
}

/// Covenant key seeds of the test params (3 keys, quorum 2).
pub const COVENANT_SEEDS: [u32; 3] = [901, 902, 903];
pub const ACTIVATION: u32 = 100;
pub const UNBONDING_FEE: u64 = 20_000;
pub const UNBONDING_TIME: u64 = 1_000;

/// A valid `global-params.json`: one version active from height 100.
pub fn params_json() -> String {
    let covenant: Vec<String> = COVENANT_SEEDS.iter().map(|s| keypair(*s).public_key().to_string()).collect();
    json!({ "versions": [{
        "version": 0,
        "activation_height": ACTIVATION,
        "staking_cap": 50_000_000_000u64,
        "tag": "01020304",
        "covenant_pks": covenant,
        "covenant_quorum": 2,
        "unbonding_time": UNBONDING_TIME,
        "unbonding_fee": UNBONDING_FEE,
        "max_staking_amount": 1_000_000_000u64,
        "min_staking_amount": 100_000,
        "max_staking_time": 65_000,
        "min_staking_time": 100,
        "confirmation_depth": 10
    }]})
    .to_string()
}

/// A finality-provider file registering the providers of `seeds` (moniker `FP <seed>`).
pub fn fp_file(seeds: &[u32]) -> String {
    let fps: Vec<Value> = seeds
        .iter()
        .map(|s| {
            json!({
                "description": { "moniker": format!("FP {s}"), "identity": "", "website": "", "security_contact": "", "details": "" },
                "commission": "0.050000000000000000",
                "btc_pk": pk_hex(*s)
            })
        })
        .collect();
    json!({ "finality_providers": fps }).to_string()
}

/// The plugin's config JSON.
pub fn config(params: &str, fps: Option<&str>, page_size: u32, version_2: bool) -> String {
    let mut c = json!({ "global_params": params, "page_size": page_size, "require_unbonding_version_2": version_2 });
    if let Some(f) = fps {
        c["finality_providers"] = Value::String(f.to_string());
    }
    c.to_string()
}

/// A host with the test params, providers `fp_seeds` registered, page size 10.
pub fn host(fp_seeds: &[u32]) -> TestHost {
    host_with(fp_seeds, 10, false)
}

pub fn host_with(fp_seeds: &[u32], page_size: u32, version_2: bool) -> TestHost {
    let fps = fp_file(fp_seeds);
    let mut h = TestHost::new(&config(&params_json(), Some(&fps), page_size, version_2));
    h.init::<Phase1Staking>().expect("init");
    h
}

/// A host without a finality-provider file.
pub fn host_without_fps() -> TestHost {
    let mut h = TestHost::new(&config(&params_json(), None, 10, false));
    h.init::<Phase1Staking>().expect("init");
    h
}

/// A delegation record as the indexer stores it.
pub fn delegation(
    txid: &Hash32,
    staker: &Hash32,
    fp: &Hash32,
    value: u64,
    height: u32,
    timestamp: i64,
    state: State,
) -> Delegation {
    Delegation {
        staking_tx_hash_hex: display(txid),
        staker_pk_hex: hex::encode(staker),
        finality_provider_pk_hex: hex::encode(fp),
        staking_value: value,
        state,
        is_overflow: false,
        params_version: 0,
        staking_tx: TxRecord {
            tx_hex: "00".repeat(10),
            output_index: 0,
            start_timestamp: timestamp,
            start_height: height,
            timelock: 1_000,
        },
        unbonding_tx: None,
        unbonding_tx_hash_hex: None,
        expired: None,
        withdraw_tx_hash_hex: None,
    }
}

/// Stores a delegation, its staker-index entry and the staker's addresses (the API's view of an
/// indexed stake).
pub fn put_delegation(h: &mut TestHost, txid: &Hash32, d: &Delegation) {
    let d = d.clone();
    let txid = *txid;
    h.run(move || {
        state::put_delegation(&txid, &d).unwrap();
        let staker = state::parse_hash32(&d.staker_pk_hex).unwrap();
        store::put(state::staker_index_key(&staker, d.staking_tx.start_height, &txid), []);
        let _ = phase1_staking::indexer::index_addresses(&staker);
        // The indexer keeps the newest block's time; a stake's block is at most that new.
        let time = store::get_u64(state::TIP_TIME).max(d.staking_tx.start_timestamp as u64);
        store::put_u64(state::TIP_TIME, time);
    });
}

/// Stores a ranked statistics row (`f`/`k` row plus its `F`/`K` ranking key).
pub fn put_ranked_stats(h: &mut TestHost, row_key: Vec<u8>, rank_prefix: &'static [u8], pk: Hash32, s: Stats) {
    h.run(move || {
        store::put_json(&row_key, &s).unwrap();
        store::put(state::rank_key(rank_prefix, s.active_tvl, &pk), []);
    });
}

pub fn put_fp_stats(h: &mut TestHost, pk: Hash32, s: Stats) {
    put_ranked_stats(h, state::fp_stats_key(&pk), state::FP_RANK, pk, s);
}

pub fn put_staker_stats(h: &mut TestHost, pk: Hash32, s: Stats) {
    put_ranked_stats(h, state::staker_stats_key(&pk), state::STAKER_RANK, pk, s);
}

pub fn put_overall(h: &mut TestHost, key: &'static [u8], s: Stats) {
    h.run(move || store::put_json(key, &s).unwrap());
}

pub fn put_btc_info(h: &mut TestHost, info: BtcInfo) {
    h.run(move || store::put_json(state::BTC_INFO, &info).unwrap());
}

pub fn stats(active_tvl: u64, total_tvl: u64, active: u64, total: u64) -> Stats {
    Stats { active_tvl, total_tvl, active_delegations: active, total_delegations: total, total_stakers: 0 }
}

/// `GET target` through the manifest's routes.
pub fn get(h: &mut TestHost, target: &str) -> HttpResponse {
    h.get::<Phase1Staking>(target)
}

/// `POST target`.
pub fn post(h: &mut TestHost, target: &str, body: impl AsRef<[u8]>) -> HttpResponse {
    h.post::<Phase1Staking>(target, body)
}

/// The body as JSON.
pub fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", r.text_body()))
}

/// Asserts a legacy error answer.
#[track_caller]
pub fn assert_error(r: &HttpResponse, status: u16, code: &str, message: &str) {
    assert_eq!(
        (r.status, body(r)),
        (status, json!({ "errorCode": code, "message": message })),
        "answer: {}",
        r.text_body()
    );
}

/// The error code and message of a legacy error answer.
pub fn error_of(r: &HttpResponse) -> (u16, String, String) {
    let b = body(r);
    (r.status, b["errorCode"].as_str().unwrap_or_default().into(), b["message"].as_str().unwrap_or_default().into())
}
