//! Encryption of private key material at rest.
//!
//! As in Core, a random 32-byte master key encrypts the secrets, and the master key itself is
//! stored encrypted under a key derived from the passphrase (PBKDF2-HMAC-SHA512 with a random
//! salt). Both layers use ChaCha20-Poly1305 with random nonces; a wrong passphrase is detected by
//! the authentication tag. The passphrase is never stored.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha512;

/// PBKDF2 iterations for new encryptions (Core calibrates to at least 25,000 SHA-512 rounds).
pub const DEFAULT_KDF_ITERATIONS: u32 = 100_000;
const AAD_MASTER_KEY: &[u8] = b"regtest-node wallet master key";

/// A 32-byte symmetric key that is wiped when dropped.
pub struct SecretKey32([u8; 32]);

impl SecretKey32 {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        SecretKey32(k)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl Clone for SecretKey32 {
    fn clone(&self) -> Self {
        SecretKey32(self.0)
    }
}

impl Drop for SecretKey32 {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference into our own array.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl std::fmt::Debug for SecretKey32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey32(..)")
    }
}

/// An AEAD ciphertext with its nonce, hex-encoded for the JSON wallet file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// What the wallet file keeps about the passphrase: KDF parameters and the encrypted master key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EncryptionHeader {
    pub kdf: String,
    pub salt: String,
    pub iterations: u32,
    pub cipher: String,
    pub master_key: Sealed,
}

fn derive_passphrase_key(passphrase: &str, salt: &[u8], iterations: u32) -> SecretKey32 {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha512>(passphrase.as_bytes(), salt, iterations, &mut out);
    let key = SecretKey32(out);
    out.iter_mut().for_each(|b| *b = 0);
    key
}

/// Encrypts `plaintext` under `key`, binding `aad`.
pub fn seal(key: &SecretKey32, plaintext: &[u8], aad: &[u8]) -> Sealed {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        // ChaCha20-Poly1305 encryption only fails for messages longer than ~256 GiB.
        .unwrap_or_default();
    Sealed { nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) }
}

/// Decrypts and authenticates; None if the key is wrong or the data was tampered with.
pub fn open(key: &SecretKey32, sealed: &Sealed, aad: &[u8]) -> Option<Vec<u8>> {
    let nonce = hex::decode(&sealed.nonce).ok()?;
    if nonce.len() != 12 {
        return None;
    }
    let ct = hex::decode(&sealed.ciphertext).ok()?;
    key.cipher().decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad }).ok()
}

/// Creates a header protecting a fresh random master key with `passphrase`.
pub fn new_header(passphrase: &str, iterations: u32) -> (EncryptionHeader, SecretKey32) {
    let master = SecretKey32::random();
    let header = wrap_master_key(&master, passphrase, iterations);
    (header, master)
}

/// Encrypts `master` under a new salt and `passphrase`.
pub fn wrap_master_key(master: &SecretKey32, passphrase: &str, iterations: u32) -> EncryptionHeader {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let pk = derive_passphrase_key(passphrase, &salt, iterations);
    EncryptionHeader {
        kdf: "pbkdf2-hmac-sha512".to_string(),
        salt: hex::encode(salt),
        iterations,
        cipher: "chacha20-poly1305".to_string(),
        master_key: seal(&pk, &master.0, AAD_MASTER_KEY),
    }
}

/// Recovers the master key; None when the passphrase is wrong.
pub fn unwrap_master_key(header: &EncryptionHeader, passphrase: &str) -> Option<SecretKey32> {
    let salt = hex::decode(&header.salt).ok()?;
    let pk = derive_passphrase_key(passphrase, &salt, header.iterations);
    let mut plain = open(&pk, &header.master_key, AAD_MASTER_KEY)?;
    if plain.len() != 32 {
        return None;
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&plain);
    plain.iter_mut().for_each(|b| *b = 0);
    Some(SecretKey32(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_roundtrip_and_wrong_passphrase() {
        let (header, master) = new_header("correct horse", 1000);
        let sealed = seal(&master, b"tprv secret", b"desc");
        let again = unwrap_master_key(&header, "correct horse").expect("right passphrase");
        assert_eq!(open(&again, &sealed, b"desc").unwrap(), b"tprv secret");
        assert!(unwrap_master_key(&header, "wrong").is_none());
        assert!(open(&again, &sealed, b"other aad").is_none());
        assert!(!serde_json::to_string(&header).unwrap().contains("correct horse"));
    }
}
