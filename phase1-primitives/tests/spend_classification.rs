//! §2.4 classification of spends of staking and unbonding outputs, witness assembly rules and the
//! API's unbonding-request checks, on a synthetic stake with real signatures.

use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
use phase1_primitives::bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness, XOnlyPublicKey,
};
use phase1_primitives::sighash::{
    staking_withdrawal_sighash, unbonding_sighash, unbonding_witness, verify_schnorr, withdrawal_witness, WitnessError,
};
use phase1_primitives::unbonding::{
    build_unbonding_tx_for, check_unbonding_request, classify_staking_spend, classify_unbonding_spend,
    verify_unbonding_signature, InvalidUnbondingReason, InvalidWithdrawalReason, StakingSpend, UnbondingParams,
    UnbondingRequest, UnbondingRequestError, UnbondingSpend,
};
use phase1_primitives::{CovenantCommittee, Leaf, StakingInfo};

const VALUE: u64 = 1_000_000;
const PARAMS: UnbondingParams = UnbondingParams { unbonding_fee: 20_000, unbonding_time: 144 };

struct Fixture {
    secp: Secp256k1<phase1_primitives::bitcoin::secp256k1::All>,
    staker: Keypair,
    covenants: Vec<Keypair>,
    committee: CovenantCommittee,
    info: StakingInfo,
    outpoint: OutPoint,
}

fn kp(secp: &Secp256k1<phase1_primitives::bitcoin::secp256k1::All>, i: u8) -> Keypair {
    Keypair::from_secret_key(secp, &SecretKey::from_slice(&[i; 32]).unwrap())
}

fn fixture() -> Fixture {
    let secp = Secp256k1::new();
    let staker = kp(&secp, 1);
    let fp = kp(&secp, 2).x_only_public_key().0;
    let covenants: Vec<Keypair> = (10..15).map(|i| kp(&secp, i)).collect();
    let committee = CovenantCommittee::new(covenants.iter().map(|k| k.public_key()).collect(), 3).unwrap();
    let info = StakingInfo::new(&staker.x_only_public_key().0, &[fp], &committee, 1000).unwrap();
    let outpoint = OutPoint { txid: Txid::from_byte_array([7; 32]), vout: 1 };
    Fixture { secp, staker, covenants, committee, info, outpoint }
}

impl Fixture {
    fn sign(&self, k: &Keypair, tx: &Transaction) -> [u8; 64] {
        let h = unbonding_sighash(tx, &self.info.staking_output(VALUE), &self.info.unbonding_script()).unwrap();
        let sig = self.secp.sign_schnorr_with_aux_rand(&Message::from_digest(h.to_byte_array()), k, &[1; 32]);
        *sig.as_ref()
    }

    /// The canonical unbonding tx with a complete witness (quorum of 3 out of 5).
    fn signed_unbonding(&self) -> Transaction {
        let mut tx = build_unbonding_tx_for(&self.info, self.outpoint, VALUE, PARAMS).unwrap();
        let sigs: Vec<(XOnlyPublicKey, [u8; 64])> = [0, 2, 4]
            .iter()
            .map(|&i| (self.covenants[i].x_only_public_key().0, self.sign(&self.covenants[i], &tx)))
            .collect();
        let staker_sig = self.sign(&self.staker, &tx);
        tx.input[0].witness = unbonding_witness(&sigs, &staker_sig, &self.info, &self.committee).unwrap();
        tx
    }

    fn classify(&self, tx: &Transaction) -> StakingSpend {
        let idx = tx.input.iter().position(|i| i.previous_output == self.outpoint).unwrap();
        classify_staking_spend(tx, idx, &self.info, self.outpoint, VALUE, PARAMS)
    }

    /// A spend of the staking output through `leaf` with a dummy signature.
    fn leaf_spend(&self, leaf: Leaf) -> Transaction {
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: self.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::from_consensus(1000),
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(VALUE - 500), script_pubkey: ScriptBuf::new() }],
        };
        tx.input[0].witness =
            withdrawal_witness(&[1; 64], &self.info.leaf_script(leaf), &self.info.control_block(leaf));
        tx
    }
}

#[test]
fn valid_unbonding() {
    let f = fixture();
    let tx = f.signed_unbonding();
    assert_eq!(f.classify(&tx), StakingSpend::ValidUnbonding);
    let w = &tx.input[0].witness;
    assert_eq!(w.len(), 5 + 3);
    // Descending x-only order: item k is the key at sorted position 4 − k.
    let sorted = f.committee.keys_xonly_sorted();
    for (k, item) in w.iter().take(5).enumerate() {
        let pk = sorted[4 - k];
        let signer = [0, 2, 4].iter().any(|&i| f.covenants[i].x_only_public_key().0 == pk);
        assert_eq!(!item.is_empty(), signer, "item {k}");
        if signer {
            assert!(verify_unbonding_signature(&tx, &f.info, VALUE, &pk, item));
        }
    }
    assert!(verify_unbonding_signature(&tx, &f.info, VALUE, &f.staker.x_only_public_key().0, w.nth(5).unwrap()));
}

#[test]
fn broken_unbonding_rules_are_invalid_unbondings() {
    let f = fixture();
    let mut tx = f.signed_unbonding();
    tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
    assert_eq!(f.classify(&tx), StakingSpend::InvalidUnbonding(InvalidUnbondingReason::NonFinalSequence(0xfffffffd)));

    let mut tx = f.signed_unbonding();
    tx.lock_time = LockTime::from_consensus(1);
    assert_eq!(f.classify(&tx), StakingSpend::InvalidUnbonding(InvalidUnbondingReason::NonZeroLockTime(1)));

    let mut tx = f.signed_unbonding();
    tx.output[0].value = Amount::from_sat(VALUE - PARAMS.unbonding_fee - 1);
    assert_eq!(
        f.classify(&tx),
        StakingSpend::InvalidUnbonding(InvalidUnbondingReason::WrongOutputValue {
            got: VALUE - PARAMS.unbonding_fee - 1,
            expected: VALUE - PARAMS.unbonding_fee
        })
    );

    let mut tx = f.signed_unbonding();
    tx.output[0].script_pubkey = f.info.pk_script();
    assert_eq!(f.classify(&tx), StakingSpend::InvalidUnbonding(InvalidUnbondingReason::WrongOutputScript));

    // Staking value not above the fee.
    let tx = f.signed_unbonding();
    assert_eq!(
        classify_staking_spend(&tx, 0, &f.info, f.outpoint, PARAMS.unbonding_fee, PARAMS),
        StakingSpend::InvalidUnbonding(InvalidUnbondingReason::StakingValueTooLow {
            staking_value: PARAMS.unbonding_fee,
            unbonding_fee: PARAMS.unbonding_fee
        })
    );
    // The version is not checked by the indexer.
    let mut tx = f.signed_unbonding();
    tx.version = Version::ONE;
    assert_eq!(f.classify(&tx), StakingSpend::ValidUnbonding);
}

#[test]
fn unbonding_leaf_with_wrong_shape_falls_to_withdrawal_check() {
    let f = fixture();
    let mut tx = f.signed_unbonding();
    tx.output.push(TxOut { value: Amount::from_sat(1), script_pubkey: ScriptBuf::new() });
    assert_eq!(f.classify(&tx), StakingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NotTimelockLeaf), "2 outputs");

    let mut tx = f.signed_unbonding();
    tx.input.insert(0, TxIn { previous_output: OutPoint::null(), ..Default::default() });
    assert_eq!(
        f.classify(&tx),
        StakingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NotTimelockLeaf),
        "2 inputs, staking spent by input 1"
    );
}

#[test]
fn timelock_and_slashing_leaf_spends() {
    let f = fixture();
    assert_eq!(f.classify(&f.leaf_spend(Leaf::Timelock)), StakingSpend::Withdrawal);
    assert_eq!(
        f.classify(&f.leaf_spend(Leaf::Slashing)),
        StakingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NotTimelockLeaf)
    );
    // Timelock withdrawal in a multi-input tx: classified on its own input.
    let mut tx = f.leaf_spend(Leaf::Timelock);
    tx.input.insert(0, TxIn { previous_output: OutPoint::null(), ..Default::default() });
    assert_eq!(f.classify(&tx), StakingSpend::Withdrawal);
    // The withdrawal sighash needs every prevout.
    assert!(staking_withdrawal_sighash(&tx, 1, &[f.info.staking_output(VALUE)], &f.info).is_err());
    let prevouts =
        [TxOut { value: Amount::from_sat(5), script_pubkey: ScriptBuf::new() }, f.info.staking_output(VALUE)];
    let h = staking_withdrawal_sighash(&tx, 1, &prevouts, &f.info).unwrap();
    let sig = f.secp.sign_schnorr_with_aux_rand(&Message::from_digest(h.to_byte_array()), &f.staker, &[2; 32]);
    assert!(verify_schnorr(&h, sig.as_ref(), &f.staker.x_only_public_key().0));
    assert!(!verify_schnorr(&h, &sig.as_ref()[..63], &f.staker.x_only_public_key().0));
}

#[test]
fn short_witnesses_do_not_panic() {
    let f = fixture();
    let mut tx = f.signed_unbonding();
    tx.input[0].witness = Witness::from_slice(&[[1u8; 64]]);
    assert_eq!(
        f.classify(&tx),
        StakingSpend::InvalidWithdrawal(InvalidWithdrawalReason::WitnessTooShort(1)),
        "1-item witness"
    );
    tx.input[0].witness = Witness::new();
    assert_eq!(
        f.classify(&tx),
        StakingSpend::InvalidWithdrawal(InvalidWithdrawalReason::WitnessTooShort(0)),
        "empty witness"
    );
    let u = f.info.unbonding_info(PARAMS.unbonding_time);
    assert_eq!(
        classify_unbonding_spend(&tx, 0, &u),
        UnbondingSpend::InvalidWithdrawal(InvalidWithdrawalReason::WitnessTooShort(0))
    );
    assert_eq!(
        classify_unbonding_spend(&tx, 5, &u),
        UnbondingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NoSuchInput(5)),
        "missing input"
    );
}

#[test]
fn unbonding_output_spends() {
    let f = fixture();
    let u = f.info.unbonding_info(PARAMS.unbonding_time);
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([8; 32]), vout: 0 },
            sequence: Sequence::from_consensus(u32::from(PARAMS.unbonding_time)),
            ..Default::default()
        }],
        output: vec![],
    };
    tx.input[0].witness = withdrawal_witness(&[1; 64], &u.timelock_script(), &u.control_block_timelock());
    assert_eq!(classify_unbonding_spend(&tx, 0, &u), UnbondingSpend::Withdrawal);
    tx.input[0].witness = withdrawal_witness(&[1; 64], &u.slashing_script(), &u.control_block_slashing());
    assert_eq!(
        classify_unbonding_spend(&tx, 0, &u),
        UnbondingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NotTimelockLeaf)
    );
    // The staking timelock leaf is not the unbonding timelock' leaf.
    tx.input[0].witness =
        withdrawal_witness(&[1; 64], &f.info.timelock_script(), &f.info.control_block(Leaf::Timelock));
    assert_eq!(
        classify_unbonding_spend(&tx, 0, &u),
        UnbondingSpend::InvalidWithdrawal(InvalidWithdrawalReason::NotTimelockLeaf)
    );
}

#[test]
fn witness_assembly_rules() {
    let f = fixture();
    let tx = build_unbonding_tx_for(&f.info, f.outpoint, VALUE, PARAMS).unwrap();
    let sig = |i: usize| (f.covenants[i].x_only_public_key().0, f.sign(&f.covenants[i], &tx));
    let staker_sig = f.sign(&f.staker, &tx);
    let w = |sigs: &[(XOnlyPublicKey, [u8; 64])]| unbonding_witness(sigs, &staker_sig, &f.info, &f.committee);
    assert!(matches!(w(&[sig(0), sig(1)]), Err(WitnessError::WrongSignatureCount { got: 2, quorum: 3 })));
    assert!(matches!(
        w(&[sig(0), sig(1), sig(2), sig(3)]),
        Err(WitnessError::WrongSignatureCount { got: 4, quorum: 3 })
    ));
    assert!(matches!(w(&[sig(0), sig(1), sig(1)]), Err(WitnessError::DuplicateSignature(_))));
    let outsider = (f.staker.x_only_public_key().0, staker_sig);
    assert!(matches!(w(&[sig(0), sig(1), outsider]), Err(WitnessError::NotACovenantKey(_))));
    let other = CovenantCommittee::new(f.committee.keys_compressed()[..4].to_vec(), 3).unwrap();
    assert_eq!(
        unbonding_witness(&[sig(0), sig(1), sig(2)], &staker_sig, &f.info, &other),
        Err(WitnessError::CommitteeMismatch)
    );
    // Order of the given signatures does not matter.
    assert_eq!(w(&[sig(4), sig(0), sig(2)]).unwrap(), w(&[sig(0), sig(2), sig(4)]).unwrap());
    for e in [WitnessError::WrongSignatureCount { got: 2, quorum: 3 }, WitnessError::CommitteeMismatch] {
        eprintln!("{e}");
    }
}

#[test]
fn unbonding_request_checks() {
    let f = fixture();
    let tx = build_unbonding_tx_for(&f.info, f.outpoint, VALUE, PARAMS).unwrap();
    let sig = f.sign(&f.staker, &tx);
    let check = |t: &Transaction, txid: Txid, s: &[u8], strict: bool| {
        let r = UnbondingRequest { unbonding_tx: t, unbonding_txid: txid, staker_signature: s };
        check_unbonding_request(&r, &f.info, f.outpoint, VALUE, PARAMS, strict)
    };
    check(&tx, tx.compute_txid(), &sig, true).unwrap();

    let mut t = tx.clone();
    t.output.push(TxOut::NULL);
    assert!(matches!(check(&t, t.compute_txid(), &sig, false), Err(UnbondingRequestError::NotSimpleTransfer(_))));
    let mut t = tx.clone();
    t.input[0].sequence = Sequence::ZERO;
    assert!(matches!(check(&t, t.compute_txid(), &sig, false), Err(UnbondingRequestError::NotSimpleTransfer(_))));
    let mut t = tx.clone();
    t.lock_time = LockTime::from_consensus(5);
    assert!(matches!(check(&t, t.compute_txid(), &sig, false), Err(UnbondingRequestError::NotSimpleTransfer(_))));

    let mut t = tx.clone();
    t.version = Version::ONE;
    let s1 = f.sign(&f.staker, &t);
    assert_eq!(check(&t, t.compute_txid(), &s1, true), Err(UnbondingRequestError::WrongVersion(1)));
    check(&t, t.compute_txid(), &s1, false).unwrap();

    assert!(matches!(check(&tx, Txid::all_zeros(), &sig, true), Err(UnbondingRequestError::TxidMismatch { .. })));

    // Strict mode also wants an empty scriptSig.
    let mut t = tx.clone();
    t.input[0].script_sig = ScriptBuf::from_bytes(vec![0x51]);
    let s2 = f.sign(&f.staker, &t);
    assert!(matches!(check(&t, t.compute_txid(), &s2, true), Err(UnbondingRequestError::NotSimpleTransfer(_))));
    check(&t, t.compute_txid(), &s2, false).unwrap();

    let mut t = tx.clone();
    t.input[0].previous_output.vout = 0;
    assert!(matches!(check(&t, t.compute_txid(), &sig, true), Err(UnbondingRequestError::WrongInput { .. })));

    let mut t = tx.clone();
    t.output[0].value = Amount::from_sat(1);
    assert!(matches!(check(&t, t.compute_txid(), &sig, true), Err(UnbondingRequestError::WrongOutputValue { .. })));

    let mut t = tx.clone();
    t.output[0].script_pubkey = f.info.pk_script();
    assert_eq!(check(&t, t.compute_txid(), &sig, true), Err(UnbondingRequestError::WrongOutputScript));

    let bad_sig = f.sign(&f.covenants[0], &tx);
    assert_eq!(check(&tx, tx.compute_txid(), &bad_sig, true), Err(UnbondingRequestError::BadSignature));
    assert_eq!(check(&tx, tx.compute_txid(), &sig[..63], true), Err(UnbondingRequestError::BadSignature));

    let r = UnbondingRequest { unbonding_tx: &tx, unbonding_txid: tx.compute_txid(), staker_signature: &sig };
    assert_eq!(
        check_unbonding_request(&r, &f.info, f.outpoint, PARAMS.unbonding_fee, PARAMS, true),
        Err(UnbondingRequestError::StakingValueTooLow {
            staking_value: PARAMS.unbonding_fee,
            unbonding_fee: PARAMS.unbonding_fee
        })
    );
}
