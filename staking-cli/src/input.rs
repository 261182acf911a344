//! Reading what a staker passes: `@file` arguments, secret keys (hex or WIF), public keys,
//! transaction hex, global params files, addresses and networks; and writing the legacy hex of
//! an unfunded transaction.

use std::io::Cursor;
use std::path::Path;
use std::str::FromStr;

use phase1_primitives::bitcoin::address::NetworkUnchecked;
use phase1_primitives::bitcoin::consensus::{encode, Decodable, Encodable};
use phase1_primitives::bitcoin::hex::{DisplayHex, FromHex};
use phase1_primitives::bitcoin::secp256k1::{Keypair, PublicKey, SecretKey};
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{
    absolute, Address, Network, NetworkKind, PrivateKey, Transaction, TxIn, TxOut, XOnlyPublicKey,
};
use phase1_primitives::GlobalParams;

use crate::Error;

/// The text of an argument: `@PATH` reads the file (trimmed), anything else is taken as is
/// (trimmed).
pub fn read_arg(what: &str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| {
            Error::invalid(what, format!("cannot read file {path}: {e} (pass @FILE with a readable file)"))
        }),
        None => Ok(value.to_string()),
    }
}

fn hex_bytes(what: &str, s: &str) -> Result<Vec<u8>, Error> {
    Vec::<u8>::from_hex(s)
        .map_err(|e| Error::invalid(what, format!("not hex ({e}): pass an even number of hex digits 0-9a-f")))
}

/// A secret key from 64 hex digits or a WIF string (or `@FILE` holding either). A WIF key must be
/// for `network`'s kind (mainnet vs test networks).
pub fn parse_secret_key(what: &str, value: &str, network: Network) -> Result<Keypair, Error> {
    let text = read_arg(what, value)?;
    let secp = crate::signing::secp();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = hex_bytes(what, &text)?;
        let sk = SecretKey::from_slice(&bytes).map_err(|_| {
            Error::invalid(what, "the 32 bytes are not a valid secp256k1 secret (zero or not below the group order)")
        })?;
        return Ok(Keypair::from_secret_key(secp, &sk));
    }
    match PrivateKey::from_wif(&text) {
        Ok(pk) => {
            let expected = NetworkKind::from(network);
            if pk.network != expected {
                let (got, want) = (kind_name(pk.network), kind_name(expected));
                return Err(Error::invalid(
                    what,
                    format!("the WIF key is a {got} key but --network is {network}: pass a {want} WIF key or the matching --network"),
                ));
            }
            Ok(Keypair::from_secret_key(secp, &pk.inner))
        }
        Err(_) => Err(Error::invalid(
            what,
            format!(
                "expected 64 hex digits (a 32-byte secret) or a WIF key, or @FILE holding one; got {} characters that are neither",
                text.len()
            ),
        )),
    }
}

fn kind_name(k: NetworkKind) -> &'static str {
    match k {
        NetworkKind::Main => "mainnet",
        NetworkKind::Test => "testnet/signet/regtest",
    }
}

/// A public key given as 32-byte x-only hex (64 digits) or 33-byte compressed hex (66 digits),
/// as an x-only key.
pub fn parse_public_key(what: &str, value: &str) -> Result<XOnlyPublicKey, Error> {
    let text = read_arg(what, value)?;
    let bytes = hex_bytes(what, &text)?;
    match bytes.len() {
        32 => XOnlyPublicKey::from_slice(&bytes)
            .map_err(|_| Error::invalid(what, "the 32 bytes are not the x coordinate of a secp256k1 point")),
        33 => PublicKey::from_slice(&bytes)
            .map(|k| k.x_only_public_key().0)
            .map_err(|_| Error::invalid(what, "the 33 bytes are not a valid compressed secp256k1 public key")),
        n => Err(Error::invalid(
            what,
            format!(
                "a public key is 32 bytes x-only (64 hex digits) or 33 bytes compressed (66 hex digits), got {n} bytes"
            ),
        )),
    }
}

/// A transaction from hex (or `@FILE`): the usual (segwit-aware) serialization, or the legacy
/// serialization of a transaction without inputs that `create-staking-tx` prints.
pub fn parse_tx(what: &str, value: &str) -> Result<Transaction, Error> {
    let text = read_arg(what, value)?;
    if text.is_empty() {
        return Err(Error::invalid(what, "empty; pass the transaction hex"));
    }
    let bytes = hex_bytes(what, &text)?;
    match encode::deserialize::<Transaction>(&bytes) {
        Ok(tx) => Ok(tx),
        Err(e) => decode_legacy_no_inputs(&bytes).ok_or_else(|| {
            Error::invalid(what, format!("the hex does not decode as a Bitcoin transaction: {e} (pass the raw transaction hex, e.g. from getrawtransaction)"))
        }),
    }
}

/// Decodes `version ‖ 0x00 ‖ outputs ‖ lock time` (a transaction without inputs, without the
/// segwit marker), consuming all bytes.
fn decode_legacy_no_inputs(bytes: &[u8]) -> Option<Transaction> {
    let mut r = Cursor::new(bytes);
    let version = Version::consensus_decode(&mut r).ok()?;
    let input = Vec::<TxIn>::consensus_decode(&mut r).ok()?;
    if !input.is_empty() {
        return None;
    }
    let output = Vec::<TxOut>::consensus_decode(&mut r).ok()?;
    let lock_time = absolute::LockTime::consensus_decode(&mut r).ok()?;
    if r.position() as usize != bytes.len() {
        return None;
    }
    Some(Transaction { version, lock_time, input, output })
}

/// The hex of `tx`. A transaction without inputs is written in the legacy serialization (no
/// segwit marker), as btcd and Babylon's cli-tools write it and as `fundrawtransaction` reads it;
/// anything else in the usual serialization.
pub fn tx_hex(tx: &Transaction) -> String {
    if !tx.input.is_empty() {
        return encode::serialize_hex(tx);
    }
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = tx.version.consensus_encode(&mut buf);
    let _ = tx.input.consensus_encode(&mut buf);
    let _ = tx.output.consensus_encode(&mut buf);
    let _ = tx.lock_time.consensus_encode(&mut buf);
    buf.to_lower_hex_string()
}

/// Reads and validates a `global-params.json` file.
pub fn load_params(path: &Path) -> Result<GlobalParams, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid("--params", format!("cannot read {}: {e} (pass the global-params.json file)", path.display()))
    })?;
    GlobalParams::parse(&text).map_err(|e| Error::invalid("--params", format!("{}: {e}", path.display())))
}

/// Networks by the names Babylon's tools and bitcoind use.
pub fn parse_network(value: &str) -> Result<Network, Error> {
    match value {
        "mainnet" | "bitcoin" | "main" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" | "test" => Ok(Network::Testnet),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(Error::invalid(
            "--network",
            format!("unknown network {other:?}: use mainnet, testnet, signet or regtest"),
        )),
    }
}

/// An address that must be valid on `network`.
pub fn parse_address(what: &str, value: &str, network: Network) -> Result<Address, Error> {
    let text = value.trim();
    let unchecked = Address::<NetworkUnchecked>::from_str(text)
        .map_err(|e| Error::invalid(what, format!("{text:?} is not a Bitcoin address: {e}")))?;
    if unchecked.is_valid_for_network(network) {
        return Ok(unchecked.assume_checked());
    }
    let other = [Network::Bitcoin, Network::Testnet, Network::Signet, Network::Regtest]
        .into_iter()
        .find(|n| unchecked.is_valid_for_network(*n))
        .map(|n| n.to_string())
        .unwrap_or_else(|| "another network".into());
    Err(Error::invalid(
        what,
        format!(
            "{text} is a {other} address but --network is {network}: pass a {network} address (or the right --network)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_hex_round_trips() {
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![],
            output: vec![TxOut {
                value: phase1_primitives::bitcoin::Amount::from_sat(5),
                script_pubkey: phase1_primitives::bitcoin::ScriptBuf::from_bytes(vec![0x51]),
            }],
        };
        let hex = tx_hex(&tx);
        assert_eq!(hex, "0200000000010500000000000000015100000000");
        assert_eq!(parse_tx("tx", &hex).unwrap(), tx);
    }

    #[test]
    fn keys_and_networks() {
        let kp = parse_secret_key("k", &"11".repeat(32), Network::Regtest).unwrap();
        let wif = PrivateKey::new(kp.secret_key(), Network::Regtest).to_wif();
        assert_eq!(parse_secret_key("k", &wif, Network::Regtest).unwrap(), kp);
        let err = parse_secret_key("k", &wif, Network::Bitcoin).unwrap_err().to_string();
        assert!(err.contains("WIF key is a testnet/signet/regtest key"), "{err}");
        assert!(parse_secret_key("k", "zz", Network::Regtest).is_err());
        assert!(parse_secret_key("k", &"00".repeat(32), Network::Regtest).is_err());
        let x = kp.x_only_public_key().0;
        assert_eq!(parse_public_key("p", &x.to_string()).unwrap(), x);
        assert_eq!(parse_public_key("p", &kp.public_key().to_string()).unwrap(), x);
        assert!(parse_public_key("p", "abcd").is_err());
        let err = parse_address("--to", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", Network::Regtest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a bitcoin address but --network is regtest"), "{err}");
        assert!(parse_address(
            "--to",
            "bcrt1pkar6829du84uu35v4jhput0f7pc0fnjyayvu6thrzcslewe60zds06jusj",
            Network::Regtest
        )
        .is_ok());
        let err = parse_tx("--staking-tx", "0200zz").unwrap_err().to_string();
        assert!(err.contains("not hex"), "{err}");
        let err = parse_tx("--staking-tx", "020000").unwrap_err().to_string();
        assert!(err.contains("does not decode"), "{err}");
    }
}
