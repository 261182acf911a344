//! Withdrawal transactions (spec §2.3, cli-tools `create-phase1-withdaw-request`): spend the
//! staking output after `staking_time` blocks, or the unbonding output after `unbonding_time`
//! blocks, through the timelock leaf with witness `[staker_sig, timelock script, control block]`.

use phase1_primitives::bitcoin::absolute::LockTime;
use phase1_primitives::bitcoin::secp256k1::Keypair;
use phase1_primitives::bitcoin::taproot::ControlBlock;
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{
    Amount, OutPoint, Script, ScriptBuf, Sequence, TapSighash, Transaction, TxIn, TxOut, Witness,
};
use phase1_primitives::sighash::{taproot_script_sighash, verify_schnorr, withdrawal_witness};
use phase1_primitives::{GlobalParams, Leaf};

use crate::signing::sign_schnorr;
use crate::stake::Stake;
use crate::Error;

/// Which output a withdrawal spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawFrom {
    /// The staking output, after its timelock expired (`staking_time` blocks).
    Staking,
    /// The unbonding output, `unbonding_time` blocks after the unbonding tx was mined.
    Unbonding,
}

/// A withdrawal before the staker's signature: the transaction, what it spends and the message
/// to sign. [`sign`](Self::sign) or [`with_signature`](Self::with_signature) finish it.
#[derive(Debug, Clone)]
pub struct UnsignedWithdrawal {
    /// Version 2, one input (sequence = the timelock), one output, lock time 0, no witness.
    pub tx: Transaction,
    /// The output spent.
    pub prevout: TxOut,
    /// The timelock leaf script revealed.
    pub leaf_script: ScriptBuf,
    /// Its control block.
    pub control_block: ControlBlock,
    /// The BIP-341 script-path sighash the staker signs.
    pub sighash: TapSighash,
    /// The staker key the signature must verify under.
    pub staker: phase1_primitives::bitcoin::XOnlyPublicKey,
}

impl UnsignedWithdrawal {
    /// Signs with `staker` (must be the stake's staker key).
    pub fn sign(self, staker: &Keypair) -> Result<Transaction, Error> {
        let given = staker.x_only_public_key().0;
        if given != self.staker {
            return Err(Error::key_mismatch(&self.staker, &given));
        }
        let sig = sign_schnorr(staker, &self.sighash);
        self.with_signature(&sig)
    }

    /// Adds a signature made elsewhere, after verifying it.
    pub fn with_signature(mut self, sig: &[u8; 64]) -> Result<Transaction, Error> {
        if !verify_schnorr(&self.sighash, sig, &self.staker) {
            return Err(Error::Build(format!(
                "the signature does not verify over the withdrawal sighash for staker key {}: sign with the staker key",
                self.staker
            )));
        }
        self.tx.input[0].witness = withdrawal_witness(sig, &self.leaf_script, &self.control_block);
        Ok(self.tx)
    }
}

/// `value − fee` to `to`, checked: the fee is below the value and the output is not dust.
fn output_value(value: u64, fee: u64, to: &Script) -> Result<u64, Error> {
    let out = value.checked_sub(fee).filter(|v| *v > 0).ok_or_else(|| {
        Error::Build(format!(
            "--fee {fee} sat is not below the value {value} sat of the output spent: pass a smaller --fee"
        ))
    })?;
    let dust = to.minimal_non_dust().to_sat();
    if out < dust {
        return Err(Error::Build(format!(
            "the withdrawal output would be {out} sat, below the dust limit {dust} sat of the destination: pass a smaller --fee"
        )));
    }
    Ok(out)
}

fn spend(prev: OutPoint, sequence: u16, value: u64, to: &Script) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::from_height(sequence),
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: Amount::from_sat(value), script_pubkey: to.to_owned() }],
    }
}

/// The unsigned withdrawal of the expired stake: spends the staking output with sequence =
/// `staking_time`, pays `value − fee` to `to`.
pub fn unsigned_withdrawal_from_staking(stake: &Stake, to: &Script, fee: u64) -> Result<UnsignedWithdrawal, Error> {
    let value = output_value(stake.value(), fee, to)?;
    let tx = spend(stake.outpoint(), stake.staking_time(), value, to);
    let prevout = stake.staking_output();
    let sighash =
        taproot_script_sighash(&tx, 0, std::slice::from_ref(&prevout), stake.info().leaf_hash(Leaf::Timelock))
            .map_err(|e| Error::Build(e.to_string()))?;
    Ok(UnsignedWithdrawal {
        tx,
        prevout,
        leaf_script: stake.info().timelock_script(),
        control_block: stake.info().control_block(Leaf::Timelock),
        sighash,
        staker: stake.staker(),
    })
}

/// The unsigned withdrawal from the unbonding output: spends output 0 of `unbonding_tx` (the
/// canonical unbonding tx of `stake` when `None`) with sequence = `unbonding_time`, pays
/// `value − fee` to `to`. A given unbonding tx must spend the staking output and pay the
/// unbonding output of the stake's params version.
pub fn unsigned_withdrawal_from_unbonding(
    stake: &Stake,
    unbonding_tx: Option<&Transaction>,
    to: &Script,
    fee: u64,
) -> Result<UnsignedWithdrawal, Error> {
    let unbonding = stake.unbonding_info();
    let canonical;
    let ub = match unbonding_tx {
        Some(tx) => {
            if !tx.input.iter().any(|i| i.previous_output == stake.outpoint()) {
                return Err(Error::invalid(
                    "--unbonding-tx",
                    format!(
                        "it does not spend the staking output {}: pass the unbonding tx of this stake",
                        stake.outpoint()
                    ),
                ));
            }
            match tx.output.first() {
                Some(o) if unbonding.matches_pk_script(&o.script_pubkey) => {}
                _ => {
                    return Err(Error::invalid(
                        "--unbonding-tx",
                        format!(
                            "its output 0 is not the unbonding output of this stake (unbonding_time {} of params version {}): pass the unbonding tx that was mined, and the staking tx's --height",
                            unbonding.unbonding_time(),
                            stake.params().version
                        ),
                    ))
                }
            }
            tx
        }
        None => {
            canonical = stake.unbonding_tx()?;
            &canonical
        }
    };
    let prevout = ub.output[0].clone();
    let value = output_value(prevout.value.to_sat(), fee, to)?;
    let tx = spend(OutPoint { txid: ub.compute_txid(), vout: 0 }, unbonding.unbonding_time(), value, to);
    let sighash = taproot_script_sighash(&tx, 0, std::slice::from_ref(&prevout), unbonding.timelock_leaf_hash())
        .map_err(|e| Error::Build(e.to_string()))?;
    Ok(UnsignedWithdrawal {
        tx,
        prevout,
        leaf_script: unbonding.timelock_script(),
        control_block: unbonding.control_block_timelock(),
        sighash,
        staker: stake.staker(),
    })
}

/// The signed withdrawal of the expired stake `staking_tx` (included at `height`) to `to`.
pub fn withdraw_from_staking(
    staker: &Keypair,
    staking_tx: &Transaction,
    params: &GlobalParams,
    height: u64,
    to: &Script,
    fee: u64,
) -> Result<Transaction, Error> {
    let stake = Stake::new(staking_tx.clone(), params, height)?;
    stake.check_staker(staker)?;
    unsigned_withdrawal_from_staking(&stake, to, fee)?.sign(staker)
}

/// The signed withdrawal from the unbonding output of the stake `staking_tx` (included at
/// `height`): `unbonding_tx` is the mined unbonding tx (`None`: the canonical one, which has the
/// same txid whatever its witness).
pub fn withdraw_from_unbonding(
    staker: &Keypair,
    staking_tx: &Transaction,
    unbonding_tx: Option<&Transaction>,
    params: &GlobalParams,
    height: u64,
    to: &Script,
    fee: u64,
) -> Result<Transaction, Error> {
    let stake = Stake::new(staking_tx.clone(), params, height)?;
    stake.check_staker(staker)?;
    unsigned_withdrawal_from_unbonding(&stake, unbonding_tx, to, fee)?.sign(staker)
}
