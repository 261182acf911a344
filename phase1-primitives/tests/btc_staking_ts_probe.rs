//! Golden output of the real btc-staking-ts v0.3.0 library (regtest, default config): staking
//! output and transaction, unbonding transaction (unsigned, staker-only, fully signed), covenant
//! signer requests, the /v1/unbonding payload and both withdrawals.

mod common;

use std::str::FromStr;

use common::*;
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::{OutPoint, Txid, XOnlyPublicKey};
use phase1_primitives::params::{ParamsFields, ParamsVersion};
use phase1_primitives::sighash::{
    staking_withdrawal_sighash, unbonding_sighash, unbonding_withdrawal_sighash, unbonding_witness, verify_schnorr,
    withdrawal_witness,
};
use phase1_primitives::staking_tx::validate_staking_amount_time;
use phase1_primitives::unbonding::{
    build_unbonding_tx, check_unbonding_request, classify_staking_spend, classify_unbonding_spend, StakingSpend,
    UnbondingParams, UnbondingRequest, UnbondingSpend,
};
use phase1_primitives::{is_possible_v0_staking_tx, parse_v0_staking_tx, CovenantCommittee, Leaf, StakingInfo};

const FILE: &str = "btc-staking-ts-probe-default-output.json";

fn sig64(b: &[u8]) -> [u8; 64] {
    b.try_into().expect("64-byte signature")
}

#[test]
fn btc_staking_ts_probe_round_trip() {
    let d = json_or_skip!(FILE);
    let inp = &d["inputs"];
    let pp = &inp["params"];
    let staker = xonly(str_of(inp, "staker_pk_xonly"));
    let fp = xonly(str_of(inp, "finality_provider_pk_xonly"));
    let cov: Vec<XOnlyPublicKey> =
        inp["covenant_pks_xonly"].as_array().unwrap().iter().map(|k| xonly(k.as_str().unwrap())).collect();
    let committee = CovenantCommittee::from_xonly(&cov, u64_of(pp, "covenant_quorum") as u32).unwrap();
    let tag: [u8; 4] = unhex(str_of(pp, "tag")).try_into().unwrap();
    let staking_time = u64_of(inp, "staking_time") as u16;
    let amount = u64_of(inp, "staking_amount");
    let params = UnbondingParams {
        unbonding_fee: u64_of(pp, "unbonding_fee"),
        unbonding_time: u64_of(pp, "unbonding_time") as u16,
    };

    // Scripts.
    let info = StakingInfo::new(&staker, &[fp], &committee, staking_time).unwrap();
    let s = &d["scripts"];
    assert_eq!(to_hex(info.timelock_script()), str_of(s, "timelockScript"));
    assert_eq!(to_hex(info.unbonding_script()), str_of(s, "unbondingScript"));
    assert_eq!(to_hex(info.slashing_script()), str_of(s, "slashingScript"));
    let unbonding = info.unbonding_info(params.unbonding_time);
    assert_eq!(to_hex(unbonding.timelock_script()), str_of(s, "unbondingTimelockScript"));
    let op = phase1_primitives::V0OpReturn::new(tag, staker, fp, staking_time);
    assert_eq!(to_hex(op.to_script()), str_of(s, "dataEmbedScript"));

    // Staking transaction.
    let st = &d["staking"];
    let staking_tx = tx(str_of(st, "tx_hex"));
    assert_eq!(staking_tx.compute_txid().to_string(), str_of(st, "txid"));
    assert_eq!(u64::from(staking_tx.lock_time.to_consensus_u32()), u64_of(st, "locktime"));
    assert!(is_possible_v0_staking_tx(&staking_tx, tag));
    let parsed = parse_v0_staking_tx(&staking_tx, tag, &committee).unwrap();
    assert_eq!(u64::from(parsed.staking_output_index), u64_of(st, "staking_output_index"));
    assert_eq!(u64::from(parsed.op_return_index), u64_of(st, "op_return_index"));
    assert_eq!(parsed.staking_value, u64_of(st, "staking_output_value"));
    assert_eq!(parsed.staking_value, amount);
    assert_eq!(to_hex(parsed.info.pk_script()), str_of(st, "staking_output_script"));
    assert_eq!(to_hex(parsed.op_return.to_script()), str_of(st, "op_return_script"));
    assert_eq!(parsed.info, info);
    // Step C with the probe's params (completed with a value cap and depth to form a full version).
    let full = ParamsVersion::from_fields(&ParamsFields {
        version: u64_of(pp, "version"),
        activation_height: u64_of(pp, "activation_height"),
        staking_cap: u64_of(pp, "max_staking_amount"),
        tag: str_of(pp, "tag").into(),
        covenant_pks: cov.iter().map(|k| format!("02{k}")).collect(),
        covenant_quorum: u64_of(pp, "covenant_quorum"),
        unbonding_time: u64_of(pp, "unbonding_time"),
        unbonding_fee: u64_of(pp, "unbonding_fee"),
        max_staking_amount: u64_of(pp, "max_staking_amount"),
        min_staking_amount: u64_of(pp, "min_staking_amount"),
        max_staking_time: u64_of(pp, "max_staking_time"),
        min_staking_time: u64_of(pp, "min_staking_time"),
        confirmation_depth: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(full.committee(), &committee);
    validate_staking_amount_time(parsed.staking_value, staking_time, &full).unwrap();
    let staking_outpoint = OutPoint { txid: staking_tx.compute_txid(), vout: 0 };
    let staking_output = staking_tx.output[0].clone();

    // Unbonding: unsigned tx, sighash, signatures.
    let u = &d["unbonding"];
    let ub = build_unbonding_tx(staking_outpoint.txid, 0, amount, params, &staker, &[fp], &committee).unwrap();
    assert_eq!(tx_hex(&ub), str_of(u, "unsigned_tx_hex"));
    assert_eq!(ub.compute_txid().to_string(), str_of(u, "txid"));
    assert_eq!(to_hex(ub.output[0].script_pubkey.as_bytes()), str_of(u, "output_script"));
    assert_eq!(ub.output[0].value.to_sat(), u64_of(u, "output_value"));
    assert_eq!(to_hex(info.unbonding_leaf_hash().as_byte_array()), str_of(u, "unbonding_leaf_hash"));
    let sighash = unbonding_sighash(&ub, &staking_output, &info.unbonding_script()).unwrap();
    assert_eq!(to_hex(sighash.to_byte_array()), str_of(u, "sighash"));
    let staker_sig = sig64(&unhex(str_of(u, "staker_signature_hex")));
    assert!(verify_schnorr(&sighash, &staker_sig, &staker));

    // Staker-only signed tx: [staker_sig, unbonding leaf, control block].
    let mut staker_only = ub.clone();
    staker_only.input[0].witness =
        withdrawal_witness(&staker_sig, &info.unbonding_script(), &info.control_block(Leaf::Unbonding));
    assert_eq!(tx_hex(&staker_only), str_of(u, "staker_only_tx_hex"));

    // Fully signed: covenant witness assembled from the given signatures.
    let cov_sigs: Vec<(XOnlyPublicKey, [u8; 64])> = u["covenant_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (xonly(str_of(c, "btc_pk_hex")), sig64(&unhex(str_of(c, "sig_hex")))))
        .collect();
    for (pk, sig) in &cov_sigs {
        assert!(verify_schnorr(&sighash, sig, pk), "covenant signature of {pk}");
    }
    let mut signed = ub.clone();
    signed.input[0].witness = unbonding_witness(&cov_sigs, &staker_sig, &info, &committee).unwrap();
    assert_eq!(tx_hex(&signed), str_of(u, "fully_signed_tx_hex"), "fully signed unbonding tx byte-equal");
    assert_eq!(
        classify_staking_spend(&signed, 0, &info, staking_outpoint, amount, params),
        StakingSpend::ValidUnbonding
    );

    // Covenant signer requests.
    for r in u["covenant_signer_requests"].as_array().unwrap() {
        assert_eq!(str_of(r, "staking_output_pk_script_hex"), to_hex(info.pk_script()));
        assert_eq!(str_of(r, "unbonding_tx_hex"), tx_hex(&ub));
        assert_eq!(str_of(r, "staker_unbonding_sig_hex"), to_hex(staker_sig));
        // The probe only knows x-only covenant keys, so membership is checked on the x coordinate.
        assert!(committee.contains_xonly(&xonly(str_of(r, "covenant_public_key"))));
    }

    // The /v1/unbonding payload passes the API's checks (strict version-2 mode too).
    let api = &u["api_v1_unbonding_payload"];
    assert_eq!(str_of(api, "staking_tx_hash_hex"), staking_outpoint.txid.to_string());
    let api_tx = tx(str_of(api, "unbonding_tx_hex"));
    let api_sig = unhex(str_of(api, "staker_signed_signature_hex"));
    let request = UnbondingRequest {
        unbonding_tx: &api_tx,
        unbonding_txid: Txid::from_str(str_of(api, "unbonding_tx_hash_hex")).unwrap(),
        staker_signature: &api_sig,
    };
    for strict in [false, true] {
        check_unbonding_request(&request, &info, staking_outpoint, amount, params, strict).unwrap();
    }

    // Withdrawal from the unbonding output (timelock' leaf, sequence = unbonding_time).
    let wu = &d["withdraw_unbonded"];
    let wu_tx = tx(str_of(wu, "tx_hex"));
    assert_eq!(wu_tx.compute_txid().to_string(), str_of(wu, "txid"));
    assert_eq!(wu_tx.input[0].previous_output, OutPoint { txid: ub.compute_txid(), vout: 0 });
    assert_eq!(u64::from(wu_tx.input[0].sequence.0), u64_of(wu, "sequence"));
    let w = &wu_tx.input[0].witness;
    let wu_sig = sig64(w.nth(0).unwrap());
    assert_eq!(*w, withdrawal_witness(&wu_sig, &unbonding.timelock_script(), &unbonding.control_block_timelock()));
    let h = unbonding_withdrawal_sighash(&wu_tx, 0, std::slice::from_ref(&ub.output[0]), &unbonding).unwrap();
    assert!(verify_schnorr(&h, &wu_sig, &staker), "unbonded-withdrawal signature verifies");
    assert_eq!(classify_unbonding_spend(&wu_tx, 0, &unbonding), UnbondingSpend::Withdrawal);

    // Withdrawal of the expired stake (staking timelock leaf, sequence = staking_time).
    let we = &d["withdraw_expired"];
    let we_tx = tx(str_of(we, "tx_hex"));
    assert_eq!(we_tx.compute_txid().to_string(), str_of(we, "txid"));
    assert_eq!(we_tx.input[0].previous_output, staking_outpoint);
    assert_eq!(u64::from(we_tx.input[0].sequence.0), u64_of(we, "sequence"));
    let w = &we_tx.input[0].witness;
    let we_sig = sig64(w.nth(0).unwrap());
    assert_eq!(*w, withdrawal_witness(&we_sig, &info.timelock_script(), &info.control_block(Leaf::Timelock)));
    let h = staking_withdrawal_sighash(&we_tx, 0, std::slice::from_ref(&staking_output), &info).unwrap();
    assert!(verify_schnorr(&h, &we_sig, &staker), "expired-withdrawal signature verifies");
    assert_eq!(classify_staking_spend(&we_tx, 0, &info, staking_outpoint, amount, params), StakingSpend::Withdrawal);
}
