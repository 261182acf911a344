//! Conformance with Babylon's own btc-staking-ts v0.3.0 (`btc-staking-ts-probe-default-output.json`
//! in `../shared/research-data`, skipped with a message when absent): the pipeline, fed that
//! file's staking transaction and unbonding request, sends each member exactly the file's
//! covenant-signer request, accepts the file's covenant signatures (they verify), and sends
//! exactly the file's `fully_signed_tx_hex`. The signers and bitcoind are test doubles answering
//! from the file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use guest_sdk::testing::TestHost;
use guest_sdk::HttpReply;
use phase1_primitives::params::{GlobalParams, ParamsFields};
use serde_json::{json, Value};
use unbonding::state::{self, states, Progress};
use unbonding::Unbonding;

const FILE: &str = "btc-staking-ts-probe-default-output.json";
const FEED: &str = "http://engine/plugins/phase1-staking/unbonding-requests";

fn research(file: &str) -> Option<Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/research-data").join(file);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(serde_json::from_str(&t).unwrap()),
        Err(_) => {
            eprintln!("SKIP: {} not found (the research data is not beside the checkout)", p.display());
            None
        }
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} missing"))
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k} missing"))
}

#[test]
fn pipeline_sends_btc_staking_ts_fully_signed_unbonding_tx() {
    let Some(d) = research(FILE) else { return };
    let (inp, u, st) = (&d["inputs"], &d["unbonding"], &d["staking"]);
    let pp = &inp["params"];
    let requests = u["covenant_signer_requests"].as_array().unwrap().clone();
    // The members' compressed keys as the signer requests carry them (params list those).
    let compressed: Vec<String> = inp["covenant_pks_xonly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let r = requests.iter().find(|r| s(r, "covenant_public_key")[2..] == *x.as_str().unwrap()).unwrap();
            s(r, "covenant_public_key").to_string()
        })
        .collect();
    let params = GlobalParams::from_fields(&[ParamsFields {
        version: n(pp, "version"),
        activation_height: n(pp, "activation_height"),
        staking_cap: n(pp, "max_staking_amount"),
        tag: s(pp, "tag").into(),
        covenant_pks: compressed.clone(),
        covenant_quorum: n(pp, "covenant_quorum"),
        unbonding_time: n(pp, "unbonding_time"),
        unbonding_fee: n(pp, "unbonding_fee"),
        max_staking_amount: n(pp, "max_staking_amount"),
        min_staking_amount: n(pp, "min_staking_amount"),
        max_staking_time: n(pp, "max_staking_time"),
        min_staking_time: n(pp, "min_staking_time"),
        confirmation_depth: 2,
        ..Default::default()
    }])
    .unwrap();
    let signers: Vec<String> =
        compressed.iter().enumerate().map(|(i, k)| format!("http://{k}@127.0.0.1:{}", 9001 + i)).collect();
    let config = json!({ "requests_url": FEED, "global_params": params.to_json(), "covenant_signers": signers });

    let request = json!({
        "seq": 0,
        "staking_tx_hash_hex": s(st, "txid"),
        "staker_pk_hex": s(inp, "staker_pk_xonly"),
        "finality_pk_hex": s(inp, "finality_provider_pk_xonly"),
        "unbonding_tx_sig_hex": s(u, "staker_signature_hex"),
        "state": "INSERTED",
        "unbonding_tx_hash_hex": s(u, "txid"),
        "unbonding_tx_hex": s(u, "unsigned_tx_hex"),
        "staking_tx_hex": s(st, "tx_hex"),
        "staking_output_index": n(st, "staking_output_index"),
        "staking_timelock": n(inp, "staking_time"),
        "staking_amount": n(inp, "staking_amount"),
    });
    let file_sigs: Vec<(String, String)> = u["covenant_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(c, "btc_pk_hex").to_string(), s(c, "sig_hex").to_string()))
        .collect();
    let height = n(inp, "lock_height") + 1;
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();

    let mut h = TestHost::new(&config.to_string());
    let staking_tx_hex = s(st, "tx_hex").to_string();
    h.stub_bitcoind({
        let sent = sent.clone();
        move |method, params| match method {
            "getrawtransaction" => Ok(json!({ "hex": staking_tx_hex, "blockhash": "11".repeat(32) })),
            "getblockheader" => Ok(json!({ "height": height })),
            "gettxout" => Ok(json!({ "value": 0.001 })),
            "sendrawtransaction" => {
                sent.lock().unwrap().push(params[0].as_str().unwrap().to_string());
                Ok(json!("txid"))
            }
            m => Err(format!("unexpected {m}")),
        }
    });
    h.stub_http(move |call| {
        if call.url.starts_with(FEED) {
            let data = if call.url.contains("after=") { json!([]) } else { json!([request]) };
            return Ok(HttpReply { status: 200, body: json!({ "data": data }).to_string().into_bytes() });
        }
        let body: Value = serde_json::from_slice(&call.body).unwrap();
        let key = s(&body, "covenant_public_key").to_string();
        // Exactly btc-staking-ts's covenant-signer request for this member.
        let expected = requests.iter().find(|r| s(r, "covenant_public_key") == key).unwrap();
        assert_eq!(&body, expected, "the request sent to {key}");
        match file_sigs.iter().find(|(x, _)| *x == key[2..]) {
            Some((_, sig)) => Ok(HttpReply {
                status: 200,
                body: json!({ "data": { "signature_hex": sig } }).to_string().into_bytes(),
            }),
            None => Ok(HttpReply {
                status: 500,
                body: br#"{"errorCode":"INTERNAL_SERVICE_ERROR","message":"not in the file"}"#.to_vec(),
            }),
        }
    });
    h.run_job::<Unbonding>().unwrap();

    let mut txid = hex::decode(s(st, "txid")).unwrap();
    txid.reverse();
    let p: Progress = serde_json::from_slice(&h.local[&state::progress_key(&txid.try_into().unwrap())]).unwrap();
    assert_eq!(p.state, states::SEND, "{:?}", p.last_error);
    assert_eq!(p.covenant_signatures as usize, u["covenant_signatures"].as_array().unwrap().len());
    assert_eq!(sent.lock().unwrap().as_slice(), [s(u, "fully_signed_tx_hex").to_string()], "byte for byte");
}
