//! Step A / Step B / Step C edge cases of spec §1.4–§1.5, on synthetic transactions.

use phase1_primitives::bitcoin::secp256k1::{Keypair, Secp256k1};
use phase1_primitives::bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
    XOnlyPublicKey,
};
use phase1_primitives::params::{ParamsFields, ParamsVersion};
use phase1_primitives::staking::{KeyRole, StakingInfoError};
use phase1_primitives::staking_tx::{validate_staking_amount_time, InvalidStaking, ParseError};
use phase1_primitives::{is_possible_v0_staking_tx, parse_v0_staking_tx, CovenantCommittee, StakingInfo, V0OpReturn};

const TAG: [u8; 4] = *b"bbn1";

fn key(i: u8) -> XOnlyPublicKey {
    let secp = Secp256k1::new();
    Keypair::from_seckey_slice(&secp, &[i; 32]).unwrap().x_only_public_key().0
}

fn params() -> ParamsVersion {
    let secp = Secp256k1::new();
    let pks =
        (10..13u8).map(|i| Keypair::from_seckey_slice(&secp, &[i; 32]).unwrap().public_key().to_string()).collect();
    ParamsVersion::from_fields(&ParamsFields {
        version: 0,
        activation_height: 100,
        staking_cap: 1_000_000_000,
        tag: "62626e31".into(),
        covenant_pks: pks,
        covenant_quorum: 2,
        unbonding_time: 1008,
        unbonding_fee: 1000,
        max_staking_amount: 1_000_000,
        min_staking_amount: 10_000,
        max_staking_time: 64000,
        min_staking_time: 100,
        confirmation_depth: 10,
        ..Default::default()
    })
    .unwrap()
}

fn out(value: u64, script: ScriptBuf) -> TxOut {
    TxOut { value: Amount::from_sat(value), script_pubkey: script }
}

fn tx(outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output: outputs,
    }
}

fn staking_script(staker: XOnlyPublicKey, fp: XOnlyPublicKey, c: &CovenantCommittee, time: u16) -> ScriptBuf {
    StakingInfo::new(&staker, &[fp], c, time).unwrap().pk_script()
}

fn op_return(tag: [u8; 4], staker: XOnlyPublicKey, fp: XOnlyPublicKey, time: u16) -> ScriptBuf {
    V0OpReturn::new(tag, staker, fp, time).to_script()
}

fn change() -> TxOut {
    out(
        5000,
        ScriptBuf::new_p2tr_tweaked(phase1_primitives::bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(key(
            99,
        ))),
    )
}

/// A valid staking tx: [staking, OP_RETURN, change].
fn base(c: &CovenantCommittee) -> Transaction {
    tx(vec![
        out(100_000, staking_script(key(1), key(2), c, 1000)),
        out(0, op_return(TAG, key(1), key(2), 1000)),
        change(),
    ])
}

#[test]
fn valid_base_tx() {
    let p = params();
    let t = base(p.committee());
    assert!(is_possible_v0_staking_tx(&t, TAG));
    let parsed = parse_v0_staking_tx(&t, TAG, p.committee()).unwrap();
    assert_eq!((parsed.staking_output_index, parsed.op_return_index, parsed.staking_value), (0, 1, 100_000));
    assert_eq!(parsed.op_return, V0OpReturn::new(TAG, key(1), key(2), 1000));
    validate_staking_amount_time(parsed.staking_value, 1000, &p).unwrap();
    // The OP_RETURN position is free.
    let mut moved = t.clone();
    moved.output.swap(0, 1);
    let parsed = parse_v0_staking_tx(&moved, TAG, p.committee()).unwrap();
    assert_eq!((parsed.staking_output_index, parsed.op_return_index), (1, 0));
}

#[test]
fn two_babylon_op_returns_same_tag() {
    let p = params();
    let mut t = base(p.committee());
    t.output.push(out(0, op_return(TAG, key(3), key(4), 1000)));
    assert!(!is_possible_v0_staking_tx(&t, TAG), "Step A: two matching outputs");
    assert_eq!(parse_v0_staking_tx(&t, TAG, p.committee()), Err(ParseError::MultipleOpReturns { first: 1, second: 3 }));
}

#[test]
fn second_op_return_with_other_tag_passes_a_fails_b() {
    let p = params();
    let mut t = base(p.committee());
    t.output.push(out(0, op_return(*b"bbt4", key(3), key(4), 1000)));
    assert!(is_possible_v0_staking_tx(&t, TAG), "Step A only counts the params tag");
    assert_eq!(parse_v0_staking_tx(&t, TAG, p.committee()), Err(ParseError::MultipleOpReturns { first: 1, second: 3 }));
}

#[test]
fn undecodable_second_op_returns_are_ignored_by_b() {
    let p = params();
    // Version byte 1: not V0-decodable, so Step B still finds exactly one.
    let mut t = base(p.committee());
    let mut bytes = op_return(*b"bbt4", key(3), key(4), 1000).into_bytes();
    bytes[6] = 1;
    t.output.push(out(0, ScriptBuf::from_bytes(bytes)));
    assert!(is_possible_v0_staking_tx(&t, TAG));
    assert!(parse_v0_staking_tx(&t, TAG, p.committee()).is_ok());
    // Same tag but an invalid x-only key: Step A counts it (keys are not checked there) so the tx
    // is not a possible staking tx; Step B alone would accept the other OP_RETURN.
    let mut t = base(p.committee());
    let mut bytes = op_return(TAG, key(3), key(4), 1000).into_bytes();
    bytes[7..39].copy_from_slice(&[0xff; 32]);
    t.output.push(out(0, ScriptBuf::from_bytes(bytes)));
    assert!(!is_possible_v0_staking_tx(&t, TAG));
    assert!(parse_v0_staking_tx(&t, TAG, p.committee()).is_ok());
    // A 74-byte OP_RETURN is not a V0 OP_RETURN at all.
    let mut t = base(p.committee());
    let mut bytes = vec![0x6a, 0x48];
    bytes.extend_from_slice(&op_return(TAG, key(3), key(4), 1000).as_bytes()[2..]);
    bytes.push(0);
    t.output.push(out(0, ScriptBuf::from_bytes(bytes)));
    assert!(is_possible_v0_staking_tx(&t, TAG));
    assert!(parse_v0_staking_tx(&t, TAG, p.committee()).is_ok());
}

/// btcd's IsNullData accepts a non-minimal OP_PUSHDATA1 of the same total length (73 bytes); Go
/// then reads the payload from byte 2, so such an output counts as a (second) V0 OP_RETURN.
#[test]
fn non_minimal_push_is_null_data_like_btcd() {
    let p = params();
    let mut bytes = vec![0x6a, 0x4c, 70, 0x70, 0x71, 0x72, 0x00];
    bytes.extend_from_slice(&key(3).serialize());
    bytes.extend_from_slice(&key(4).serialize());
    bytes.extend_from_slice(&[0x03, 0xe8]); // 3 + 70 pushed bytes = 73
    assert_eq!(bytes.len(), 73);
    let script = ScriptBuf::from_bytes(bytes);
    let d = V0OpReturn::parse(&script).expect("decodes like Go");
    assert_eq!(d.tag, [70, 0x70, 0x71, 0x72]);
    let mut t = base(p.committee());
    t.output.push(out(0, script));
    assert!(is_possible_v0_staking_tx(&t, TAG));
    assert!(matches!(parse_v0_staking_tx(&t, TAG, p.committee()), Err(ParseError::MultipleOpReturns { .. })));
    // Wrong push length → not null data → ignored.
    let mut bytes = script_bytes_with_push(0x4c, &[69]);
    bytes.truncate(73);
    assert!(V0OpReturn::parse(&ScriptBuf::from_bytes(bytes)).is_none());
}

fn script_bytes_with_push(op: u8, len_bytes: &[u8]) -> Vec<u8> {
    let mut b = vec![0x6a, op];
    b.extend_from_slice(len_bytes);
    b.resize(73, 0);
    b
}

#[test]
fn invalid_xonly_key_in_only_op_return() {
    let p = params();
    let mut t = base(p.committee());
    let mut bytes = t.output[1].script_pubkey.to_bytes();
    bytes[39..71].copy_from_slice(&[0xff; 32]); // FP key not on the curve
    t.output[1].script_pubkey = ScriptBuf::from_bytes(bytes);
    assert!(is_possible_v0_staking_tx(&t, TAG), "Step A does not look at the keys");
    assert_eq!(parse_v0_staking_tx(&t, TAG, p.committee()), Err(ParseError::NoOpReturn));
}

#[test]
fn colliding_keys_are_not_staking_txs() {
    let p = params();
    let c = p.committee();
    let cov0 = c.keys_xonly_sorted()[0];
    for (staker, fp, first, second) in [
        (key(1), key(1), KeyRole::Staker, KeyRole::FinalityProvider(0)),
        (cov0, key(2), KeyRole::Staker, KeyRole::Covenant),
        (key(1), cov0, KeyRole::FinalityProvider(0), KeyRole::Covenant),
    ] {
        let t = tx(vec![out(100_000, ScriptBuf::new()), out(0, op_return(TAG, staker, fp, 1000))]);
        assert!(is_possible_v0_staking_tx(&t, TAG));
        let e = parse_v0_staking_tx(&t, TAG, c).unwrap_err();
        assert!(
            matches!(e, ParseError::BadKeys(StakingInfoError::DuplicateKey { first: f, second: s, .. }) if f == first && s == second),
            "{e}"
        );
        assert!(e.to_string().contains("distinct"), "{e}");
    }
}

#[test]
fn staking_output_count_must_be_one() {
    let p = params();
    let c = p.committee();
    let mut t = base(c);
    t.output.push(t.output[0].clone());
    assert_eq!(parse_v0_staking_tx(&t, TAG, c), Err(ParseError::MultipleStakingOutputs { first: 0, second: 3 }));
    let mut t = base(c);
    t.output[0].script_pubkey = staking_script(key(1), key(2), c, 1001);
    assert_eq!(parse_v0_staking_tx(&t, TAG, c), Err(ParseError::NoStakingOutput));
}

#[test]
fn staking_time_zero_parses_then_fails_validation() {
    let p = params();
    let c = p.committee();
    let info = StakingInfo::new(&key(1), &[key(2)], c, 0).unwrap();
    assert_eq!(info.timelock_script().as_bytes()[34], 0x00, "OP_0");
    let t = tx(vec![out(100_000, info.pk_script()), out(0, op_return(TAG, key(1), key(2), 0))]);
    let parsed = parse_v0_staking_tx(&t, TAG, c).unwrap();
    assert_eq!(parsed.op_return.staking_time, 0);
    assert_eq!(
        validate_staking_amount_time(parsed.staking_value, 0, &p),
        Err(InvalidStaking::TimeBelowMin { time: 0, min: 100 })
    );
}

#[test]
fn version_byte_one_and_wrong_tag() {
    let p = params();
    let c = p.committee();
    let mut t = base(c);
    let mut bytes = t.output[1].script_pubkey.to_bytes();
    bytes[6] = 1;
    t.output[1].script_pubkey = ScriptBuf::from_bytes(bytes);
    assert!(!is_possible_v0_staking_tx(&t, TAG));
    assert_eq!(parse_v0_staking_tx(&t, TAG, c), Err(ParseError::NoOpReturn));

    let t = tx(vec![
        out(100_000, staking_script(key(1), key(2), c, 1000)),
        out(0, op_return(*b"bbt4", key(1), key(2), 1000)),
    ]);
    assert!(!is_possible_v0_staking_tx(&t, TAG));
    assert_eq!(parse_v0_staking_tx(&t, TAG, c), Err(ParseError::WrongTag { found: *b"bbt4", expected: TAG }));
}

#[test]
fn fewer_than_two_outputs() {
    let p = params();
    let t = tx(vec![out(0, op_return(TAG, key(1), key(2), 1000))]);
    assert!(!is_possible_v0_staking_tx(&t, TAG));
    assert_eq!(parse_v0_staking_tx(&t, TAG, p.committee()), Err(ParseError::TooFewOutputs(1)));
}

#[test]
fn step_c_order_and_inclusive_bounds() {
    let p = params();
    assert!(validate_staking_amount_time(10_000, 100, &p).is_ok());
    assert!(validate_staking_amount_time(1_000_000, 64000, &p).is_ok());
    assert_eq!(
        validate_staking_amount_time(9_999, 1, &p),
        Err(InvalidStaking::AmountBelowMin { value: 9_999, min: 10_000 })
    );
    assert_eq!(
        validate_staking_amount_time(1_000_001, 65000, &p),
        Err(InvalidStaking::AmountAboveMax { value: 1_000_001, max: 1_000_000 })
    );
    assert_eq!(
        validate_staking_amount_time(10_000, 64001, &p),
        Err(InvalidStaking::TimeAboveMax { time: 64001, max: 64000 })
    );
    assert_eq!(validate_staking_amount_time(10_000, 99, &p), Err(InvalidStaking::TimeBelowMin { time: 99, min: 100 }));
    // A zero-value staking output parses and then fails the amount check.
    let c = p.committee();
    let t = tx(vec![out(0, staking_script(key(1), key(2), c, 1000)), out(0, op_return(TAG, key(1), key(2), 1000))]);
    let parsed = parse_v0_staking_tx(&t, TAG, c).unwrap();
    assert!(matches!(
        validate_staking_amount_time(parsed.staking_value, 1000, &p),
        Err(InvalidStaking::AmountBelowMin { .. })
    ));
}
