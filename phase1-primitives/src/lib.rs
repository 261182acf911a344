//! Babylon BTC Staking Phase-1 primitives, shared by the Wasm plugins and native programs.
//!
//! Pure computation only (no threads, files or clocks), so it builds for `wasm32-wasip2`. Byte
//! layouts follow the Phase-1 specification (`babylon-phase1-spec.md` §1–§3, §6.6, §8.2):
//!
//! * [`params`] — `global-params.json`: parsing, every validation rule, version selection;
//! * [`finality_providers`] — finality-provider files (API format and registry entries);
//! * [`script`] — script numbers and the timelock / unbonding / slashing leaf scripts;
//! * [`committee`] — a covenant committee precomputed once per params version;
//! * [`staking`] — staking output (3 leaves) and unbonding output (2 leaves), control blocks;
//! * [`op_return`] — the 73-byte V0 identification OP_RETURN;
//! * [`staking_tx`] — Step A / B recognition and Step C validation of staking transactions;
//! * [`unbonding`] — canonical unbonding tx, spend classification, unbonding-request checks;
//! * [`sighash`] — BIP-341 script-path sighashes, BIP-340 verification, witness assembly;
//! * [`curve`] — x-only key parsing and Taproot tweaks (in the engine host for Wasm plugins).
//!
//! Per-transaction work ([`staking_tx::parse_v0_staking_tx`]) streams the scripts into the
//! TapLeaf hash engines and reuses the committee's precomputed multisig bytes, so deriving a
//! staking output allocates almost nothing.

#![warn(missing_docs)]

pub mod committee;
pub mod curve;
pub mod finality_providers;
pub mod op_return;
pub mod params;
pub mod script;
pub mod sighash;
pub mod staking;
pub mod staking_tx;
pub mod unbonding;

pub use bitcoin;

pub use committee::CovenantCommittee;
pub use op_return::V0OpReturn;
pub use params::{GlobalParams, ParamsVersion};
pub use staking::{Leaf, StakingInfo, UnbondingInfo};
pub use staking_tx::{is_possible_v0_staking_tx, parse_v0_staking_tx, ParsedStakingTx};

use bitcoin::secp256k1::{Secp256k1, VerifyOnly};

/// The shared verification-only secp256k1 context (created on first use).
pub fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: std::sync::OnceLock<Secp256k1<VerifyOnly>> = std::sync::OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}
