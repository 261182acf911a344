//! Conformance with Babylon's own btc-staking-ts v0.3.0 (research-data
//! `btc-staking-ts-probe-default-output.json`, regtest, default config).
//!
//! The file does not contain the staker's private key, so signatures cannot be re-made here.
//! Everything else is ours and compared byte for byte: the staking and OP_RETURN outputs, the
//! unbonding tx and its txid, the `/v1/unbonding` payload (with the file's signature, which must
//! verify over our sighash), and both withdrawal transactions, built by our unsigned builders to
//! the file's destination and fee and completed with the file's signatures.

mod testing;

use staking_cli::bitcoin::consensus::encode::deserialize_hex;
use staking_cli::bitcoin::hashes::Hash;
use staking_cli::bitcoin::hex::{DisplayHex, FromHex};
use staking_cli::bitcoin::{ScriptBuf, Transaction, XOnlyPublicKey};
use staking_cli::phase1_primitives::params::{GlobalParams, ParamsFields};
use staking_cli::*;
use testing::*;

const FILE: &str = "btc-staking-ts-probe-default-output.json";

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("missing string field {k}"))
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("missing integer field {k}"))
}

fn sig64(hex: &str) -> [u8; 64] {
    Vec::<u8>::from_hex(hex).unwrap().try_into().expect("64-byte signature")
}

fn tx(hex: &str) -> Transaction {
    deserialize_hex(hex).expect("transaction hex")
}

#[test]
fn btc_staking_ts_probe_byte_equal() {
    let Some(d) = read_json(FILE) else { return };
    let inp = &d["inputs"];
    let pp = &inp["params"];
    let staker: XOnlyPublicKey = s(inp, "staker_pk_xonly").parse().unwrap();
    let fp: XOnlyPublicKey = s(inp, "finality_provider_pk_xonly").parse().unwrap();
    // The probe knows x-only covenant keys only; even parity gives the same scripts.
    let cov: Vec<String> =
        inp["covenant_pks_xonly"].as_array().unwrap().iter().map(|k| format!("02{}", k.as_str().unwrap())).collect();
    let params = GlobalParams::from_fields(&[ParamsFields {
        version: n(pp, "version"),
        activation_height: n(pp, "activation_height"),
        staking_cap: n(pp, "max_staking_amount"),
        tag: s(pp, "tag").into(),
        covenant_pks: cov,
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
    let height = n(inp, "lock_height") + 1; // mineable from lock_height + 1 (nLockTime = lock_height)
    let staking_time = n(inp, "staking_time") as u16;
    let amount = n(inp, "staking_amount");

    // Staking outputs: ours are the file's outputs 0 and 1 (the wallet added the change after).
    let st = &d["staking"];
    let file_staking = tx(s(st, "tx_hex"));
    let ours = staking_tx(&staker, &fp, staking_time, amount, &params.versions[0]).unwrap();
    assert_eq!(ours.output[..], file_staking.output[..2], "staking + OP_RETURN outputs byte-equal");
    assert_eq!(ours.version, file_staking.version);

    // Unbonding request: our canonical tx and hashes, the file's signature (verified by us).
    let stake = Stake::new(file_staking.clone(), &params, height).unwrap();
    let u = &d["unbonding"];
    let ub = stake.unbonding_tx().unwrap();
    assert_eq!(tx_hex(&ub), s(u, "unsigned_tx_hex"), "unsigned unbonding tx byte-equal");
    assert_eq!(unbonding_sighash(&stake, &ub).unwrap().to_byte_array().to_lower_hex_string(), s(u, "sighash"));
    let api = &u["api_v1_unbonding_payload"];
    let req = unbonding_request_with_signature(&stake, &sig64(s(api, "staker_signed_signature_hex"))).unwrap();
    let file_req: UnbondingRequestJson = serde_json::from_value(api.clone()).unwrap();
    assert_eq!(req, file_req, "the /v1/unbonding payload equals btc-staking-ts's");

    // The fully signed unbonding tx from the file's signatures.
    let cov_sigs: Vec<(XOnlyPublicKey, [u8; 64])> = u["covenant_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(c, "btc_pk_hex").parse().unwrap(), sig64(s(c, "sig_hex"))))
        .collect();
    let signed = signed_unbonding_tx(&stake, &sig64(s(u, "staker_signature_hex")), &cov_sigs).unwrap();
    assert_eq!(tx_hex(&signed), s(u, "fully_signed_tx_hex"), "fully signed unbonding tx byte-equal");

    // Both withdrawals go back to the staker's address (the funding UTXO's script).
    let to = ScriptBuf::from_bytes(Vec::<u8>::from_hex(s(&inp["funding_utxo"], "scriptPubKey")).unwrap());

    let we = &d["withdraw_expired"];
    let file_we = tx(s(we, "tx_hex"));
    let unsigned = unsigned_withdrawal_from_staking(&stake, &to, n(we, "fee")).unwrap();
    let sig: [u8; 64] = file_we.input[0].witness.nth(0).unwrap().try_into().unwrap();
    let ours = unsigned.with_signature(&sig).expect("the file's signature verifies over our sighash");
    assert_eq!(tx_hex(&ours), s(we, "tx_hex"), "expired-stake withdrawal byte-equal");

    let wu = &d["withdraw_unbonded"];
    let file_wu = tx(s(wu, "tx_hex"));
    let sig: [u8; 64] = file_wu.input[0].witness.nth(0).unwrap().try_into().unwrap();
    for unbonding_tx in [None, Some(&signed)] {
        let unsigned = unsigned_withdrawal_from_unbonding(&stake, unbonding_tx, &to, n(wu, "fee")).unwrap();
        let ours = unsigned.with_signature(&sig).expect("the file's signature verifies over our sighash");
        assert_eq!(tx_hex(&ours), s(wu, "tx_hex"), "unbonded withdrawal byte-equal");
    }
    eprintln!("NOTE: {FILE} has no staker private key: signatures were verified over our sighashes, not re-made");
}
