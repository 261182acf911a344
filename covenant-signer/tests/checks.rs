//! The §8.2 pipeline as a pure function: every refusal, its check number and the order of the
//! checks, over an in-memory chain (no node, no wallet). Also the PSBT the wallet is sent and the
//! extraction of the wallet's signature.

mod testing;

use covenant_signer::checks::{check_signing_request, Check, CheckError, Policy};
use covenant_signer::request::{decode_request, parse_request, SignRequestJson};
use covenant_signer::wallet::{build_psbt, signature_from_psbt, WalletError};
use covenant_signer::SignRequest;
use phase1_primitives::bitcoin::bip32::{DerivationPath, Fingerprint};
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::key::Keypair;
use phase1_primitives::bitcoin::secp256k1::{Message, PublicKey};
use phase1_primitives::bitcoin::sighash::TapSighashType;
use phase1_primitives::bitcoin::taproot::{self, LeafVersion, TapLeafHash};
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{
    absolute, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use phase1_primitives::{GlobalParams, Leaf, ParamsVersion};
use serde_json::json;
use testing::*;

struct Fixture {
    params: GlobalParams,
    cov: Vec<phase1_primitives::bitcoin::secp256k1::SecretKey>,
    other_cov: Vec<phase1_primitives::bitcoin::secp256k1::SecretKey>,
    chain: MemChain,
    stake: Stake,
}

fn pubkey(sk: &phase1_primitives::bitcoin::secp256k1::SecretKey) -> PublicKey {
    sk.public_key(secp())
}

fn v0(f: &Fixture) -> &ParamsVersion {
    &f.params.versions[0]
}

/// Params v0 (activation 100, depth 2) and v1 (activation 1000, other keys); a 2 BTC stake
/// confirmed at 200 with the tip at 201.
fn fixture() -> Fixture {
    let cov: Vec<_> = (0..3).map(|_| random_key()).collect();
    let other_cov: Vec<_> = (0..3).map(|_| random_key()).collect();
    let keys: Vec<PublicKey> = cov.iter().map(pubkey).collect();
    let other: Vec<PublicKey> = other_cov.iter().map(pubkey).collect();
    let params = GlobalParams::parse(
        &json!({"versions": [version_json(0, 100, &keys, 2, 2), version_json(1, 1000, &other, 2, 2)]}).to_string(),
    )
    .unwrap();
    let stake = make_stake(&params.versions[0], 200_000_000, 100);
    let mut chain = MemChain::default();
    chain.confirm(&stake.tx, 200);
    chain.tip = 201;
    Fixture { params, cov, other_cov, chain, stake }
}

fn make_stake(p: &ParamsVersion, value: u64, time: u16) -> Stake {
    let (mut tx, staker, fp, info) = Stake::unsigned(p, value, time);
    tx.input.push(TxIn {
        previous_output: OutPoint { txid: Txid::from_byte_array(random_key().secret_bytes()), vout: 1 },
        script_sig: ScriptBuf::new(),
        sequence: Sequence::MAX,
        witness: Witness::new(),
    });
    Stake::from_tx(tx, staker, fp, info)
}

fn request(stake: &Stake, tx: &Transaction, key: PublicKey) -> SignRequest {
    SignRequest {
        staking_output_pk_script: stake.staking_output().script_pubkey,
        unbonding_tx: tx.clone(),
        staker_signature: stake.staker_sig(tx),
        covenant_public_key: key,
    }
}

fn good(f: &Fixture) -> SignRequest {
    request(&f.stake, &f.stake.unbonding_tx(v0(f)), pubkey(&f.cov[0]))
}

fn run(f: &Fixture, req: &SignRequest) -> Result<covenant_signer::Approved, CheckError> {
    check_signing_request(req, &f.params, &Policy::default(), &f.chain)
}

#[track_caller]
fn refused(r: Result<covenant_signer::Approved, CheckError>, check: Check, needle: &str) {
    match r {
        Ok(_) => panic!("expected check {} ({}) to refuse, but the request was approved", check as u8, check.name()),
        Err(e) => {
            assert_eq!(e.check(), Some(check), "wrong check refused: {e}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("invalid signing request: check {} ({})", check as u8, check.name())),
                "{msg}"
            );
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
        }
    }
}

#[test]
fn a_valid_request_is_approved() {
    let f = fixture();
    for sk in &f.cov {
        let req = request(&f.stake, &f.stake.unbonding_tx(v0(&f)), pubkey(sk));
        let a = run(&f, &req).unwrap();
        assert_eq!(a.params_version, 0);
        assert_eq!(a.staking_height, 200);
        assert_eq!(a.confirmations, 2);
        assert_eq!(a.staking_outpoint, f.stake.outpoint());
        assert_eq!(a.staking_output, f.stake.staking_output());
        assert_eq!(a.staking, f.stake.info);
        // the covenant member signs the same message as the staker
        let kp = Keypair::from_secret_key(secp(), sk);
        let sig = secp().sign_schnorr_no_aux_rand(&Message::from_digest(a.sighash.to_byte_array()), &kp);
        assert!(a.verifies(&sig.serialize()));
        assert!(!a.verifies(&req.staker_signature) || pubkey(sk).x_only_public_key().0 == xonly(&f.stake.staker));
    }
}

#[test]
fn check_1_unbonding_tx_sanity() {
    let f = fixture();
    let base = f.stake.unbonding_tx(v0(&f));
    let key = pubkey(&f.cov[0]);
    let variant = |m: &dyn Fn(&mut Transaction)| {
        let mut tx = base.clone();
        m(&mut tx);
        request(&f.stake, &tx, key)
    };
    refused(run(&f, &variant(&|t| t.version = Version::ONE)), Check::UnbondingTxSanity, "version is 1");
    refused(run(&f, &variant(&|t| t.version = Version(3))), Check::UnbondingTxSanity, "version is 3");
    refused(
        run(&f, &variant(&|t| t.output.push(TxOut { value: Amount::from_sat(1000), script_pubkey: ScriptBuf::new() }))),
        Check::UnbondingTxSanity,
        "2 outputs",
    );
    refused(
        run(
            &f,
            &variant(&|t| {
                let mut second = t.input[0].clone();
                second.previous_output.vout += 7;
                t.input.push(second);
            }),
        ),
        Check::UnbondingTxSanity,
        "2 inputs",
    );
    refused(
        run(&f, &variant(&|t| t.input[0].sequence = Sequence(0xffff_fffd))),
        Check::UnbondingTxSanity,
        "0xfffffffd",
    );
    refused(run(&f, &variant(&|t| t.input[0].sequence = Sequence(3))), Check::UnbondingTxSanity, "replaceable");
    refused(
        run(&f, &variant(&|t| t.lock_time = absolute::LockTime::from_height(5).unwrap())),
        Check::UnbondingTxSanity,
        "lock time",
    );
    refused(
        run(&f, &variant(&|t| t.input[0].script_sig = ScriptBuf::from_bytes(vec![0x51]))),
        Check::UnbondingTxSanity,
        "scriptSig",
    );
    refused(
        run(&f, &variant(&|t| t.input[0].previous_output = OutPoint::null())),
        Check::UnbondingTxSanity,
        "null outpoint",
    );
    refused(
        run(&f, &variant(&|t| t.output[0].value = Amount::from_sat(22_000_000 * 100_000_000))),
        Check::UnbondingTxSanity,
        "21 million",
    );
    refused(
        run(&f, &variant(&|t| t.input[0].witness = Witness::from_slice(&[vec![0u8; 400_000]]))),
        Check::UnbondingTxSanity,
        "weight",
    );
    // a witness is tolerated (the txid and sighash do not depend on it)
    run(&f, &variant(&|t| t.input[0].witness = Witness::from_slice(&[[1u8; 64]]))).unwrap();
}

#[test]
fn check_2_staking_pk_script_is_p2tr() {
    let f = fixture();
    let mut req = good(&f);
    req.staking_output_pk_script =
        ScriptBuf::from_bytes(hex::decode("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap());
    refused(run(&f, &req), Check::StakingPkScript, "not a taproot");
}

#[test]
fn check_3_staking_tx_confirmed_with_that_output() {
    let mut f = fixture();
    // unknown
    let other = make_stake(v0(&f), 200_000_000, 100);
    let tx = other.unbonding_tx(v0(&f));
    refused(run(&f, &request(&other, &tx, pubkey(&f.cov[0]))), Check::StakingTx, "not known to the full node");
    // mempool only
    f.chain.mempool.insert(other.txid, other.tx.clone());
    refused(run(&f, &request(&other, &tx, pubkey(&f.cov[0]))), Check::StakingTx, "only in the mempool");
    // in a block that was reorged out
    f.chain.mempool.clear();
    f.chain.stale.insert(other.txid, phase1_primitives::bitcoin::BlockHash::from_byte_array([7; 32]));
    refused(run(&f, &request(&other, &tx, pubkey(&f.cov[0]))), Check::StakingTx, "no longer on the best chain");
    // wrong pkScript in the request
    let mut req = good(&f);
    req.staking_output_pk_script = other.staking_output().script_pubkey;
    refused(run(&f, &req), Check::StakingTx, "not to the requested staking_output_pk_script_hex");
    // a different input: another output of the staking tx, or one it does not have
    for vout in [1, 9] {
        let mut tx = f.stake.unbonding_tx(v0(&f));
        tx.input[0].previous_output.vout = vout;
        let needle = if vout == 1 { "not to the requested" } else { "which has only 2 outputs" };
        refused(run(&f, &request(&f.stake, &tx, pubkey(&f.cov[0]))), Check::StakingTx, needle);
    }
}

#[test]
fn check_4_max_staking_transaction_height() {
    let f = fixture();
    let policy = Policy { max_staking_tx_height: 199, served_keys: None };
    refused(
        check_signing_request(&good(&f), &f.params, &policy, &f.chain),
        Check::MaxStakingTxHeight,
        "above max-staking-transaction-height 199",
    );
    let policy = Policy { max_staking_tx_height: 200, served_keys: None };
    check_signing_request(&good(&f), &f.params, &policy, &f.chain).unwrap();
}

#[test]
fn check_5_params_version_and_covenant_key() {
    let mut f = fixture();
    // a key of another version
    let req = request(&f.stake, &f.stake.unbonding_tx(v0(&f)), pubkey(&f.other_cov[0]));
    refused(run(&f, &req), Check::CovenantKey, "not in covenant_pks of params version 0");
    // the right x coordinate with the other parity byte
    let k = pubkey(&f.cov[1]);
    let mut flipped = k.serialize();
    flipped[0] ^= 1;
    let req = request(&f.stake, &f.stake.unbonding_tx(v0(&f)), PublicKey::from_slice(&flipped).unwrap());
    refused(run(&f, &req), Check::CovenantKey, "not in covenant_pks");
    // not served by this process
    let policy = Policy { max_staking_tx_height: u32::MAX, served_keys: Some(vec![pubkey(&f.cov[1])]) };
    refused(check_signing_request(&good(&f), &f.params, &policy, &f.chain), Check::CovenantKey, "does not serve it");
    check_signing_request(
        &request(&f.stake, &f.stake.unbonding_tx(v0(&f)), pubkey(&f.cov[1])),
        &f.params,
        &policy,
        &f.chain,
    )
    .unwrap();
    // below the first activation height
    f.chain.confirm(&f.stake.tx.clone(), 99);
    refused(run(&f, &good(&f)), Check::CovenantKey, "below the first params activation height 100");
    // in version 1's range: v0's keys are not v1's
    f.chain.confirm(&f.stake.tx.clone(), 1000);
    f.chain.tip = 1001;
    refused(run(&f, &good(&f)), Check::CovenantKey, "params version 1");
}

#[test]
fn check_6_confirmations() {
    let mut f = fixture();
    f.chain.tip = 200; // 1 confirmation, depth 2
    refused(run(&f, &good(&f)), Check::Confirmations, "1 confirmation(s) (included at 200, tip 200)");
    f.chain.tip = 201;
    run(&f, &good(&f)).unwrap();
}

#[test]
fn check_7_parse_v0_staking_tx() {
    let mut f = fixture();
    // a stake built for another committee: its pkScript is at the spent output, but the
    // version's committee does not derive it
    let v1 = f.params.versions[1].clone();
    let stranger = make_stake(&v1, 200_000_000, 100);
    f.chain.confirm(&stranger.tx, 200);
    f.chain.tip = 201;
    let tx = stranger.unbonding_tx(v0(&f));
    refused(
        run(&f, &request(&stranger, &tx, pubkey(&f.cov[0]))),
        Check::ParseStakingTx,
        "no output pays to the staking pkScript",
    );
}

#[test]
fn check_9_staking_amount_and_time() {
    let mut f = fixture();
    for (value, time, needle) in [
        (99_999_999, 100, "below min_staking_amount"),
        (1_000_000_001, 100, "above max_staking_amount"),
        (200_000_000, 1001, "above max_staking_time"),
        (200_000_000, 9, "below min_staking_time"),
    ] {
        let s = make_stake(v0(&f), value, time);
        f.chain.confirm(&s.tx, 200);
        f.chain.tip = 201;
        let tx = s.unbonding_tx(v0(&f));
        refused(run(&f, &request(&s, &tx, pubkey(&f.cov[0]))), Check::StakingAmountTime, needle);
    }
}

#[test]
fn check_10_unbonding_output() {
    let f = fixture();
    let base = f.stake.unbonding_tx(v0(&f));
    for delta in [1i64, -1, 500] {
        let mut tx = base.clone();
        tx.output[0].value = Amount::from_sat((tx.output[0].value.to_sat() as i64 + delta) as u64);
        refused(
            run(&f, &request(&f.stake, &tx, pubkey(&f.cov[0]))),
            Check::UnbondingOutput,
            "− unbonding_fee 500 = 199999500 sat",
        );
    }
    let mut tx = base.clone();
    tx.output[0].script_pubkey = f.stake.staking_output().script_pubkey;
    refused(run(&f, &request(&f.stake, &tx, pubkey(&f.cov[0]))), Check::UnbondingOutput, "rebuilt from the stake");
}

#[test]
fn check_11_staker_signature() {
    let f = fixture();
    let tx = f.stake.unbonding_tx(v0(&f));
    let mut req = request(&f.stake, &tx, pubkey(&f.cov[0]));
    req.staker_signature = f.stake.sign_with(&tx, &random_key());
    refused(run(&f, &req), Check::StakerSignature, "does not verify");
    req.staker_signature[0] ^= 1;
    refused(run(&f, &req), Check::StakerSignature, "does not verify");
    // the staker's signature of another tx
    let mut other = tx.clone();
    other.output[0].value = Amount::from_sat(1);
    req.staker_signature = f.stake.staker_sig(&other);
    refused(run(&f, &req), Check::StakerSignature, "does not verify");
}

#[test]
fn checks_run_in_order() {
    let mut f = fixture();
    // 1 before 2: bad tx and bad pkScript
    let mut req = good(&f);
    req.unbonding_tx.version = Version::ONE;
    req.staking_output_pk_script = ScriptBuf::new();
    refused(run(&f, &req), Check::UnbondingTxSanity, "version");
    // 2 before 3: the node is not even asked
    f.chain.down = true;
    let mut req = good(&f);
    req.staking_output_pk_script = ScriptBuf::new();
    refused(run(&f, &req), Check::StakingPkScript, "taproot");
    // a node that is down is an internal error, not a refusal
    let e = run(&f, &good(&f)).unwrap_err();
    assert!(matches!(e, CheckError::Chain(_)), "{e}");
    assert!(e.to_string().contains("cannot reach the full node"), "{e}");
    f.chain.down = false;
    // 4 before 5 and 6
    f.chain.tip = 200;
    let policy = Policy { max_staking_tx_height: 10, served_keys: None };
    let req = request(&f.stake, &f.stake.unbonding_tx(v0(&f)), pubkey(&f.other_cov[0]));
    refused(check_signing_request(&req, &f.params, &policy, &f.chain), Check::MaxStakingTxHeight, "");
    // 5 before 6
    refused(run(&f, &req), Check::CovenantKey, "");
    // 6 before 10 and 11
    let mut tx = f.stake.unbonding_tx(v0(&f));
    tx.output[0].value = Amount::from_sat(5);
    let mut req = request(&f.stake, &tx, pubkey(&f.cov[0]));
    req.staker_signature = [0; 64];
    refused(run(&f, &req), Check::Confirmations, "");
    f.chain.tip = 201;
    // 10 before 11
    refused(run(&f, &req), Check::UnbondingOutput, "");
    // 9 before 10: an out-of-bounds stake with a wrong fee
    let s = make_stake(v0(&f), 50_000_000, 100);
    f.chain.confirm(&s.tx, 200);
    let mut tx = s.unbonding_tx(v0(&f));
    tx.output[0].value = Amount::from_sat(5);
    refused(run(&f, &request(&s, &tx, pubkey(&f.cov[0]))), Check::StakingAmountTime, "");
}

#[test]
fn overflow_stakes_are_signed() {
    // The cap is not a signer check: a stake above a tiny cap is still unbonded.
    let mut f = fixture();
    let mut v = version_json(0, 100, &f.cov.iter().map(pubkey).collect::<Vec<_>>(), 2, 2);
    v["staking_cap"] = json!(1_000_000_000u64);
    f.params = GlobalParams::parse(&json!({ "versions": [v] }).to_string()).unwrap();
    for _ in 0..10 {
        let s = make_stake(v0(&f), 1_000_000_000, 100);
        f.chain.confirm(&s.tx, 200);
        let tx = s.unbonding_tx(v0(&f));
        run(&f, &request(&s, &tx, pubkey(&f.cov[0]))).unwrap();
    }
}

#[test]
fn malformed_fields_are_named() {
    let f = fixture();
    let tx = f.stake.unbonding_tx(v0(&f));
    let good = request_json(&f.stake.staking_output().script_pubkey, &tx, &f.stake.staker_sig(&tx), &pubkey(&f.cov[0]));
    let parsed = parse_request(good.to_string().as_bytes()).unwrap();
    assert_eq!(parsed, request(&f.stake, &tx, pubkey(&f.cov[0])));
    let bad = |field: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[field] = value;
        parse_request(v.to_string().as_bytes()).unwrap_err()
    };
    let e = parse_request(b"{not json").unwrap_err();
    assert_eq!(e.status.as_u16(), 400);
    assert!(e.message.starts_with("invalid request payload"), "{}", e.message);
    assert!(bad("covenant_public_key", json!(5)).message.starts_with("invalid request payload"));
    assert!(bad("staking_output_pk_script_hex", json!("zz")).message.starts_with("invalid staking output pk script"));
    assert!(bad("covenant_public_key", json!("02aa")).message.contains("it is 2 bytes"));
    assert!(bad("covenant_public_key", json!(xonly(&f.cov[0]).to_string())).message.contains("it is 32 bytes"));
    assert!(bad("covenant_public_key", json!(format!("05{}", xonly(&f.cov[0]))))
        .message
        .contains("not a secp256k1 point"));
    assert!(bad("unbonding_tx_hex", json!("0200")).message.starts_with("invalid unbonding transaction"));
    assert!(bad("staker_unbonding_sig_hex", json!("00")).message.contains("it is 1 bytes"));
    assert!(bad("staker_unbonding_sig_hex", json!("")).message.contains("missing or empty"));
    let e = decode_request(&SignRequestJson::default()).unwrap_err();
    assert!(e.message.contains("staking_output_pk_script_hex is missing"), "{}", e.message);
    // unknown fields are ignored, as by the legacy decoder
    let mut extra = good.clone();
    extra["something"] = json!(1);
    parse_request(extra.to_string().as_bytes()).unwrap();
}

#[test]
fn the_psbt_is_the_legacy_one_and_the_signature_is_verified() {
    let f = fixture();
    let a = run(&f, &good(&f)).unwrap();
    let psbt = build_psbt(&a);
    assert_eq!(psbt.unsigned_tx.input.len(), 1);
    assert_eq!(psbt.unsigned_tx.input[0].previous_output, f.stake.outpoint());
    assert_eq!(psbt.unsigned_tx.input[0].sequence, Sequence::MAX);
    assert_eq!(psbt.unsigned_tx.output, a.unbonding_tx.output);
    assert_eq!(psbt.unsigned_tx.compute_txid(), a.unbonding_tx.compute_txid());
    let input = &psbt.inputs[0];
    assert_eq!(input.witness_utxo.as_ref(), Some(&f.stake.staking_output()));
    assert_eq!(input.sighash_type.map(|s| s.to_u32()), Some(0));
    assert_eq!(input.bip32_derivation.len(), 1);
    let (fp, path) = &input.bip32_derivation[&pubkey(&f.cov[0])];
    assert_eq!((*fp, path.clone()), (Fingerprint::default(), DerivationPath::default()));
    assert_eq!(input.tap_scripts.len(), 1);
    let (cb, (script, ver)) = input.tap_scripts.iter().next().unwrap();
    assert_eq!(*cb, f.stake.info.control_block(Leaf::Unbonding));
    assert_eq!(*script, f.stake.info.unbonding_script());
    assert_eq!(*ver, LeafVersion::TapScript);
    // round trip through the PSBT format
    let psbt = phase1_primitives::bitcoin::psbt::Psbt::deserialize(&psbt.serialize()).unwrap();

    // what a wallet answers
    let x = pubkey(&f.cov[0]).x_only_public_key().0;
    let leaf = TapLeafHash::from_script(&script.clone(), LeafVersion::TapScript);
    let sign = |sk| {
        let kp = Keypair::from_secret_key(secp(), sk);
        secp().sign_schnorr_no_aux_rand(&Message::from_digest(a.sighash.to_byte_array()), &kp)
    };
    let mut answered = psbt.clone();
    assert!(matches!(signature_from_psbt(&answered, &a, "w"), Err(WalletError::MissingKey { .. })));
    answered.inputs[0]
        .tap_script_sigs
        .insert((x, leaf), taproot::Signature { signature: sign(&f.cov[0]), sighash_type: TapSighashType::Default });
    assert_eq!(signature_from_psbt(&answered, &a, "w").unwrap(), sign(&f.cov[0]).serialize());
    // a signature by another key under our key's entry is never returned
    answered.inputs[0]
        .tap_script_sigs
        .insert((x, leaf), taproot::Signature { signature: sign(&f.cov[1]), sighash_type: TapSighashType::Default });
    assert!(matches!(signature_from_psbt(&answered, &a, "w"), Err(WalletError::BadAnswer(_))));
    // a wallet that finalized the input: the signature is taken from the final witness
    let mut finalized = psbt.clone();
    finalized.inputs[0].final_script_witness = Some(Witness::from_slice(&[
        sign(&f.cov[1]).serialize().to_vec(),
        sign(&f.cov[0]).serialize().to_vec(),
        vec![0x51],
    ]));
    assert_eq!(signature_from_psbt(&finalized, &a, "w").unwrap(), sign(&f.cov[0]).serialize());
    finalized.inputs[0].final_script_witness = Some(Witness::from_slice(&[sign(&f.cov[1]).serialize().to_vec()]));
    assert!(matches!(signature_from_psbt(&finalized, &a, "w"), Err(WalletError::MissingKey { .. })));
    // nor one with another sighash type
    answered.inputs[0]
        .tap_script_sigs
        .insert((x, leaf), taproot::Signature { signature: sign(&f.cov[0]), sighash_type: TapSighashType::All });
    assert!(matches!(signature_from_psbt(&answered, &a, "w"), Err(WalletError::BadAnswer(_))));
}
