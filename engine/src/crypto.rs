//! The host side of the WIT `crypto` interface: secp256k1 operations plugins would otherwise run
//! compiled to Wasm at about three times the native cost (libsecp256k1 through the `bitcoin`
//! crate, so results are exactly what a native program computes). Points go back as `x ‖ y`
//! taken from libsecp256k1's own point (no second square root to recover y).

use std::sync::OnceLock;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Parity, PublicKey, Scalar, Secp256k1, VerifyOnly};
use bitcoin::taproot::{TapNodeHash, TapTweakHash};

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

fn xy(point: &PublicKey) -> [u8; 64] {
    point.serialize_uncompressed()[1..].try_into().expect("65-byte uncompressed key")
}

/// The point of 32 bytes `x` (even y, lifted: one square root) or 64 bytes `x ‖ y` (checked on
/// the curve).
fn point(key: &[u8]) -> Option<PublicKey> {
    let mut buf = [0u8; 65];
    match key.len() {
        32 => {
            buf[0] = 2;
            buf[1..33].copy_from_slice(key);
            PublicKey::from_slice(&buf[..33]).ok()
        }
        64 => {
            buf[0] = 4;
            buf[1..].copy_from_slice(key);
            PublicKey::from_slice(&buf).ok()
        }
        _ => None,
    }
}

/// BIP-340 `lift_x`: the even-y point with x coordinate `x`, as `x ‖ y`.
pub fn lift_x(x: &[u8]) -> Option<[u8; 64]> {
    (x.len() == 32).then(|| point(x)).flatten().map(|p| xy(&p))
}

/// BIP-341 output key `P + tagged_hash("TapTweak", x(P) ‖ root)·G` as `x ‖ y`, P the even-y point
/// of `internal` (32-byte x, or `x ‖ y` of either parity); `merkle_root` empty (key path only) or
/// 32 bytes.
pub fn taproot_tweak(internal: &[u8], merkle_root: &[u8]) -> Option<[u8; 64]> {
    let mut p = point(internal)?;
    let (x_only, parity) = p.x_only_public_key();
    if parity == Parity::Odd {
        p = p.negate(secp());
    }
    let root = match merkle_root.len() {
        0 => None,
        32 => Some(TapNodeHash::from_slice(merkle_root).ok()?),
        _ => return None,
    };
    let t = TapTweakHash::from_key_and_tweak(x_only, root).to_byte_array();
    let q = p.add_exp_tweak(secp(), &Scalar::from_be_bytes(t).ok()?).ok()?;
    Some(xy(&q))
}

#[cfg(test)]
mod tests {
    use bitcoin::key::TapTweak;
    use bitcoin::secp256k1::{Keypair, SecretKey};

    use super::*;

    #[test]
    fn matches_the_bitcoin_crate() {
        let s = Secp256k1::new();
        for i in 1u8..=20 {
            let key = Keypair::from_secret_key(&s, &SecretKey::from_slice(&[i; 32]).unwrap());
            let (x, _) = key.x_only_public_key();
            let full = key.public_key().serialize_uncompressed();
            let lifted = lift_x(&x.serialize()).unwrap();
            assert_eq!(lifted[..32], full[1..33]);
            assert_eq!(point(&lifted).unwrap().x_only_public_key(), (x, Parity::Even));
            let root = (i % 2 == 0).then(|| TapNodeHash::from_byte_array([i; 32]));
            let (want, want_parity) = x.tap_tweak(&s, root);
            let root_bytes = root.map(|r| r.to_byte_array().to_vec()).unwrap_or_default();
            // The same output from the x coordinate, the even point and the actual point.
            for internal in [x.serialize().to_vec(), lifted.to_vec(), full[1..].to_vec()] {
                let q = taproot_tweak(&internal, &root_bytes).unwrap();
                let (got, got_parity) = point(&q).unwrap().x_only_public_key();
                assert_eq!((got, got_parity), (want.to_x_only_public_key(), want_parity));
            }
        }
        assert_eq!(lift_x(&[0u8; 32]), None, "x = 0 is not on secp256k1");
        assert_eq!(lift_x(&[1u8; 31]), None);
        assert_eq!(taproot_tweak(&[1u8; 33], &[]), None);
        assert_eq!(taproot_tweak(&lift_x(&[2u8; 32]).unwrap_or([2; 64]), &[0u8; 31]), None, "a 31-byte root");
    }
}
