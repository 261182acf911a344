//! BIP-340 signing with the staker's key.

use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::secp256k1::{All, Keypair, Message, Secp256k1};
use phase1_primitives::bitcoin::TapSighash;

/// The shared signing context (created on first use).
pub fn secp() -> &'static Secp256k1<All> {
    static CTX: std::sync::OnceLock<Secp256k1<All>> = std::sync::OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

/// A 64-byte BIP-340 signature (SIGHASH_DEFAULT, so no sighash byte) over `sighash`.
///
/// Deterministic: BIP-340 without auxiliary randomness, so the same key and transaction always
/// give the same signature (reproducible fixtures; the nonce still depends on key and message).
pub fn sign_schnorr(keypair: &Keypair, sighash: &TapSighash) -> [u8; 64] {
    let msg = Message::from_digest(sighash.to_byte_array());
    secp().sign_schnorr_no_aux_rand(&msg, keypair).serialize()
}
