//! Staker addresses (spec §6.5, v0.3): which x-only staker key a P2TR or P2WPKH address belongs
//! to. The taproot address of a staker is the BIP-86-style key-path-only output of its x-only
//! key (`ComputeTaprootKeyNoScript`); the native segwit addresses are P2WPKH of `02‖x` and
//! `03‖x` (the parity is unknown from an x-only key). Matching is on the witness program, so an
//! address of any network the `bitcoin` crate knows (bc, tb, bcrt) is accepted: the plugin has
//! no network setting.
//!
//! Lookup reads the address index the indexer writes with a staker's first delegation
//! (`a ‖ witness program → staker key`).

use std::str::FromStr;

use guest_sdk::bitcoin::Address;
use guest_sdk::store;

use crate::state::{self, Hash32};

/// What an address pays to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// P2TR output key.
    Taproot([u8; 32]),
    /// P2WPKH key hash.
    Segwit([u8; 20]),
}

/// The legacy `CheckBtcAddressType`: a P2TR or P2WPKH address, else the legacy message
/// ("can not decode btc address: ..." or "unsupported btc address type").
pub fn parse(address: &str) -> Result<Program, String> {
    let addr = Address::from_str(address).map_err(|e| format!("can not decode btc address: {e}"))?;
    let script = addr.assume_checked().script_pubkey();
    let bytes = script.as_bytes();
    if script.is_p2tr() {
        return Ok(Program::Taproot(bytes[2..34].try_into().map_err(|_| "unsupported btc address type")?));
    }
    if script.is_p2wpkh() {
        return Ok(Program::Segwit(bytes[2..22].try_into().map_err(|_| "unsupported btc address type")?));
    }
    Err("unsupported btc address type".into())
}

/// The staker (x-only key) of each program, `None` for programs no staker with a delegation
/// has: one read of the address index (`state::address_key`) per program.
pub fn stakers_of(programs: &[Program]) -> Vec<Option<Hash32>> {
    programs
        .iter()
        .map(|p| {
            let bytes: &[u8] = match p {
                Program::Taproot(k) => k,
                Program::Segwit(h) => h,
            };
            store::get(state::address_key(bytes)).and_then(|v| v.as_slice().try_into().ok())
        })
        .collect()
}
