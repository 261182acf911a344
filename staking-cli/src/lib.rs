//! Phase-1 staker tools, built on `phase1-primitives` (spec §1, §2, §6.6, §8.3):
//!
//! * [`staking_tx`] — the unfunded staking transaction (staking output + V0 OP_RETURN), like
//!   cli-tools `create-phase1-staking-tx`; a wallet funds it (`fundrawtransaction`);
//! * [`unbonding_request`] — the exact `POST /v1/unbonding` body with the canonical unbonding
//!   transaction and the staker's BIP-340 signature, like `create-phase1-unbonding-request`;
//! * [`withdraw_from_staking`] / [`withdraw_from_unbonding`] — the signed withdrawal through
//!   either timelock leaf, like `create-phase1-withdaw-request`;
//! * [`signed_unbonding_tx`] — the unbonding transaction with covenant signatures (spec §2.2).
//!
//! A broadcast staking transaction is read as a [`Stake`]: the params version of its inclusion
//! height, its outpoint, value and scripts. The unsigned builders
//! ([`unsigned_withdrawal_from_staking`], [`unbonding_request_with_signature`], ...) serve
//! signers that keep the key elsewhere.
//!
//! Every error is an [`Error`] whose message says what is wrong and how to fix it.

#![warn(missing_docs)]

mod error;
pub mod input;
pub mod node_wallet;
pub mod rpc;
pub mod signing;
mod stake;
mod unbonding;
mod withdraw;

pub use phase1_primitives;
pub use phase1_primitives::bitcoin;

pub use error::Error;
pub use input::tx_hex;
pub use signing::sign_schnorr;
pub use stake::{staking_tx, staking_tx_unchecked, Stake};
pub use unbonding::{
    signed_unbonding_tx, staker_unbonding_signature, unbonding_request, unbonding_request_for,
    unbonding_request_with_signature, unbonding_sighash, UnbondingRequestJson,
};
pub use withdraw::{
    unsigned_withdrawal_from_staking, unsigned_withdrawal_from_unbonding, withdraw_from_staking,
    withdraw_from_unbonding, UnsignedWithdrawal, WithdrawFrom,
};

/// JSON the way Babylon's cli-tools print it (Go's `json.MarshalIndent(v, "", "    ")`).
pub fn to_legacy_json<T: serde::Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\": \"cannot serialise the answer: {e}\"}}"),
    }
}
