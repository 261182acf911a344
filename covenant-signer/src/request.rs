//! The legacy request body of `POST /v1/sign-unbonding-tx` (spec §8.1), decoded.
//!
//! Fields are decoded in the legacy handler's order (payload, pkScript, covenant key, unbonding
//! tx, staker signature) and each failure is a 400 whose message starts with the legacy text
//! ("invalid request payload", "invalid staking output pk script", ...) followed by the detail.
//! Unknown JSON fields are ignored, as Go's decoder does.

use phase1_primitives::bitcoin::consensus::encode::deserialize;
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::{ScriptBuf, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The JSON body as sent (all hex strings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestJson {
    /// 34-byte P2TR pkScript of the staking output.
    #[serde(default)]
    pub staking_output_pk_script_hex: String,
    /// The unsigned unbonding transaction.
    #[serde(default)]
    pub unbonding_tx_hex: String,
    /// The staker's 64-byte BIP-340 signature.
    #[serde(default)]
    pub staker_unbonding_sig_hex: String,
    /// The 33-byte compressed key of the covenant member asked to sign.
    #[serde(default)]
    pub covenant_public_key: String,
}

/// A decoded signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The staking output's pkScript as the client states it.
    pub staking_output_pk_script: ScriptBuf,
    /// The unbonding transaction to sign.
    pub unbonding_tx: Transaction,
    /// The staker's signature over the unbonding sighash.
    pub staker_signature: [u8; 64],
    /// The covenant member's key (compressed; compared with the params' keys byte for byte).
    pub covenant_public_key: PublicKey,
}

/// The `data` of a successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResponseData {
    /// The covenant member's 64-byte BIP-340 signature, hex.
    pub signature_hex: String,
}

fn decode_hex(field: &str, s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err(format!("{field} is missing or empty"));
    }
    hex::decode(s).map_err(|e| format!("{field} is not hex ({e})"))
}

/// Decodes a request body. Errors are 400 `BAD_REQUEST` with the legacy message prefix.
pub fn parse_request(body: &[u8]) -> Result<SignRequest, ApiError> {
    let raw: SignRequestJson = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid request payload: {e} (send a JSON object with staking_output_pk_script_hex, unbonding_tx_hex, staker_unbonding_sig_hex and covenant_public_key)"
        ))
    })?;
    decode_request(&raw)
}

/// Decodes the JSON fields (see [`parse_request`]).
pub fn decode_request(raw: &SignRequestJson) -> Result<SignRequest, ApiError> {
    let pk_script = decode_hex("staking_output_pk_script_hex", &raw.staking_output_pk_script_hex)
        .map_err(|e| ApiError::bad_request(format!("invalid staking output pk script: {e}")))?;

    let key_bytes = decode_hex("covenant_public_key", &raw.covenant_public_key)
        .map_err(|e| ApiError::bad_request(format!("invalid covenant public key: {e}")))?;
    if key_bytes.len() != 33 {
        return Err(ApiError::bad_request(format!(
            "invalid covenant public key: it is {} bytes; send the 33-byte compressed key (02… or 03…, 66 hex characters)",
            key_bytes.len()
        )));
    }
    let covenant_public_key = PublicKey::from_slice(&key_bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid covenant public key: not a secp256k1 point ({e})")))?;

    let tx_bytes = decode_hex("unbonding_tx_hex", &raw.unbonding_tx_hex)
        .map_err(|e| ApiError::bad_request(format!("invalid unbonding transaction: {e}")))?;
    let unbonding_tx: Transaction = deserialize(&tx_bytes).map_err(|e| {
        ApiError::bad_request(format!("invalid unbonding transaction: not a serialized bitcoin transaction ({e})"))
    })?;

    let sig = decode_hex("staker_unbonding_sig_hex", &raw.staker_unbonding_sig_hex)
        .map_err(|e| ApiError::bad_request(format!("invalid staker unbonding signature: {e}")))?;
    let staker_signature: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid staker unbonding signature: it is {} bytes; a BIP-340 signature with SIGHASH_DEFAULT is 64 bytes",
            sig.len()
        ))
    })?;

    Ok(SignRequest {
        staking_output_pk_script: ScriptBuf::from_bytes(pk_script),
        unbonding_tx,
        staker_signature,
        covenant_public_key,
    })
}
