//! secp256k1 operations run natively by the host (WIT `crypto`): in Wasm, libsecp256k1's field
//! arithmetic costs about three times its native cost, and rules that derive a Taproot key per
//! transaction spend most of their time there. Natively (tests, `testing::TestHost`) the same
//! functions call libsecp256k1 directly.
//!
//! Points arrive as `x ‖ y`; [`xonly_key`] and [`taproot_output_key`] check them on the curve
//! (`y² = x³ + 7`, no square root) while building the `bitcoin` types, so a broken host cannot
//! hand the plugin a key that is not a point.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Parity, PublicKey, XOnlyPublicKey};
use bitcoin::taproot::TapNodeHash;

/// BIP-340 `lift_x` of 32 bytes: the even-y point as `x ‖ y`, or `None` when no point has that x.
pub fn lift_x(x: &[u8; 32]) -> Option<[u8; 64]> {
    imp::lift_x(x)
}

/// BIP-341 output key `P + tagged_hash("TapTweak", x(P) ‖ root)·G` as `x ‖ y`, P the even-y point of
/// `internal`: its 32-byte x (the host lifts it: one square root) or `x ‖ y` (checked only);
/// `merkle_root` `None` for a key-path-only output. `None` when `internal` is not a point.
pub fn taproot_tweak(internal: &[u8], merkle_root: Option<&[u8; 32]>) -> Option<[u8; 64]> {
    imp::taproot_tweak(internal, merkle_root)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::phase1::indexer::crypto;

    fn point(v: Option<Vec<u8>>) -> Option<[u8; 64]> {
        v.and_then(|v| v.try_into().ok())
    }
    pub fn lift_x(x: &[u8; 32]) -> Option<[u8; 64]> {
        point(crypto::lift_x(x))
    }
    pub fn taproot_tweak(internal: &[u8], merkle_root: Option<&[u8; 32]>) -> Option<[u8; 64]> {
        point(crypto::taproot_tweak(internal, merkle_root.map_or(&[][..], |r| &r[..])))
    }
}

/// Natively, what the engine's host does (`engine/src/crypto.rs`).
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Parity, PublicKey, Scalar, Secp256k1, VerifyOnly};
    use bitcoin::taproot::{TapNodeHash, TapTweakHash};

    fn secp() -> &'static Secp256k1<VerifyOnly> {
        static CTX: std::sync::OnceLock<Secp256k1<VerifyOnly>> = std::sync::OnceLock::new();
        CTX.get_or_init(Secp256k1::verification_only)
    }
    fn xy(point: &PublicKey) -> [u8; 64] {
        point.serialize_uncompressed()[1..].try_into().expect("65-byte uncompressed key")
    }
    fn point(key: &[u8]) -> Option<PublicKey> {
        let mut buf = [0u8; 65];
        let n = match key.len() {
            32 => 33,
            64 => 65,
            _ => return None,
        };
        buf[0] = if n == 33 { 2 } else { 4 };
        buf[1..n].copy_from_slice(key);
        PublicKey::from_slice(&buf[..n]).ok()
    }
    pub fn lift_x(x: &[u8; 32]) -> Option<[u8; 64]> {
        point(x).map(|p| xy(&p))
    }
    pub fn taproot_tweak(internal: &[u8], merkle_root: Option<&[u8; 32]>) -> Option<[u8; 64]> {
        let mut p = point(internal)?;
        let (x_only, parity) = p.x_only_public_key();
        if parity == Parity::Odd {
            p = p.negate(secp());
        }
        let t = TapTweakHash::from_key_and_tweak(x_only, merkle_root.map(|r| TapNodeHash::from_byte_array(*r)));
        let q = p.add_exp_tweak(secp(), &Scalar::from_be_bytes(t.to_byte_array()).ok()?).ok()?;
        Some(xy(&q))
    }
}

/// `x ‖ y` checked on the curve, as an x-only key and the parity of y.
fn checked(xy: &[u8; 64]) -> Option<(XOnlyPublicKey, Parity)> {
    let mut uncompressed = [4u8; 65];
    uncompressed[1..].copy_from_slice(xy);
    Some(PublicKey::from_slice(&uncompressed).ok()?.x_only_public_key())
}

/// An x-only public key from 32 bytes (BIP-340 `lift_x` by the host), `None` when the bytes are
/// not a point's x — what `XOnlyPublicKey::from_slice` decides, at native cost.
pub fn xonly_key(x: &[u8; 32]) -> Option<XOnlyPublicKey> {
    checked(&lift_x(x)?).map(|(k, _)| k)
}

/// The BIP-341 output key and the parity of its y — what `bitcoin`'s `TapTweak::tap_tweak`
/// returns, at native cost. `internal` as for [`taproot_tweak`]: pass `x ‖ y` when it is at hand
/// (a constant internal key) to save the host a square root.
pub fn taproot_output_key(internal: &[u8], merkle_root: Option<TapNodeHash>) -> Option<(XOnlyPublicKey, Parity)> {
    let root = merkle_root.map(|r| r.to_byte_array());
    checked(&taproot_tweak(internal, root.as_ref())?)
}
