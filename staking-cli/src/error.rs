//! The one error type of the crate: every message names the problem and the fix.

use phase1_primitives::bitcoin::XOnlyPublicKey;
use phase1_primitives::staking_tx::ParseError;

/// What went wrong. [`Error::exit_code`] maps it to the binary's exit status: 2 for anything the
/// caller passed (usage errors), 1 for a failure talking to bitcoind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument could not be read or does not make sense (bad hex, bad key, wrong network,
    /// unreadable file, ...). `what` names the argument.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The argument, e.g. `--staking-tx`.
        what: String,
        /// What is wrong and how to fix it.
        why: String,
    },

    /// The secret key given is not the staker key of the staking transaction.
    #[error(
        "staker key does not match the staking transaction's staker key {expected}: pass the key the stake was made with (the key given has x-only public key {given})"
    )]
    KeyMismatch {
        /// The staker key in the staking transaction's OP_RETURN (x-only hex).
        expected: String,
        /// The x-only public key of the secret given (hex).
        given: String,
    },

    /// No params version is active at the height given.
    #[error(
        "no global params version is active at height {height} (the first one activates at height {first_activation}): pass the staking transaction's inclusion height with --height, or the right --params file"
    )]
    NoParamsVersion {
        /// The height given.
        height: u64,
        /// Activation height of the first version.
        first_activation: u64,
    },

    /// The transaction is not a staking transaction under the params version selected.
    #[error(
        "the staking transaction is not a Phase-1 staking transaction under params version {version} (selected by height {height}): {source}; check --height (the staking tx's inclusion height) and --params"
    )]
    NotAStakingTx {
        /// Height used to select the version.
        height: u64,
        /// The version number.
        version: u64,
        /// Why Step B did not recognise it.
        source: Box<ParseError>,
    },

    /// A transaction cannot be built from these values (amounts, fees, keys).
    #[error("{0}")]
    Build(String),

    /// bitcoind could not be asked, or answered with an error.
    #[error("bitcoind RPC: {0}")]
    Rpc(String),
}

impl Error {
    /// An [`Error::KeyMismatch`].
    pub fn key_mismatch(expected: &XOnlyPublicKey, given: &XOnlyPublicKey) -> Error {
        Error::KeyMismatch { expected: expected.to_string(), given: given.to_string() }
    }

    /// An [`Error::Invalid`] for argument `what`.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), why: why.into() }
    }

    /// The process exit code: 1 for RPC failures, 2 for everything the caller passed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Rpc(_) => 1,
            _ => 2,
        }
    }
}
