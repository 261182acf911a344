//! BIP-341 script-path sighashes, BIP-340 verification and witness assembly (spec §2.2, §2.3).

use std::fmt;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Message};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::ControlBlock;
use bitcoin::{Script, TapLeafHash, TapSighash, Transaction, TxOut, Witness, XOnlyPublicKey};

use crate::committee::CovenantCommittee;
use crate::staking::{Leaf, StakingInfo, UnbondingInfo};

/// Why a sighash could not be computed (input index out of range, or the number of prevouts does
/// not match the number of inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SighashError(pub String);

impl fmt::Display for SighashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot compute the taproot sighash: {} (pass one prevout per input, in input order)", self.0)
    }
}

impl std::error::Error for SighashError {}

/// BIP-341 script-path sighash with `SIGHASH_DEFAULT`, no annex, codesep `0xffffffff`.
/// `prevouts` must hold the spent output of every input, in input order.
pub fn taproot_script_sighash(
    tx: &Transaction,
    input_index: usize,
    prevouts: &[TxOut],
    leaf_hash: TapLeafHash,
) -> Result<TapSighash, SighashError> {
    SighashCache::new(tx)
        .taproot_script_spend_signature_hash(input_index, &Prevouts::All(prevouts), leaf_hash, TapSighashType::Default)
        .map_err(|e| SighashError(e.to_string()))
}

/// The message staker and covenant members sign for an unbonding transaction: input 0, prevout =
/// the staking output, leaf = the unbonding script. The transaction must have exactly one input.
pub fn unbonding_sighash(
    unbonding_tx: &Transaction,
    staking_output: &TxOut,
    unbonding_leaf: &Script,
) -> Result<TapSighash, SighashError> {
    let leaf = TapLeafHash::from_script(unbonding_leaf, bitcoin::taproot::LeafVersion::TapScript);
    taproot_script_sighash(unbonding_tx, 0, std::slice::from_ref(staking_output), leaf)
}

/// Sighash for withdrawing from the staking output through its timelock leaf (input
/// `input_index`; `prevouts` = the outputs spent by every input).
pub fn staking_withdrawal_sighash(
    tx: &Transaction,
    input_index: usize,
    prevouts: &[TxOut],
    staking: &StakingInfo,
) -> Result<TapSighash, SighashError> {
    taproot_script_sighash(tx, input_index, prevouts, staking.leaf_hash(Leaf::Timelock))
}

/// Sighash for withdrawing from the unbonding output through its timelock' leaf.
pub fn unbonding_withdrawal_sighash(
    tx: &Transaction,
    input_index: usize,
    prevouts: &[TxOut],
    unbonding: &UnbondingInfo,
) -> Result<TapSighash, SighashError> {
    taproot_script_sighash(tx, input_index, prevouts, unbonding.timelock_leaf_hash())
}

/// Verifies a 64-byte BIP-340 signature (SIGHASH_DEFAULT, no sighash byte) over `sighash`.
/// Any other length, or an invalid encoding, is `false`.
pub fn verify_schnorr(sighash: &TapSighash, sig: &[u8], pk: &XOnlyPublicKey) -> bool {
    if sig.len() != 64 {
        return false;
    }
    let Ok(sig) = schnorr::Signature::from_slice(sig) else { return false };
    let msg = Message::from_digest(sighash.to_byte_array());
    crate::secp().verify_schnorr(&sig, &msg, pk).is_ok()
}

/// Why an unbonding witness could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessError {
    /// A signature's key is not a covenant key of the committee.
    NotACovenantKey(XOnlyPublicKey),
    /// Two signatures for the same covenant key.
    DuplicateSignature(XOnlyPublicKey),
    /// Not exactly `quorum` covenant signatures (the script ends `<q> OP_NUMEQUAL`).
    WrongSignatureCount {
        /// Signatures given.
        got: usize,
        /// Quorum required.
        quorum: u32,
    },
    /// `committee` is not the committee the staking output was built for.
    CommitteeMismatch,
}

impl fmt::Display for WitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessError::NotACovenantKey(k) => {
                write!(f, "signature key {k} is not a covenant key of this parameters version (drop that signature)")
            }
            WitnessError::DuplicateSignature(k) => {
                write!(f, "two signatures for covenant key {k} (keep one per member)")
            }
            WitnessError::WrongSignatureCount { got, quorum } => write!(
                f,
                "{got} covenant signatures given but the script needs exactly the quorum {quorum} (more also fails OP_NUMEQUAL): pass exactly {quorum}"
            ),
            WitnessError::CommitteeMismatch => write!(
                f,
                "the committee passed differs from the one the staking output was built with (use the staking tx's params version)"
            ),
        }
    }
}

impl std::error::Error for WitnessError {}

/// Assembles the unbonding-path witness of the staking output (spec §2.2):
/// one item per covenant key in DESCENDING x-only order (the signature, or an empty item for
/// members that did not sign), then the staker signature, the unbonding leaf script and its
/// control block. Exactly `quorum` covenant signatures must be given, each for a distinct member.
/// Signatures are not verified here (verify them with [`verify_schnorr`] first: a non-empty
/// invalid signature aborts the script).
pub fn unbonding_witness(
    covenant_sigs: &[(XOnlyPublicKey, [u8; 64])],
    staker_sig: &[u8; 64],
    staking: &StakingInfo,
    committee: &CovenantCommittee,
) -> Result<Witness, WitnessError> {
    if committee != staking.committee() {
        return Err(WitnessError::CommitteeMismatch);
    }
    let keys = committee.keys_xonly_sorted();
    let mut slots: Vec<Option<&[u8; 64]>> = vec![None; keys.len()];
    for (pk, sig) in covenant_sigs {
        let pos = committee.position_xonly(pk).ok_or(WitnessError::NotACovenantKey(*pk))?;
        if slots[pos].is_some() {
            return Err(WitnessError::DuplicateSignature(*pk));
        }
        slots[pos] = Some(sig);
    }
    if covenant_sigs.len() != committee.quorum() as usize {
        return Err(WitnessError::WrongSignatureCount { got: covenant_sigs.len(), quorum: committee.quorum() });
    }
    let mut w = Witness::new();
    for slot in slots.iter().rev() {
        match slot {
            Some(sig) => w.push(sig.as_slice()),
            None => w.push([]),
        }
    }
    w.push(staker_sig);
    w.push(staking.unbonding_script().as_bytes());
    w.push(staking.control_block(Leaf::Unbonding).serialize());
    Ok(w)
}

/// Witness for a timelock-leaf withdrawal: `[staker_sig, script, control_block]` (spec §2.3).
pub fn withdrawal_witness(staker_sig: &[u8; 64], script: &Script, control_block: &ControlBlock) -> Witness {
    let mut w = Witness::new();
    w.push(staker_sig);
    w.push(script.as_bytes());
    w.push(control_block.serialize());
    w
}
