//! Trust Wallet's independent implementation (signet): staking → unbonding (2-of-3 covenant
//! signatures) → withdrawal of the unbonded output. Txids, BIP-341 sighashes, witness layout and
//! all signatures are checked against our derivation.

mod common;

use std::str::FromStr;

use common::*;
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::secp256k1::{Keypair, Message, Secp256k1};
use phase1_primitives::bitcoin::{
    absolute::LockTime, transaction::Version, Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness, XOnlyPublicKey,
};
use phase1_primitives::sighash::{
    unbonding_sighash, unbonding_withdrawal_sighash, unbonding_witness, verify_schnorr, withdrawal_witness,
};
use phase1_primitives::unbonding::{
    build_unbonding_tx, check_unbonding_request, classify_staking_spend, classify_unbonding_spend, StakingSpend,
    UnbondingParams, UnbondingRequest, UnbondingSpend,
};
use phase1_primitives::{is_possible_v0_staking_tx, parse_v0_staking_tx, CovenantCommittee, Leaf};

const FILE: &str = "trustwallet-babylon-signet-vectors.json";

fn sig64(b: &[u8]) -> [u8; 64] {
    b.try_into().expect("64-byte signature")
}

#[test]
fn trustwallet_signet_chain() {
    let d = json_or_skip!(FILE);
    let secp_all = Secp256k1::new();
    let tag: [u8; 4] = unhex(str_of(&d, "tag")).try_into().unwrap();
    let keypair = Keypair::from_seckey_slice(&secp_all, &unhex(str_of(&d, "staker_private_key"))).unwrap();
    let staker = xonly(str_of(&d, "staker_public_key"));
    assert_eq!(keypair.x_only_public_key().0, staker, "private key matches staker_public_key");
    assert_eq!(to_hex(keypair.public_key().serialize()), str_of(&d, "staker_public_key"));
    let fp = xonly(str_of(&d, "finality_provider_public_key"));
    let cov: Vec<_> =
        d["covenant_public_keys"].as_array().unwrap().iter().map(|k| compressed(k.as_str().unwrap())).collect();
    let committee = CovenantCommittee::new(cov, u64_of(&d, "covenant_quorum") as u32).unwrap();
    let staker_address = Address::p2tr(&secp_all, staker, None, Network::Signet);
    assert_eq!(staker_address.to_string(), str_of(&d, "staker_address"));

    // --- staking tx ---
    let s = &d["staking"];
    let staking_tx = tx(str_of(s, "tx_hex"));
    assert_eq!(staking_tx.compute_txid().to_string(), str_of(s, "txid"));
    let input = &s["inputs"][0];
    assert_eq!(staking_tx.input[0].previous_output.txid.to_string(), str_of(input, "txid"));
    assert_eq!(u64::from(staking_tx.input[0].previous_output.vout), u64_of(input, "vout"));
    assert!(is_possible_v0_staking_tx(&staking_tx, tag));
    let parsed = parse_v0_staking_tx(&staking_tx, tag, &committee).expect("staking tx parses");
    assert_eq!(parsed.staking_output_index, 0);
    assert_eq!(parsed.op_return_index, 1);
    assert_eq!(parsed.staking_value, u64_of(s, "staking_amount"));
    assert_eq!(parsed.op_return.staker_pk, staker);
    assert_eq!(parsed.op_return.fp_pk, fp);
    assert_eq!(u64::from(parsed.op_return.staking_time), u64_of(s, "staking_time"));
    assert_eq!(staking_tx.output[2].script_pubkey, staker_address.script_pubkey(), "change goes back to the staker");
    let info = parsed.info;
    let staking_outpoint = OutPoint { txid: staking_tx.compute_txid(), vout: 0 };
    let staking_output = staking_tx.output[0].clone();

    // --- unbonding tx ---
    let u = &d["unbonding"];
    let params = UnbondingParams {
        unbonding_fee: u64_of(u, "unbonding_fee"),
        unbonding_time: u64_of(u, "unbonding_time") as u16,
    };
    let signed_ub = tx(str_of(u, "tx_hex"));
    assert_eq!(signed_ub.compute_txid().to_string(), str_of(u, "txid"));
    let built =
        build_unbonding_tx(staking_outpoint.txid, 0, parsed.staking_value, params, &staker, &[fp], &committee).unwrap();
    assert_eq!(built.compute_txid(), signed_ub.compute_txid());
    let mut stripped = signed_ub.clone();
    stripped.input[0].witness = Witness::new();
    assert_eq!(tx_hex(&built), tx_hex(&stripped), "unsigned unbonding tx byte-equal");

    let sighash = unbonding_sighash(&built, &staking_output, &info.unbonding_script()).unwrap();
    assert_eq!(to_hex(sighash.to_byte_array()), str_of(u, "sighash"));

    let w = &signed_ub.input[0].witness;
    assert_eq!(w.len(), 3 + 1 + 2, "3 covenant items + staker sig + script + control block");
    let staker_sig_in_tx = sig64(w.nth(3).unwrap());
    assert!(verify_schnorr(&sighash, &staker_sig_in_tx, &staker), "staker signature in tx_hex verifies");
    let broadcast = unhex(str_of(u, "broadcast_staker_signature"));
    assert!(verify_schnorr(&sighash, &broadcast, &staker), "broadcast staker signature verifies");
    let cov_sigs: Vec<(XOnlyPublicKey, [u8; 64])> = u["covenant_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (xonly(str_of(c, "btc_pk_hex")), sig64(&unhex(str_of(c, "sig_hex")))))
        .collect();
    for (pk, sig) in &cov_sigs {
        assert!(verify_schnorr(&sighash, sig, pk), "covenant signature of {pk} verifies");
        assert!(!verify_schnorr(&sighash, sig, &staker));
    }
    let witness = unbonding_witness(&cov_sigs, &staker_sig_in_tx, &info, &committee).unwrap();
    assert_eq!(witness, *w, "witness layout: covenant items descending, staker sig, unbonding leaf, control block");
    assert_eq!(w.nth(4).unwrap(), info.unbonding_script().as_bytes());
    assert_eq!(w.nth(5).unwrap(), info.control_block(Leaf::Unbonding).serialize().as_slice());
    assert!(w.nth(1).unwrap().is_empty(), "the middle covenant key did not sign");
    let mut rebuilt = built.clone();
    rebuilt.input[0].witness = witness;
    assert_eq!(tx_hex(&rebuilt), str_of(u, "tx_hex"), "fully signed unbonding tx byte-equal");

    // Our own staker signature with the given private key: wallet-core's fixed RNG is an all-zero
    // BIP-340 aux, so the signature is reproducible byte for byte.
    let msg = Message::from_digest(sighash.to_byte_array());
    let ours = secp_all.sign_schnorr_with_aux_rand(&msg, &keypair, &[0u8; 32]);
    assert!(verify_schnorr(&sighash, ours.as_ref(), &staker));
    assert_eq!(ours.as_ref(), &staker_sig_in_tx[..], "BIP-340 with zero aux reproduces the file's staker signature");

    // Classification and API check of this unbonding.
    assert_eq!(
        classify_staking_spend(&signed_ub, 0, &info, staking_outpoint, parsed.staking_value, params),
        StakingSpend::ValidUnbonding
    );
    let request = UnbondingRequest {
        unbonding_tx: &built,
        unbonding_txid: Txid::from_str(str_of(u, "txid")).unwrap(),
        staker_signature: &broadcast,
    };
    check_unbonding_request(&request, &info, staking_outpoint, parsed.staking_value, params, true).unwrap();

    // --- withdrawal from the unbonding output ---
    let wd = &d["withdraw_unbonded"];
    let signed_wd = tx(str_of(wd, "tx_hex"));
    assert_eq!(signed_wd.compute_txid().to_string(), str_of(wd, "txid"));
    let unbonding = info.unbonding_info(params.unbonding_time);
    let unbonding_output = built.output[0].clone();
    let unsigned_wd = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: built.compute_txid(), vout: 0 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::from_consensus(u32::from(params.unbonding_time)),
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(u64_of(wd, "value")),
            script_pubkey: Address::from_str(str_of(wd, "recipient_address"))
                .unwrap()
                .require_network(Network::Signet)
                .unwrap()
                .script_pubkey(),
        }],
    };
    assert_eq!(unsigned_wd.compute_txid(), signed_wd.compute_txid(), "withdrawal tx rebuilt from the data");
    let wd_sighash =
        unbonding_withdrawal_sighash(&unsigned_wd, 0, std::slice::from_ref(&unbonding_output), &unbonding).unwrap();
    assert_eq!(to_hex(wd_sighash.to_byte_array()), str_of(wd, "sighash"));
    let ww = &signed_wd.input[0].witness;
    assert_eq!(ww.len(), 3);
    let wd_sig = sig64(ww.nth(0).unwrap());
    assert!(verify_schnorr(&wd_sighash, &wd_sig, &staker));
    assert!(verify_schnorr(&wd_sighash, &unhex(str_of(wd, "broadcast_staker_signature")), &staker));
    let our_witness = withdrawal_witness(&wd_sig, &unbonding.timelock_script(), &unbonding.control_block_timelock());
    assert_eq!(our_witness, *ww, "withdrawal witness [sig, timelock', control block]");
    let mut rebuilt_wd = unsigned_wd.clone();
    rebuilt_wd.input[0].witness = our_witness;
    assert_eq!(tx_hex(&rebuilt_wd), str_of(wd, "tx_hex"));
    let our_wd_sig =
        secp_all.sign_schnorr_with_aux_rand(&Message::from_digest(wd_sighash.to_byte_array()), &keypair, &[0u8; 32]);
    assert_eq!(our_wd_sig.as_ref(), &wd_sig[..], "zero-aux BIP-340 reproduces the withdrawal signature");
    assert_eq!(classify_unbonding_spend(&signed_wd, 0, &unbonding), UnbondingSpend::Withdrawal);
}
