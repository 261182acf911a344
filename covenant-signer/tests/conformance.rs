//! Conformance with Babylon's own btc-staking-ts v0.3.0 (the golden output in
//! `../shared/research-data/btc-staking-ts-probe-default-output.json`, skipped when absent):
//!
//! * the §8.2 pipeline, over a chain that serves the file's staking tx as confirmed, approves each
//!   of the file's covenant-signer requests, and the message it would have the wallet sign is the
//!   file's sighash;
//! * the PSBT the signer sends carries that request, and the signer's extraction path accepts the
//!   file's covenant signatures (as a wallet would return them) and returns them unchanged;
//! * the file's two covenant signatures plus the staker signature, assembled as the unbonding
//!   pipeline does, give the file's `fully_signed_tx_hex` byte for byte.
//!
//! The file holds no covenant private keys (and they are not derivable from simple seeds), so
//! signing by a real wallet is covered by the regtest acceptance test instead.

mod testing;

use covenant_signer::checks::{check_signing_request, Policy};
use covenant_signer::request::parse_request;
use covenant_signer::wallet::{build_psbt, signature_from_psbt};
use phase1_primitives::bitcoin::consensus::encode::{deserialize, serialize_hex};
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::sighash::TapSighashType;
use phase1_primitives::bitcoin::taproot::{self, LeafVersion, TapLeafHash};
use phase1_primitives::bitcoin::{Transaction, XOnlyPublicKey};
use phase1_primitives::params::ParamsFields;
use phase1_primitives::sighash::unbonding_witness;
use phase1_primitives::GlobalParams;
use serde_json::Value;
use testing::*;

const FILE: &str = "btc-staking-ts-probe-default-output.json";

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} missing"))
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k} missing"))
}

fn tx(h: &str) -> Transaction {
    deserialize(&hex::decode(h).unwrap()).unwrap()
}

#[test]
fn signer_accepts_btc_staking_ts_requests_and_reproduces_the_signed_tx() {
    let Some(d) = research_json(FILE) else { return };
    let inp = &d["inputs"];
    let pp = &inp["params"];
    let cov_x: Vec<String> =
        inp["covenant_pks_xonly"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    // The probe's params, completed to a full version (value cap, depth 2). The params carry x-only
    // keys; the covenant-signer requests carry each member's compressed key (02/03), which is what
    // a params file lists and the signer compares byte for byte.
    let requests = d["unbonding"]["covenant_signer_requests"].as_array().unwrap();
    let compressed: Vec<String> = cov_x
        .iter()
        .map(|x| {
            let r = requests.iter().find(|r| s(r, "covenant_public_key")[2..] == *x).expect("a request per member");
            s(r, "covenant_public_key").to_string()
        })
        .collect();
    let params = GlobalParams::from_fields(&[ParamsFields {
        version: n(pp, "version"),
        activation_height: n(pp, "activation_height"),
        staking_cap: n(pp, "max_staking_amount"),
        tag: s(pp, "tag").into(),
        covenant_pks: compressed,
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
    let version = &params.versions[0];

    // The staking tx, confirmed in the block after its lock height, two confirmations deep.
    let staking_tx = tx(s(&d["staking"], "tx_hex"));
    let height = n(inp, "lock_height") as u32 + 1;
    let mut chain = MemChain::default();
    chain.confirm(&staking_tx, height);
    chain.tip = height + 1;

    let u = &d["unbonding"];
    let file_sigs: Vec<(XOnlyPublicKey, [u8; 64])> = u["covenant_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(c, "btc_pk_hex").parse().unwrap(), hex::decode(s(c, "sig_hex")).unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(requests.len(), cov_x.len(), "one request per covenant member");
    let mut approved_any = None;
    for r in requests {
        // The request body exactly as btc-staking-ts produced it.
        let req = parse_request(r.to_string().as_bytes()).unwrap();
        let a = check_signing_request(&req, &params, &Policy::default(), &chain).unwrap_or_else(|e| {
            panic!("the signer refuses btc-staking-ts's request for {}: {e}", s(r, "covenant_public_key"))
        });
        assert_eq!(a.params_version, version.version);
        assert_eq!(hex::encode(a.sighash.to_byte_array()), s(u, "sighash"), "the message the wallet signs");
        assert_eq!(serialize_hex(&a.unbonding_tx), s(u, "unsigned_tx_hex"));
        assert_eq!(hex::encode(a.staking.unbonding_leaf_hash().to_byte_array()), s(u, "unbonding_leaf_hash"));

        // The PSBT the wallet gets, and what the signer takes from the wallet's answer.
        let psbt = build_psbt(&a);
        assert_eq!(serialize_hex(&psbt.unsigned_tx), s(u, "unsigned_tx_hex"));
        let x = a.covenant_key.x_only_public_key().0;
        if let Some((_, sig)) = file_sigs.iter().find(|(k, _)| *k == x) {
            let mut answered = psbt.clone();
            let leaf = TapLeafHash::from_script(&a.unbonding_script(), LeafVersion::TapScript);
            answered.inputs[0].tap_script_sigs.insert(
                (x, leaf),
                taproot::Signature {
                    signature: phase1_primitives::bitcoin::secp256k1::schnorr::Signature::from_slice(sig).unwrap(),
                    sighash_type: TapSighashType::Default,
                },
            );
            assert_eq!(
                &signature_from_psbt(&answered, &a, "probe").unwrap(),
                sig,
                "btc-staking-ts's signature for {x}"
            );
        }
        approved_any = Some(a);
    }
    let a = approved_any.unwrap();

    // The fully signed unbonding tx from the file's covenant signatures, byte for byte.
    let staker_sig: [u8; 64] = hex::decode(s(u, "staker_signature_hex")).unwrap().try_into().unwrap();
    let mut signed = a.unbonding_tx.clone();
    signed.input[0].witness = unbonding_witness(&file_sigs, &staker_sig, &a.staking, version.committee()).unwrap();
    assert_eq!(serialize_hex(&signed), s(u, "fully_signed_tx_hex"), "fully signed unbonding tx byte-equal");
}
