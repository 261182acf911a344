//! The signer's checks (spec §8.2, covenant-signer v0.2.15), in order, as one pure function over a
//! [`Chain`]: no network and no wallet, so it is unit-tested with an in-memory chain.
//!
//! 1. unbonding tx sanity (`CheckPreSignedUnbondingTxSanity`: version exactly 2, 1 input, 1 output,
//!    lock time 0, sequence 0xffffffff, empty scriptSig, weight ≤ 400 000);
//! 2. the staking pkScript is P2TR;
//! 3. the staking tx (txid of the unbonding input) is confirmed in a block of the best chain, and its
//!    output at the input's index pays to the request's pkScript;
//! 4. its inclusion height ≤ `max-staking-transaction-height`;
//! 5. the params version at that height has the requested covenant key (and this process serves it);
//! 6. confirmations `tip − height + 1 ≥ confirmation_depth`;
//! 7. `ParseV0StakingTx` with that version;
//! 8. the unbonding input spends the parsed staking output index;
//! 9. staking value and time within the version's bounds;
//! 10. `value − unbonding_fee > 0` and output 0 equals the rebuilt unbonding output;
//! 11. the staker's signature verifies on the unbonding leaf.
//!
//! The staking cap is not checked: overflow stakes can be unbonded.

use std::fmt;

use phase1_primitives::bitcoin::absolute::LockTime;
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{
    Amount, BlockHash, OutPoint, ScriptBuf, Sequence, TapSighash, Transaction, TxOut, Txid,
};
use phase1_primitives::sighash::{unbonding_sighash, verify_schnorr};
use phase1_primitives::staking_tx::validate_staking_amount_time;
use phase1_primitives::unbonding::{expected_unbonding_value, MAX_STANDARD_TX_WEIGHT};
use phase1_primitives::{parse_v0_staking_tx, GlobalParams, Leaf, StakingInfo};

use crate::request::SignRequest;

/// Where a transaction stands, as a full node with `-txindex` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Unknown to the node (never broadcast, or the node has no `-txindex`).
    NotFound,
    /// Only in the mempool.
    InMempool,
    /// Indexed in a block that is not on the best chain (reorged out).
    InStaleBlock {
        /// That block.
        block_hash: BlockHash,
    },
    /// Confirmed in a block of the best chain.
    InBlock {
        /// The transaction.
        tx: Transaction,
        /// Its block.
        block_hash: BlockHash,
        /// The block's height.
        height: u32,
    },
}

/// The node could not answer (unreachable, RPC error): an internal error, not a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError(pub String);

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the checks need from Bitcoin.
pub trait Chain {
    /// The transaction `txid` and where it is.
    fn tx_status(&self, txid: &Txid) -> Result<TxStatus, ChainError>;
    /// The best chain's height.
    fn tip_height(&self) -> Result<u32, ChainError>;
}

impl<C: Chain + ?Sized> Chain for &C {
    fn tx_status(&self, txid: &Txid) -> Result<TxStatus, ChainError> {
        (**self).tx_status(txid)
    }
    fn tip_height(&self) -> Result<u32, ChainError> {
        (**self).tip_height()
    }
}

/// The operator's choices that the checks apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Stakes included above this height are refused (check 4).
    pub max_staking_tx_height: u32,
    /// The keys this process serves; `None` = every covenant key (the wallet decides).
    pub served_keys: Option<Vec<PublicKey>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { max_staking_tx_height: u32::MAX, served_keys: None }
    }
}

/// The checks of §8.2, numbered as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// 1. `CheckPreSignedUnbondingTxSanity` (version 2).
    UnbondingTxSanity = 1,
    /// 2. The staking pkScript is P2TR.
    StakingPkScript = 2,
    /// 3. The staking tx is confirmed and carries the pkScript.
    StakingTx = 3,
    /// 4. Inclusion height ≤ `max-staking-transaction-height`.
    MaxStakingTxHeight = 4,
    /// 5. Params version and covenant key membership.
    CovenantKey = 5,
    /// 6. Confirmation depth.
    Confirmations = 6,
    /// 7. `ParseV0StakingTx`.
    ParseStakingTx = 7,
    /// 8. Input index = staking output index.
    StakingOutputIndex = 8,
    /// 9. Staking value and time bounds.
    StakingAmountTime = 9,
    /// 10. The unbonding output.
    UnbondingOutput = 10,
    /// 11. The staker's signature.
    StakerSignature = 11,
}

impl Check {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            Check::UnbondingTxSanity => "unbonding tx sanity",
            Check::StakingPkScript => "staking output pkScript",
            Check::StakingTx => "staking tx on chain",
            Check::MaxStakingTxHeight => "max staking tx height",
            Check::CovenantKey => "params version and covenant key",
            Check::Confirmations => "confirmation depth",
            Check::ParseStakingTx => "staking tx format",
            Check::StakingOutputIndex => "staking output index",
            Check::StakingAmountTime => "staking amount and time",
            Check::UnbondingOutput => "unbonding output",
            Check::StakerSignature => "staker signature",
        }
    }
}

/// Why a request is not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The request failed a check (HTTP 400).
    Invalid {
        /// Which check.
        check: Check,
        /// Why, and what to do.
        reason: String,
    },
    /// The node could not be asked (HTTP 500).
    Chain(ChainError),
}

impl CheckError {
    /// The check that refused, if any.
    pub fn check(&self) -> Option<Check> {
        match self {
            CheckError::Invalid { check, .. } => Some(*check),
            CheckError::Chain(_) => None,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Invalid { check, reason } => {
                write!(f, "invalid signing request: check {} ({}) failed: {reason}", *check as u8, check.name())
            }
            CheckError::Chain(e) => write!(f, "cannot reach the full node: {e}"),
        }
    }
}

impl From<ChainError> for CheckError {
    fn from(e: ChainError) -> Self {
        CheckError::Chain(e)
    }
}

fn refuse<T>(check: Check, reason: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError::Invalid { check, reason: reason.into() })
}

/// A request that passed every check: what the wallet signs.
#[derive(Debug, Clone)]
pub struct Approved {
    /// The params version of the staking tx's height.
    pub params_version: u64,
    /// The staking tx's inclusion height.
    pub staking_height: u32,
    /// Its confirmations when checked.
    pub confirmations: u32,
    /// The staking outpoint the unbonding tx spends.
    pub staking_outpoint: OutPoint,
    /// The staking output (value and pkScript): the PSBT's `witness_utxo`.
    pub staking_output: TxOut,
    /// The staking output's scripts and tree.
    pub staking: StakingInfo,
    /// The unbonding transaction (as sent; its txid does not depend on a witness).
    pub unbonding_tx: Transaction,
    /// The covenant key to sign with.
    pub covenant_key: PublicKey,
    /// The message to sign: the unbonding sighash (input 0, unbonding leaf, SIGHASH_DEFAULT).
    pub sighash: TapSighash,
}

impl Approved {
    /// The unbonding leaf script.
    pub fn unbonding_script(&self) -> ScriptBuf {
        self.staking.unbonding_script()
    }

    /// Verifies a covenant signature by [`covenant_key`](Self::covenant_key) over the sighash.
    pub fn verifies(&self, sig: &[u8]) -> bool {
        verify_schnorr(&self.sighash, sig, &self.covenant_key.x_only_public_key().0)
    }

    /// The control block of the unbonding leaf.
    pub fn control_block(&self) -> phase1_primitives::bitcoin::taproot::ControlBlock {
        self.staking.control_block(Leaf::Unbonding)
    }
}

/// Largest total output value (21 million BTC).
const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

/// Check 1: `CheckPreSignedUnbondingTxSanity` (babylon v0.17.2): `CheckTransactionSanity`, then
/// 1 input, 1 output, lock time 0, version exactly 2, weight ≤ 400 000, sequence 0xffffffff and an
/// empty scriptSig.
pub fn check_unbonding_tx_sanity(tx: &Transaction) -> Result<(), String> {
    // btcd's CheckTransactionSanity
    if tx.input.is_empty() {
        return Err("the transaction has no inputs".into());
    }
    if tx.output.is_empty() {
        return Err("the transaction has no outputs".into());
    }
    let mut total: u64 = 0;
    for (i, o) in tx.output.iter().enumerate() {
        let v = o.value.to_sat();
        if v > MAX_MONEY {
            return Err(format!("output {i} value {v} sat exceeds 21 million BTC"));
        }
        total = total.saturating_add(v);
    }
    if total > MAX_MONEY {
        return Err(format!("the outputs add up to {total} sat, more than 21 million BTC"));
    }
    for (i, a) in tx.input.iter().enumerate() {
        if a.previous_output.is_null() {
            return Err(format!("input {i} spends the null outpoint (a coinbase input)"));
        }
        if tx.input[..i].iter().any(|b| b.previous_output == a.previous_output) {
            return Err(format!("input {i} spends {} twice", a.previous_output));
        }
    }
    // CheckPreSignedTxSanity(tx, 1, 1, 2, 2)
    if tx.input.len() != 1 {
        return Err(format!(
            "it has {} inputs; an unbonding tx must have exactly 1 (the staking output)",
            tx.input.len()
        ));
    }
    if tx.output.len() != 1 {
        return Err(format!(
            "it has {} outputs; an unbonding tx must have exactly 1 (the unbonding output)",
            tx.output.len()
        ));
    }
    if tx.lock_time != LockTime::ZERO {
        return Err(format!("its lock time is {}; a pre-signed unbonding tx must have lock time 0", tx.lock_time));
    }
    if tx.version != Version::TWO {
        return Err(format!(
            "its version is {}; an unbonding tx must have version exactly 2 (only one unbonding txid per stake)",
            tx.version.0
        ));
    }
    let weight = tx.weight().to_wu();
    if weight > MAX_STANDARD_TX_WEIGHT {
        return Err(format!("its weight {weight} exceeds the standard maximum {MAX_STANDARD_TX_WEIGHT}"));
    }
    let input = &tx.input[0];
    if input.sequence != Sequence::MAX {
        return Err(format!(
            "its input sequence is {:#010x}; a pre-signed unbonding tx must not be replaceable (sequence 0xffffffff)",
            input.sequence.0
        ));
    }
    if !input.script_sig.is_empty() {
        return Err("its input has a scriptSig; a pre-signed unbonding tx must have an empty scriptSig".into());
    }
    Ok(())
}

/// Runs checks 1–11 of §8.2 in order and returns what the wallet must sign.
pub fn check_signing_request(
    req: &SignRequest,
    params: &GlobalParams,
    policy: &Policy,
    chain: &dyn Chain,
) -> Result<Approved, CheckError> {
    // 1. unbonding tx sanity
    let utx = &req.unbonding_tx;
    if let Err(why) = check_unbonding_tx_sanity(utx) {
        return refuse(
            Check::UnbondingTxSanity,
            format!("the unbonding tx is not a valid pre-signed unbonding tx: {why}"),
        );
    }
    let outpoint = utx.input[0].previous_output;

    // 2. P2TR staking pkScript
    let pk_script = &req.staking_output_pk_script;
    if !pk_script.is_p2tr() {
        return refuse(
            Check::StakingPkScript,
            format!(
                "staking_output_pk_script_hex {} is not a taproot (witness v1, 34-byte) pkScript: send the staking output's pkScript 5120…",
                hex::encode(pk_script.as_bytes())
            ),
        );
    }

    // 3. the staking tx, confirmed, with that output
    let (staking_tx, height) = match chain.tx_status(&outpoint.txid)? {
        TxStatus::NotFound => {
            return refuse(
                Check::StakingTx,
                format!(
                    "staking tx {} (spent by the unbonding input) is not known to the full node: broadcast and confirm it first (a node without -txindex cannot find confirmed transactions)",
                    outpoint.txid
                ),
            )
        }
        TxStatus::InMempool => {
            return refuse(
                Check::StakingTx,
                format!(
                    "staking tx {} is only in the mempool; it must be confirmed in a block before unbonding",
                    outpoint.txid
                ),
            )
        }
        TxStatus::InStaleBlock { block_hash } => {
            return refuse(
                Check::StakingTx,
                format!(
                    "staking tx {} was included in block {block_hash}, which is no longer on the best chain; wait until it is confirmed again",
                    outpoint.txid
                ),
            )
        }
        TxStatus::InBlock { tx, height, .. } => {
            if tx.compute_txid() != outpoint.txid {
                return Err(CheckError::Chain(ChainError(format!(
                    "the full node returned a transaction with txid {} for {}",
                    tx.compute_txid(),
                    outpoint.txid
                ))));
            }
            (tx, height)
        }
    };
    let Some(spent) = staking_tx.output.get(outpoint.vout as usize) else {
        return refuse(
            Check::StakingTx,
            format!(
                "the unbonding input spends output {} of staking tx {}, which has only {} outputs",
                outpoint.vout,
                outpoint.txid,
                staking_tx.output.len()
            ),
        );
    };
    if &spent.script_pubkey != pk_script {
        return refuse(
            Check::StakingTx,
            format!(
                "output {} of staking tx {} pays to {}, not to the requested staking_output_pk_script_hex {}",
                outpoint.vout,
                outpoint.txid,
                hex::encode(spent.script_pubkey.as_bytes()),
                hex::encode(pk_script.as_bytes())
            ),
        );
    }

    // 4. cut-over height
    if height > policy.max_staking_tx_height {
        return refuse(
            Check::MaxStakingTxHeight,
            format!(
                "staking tx {} was included at height {height}, above max-staking-transaction-height {}: this signer no longer signs unbonding for stakes after that height",
                outpoint.txid, policy.max_staking_tx_height
            ),
        );
    }

    // 5. params version and covenant key
    let Some((_, version)) = params.for_height(u64::from(height)) else {
        return refuse(
            Check::CovenantKey,
            format!(
                "staking tx {} was included at height {height}, below the first params activation height {}: no params version applies",
                outpoint.txid,
                params.versions.first().map(|v| v.activation_height).unwrap_or(0)
            ),
        );
    };
    let key = &req.covenant_public_key;
    if !version.committee().contains_compressed(key) {
        return refuse(
            Check::CovenantKey,
            format!(
                "covenant key {key} is not in covenant_pks of params version {} (the version at the staking tx's height {height})",
                version.version
            ),
        );
    }
    if let Some(served) = &policy.served_keys {
        if !served.contains(key) {
            return refuse(
                Check::CovenantKey,
                format!(
                    "covenant key {key} is a member of params version {} but this signer does not serve it (see [signer-app-config] covenant-keys): send it to that member's signer",
                    version.version
                ),
            );
        }
    }

    // 6. confirmations
    let tip = chain.tip_height()?;
    let confirmations = (u64::from(tip) + 1).saturating_sub(u64::from(height)) as u32;
    let depth = u32::from(version.confirmation_depth);
    if confirmations < depth {
        return refuse(
            Check::Confirmations,
            format!(
                "staking tx {} has {confirmations} confirmation(s) (included at {height}, tip {tip}); params version {} requires confirmation_depth {depth}: retry after {} more block(s)",
                outpoint.txid,
                version.version,
                depth - confirmations
            ),
        );
    }

    // 7. ParseV0StakingTx
    let parsed = match parse_v0_staking_tx(&staking_tx, version.tag_bytes(), version.committee()) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                Check::ParseStakingTx,
                format!(
                    "staking tx {} is not a valid V0 staking tx for params version {}: {e}",
                    outpoint.txid, version.version
                ),
            )
        }
    };

    // 8. the unbonding input spends the staking output
    if parsed.staking_output_index != outpoint.vout {
        return refuse(
            Check::StakingOutputIndex,
            format!(
                "the unbonding input spends output {} of staking tx {}, but its staking output is output {}",
                outpoint.vout, outpoint.txid, parsed.staking_output_index
            ),
        );
    }

    // 9. amount and time bounds
    if let Err(e) = validate_staking_amount_time(parsed.staking_value, parsed.op_return.staking_time, version) {
        return refuse(Check::StakingAmountTime, format!("{e} (params version {})", version.version));
    }

    // 10. the unbonding output
    let Some(expected_value) = expected_unbonding_value(parsed.staking_value, version.unbonding_fee) else {
        return refuse(
            Check::UnbondingOutput,
            format!(
                "staking value {} sat does not exceed the unbonding fee {} sat of params version {}",
                parsed.staking_value, version.unbonding_fee, version.version
            ),
        );
    };
    let expected = parsed.info.unbonding_info(version.unbonding_time).unbonding_output(expected_value);
    let got = &utx.output[0];
    if got.script_pubkey != expected.script_pubkey {
        return refuse(
            Check::UnbondingOutput,
            format!(
                "the unbonding output pays to {}, not to the unbonding output {} rebuilt from the stake (unbonding_time {} of params version {})",
                hex::encode(got.script_pubkey.as_bytes()),
                hex::encode(expected.script_pubkey.as_bytes()),
                version.unbonding_time,
                version.version
            ),
        );
    }
    if got.value != expected.value {
        return refuse(
            Check::UnbondingOutput,
            format!(
                "the unbonding output value is {} sat; it must be staking value {} − unbonding_fee {} = {expected_value} sat (params version {})",
                got.value.to_sat(),
                parsed.staking_value,
                version.unbonding_fee,
                version.version
            ),
        );
    }

    // 11. the staker's signature
    let staking_output = TxOut { value: Amount::from_sat(parsed.staking_value), script_pubkey: pk_script.clone() };
    let sighash = unbonding_sighash(utx, &staking_output, &parsed.info.unbonding_script())
        .map_err(|e| CheckError::Invalid { check: Check::StakerSignature, reason: e.to_string() })?;
    if !verify_schnorr(&sighash, &req.staker_signature, parsed.info.staker()) {
        return refuse(
            Check::StakerSignature,
            format!(
                "staker_unbonding_sig_hex does not verify for staker key {} over the unbonding tx's sighash (unbonding leaf, SIGHASH_DEFAULT)",
                parsed.info.staker()
            ),
        );
    }

    Ok(Approved {
        params_version: version.version,
        staking_height: height,
        confirmations,
        staking_outpoint: outpoint,
        staking_output,
        staking: parsed.info,
        unbonding_tx: utx.clone(),
        covenant_key: *key,
        sighash,
    })
}
