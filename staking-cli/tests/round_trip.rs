//! The library's outputs checked by phase1-primitives' own rules: the unbonding request passes
//! the API check (§6.6), the signed unbonding tx is a valid unbonding and both withdrawals are
//! classified as withdrawals (§2.4); errors name the problem.

mod testing;

use std::str::FromStr;

use staking_cli::bitcoin::consensus::encode::deserialize_hex;
use staking_cli::bitcoin::hex::FromHex;
use staking_cli::bitcoin::{Address, Network, Sequence, Transaction, Txid};
use staking_cli::phase1_primitives::op_return::V0OpReturn;
use staking_cli::phase1_primitives::unbonding::{
    check_unbonding_request, classify_staking_spend, classify_unbonding_spend, StakingSpend, UnbondingRequest,
    UnbondingSpend,
};
use staking_cli::phase1_primitives::{is_possible_v0_staking_tx, parse_v0_staking_tx, Leaf};
use staking_cli::*;
use testing::*;

const STAKING_TIME: u16 = 50;
const AMOUNT: u64 = 1_000_000;
const HEIGHT: u64 = 150;

fn dest() -> Address {
    Address::p2tr(signing::secp(), xonly(0x77), None, Network::Regtest)
}

/// A funded staking tx of the test staker under version 0.
fn stake_tx() -> Transaction {
    let params = params();
    let unfunded = staking_tx(&xonly(STAKER), &xonly(FP), STAKING_TIME, AMOUNT, &params.versions[0]).unwrap();
    funded(unfunded, 9)
}

#[test]
fn staking_tx_shape() {
    let params = params();
    let v0 = &params.versions[0];
    let tx = staking_tx(&xonly(STAKER), &xonly(FP), STAKING_TIME, AMOUNT, v0).unwrap();
    assert_eq!(tx.version.0, 2);
    assert_eq!(tx.lock_time.to_consensus_u32(), 0);
    assert!(tx.input.is_empty());
    assert_eq!(tx.output.len(), 2);
    assert_eq!(tx.output[0].value.to_sat(), AMOUNT);
    assert_eq!(tx.output[1].value.to_sat(), 0);
    let op = V0OpReturn::parse(&tx.output[1].script_pubkey).unwrap();
    assert_eq!(op, V0OpReturn::new(v0.tag_bytes(), xonly(STAKER), xonly(FP), STAKING_TIME));
    assert!(is_possible_v0_staking_tx(&tx, v0.tag_bytes()));
    let parsed = parse_v0_staking_tx(&tx, v0.tag_bytes(), v0.committee()).unwrap();
    assert_eq!((parsed.staking_output_index, parsed.op_return_index), (0, 1));
    // The legacy hex (no segwit marker for a tx without inputs) reads back.
    let hex = tx_hex(&tx);
    assert!(hex.starts_with("020000000002"), "{hex}");
    assert_eq!(input::parse_tx("tx", &hex).unwrap(), tx);

    // Step C bounds and distinct keys.
    let err = staking_tx(&xonly(STAKER), &xonly(FP), STAKING_TIME, 9_999, v0).unwrap_err().to_string();
    assert!(err.contains("below min_staking_amount 10000") && err.contains("--no-param-checks"), "{err}");
    let err = staking_tx(&xonly(STAKER), &xonly(FP), 1001, AMOUNT, v0).unwrap_err().to_string();
    assert!(err.contains("above max_staking_time 1000"), "{err}");
    assert!(staking_tx_unchecked(&xonly(STAKER), &xonly(FP), 1001, 9_999, v0).is_ok());
    let err = staking_tx(&xonly(STAKER), &xonly(STAKER), STAKING_TIME, AMOUNT, v0).unwrap_err().to_string();
    assert!(err.contains("must all be distinct"), "{err}");
    let err = staking_tx(&xonly(COVENANTS[0]), &xonly(FP), STAKING_TIME, AMOUNT, v0).unwrap_err().to_string();
    assert!(err.contains("covenant key"), "{err}");
}

#[test]
fn unbonding_request_passes_the_api_check() {
    let params = params();
    let tx = stake_tx();
    let req = unbonding_request(&keypair(STAKER), &tx, &params, HEIGHT).unwrap();
    assert_eq!(req.staking_tx_hash_hex, tx.compute_txid().to_string());
    let ub: Transaction = deserialize_hex(&req.unbonding_tx_hex).unwrap();
    assert_eq!(req.unbonding_tx_hash_hex, ub.compute_txid().to_string());
    let sig = Vec::<u8>::from_hex(&req.staker_signed_signature_hex).unwrap();
    assert_eq!(sig.len(), 64);

    // Canonical form, §2.1.
    assert_eq!(ub.version.0, 2);
    assert_eq!(ub.lock_time.to_consensus_u32(), 0);
    assert_eq!(ub.input.len(), 1);
    assert_eq!(ub.input[0].sequence, Sequence::MAX);
    assert!(ub.input[0].witness.is_empty());
    assert_eq!(ub.output.len(), 1);
    assert_eq!(ub.output[0].value.to_sat(), AMOUNT - UNBONDING_FEE);

    let stake = Stake::new(tx.clone(), &params, HEIGHT).unwrap();
    let request = UnbondingRequest {
        unbonding_tx: &ub,
        unbonding_txid: Txid::from_str(&req.unbonding_tx_hash_hex).unwrap(),
        staker_signature: &sig,
    };
    for strict in [false, true] {
        check_unbonding_request(&request, stake.info(), stake.outpoint(), AMOUNT, stake.params(), strict).unwrap();
    }
    // Deterministic signing: the same request twice.
    assert_eq!(unbonding_request(&keypair(STAKER), &tx, &params, HEIGHT).unwrap(), req);

    // The JSON: cli-tools' field names and order, Go's 4-space indentation.
    let json = to_legacy_json(&req);
    let order: Vec<usize> =
        ["staking_tx_hash_hex", "unbonding_tx_hex", "unbonding_tx_hash_hex", "staker_signed_signature_hex"]
            .iter()
            .map(|k| json.find(&format!("\n    \"{k}\": ")).unwrap_or_else(|| panic!("{k} in {json}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert_eq!(serde_json::from_str::<UnbondingRequestJson>(&json).unwrap(), req);

    // With covenant signatures it is a valid unbonding for the indexer.
    let sighash = unbonding_sighash(&stake, &ub).unwrap();
    let staker_sig: [u8; 64] = sig.as_slice().try_into().unwrap();
    let signed = signed_unbonding_tx(&stake, &staker_sig, &covenant_sigs(&sighash)).unwrap();
    assert_eq!(signed.compute_txid(), ub.compute_txid());
    assert_eq!(
        classify_staking_spend(&signed, 0, stake.info(), stake.outpoint(), AMOUNT, stake.params()),
        StakingSpend::ValidUnbonding
    );
    // Wrong or too many covenant signatures are refused before they reach the chain.
    let mut bad = covenant_sigs(&sighash);
    bad[0].1[0] ^= 1;
    let err = signed_unbonding_tx(&stake, &staker_sig, &bad).unwrap_err().to_string();
    assert!(err.contains("does not verify"), "{err}");
    let three: Vec<_> = COVENANTS.iter().map(|b| (xonly(*b), sign(*b, &sighash))).collect();
    let err = signed_unbonding_tx(&stake, &staker_sig, &three).unwrap_err().to_string();
    assert!(err.contains("exactly the quorum 2"), "{err}");
    // A signature by another key is not accepted as the staker's.
    let err = unbonding_request_with_signature(&stake, &sign(0x66, &sighash)).unwrap_err().to_string();
    assert!(err.contains("does not verify"), "{err}");
}

#[test]
fn withdrawals_are_classified_as_withdrawals() {
    let params = params();
    let tx = stake_tx();
    let stake = Stake::new(tx.clone(), &params, HEIGHT).unwrap();
    let to = dest().script_pubkey();
    let staker = keypair(STAKER);

    // From the staking output.
    let w = withdraw_from_staking(&staker, &tx, &params, HEIGHT, &to, 500).unwrap();
    assert_eq!(w.version.0, 2);
    assert_eq!(w.lock_time.to_consensus_u32(), 0);
    assert_eq!(w.input.len(), 1);
    assert_eq!(w.input[0].previous_output, stake.outpoint());
    assert_eq!(w.input[0].sequence, Sequence(u32::from(STAKING_TIME)));
    assert_eq!(w.output.len(), 1);
    assert_eq!(w.output[0].value.to_sat(), AMOUNT - 500);
    assert_eq!(w.output[0].script_pubkey, to);
    let wit: Vec<&[u8]> = w.input[0].witness.iter().collect();
    assert_eq!(wit.len(), 3);
    assert_eq!(wit[1], stake.info().timelock_script().as_bytes());
    assert_eq!(wit[2], stake.info().control_block(Leaf::Timelock).serialize().as_slice());
    assert_eq!(
        classify_staking_spend(&w, 0, stake.info(), stake.outpoint(), AMOUNT, stake.params()),
        StakingSpend::Withdrawal
    );
    let unsigned = unsigned_withdrawal_from_staking(&stake, &to, 500).unwrap();
    let sig: [u8; 64] = wit[0].try_into().unwrap();
    assert_eq!(unsigned.with_signature(&sig).unwrap(), w);

    // From the unbonding output: canonical rebuild and the mined (signed) unbonding tx agree.
    let ub = stake.unbonding_tx().unwrap();
    let sighash = unbonding_sighash(&stake, &ub).unwrap();
    let signed_ub = signed_unbonding_tx(&stake, &sign(STAKER, &sighash), &covenant_sigs(&sighash)).unwrap();
    let w1 = withdraw_from_unbonding(&staker, &tx, None, &params, HEIGHT, &to, 700).unwrap();
    let w2 = withdraw_from_unbonding(&staker, &tx, Some(&signed_ub), &params, HEIGHT, &to, 700).unwrap();
    assert_eq!(w1, w2);
    assert_eq!(w1.input[0].previous_output.txid, ub.compute_txid());
    assert_eq!(w1.input[0].previous_output.vout, 0);
    assert_eq!(w1.input[0].sequence, Sequence(u32::from(UNBONDING_TIME)));
    assert_eq!(w1.output[0].value.to_sat(), AMOUNT - UNBONDING_FEE - 700);
    assert_eq!(classify_unbonding_spend(&w1, 0, &stake.unbonding_info()), UnbondingSpend::Withdrawal);
    // A withdrawal from the staking output is not one from the unbonding output, and vice versa.
    assert!(matches!(classify_unbonding_spend(&w, 0, &stake.unbonding_info()), UnbondingSpend::InvalidWithdrawal(_)));
}

#[test]
fn errors_name_the_problem_and_the_fix() {
    let params = params();
    let tx = stake_tx();
    let to = dest().script_pubkey();

    // Another key.
    let err = unbonding_request(&keypair(0x66), &tx, &params, HEIGHT).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("staker key does not match the staking transaction's staker key {}", xonly(STAKER)))
            && msg.contains("pass the key the stake was made with"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 2);
    assert!(matches!(
        withdraw_from_staking(&keypair(0x66), &tx, &params, HEIGHT, &to, 500),
        Err(Error::KeyMismatch { .. })
    ));
    assert!(matches!(
        withdraw_from_unbonding(&keypair(0x66), &tx, None, &params, HEIGHT, &to, 500),
        Err(Error::KeyMismatch { .. })
    ));

    // A height before the first version.
    let err = unbonding_request(&keypair(STAKER), &tx, &params, 99).unwrap_err();
    assert!(matches!(err, Error::NoParamsVersion { height: 99, first_activation: 100 }), "{err}");
    assert!(err.to_string().contains("pass the staking transaction's inclusion height"), "{err}");

    // A height of another version (other tag): not a staking tx there.
    let err = unbonding_request(&keypair(STAKER), &tx, &params, 300).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotAStakingTx { version: 1, .. }), "{msg}");
    assert!(msg.contains("does not match the params tag 01020305") && msg.contains("check --height"), "{msg}");

    // The unfunded tx.
    let unfunded = staking_tx(&xonly(STAKER), &xonly(FP), STAKING_TIME, AMOUNT, &params.versions[0]).unwrap();
    let err = unbonding_request(&keypair(STAKER), &unfunded, &params, HEIGHT).unwrap_err().to_string();
    assert!(err.contains("no inputs") && err.contains("funded, signed staking transaction"), "{err}");

    // Fees.
    let err = withdraw_from_staking(&keypair(STAKER), &tx, &params, HEIGHT, &to, AMOUNT).unwrap_err().to_string();
    assert!(err.contains("is not below the value 1000000 sat"), "{err}");
    let err = withdraw_from_staking(&keypair(STAKER), &tx, &params, HEIGHT, &to, AMOUNT - 100).unwrap_err().to_string();
    assert!(err.contains("below the dust limit"), "{err}");

    // An unbonding tx of another stake.
    let other =
        funded(staking_tx(&xonly(STAKER), &xonly(FP), STAKING_TIME + 1, AMOUNT, &params.versions[0]).unwrap(), 10);
    let other_ub = Stake::new(other, &params, HEIGHT).unwrap().unbonding_tx().unwrap();
    let err = withdraw_from_unbonding(&keypair(STAKER), &tx, Some(&other_ub), &params, HEIGHT, &to, 500)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not spend the staking output"), "{err}");
}
