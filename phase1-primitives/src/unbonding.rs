//! Unbonding transactions: the canonical unbonding tx (spec §2.1), the indexer's classification
//! of spends of staking and unbonding outputs (§2.4), and the API's unbonding-request check (§6.6).

use std::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, TxIn, Txid, Witness, XOnlyPublicKey};

use crate::committee::CovenantCommittee;
use crate::params::ParamsVersion;
use crate::sighash::{taproot_script_sighash, verify_schnorr};
use crate::staking::{Leaf, StakingInfo, StakingInfoError, UnbondingInfo};

/// The two parameters unbonding needs, taken from the params version of the *staking* tx's
/// inclusion height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnbondingParams {
    /// Fee deducted from the staking value (satoshis).
    pub unbonding_fee: u64,
    /// Timelock of the unbonding output (blocks).
    pub unbonding_time: u16,
}

impl From<&ParamsVersion> for UnbondingParams {
    fn from(p: &ParamsVersion) -> Self {
        UnbondingParams { unbonding_fee: p.unbonding_fee, unbonding_time: p.unbonding_time }
    }
}

/// Why an unbonding transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbondingError {
    /// `staking_value − unbonding_fee` is not positive.
    ValueTooLow {
        /// Staking value.
        staking_value: u64,
        /// Unbonding fee.
        unbonding_fee: u64,
    },
    /// The keys cannot form the scripts.
    Keys(StakingInfoError),
}

impl fmt::Display for UnbondingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnbondingError::ValueTooLow { staking_value, unbonding_fee } => write!(
                f,
                "staking value {staking_value} sat does not exceed the unbonding fee {unbonding_fee} sat, so no unbonding output is possible"
            ),
            UnbondingError::Keys(e) => write!(f, "cannot build the unbonding scripts: {e}"),
        }
    }
}

impl std::error::Error for UnbondingError {}

/// `staking_value − unbonding_fee` if positive.
pub fn expected_unbonding_value(staking_value: u64, unbonding_fee: u64) -> Option<u64> {
    staking_value.checked_sub(unbonding_fee).filter(|v| *v > 0)
}

/// The canonical unbonding transaction paying `value` to `unbonding`: version 2, one input
/// spending `staking_outpoint` (empty scriptSig, sequence 0xffffffff, no witness), one output,
/// lock time 0.
pub fn unbonding_tx(staking_outpoint: OutPoint, value: u64, unbonding: &UnbondingInfo) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: staking_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![unbonding.unbonding_output(value)],
    }
}

/// The canonical unbonding transaction (spec §2.1) of the stake `staking` at `staking_outpoint`:
/// one output of `staking_value − unbonding_fee` to the unbonding output for `unbonding_time`.
pub fn build_unbonding_tx_for(
    staking: &StakingInfo,
    staking_outpoint: OutPoint,
    staking_value: u64,
    params: impl Into<UnbondingParams>,
) -> Result<Transaction, UnbondingError> {
    let params = params.into();
    let value = expected_unbonding_value(staking_value, params.unbonding_fee)
        .ok_or(UnbondingError::ValueTooLow { staking_value, unbonding_fee: params.unbonding_fee })?;
    Ok(unbonding_tx(staking_outpoint, value, &staking.unbonding_info(params.unbonding_time)))
}

/// The canonical unbonding transaction (spec §2.1) spending output `staking_output_index` of
/// `staking_txid` (value `staking_value`), from the keys alone: the staking time is not needed,
/// only the unbonding output (timelock' + slashing leaf) is.
pub fn build_unbonding_tx(
    staking_txid: Txid,
    staking_output_index: u32,
    staking_value: u64,
    params: impl Into<UnbondingParams>,
    staker: &XOnlyPublicKey,
    fp: &[XOnlyPublicKey],
    committee: &CovenantCommittee,
) -> Result<Transaction, UnbondingError> {
    let params = params.into();
    let value = expected_unbonding_value(staking_value, params.unbonding_fee)
        .ok_or(UnbondingError::ValueTooLow { staking_value, unbonding_fee: params.unbonding_fee })?;
    let unbonding = UnbondingInfo::new(staker, fp, committee, params.unbonding_time).map_err(UnbondingError::Keys)?;
    Ok(unbonding_tx(OutPoint { txid: staking_txid, vout: staking_output_index }, value, &unbonding))
}

/// Why a spend that uses the unbonding leaf is not a valid unbonding (§2.4 steps 4–5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidUnbondingReason {
    /// The input's sequence is not 0xffffffff (RBF / relative lock enabled).
    NonFinalSequence(u32),
    /// The lock time is not 0.
    NonZeroLockTime(u32),
    /// `staking_value ≤ unbonding_fee`.
    StakingValueTooLow {
        /// Staking value.
        staking_value: u64,
        /// Unbonding fee.
        unbonding_fee: u64,
    },
    /// Output 0 does not pay to the rebuilt unbonding pkScript.
    WrongOutputScript,
    /// Output 0 value is not `staking_value − unbonding_fee`.
    WrongOutputValue {
        /// Value found.
        got: u64,
        /// Value required.
        expected: u64,
    },
}

impl fmt::Display for InvalidUnbondingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidUnbondingReason::NonFinalSequence(s) => {
                write!(f, "unbonding input sequence is {s:#010x}; it must be 0xffffffff (no RBF)")
            }
            InvalidUnbondingReason::NonZeroLockTime(l) => write!(f, "unbonding tx lock time is {l}; it must be 0"),
            InvalidUnbondingReason::StakingValueTooLow { staking_value, unbonding_fee } => {
                write!(f, "staking value {staking_value} sat does not exceed the unbonding fee {unbonding_fee} sat")
            }
            InvalidUnbondingReason::WrongOutputScript => {
                write!(
                    f,
                    "unbonding output pkScript differs from the unbonding output rebuilt from the stake and params"
                )
            }
            InvalidUnbondingReason::WrongOutputValue { got, expected } => write!(
                f,
                "unbonding output value is {got} sat; it must be staking value − unbonding fee = {expected} sat"
            ),
        }
    }
}

/// Why a spend is not a valid withdrawal (the indexer only counts it as an invalid withdrawal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidWithdrawalReason {
    /// The input's witness has fewer than 2 items, so it reveals no script. The Go indexer panics
    /// on such a witness; here it is an invalid withdrawal (unreachable for real spends, since the
    /// key path is disabled, but a malformed block must not crash the plugin).
    WitnessTooShort(usize),
    /// `witness[len−2]` is not the expected timelock leaf (e.g. the slashing leaf, or the unbonding
    /// leaf in a transaction that is not 1-in/1-out).
    NotTimelockLeaf,
    /// The transaction has no input at the given index.
    NoSuchInput(usize),
}

impl fmt::Display for InvalidWithdrawalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidWithdrawalReason::WitnessTooShort(n) => {
                write!(f, "the spending input's witness has {n} item(s); a script-path spend needs at least 2")
            }
            InvalidWithdrawalReason::NotTimelockLeaf => {
                write!(f, "the script revealed at witness[len-2] is not the timelock leaf")
            }
            InvalidWithdrawalReason::NoSuchInput(i) => write!(f, "the transaction has no input #{i}"),
        }
    }
}

/// How the indexer classifies a spend of a stored staking output (§2.4 step 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakingSpend {
    /// A valid unbonding transaction (emit `UnbondingStakingEvent`, store it).
    ValidUnbonding,
    /// Uses the unbonding leaf but breaks a rule (counted as invalid, otherwise ignored).
    InvalidUnbonding(InvalidUnbondingReason),
    /// Not an unbonding; spends the staking timelock leaf (emit `WithdrawStakingEvent`).
    Withdrawal,
    /// Neither (e.g. slashing leaf, unbonding leaf with extra inputs/outputs, too short a witness).
    InvalidWithdrawal(InvalidWithdrawalReason),
}

/// Outcome of the unbonding check alone.
enum UnbondingCheck {
    NotUnbonding,
    Valid,
    Invalid(InvalidUnbondingReason),
}

/// `IsValidUnbondingTx` (indexer v0.5.0) steps 1–5.
fn check_unbonding(
    tx: &Transaction,
    staking: &StakingInfo,
    staking_outpoint: OutPoint,
    staking_value: u64,
    params: UnbondingParams,
) -> UnbondingCheck {
    // 1. exactly one input and one output
    if tx.input.len() != 1 || tx.output.len() != 1 {
        return UnbondingCheck::NotUnbonding;
    }
    let input = &tx.input[0];
    // 2. spends the staking outpoint
    if input.previous_output != staking_outpoint {
        return UnbondingCheck::NotUnbonding;
    }
    // 3. the script revealed at witness[len-2] is the unbonding leaf (Go panics with < 2 items;
    //    such a witness cannot use the unbonding leaf, so it falls through to the withdrawal check)
    let w = &input.witness;
    if w.len() < 2 || !w.nth(w.len() - 2).is_some_and(|s| staking.is_leaf_script(Leaf::Unbonding, s)) {
        return UnbondingCheck::NotUnbonding;
    }
    // 4. no RBF, no lock time
    if input.sequence != Sequence::MAX {
        return UnbondingCheck::Invalid(InvalidUnbondingReason::NonFinalSequence(input.sequence.0));
    }
    if tx.lock_time != LockTime::ZERO {
        return UnbondingCheck::Invalid(InvalidUnbondingReason::NonZeroLockTime(tx.lock_time.to_consensus_u32()));
    }
    // 5. output equals the rebuilt unbonding output
    let Some(expected) = expected_unbonding_value(staking_value, params.unbonding_fee) else {
        return UnbondingCheck::Invalid(InvalidUnbondingReason::StakingValueTooLow {
            staking_value,
            unbonding_fee: params.unbonding_fee,
        });
    };
    let unbonding = staking.unbonding_info(params.unbonding_time);
    let out = &tx.output[0];
    if !unbonding.matches_pk_script(&out.script_pubkey) {
        return UnbondingCheck::Invalid(InvalidUnbondingReason::WrongOutputScript);
    }
    if out.value.to_sat() != expected {
        return UnbondingCheck::Invalid(InvalidUnbondingReason::WrongOutputValue { got: out.value.to_sat(), expected });
    }
    UnbondingCheck::Valid
}

/// Checks that `witness[len−2]` of input `input_index` satisfies `is_script`. A witness with fewer
/// than 2 items (on which the Go indexer panics) or a missing input is an invalid withdrawal.
fn check_revealed_script(
    tx: &Transaction,
    input_index: usize,
    is_script: impl Fn(&[u8]) -> bool,
) -> Result<(), InvalidWithdrawalReason> {
    let input = tx.input.get(input_index).ok_or(InvalidWithdrawalReason::NoSuchInput(input_index))?;
    let w = &input.witness;
    if w.len() < 2 {
        return Err(InvalidWithdrawalReason::WitnessTooShort(w.len()));
    }
    if w.nth(w.len() - 2).is_some_and(is_script) {
        Ok(())
    } else {
        Err(InvalidWithdrawalReason::NotTimelockLeaf)
    }
}

/// Classifies input `input_index` of `spending_tx`, which spends the stored staking output
/// `staking_outpoint` of value `staking_value` (§2.4 step 1): first `IsValidUnbondingTx` (1-in/1-out,
/// spends the staking outpoint, `witness[len−2]` is the unbonding leaf; then sequence 0xffffffff,
/// lock time 0, output 0 = rebuilt unbonding output of `staking_value − unbonding_fee`); if it is
/// not an unbonding, the withdrawal check (`witness[len−2]` of this input is the staking timelock
/// leaf).
///
/// `params` must come from the params version of the staking tx's inclusion height. A witness with
/// fewer than 2 items (on which the Go indexer panics) is classified as
/// `InvalidWithdrawal(WitnessTooShort)`.
pub fn classify_staking_spend(
    spending_tx: &Transaction,
    input_index: usize,
    staking: &StakingInfo,
    staking_outpoint: OutPoint,
    staking_value: u64,
    params: impl Into<UnbondingParams>,
) -> StakingSpend {
    match check_unbonding(spending_tx, staking, staking_outpoint, staking_value, params.into()) {
        UnbondingCheck::Valid => StakingSpend::ValidUnbonding,
        UnbondingCheck::Invalid(r) => StakingSpend::InvalidUnbonding(r),
        UnbondingCheck::NotUnbonding => {
            match check_revealed_script(spending_tx, input_index, |s| staking.is_leaf_script(Leaf::Timelock, s)) {
                Ok(()) => StakingSpend::Withdrawal,
                Err(r) => StakingSpend::InvalidWithdrawal(r),
            }
        }
    }
}

/// How the indexer classifies a spend of a stored unbonding output (§2.4 step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbondingSpend {
    /// Spends the unbonding timelock' leaf (emit `WithdrawStakingEvent` with the staking tx hash).
    Withdrawal,
    /// Anything else, including a witness with fewer than 2 items.
    InvalidWithdrawal(InvalidWithdrawalReason),
}

/// Classifies input `input_index` of `spending_tx`, which spends a stored unbonding output:
/// `witness[len−2]` must be the unbonding timelock' leaf (rebuilt from the staking data and the
/// staking tx's params, e.g. [`StakingInfo::unbonding_info`]).
pub fn classify_unbonding_spend(
    spending_tx: &Transaction,
    input_index: usize,
    unbonding: &UnbondingInfo,
) -> UnbondingSpend {
    match check_revealed_script(spending_tx, input_index, |s| unbonding.is_timelock_script(s)) {
        Ok(()) => UnbondingSpend::Withdrawal,
        Err(r) => UnbondingSpend::InvalidWithdrawal(r),
    }
}

/// Verifies a BIP-340 signature by `pk` over the unbonding sighash of `unbonding_tx` (input 0,
/// prevout = the staking output of `staking_value`, unbonding leaf). Works for the staker's and
/// the covenant members' signatures, which sign the same message.
pub fn verify_unbonding_signature(
    unbonding_tx: &Transaction,
    staking: &StakingInfo,
    staking_value: u64,
    pk: &XOnlyPublicKey,
    sig: &[u8],
) -> bool {
    let prevout = staking.staking_output(staking_value);
    match taproot_script_sighash(unbonding_tx, 0, std::slice::from_ref(&prevout), staking.unbonding_leaf_hash()) {
        Ok(h) => verify_schnorr(&h, sig, pk),
        Err(_) => false,
    }
}

/// Largest standard transaction weight (checked in strict mode).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;

/// A `POST /v1/unbonding` request, decoded.
#[derive(Debug, Clone, Copy)]
pub struct UnbondingRequest<'a> {
    /// The unsigned unbonding transaction.
    pub unbonding_tx: &'a Transaction,
    /// The txid the request claims (`unbonding_tx_hash_hex`).
    pub unbonding_txid: Txid,
    /// The staker's 64-byte BIP-340 signature.
    pub staker_signature: &'a [u8],
}

/// Why an unbonding request was rejected (API answers 403 `VALIDATION_ERROR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbondingRequestError {
    /// Not 1 input / 1 output / sequence 0xffffffff / lock time 0 (`IsSimpleTransfer`).
    NotSimpleTransfer(String),
    /// Strict mode: the version is not 2.
    WrongVersion(i32),
    /// The claimed txid is not the transaction's txid.
    TxidMismatch {
        /// Claimed.
        claimed: Txid,
        /// Computed.
        computed: Txid,
    },
    /// Input 0 does not spend the staking output.
    WrongInput {
        /// Outpoint spent.
        got: OutPoint,
        /// Staking outpoint.
        expected: OutPoint,
    },
    /// `staking_value ≤ unbonding_fee`.
    StakingValueTooLow {
        /// Staking value.
        staking_value: u64,
        /// Unbonding fee.
        unbonding_fee: u64,
    },
    /// Output 0 value is wrong.
    WrongOutputValue {
        /// Found.
        got: u64,
        /// Required.
        expected: u64,
    },
    /// Output 0 pkScript is not the unbonding output.
    WrongOutputScript,
    /// The staker signature does not verify.
    BadSignature,
}

impl fmt::Display for UnbondingRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnbondingRequestError::NotSimpleTransfer(why) => write!(
                f,
                "unbonding tx is not a simple transfer: {why} (it needs 1 input with sequence 0xffffffff, 1 output and lock time 0)"
            ),
            UnbondingRequestError::WrongVersion(v) => write!(f, "unbonding tx version is {v}; it must be 2"),
            UnbondingRequestError::TxidMismatch { claimed, computed } => write!(
                f,
                "unbonding_tx_hash_hex {claimed} does not match the transaction's txid {computed}"
            ),
            UnbondingRequestError::WrongInput { got, expected } => {
                write!(f, "unbonding tx input spends {got}; it must spend the staking output {expected}")
            }
            UnbondingRequestError::StakingValueTooLow { staking_value, unbonding_fee } => write!(
                f,
                "staking value {staking_value} sat does not exceed the unbonding fee {unbonding_fee} sat"
            ),
            UnbondingRequestError::WrongOutputValue { got, expected } => write!(
                f,
                "unbonding output value is {got} sat; it must be staking value − unbonding fee = {expected} sat"
            ),
            UnbondingRequestError::WrongOutputScript => {
                write!(f, "unbonding output pkScript is not the unbonding output for this stake and params version")
            }
            UnbondingRequestError::BadSignature => write!(
                f,
                "staker signature does not verify over the unbonding tx's taproot sighash for the unbonding leaf"
            ),
        }
    }
}

impl std::error::Error for UnbondingRequestError {}

/// The API's `VerifyUnbondingRequest` (§6.6 3a–3e), in order: (a) shape — `IsSimpleTransfer`
/// (1 input, 1 output, sequence 0xffffffff, lock time 0, any version) and, if
/// `require_version_2`, the stricter `CheckPreSignedUnbondingTxSanity` of API v0.3.8 / signer
/// v0.2.13+ (version exactly 2, empty scriptSig, weight ≤ 400 000); (b) claimed txid equals
/// the computed txid; (c) input 0 spends `staking_outpoint`; (d) output 0 value equals
/// `staking_value − unbonding_fee` (> 0) and its pkScript the rebuilt unbonding output; (e) the
/// staker's signature verifies over the unbonding sighash.
pub fn check_unbonding_request(
    request: &UnbondingRequest<'_>,
    staking: &StakingInfo,
    staking_outpoint: OutPoint,
    staking_value: u64,
    params: impl Into<UnbondingParams>,
    require_version_2: bool,
) -> Result<(), UnbondingRequestError> {
    let params = params.into();
    let tx = request.unbonding_tx;
    if tx.input.len() != 1 {
        return Err(UnbondingRequestError::NotSimpleTransfer(format!("it has {} inputs", tx.input.len())));
    }
    if tx.output.len() != 1 {
        return Err(UnbondingRequestError::NotSimpleTransfer(format!("it has {} outputs", tx.output.len())));
    }
    if tx.input[0].sequence != Sequence::MAX {
        return Err(UnbondingRequestError::NotSimpleTransfer(format!(
            "input sequence is {:#010x}",
            tx.input[0].sequence.0
        )));
    }
    if tx.lock_time != LockTime::ZERO {
        return Err(UnbondingRequestError::NotSimpleTransfer(format!(
            "lock time is {}",
            tx.lock_time.to_consensus_u32()
        )));
    }
    if require_version_2 {
        // CheckPreSignedUnbondingTxSanity (babylon v0.17.2) on top of the checks above.
        if tx.version != Version::TWO {
            return Err(UnbondingRequestError::WrongVersion(tx.version.0));
        }
        if !tx.input[0].script_sig.is_empty() {
            return Err(UnbondingRequestError::NotSimpleTransfer("the input has a non-empty scriptSig".into()));
        }
        let weight = tx.weight().to_wu();
        if weight > MAX_STANDARD_TX_WEIGHT {
            return Err(UnbondingRequestError::NotSimpleTransfer(format!(
                "its weight {weight} exceeds {MAX_STANDARD_TX_WEIGHT}"
            )));
        }
    }
    let computed = tx.compute_txid();
    if computed != request.unbonding_txid {
        return Err(UnbondingRequestError::TxidMismatch { claimed: request.unbonding_txid, computed });
    }
    if tx.input[0].previous_output != staking_outpoint {
        return Err(UnbondingRequestError::WrongInput { got: tx.input[0].previous_output, expected: staking_outpoint });
    }
    let expected = expected_unbonding_value(staking_value, params.unbonding_fee)
        .ok_or(UnbondingRequestError::StakingValueTooLow { staking_value, unbonding_fee: params.unbonding_fee })?;
    if tx.output[0].value.to_sat() != expected {
        return Err(UnbondingRequestError::WrongOutputValue { got: tx.output[0].value.to_sat(), expected });
    }
    if !staking.unbonding_info(params.unbonding_time).matches_pk_script(&tx.output[0].script_pubkey) {
        return Err(UnbondingRequestError::WrongOutputScript);
    }
    if !verify_unbonding_signature(tx, staking, staking_value, staking.staker(), request.staker_signature) {
        return Err(UnbondingRequestError::BadSignature);
    }
    Ok(())
}
