//! The staking transaction: building the unfunded one (like cli-tools `create-phase1-staking-tx`)
//! and reading a broadcast one under the params version of its inclusion height.

use phase1_primitives::bitcoin::absolute::LockTime;
use phase1_primitives::bitcoin::secp256k1::Keypair;
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid, XOnlyPublicKey};
use phase1_primitives::staking_tx::validate_staking_amount_time;
use phase1_primitives::unbonding::build_unbonding_tx_for;
use phase1_primitives::{parse_v0_staking_tx, GlobalParams, ParamsVersion, StakingInfo, UnbondingInfo, V0OpReturn};

use crate::Error;

/// The unfunded staking transaction (spec §1.6, Babylon's `BuildV0IdentifiableStakingOutputsAndTx`):
/// version 2, no inputs, output 0 = the staking output of `amount` sat, output 1 = the V0
/// OP_RETURN (value 0), lock time 0. A wallet adds inputs and change (`fundrawtransaction`).
///
/// Checks what the indexer's Step C checks (amount and staking time within `params`) and that
/// staker, finality-provider and covenant keys are distinct (otherwise the indexer would not
/// recognise the transaction). Use [`staking_tx_unchecked`] to build out-of-range stakes on
/// purpose.
pub fn staking_tx(
    staker: &XOnlyPublicKey,
    fp: &XOnlyPublicKey,
    staking_time: u16,
    amount: u64,
    params: &ParamsVersion,
) -> Result<Transaction, Error> {
    validate_staking_amount_time(amount, staking_time, params).map_err(|e| {
        Error::Build(format!(
            "{e} in params version {}: choose --amount in [{}, {}] sat and --staking-time in [{}, {}] blocks (or pass --no-param-checks to build an invalid stake on purpose)",
            params.version, params.min_staking_amount, params.max_staking_amount, params.min_staking_time, params.max_staking_time
        ))
    })?;
    staking_tx_unchecked(staker, fp, staking_time, amount, params)
}

/// Like [`staking_tx`] without the amount / staking-time checks (keys must still be distinct).
pub fn staking_tx_unchecked(
    staker: &XOnlyPublicKey,
    fp: &XOnlyPublicKey,
    staking_time: u16,
    amount: u64,
    params: &ParamsVersion,
) -> Result<Transaction, Error> {
    let info = StakingInfo::new(staker, &[*fp], params.committee(), staking_time)
        .map_err(|e| Error::Build(format!("cannot build the staking output: {e}")))?;
    let op_return = V0OpReturn::new(params.tag_bytes(), *staker, *fp, staking_time);
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![],
        output: vec![info.staking_output(amount), TxOut { value: Amount::ZERO, script_pubkey: op_return.to_script() }],
    })
}

/// A broadcast staking transaction read under the params version of its inclusion height: what
/// unbonding and withdrawals need (outpoint, value, scripts, unbonding fee and time).
#[derive(Debug, Clone)]
pub struct Stake {
    tx: Transaction,
    txid: Txid,
    height: u64,
    params: ParamsVersion,
    output_index: u32,
    value: u64,
    info: StakingInfo,
}

impl Stake {
    /// Reads `staking_tx`, included at `height`, with the params version active at that height
    /// (spec §3.3). Fails if no version is active there, if the transaction has no inputs (not yet
    /// funded, so its txid is not final), or if it is not a staking transaction under that
    /// version (Step B).
    pub fn new(staking_tx: Transaction, params: &GlobalParams, height: u64) -> Result<Stake, Error> {
        let (_, version) = params.for_height(height).ok_or(Error::NoParamsVersion {
            height,
            first_activation: params.versions.first().map(|v| v.activation_height).unwrap_or_default(),
        })?;
        Stake::with_version(staking_tx, version, height)
    }

    /// Like [`Stake::new`] with the params version given (`height` is only reported).
    pub fn with_version(staking_tx: Transaction, params: &ParamsVersion, height: u64) -> Result<Stake, Error> {
        if staking_tx.input.is_empty() {
            return Err(Error::invalid(
                "--staking-tx",
                "the transaction has no inputs (it is the unfunded output of create-staking-tx): pass the funded, signed staking transaction that was broadcast",
            ));
        }
        let parsed = parse_v0_staking_tx(&staking_tx, params.tag_bytes(), params.committee())
            .map_err(|source| Error::NotAStakingTx { height, version: params.version, source: Box::new(source) })?;
        Ok(Stake {
            txid: staking_tx.compute_txid(),
            tx: staking_tx,
            height,
            params: params.clone(),
            output_index: parsed.staking_output_index,
            value: parsed.staking_value,
            info: parsed.info,
        })
    }

    /// The staking transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// The height it was read at (its inclusion height).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The params version of that height.
    pub fn params(&self) -> &ParamsVersion {
        &self.params
    }

    /// The staking outpoint.
    pub fn outpoint(&self) -> OutPoint {
        OutPoint { txid: self.txid, vout: self.output_index }
    }

    /// The staking output's value in satoshis.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The staking output.
    pub fn staking_output(&self) -> TxOut {
        self.info.staking_output(self.value)
    }

    /// The staker key (from the OP_RETURN).
    pub fn staker(&self) -> XOnlyPublicKey {
        *self.info.staker()
    }

    /// The staking time (blocks).
    pub fn staking_time(&self) -> u16 {
        self.info.staking_time()
    }

    /// The staking output's scripts, leaf hashes and control blocks.
    pub fn info(&self) -> &StakingInfo {
        &self.info
    }

    /// The unbonding output's scripts for the params version's unbonding time.
    pub fn unbonding_info(&self) -> UnbondingInfo {
        self.info.unbonding_info(self.params.unbonding_time)
    }

    /// The canonical unsigned unbonding transaction (spec §2.1): version 2, the staking outpoint
    /// with sequence 0xffffffff, one output of `value − unbonding_fee`, lock time 0.
    pub fn unbonding_tx(&self) -> Result<Transaction, Error> {
        build_unbonding_tx_for(&self.info, self.outpoint(), self.value, &self.params).map_err(|e| {
            Error::Build(format!(
                "{e} (params version {}; this stake cannot be unbonded on-demand)",
                self.params.version
            ))
        })
    }

    /// Fails with [`Error::KeyMismatch`] unless `staker` is this stake's staker key.
    pub fn check_staker(&self, staker: &Keypair) -> Result<(), Error> {
        let given = staker.x_only_public_key().0;
        if given != self.staker() {
            return Err(Error::key_mismatch(&self.staker(), &given));
        }
        Ok(())
    }
}
