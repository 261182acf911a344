//! Shared helpers for the conformance tests: locating the research data (skipping cleanly when it
//! is absent) and small decoding helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use phase1_primitives::bitcoin::consensus::encode::deserialize;
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::{Transaction, XOnlyPublicKey};

/// `<workspace>/../shared/research-data/<rel>`.
pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/research-data/")).join(rel)
}

/// The file's text, or `None` after printing a SKIP line when it is absent.
pub fn read_text(rel: &str) -> Option<String> {
    let p = data_path(rel);
    match std::fs::read_to_string(&p) {
        Ok(s) => Some(s),
        Err(_) => {
            eprintln!("SKIP: {} not found", p.display());
            None
        }
    }
}

/// The file's bytes, or `None` after printing a SKIP line when it is absent.
pub fn read_bytes(rel: &str) -> Option<Vec<u8>> {
    let p = data_path(rel);
    match std::fs::read(&p) {
        Ok(s) => Some(s),
        Err(_) => {
            eprintln!("SKIP: {} not found", p.display());
            None
        }
    }
}

/// The file parsed as JSON, or `None` (SKIP) when absent.
pub fn read_json(rel: &str) -> Option<serde_json::Value> {
    read_text(rel).map(|t| serde_json::from_str(&t).unwrap_or_else(|e| panic!("{rel}: bad JSON: {e}")))
}

/// Returns from the test when the data file is missing.
#[macro_export]
macro_rules! json_or_skip {
    ($rel:expr) => {
        match common::read_json($rel) {
            Some(v) => v,
            None => return,
        }
    };
}

/// Returns from the test when the data file is missing.
#[macro_export]
macro_rules! text_or_skip {
    ($rel:expr) => {
        match common::read_text($rel) {
            Some(v) => v,
            None => return,
        }
    };
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

pub fn to_hex(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

pub fn tx(hex_str: &str) -> Transaction {
    deserialize(&unhex(hex_str)).expect("valid transaction hex")
}

pub fn tx_hex(tx: &Transaction) -> String {
    to_hex(phase1_primitives::bitcoin::consensus::encode::serialize(tx))
}

/// A key given as 33-byte compressed or 32-byte x-only hex, as an x-only key.
pub fn xonly(hex_str: &str) -> XOnlyPublicKey {
    let b = unhex(hex_str);
    match b.len() {
        32 => XOnlyPublicKey::from_slice(&b).expect("valid x-only key"),
        33 => PublicKey::from_slice(&b).expect("valid compressed key").x_only_public_key().0,
        n => panic!("key of {n} bytes: {hex_str}"),
    }
}

pub fn compressed(hex_str: &str) -> PublicKey {
    PublicKey::from_slice(&unhex(hex_str)).expect("valid compressed key")
}

pub fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("missing string field {key}"))
}

pub fn u64_of(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("missing integer field {key}"))
}
