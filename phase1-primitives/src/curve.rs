//! The two secp256k1 operations on the per-transaction path — parsing an x-only key (BIP-340
//! `lift_x`, a field square root) and deriving a Taproot output key (a scalar multiplication) —
//! in one place, so a Wasm plugin can have its host run them natively.
//!
//! With the `host-crypto` feature on `wasm32`, they call the engine's WIT `crypto` interface
//! through `guest-sdk` (about a third of libsecp256k1's cost compiled to Wasm); everywhere else
//! they call libsecp256k1 directly. Both give the same keys.

use bitcoin::key::TweakedPublicKey;
use bitcoin::secp256k1::{Parity, XOnlyPublicKey};
use bitcoin::taproot::TapNodeHash;

/// An x-only key from bytes, `None` unless they are 32 bytes and a curve point's x coordinate
/// (what `XOnlyPublicKey::from_slice` and Go's `schnorr.ParsePubKey` accept).
pub fn xonly_key(bytes: &[u8]) -> Option<XOnlyPublicKey> {
    #[cfg(all(feature = "host-crypto", target_arch = "wasm32"))]
    {
        guest_sdk::crypto::xonly_key(bytes.try_into().ok()?)
    }
    #[cfg(not(all(feature = "host-crypto", target_arch = "wasm32")))]
    {
        XOnlyPublicKey::from_slice(bytes).ok()
    }
}

/// The BIP-341 output key of `internal` committing to `merkle_root` (`None`: key path only) and
/// the parity of its y coordinate, as `bitcoin`'s `TapTweak::tap_tweak` computes them.
pub fn taproot_output_key(internal: &XOnlyPublicKey, merkle_root: Option<TapNodeHash>) -> (TweakedPublicKey, Parity) {
    #[cfg(all(feature = "host-crypto", target_arch = "wasm32"))]
    {
        let (key, parity) = guest_sdk::crypto::taproot_output_key(&internal.serialize(), merkle_root)
            .expect("the host tweaks a valid key (a tweak >= the group order has probability 2^-128)");
        (TweakedPublicKey::dangerous_assume_tweaked(key), parity)
    }
    #[cfg(not(all(feature = "host-crypto", target_arch = "wasm32")))]
    {
        use bitcoin::key::TapTweak;
        internal.tap_tweak(crate::secp(), merkle_root)
    }
}

/// The key-path-only (BIP-86) output key of the x-only key `x`, `None` when `x` is not a point's
/// x coordinate (one square root and one scalar multiplication, both on the host for a plugin).
pub fn key_path_output_key(x: &[u8; 32]) -> Option<TweakedPublicKey> {
    #[cfg(all(feature = "host-crypto", target_arch = "wasm32"))]
    {
        let point = guest_sdk::crypto::lift_x(x)?;
        let (key, _) = guest_sdk::crypto::taproot_output_key(&point, None)?;
        Some(TweakedPublicKey::dangerous_assume_tweaked(key))
    }
    #[cfg(not(all(feature = "host-crypto", target_arch = "wasm32")))]
    {
        Some(taproot_output_key(&XOnlyPublicKey::from_slice(x).ok()?, None).0)
    }
}

/// `y` of the BIP-341 NUMS point `H` (even; `x` is [`crate::staking::NUMS_INTERNAL_KEY`]).
pub const NUMS_Y: [u8; 32] = [
    0x31, 0xd3, 0xc6, 0x86, 0x39, 0x73, 0x92, 0x6e, 0x04, 0x9e, 0x63, 0x7c, 0xb1, 0xb5, 0xf4, 0x0a, 0x36, 0xda, 0xc2,
    0x8a, 0xf1, 0x76, 0x69, 0x68, 0xc3, 0x0c, 0x23, 0x13, 0xf3, 0xa3, 0x89, 0x04,
];

/// [`taproot_output_key`] of the NUMS internal key, which Babylon's staking and unbonding
/// outputs use (on the host the known point saves a square root per output).
pub fn nums_output_key(merkle_root: TapNodeHash) -> (TweakedPublicKey, Parity) {
    #[cfg(all(feature = "host-crypto", target_arch = "wasm32"))]
    {
        let mut xy = [0u8; 64];
        xy[..32].copy_from_slice(&crate::staking::NUMS_INTERNAL_KEY);
        xy[32..].copy_from_slice(&NUMS_Y);
        let (key, parity) = guest_sdk::crypto::taproot_output_key(&xy, Some(merkle_root))
            .expect("the host tweaks the NUMS point (a tweak >= the group order has probability 2^-128)");
        (TweakedPublicKey::dangerous_assume_tweaked(key), parity)
    }
    #[cfg(not(all(feature = "host-crypto", target_arch = "wasm32")))]
    {
        taproot_output_key(&crate::staking::nums_internal_key(), Some(merkle_root))
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::PublicKey;

    #[test]
    fn nums_y_is_the_even_y_of_the_nums_point() {
        let p =
            PublicKey::from_x_only_public_key(crate::staking::nums_internal_key(), bitcoin::secp256k1::Parity::Even);
        assert_eq!(p.serialize_uncompressed()[33..], super::NUMS_Y);
    }
}
