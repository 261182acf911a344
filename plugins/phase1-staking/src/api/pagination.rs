//! Pagination (spec §6.5): page tokens, page size, and paging over a key-ordered index.
//!
//! A token is Go's `base64.URLEncoding` (URL-safe alphabet, padded) of the compact JSON of the
//! last row's sort key. The handler first applies the legacy format check, which uses the
//! *standard* alphabet (a latent upstream inconsistency, kept: JSON-of-ASCII tokens never contain
//! `-` or `_`), then decodes URL-safe; a token that fails the decoding or the JSON is
//! "Invalid pagination token" (400).
//!
//! Every index the API pages over is a store key range whose byte order is the legacy sort order
//! made total (see `state.rs`), so "the next page" is simply "the keys strictly after the last
//! row's key" and no row is skipped or repeated.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use guest_sdk::store;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::envelope::ApiError;

/// Token of `/v1/staker/delegations` (Go `DelegationByStakerPagination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationToken {
    #[serde(default)]
    pub staking_tx_hash_hex: String,
    #[serde(default)]
    pub staking_start_height: u64,
}

/// Token of `/v1/finality-providers` (Go `FinalityProviderStatsPagination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpToken {
    #[serde(default)]
    pub finality_provider_pk_hex: String,
    #[serde(default)]
    pub active_tvl: u64,
}

/// Token of `/v1/stats/staker` (Go `StakerStatsByStakerPagination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakerToken {
    #[serde(default)]
    pub staker_pk_hex: String,
    #[serde(default)]
    pub active_tvl: u64,
}

/// The legacy `IsBase64Encoded`: length a multiple of 4, standard alphabet with at most two
/// trailing `=`, and standard base64 decoding succeeds.
pub fn is_base64_encoded(s: &str) -> bool {
    if !s.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
        return false;
    }
    STANDARD.decode(s).is_ok()
}

/// The token for `row`: URL-safe padded base64 of its compact JSON.
pub fn encode<T: Serialize>(row: &T) -> String {
    URL_SAFE.encode(serde_json::to_vec(row).unwrap_or_default())
}

/// Decodes a token (already format-checked): 400 "Invalid pagination token" when it is not
/// URL-safe base64 of the expected JSON object.
pub fn decode<T: DeserializeOwned>(key: &str) -> Result<T, ApiError> {
    let invalid = || ApiError::bad_request("Invalid pagination token");
    let bytes = URL_SAFE.decode(key).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// One page of the store keys under `prefix` strictly after `after`: each key is mapped by `row`
/// (`None` drops it, e.g. a state filter), at most `limit` rows are returned, and the flag tells
/// whether another kept row follows (the legacy "fetch limit + 1"). Filtering happens while
/// scanning, so a filtered page is still full and the next page starts right after its last row.
pub fn scan_page<T>(
    prefix: &[u8],
    after: Option<Vec<u8>>,
    limit: usize,
    mut row: impl FnMut(&[u8]) -> Result<Option<T>, ApiError>,
) -> Result<(Vec<T>, bool), ApiError> {
    let want = limit + 1;
    let mut rows = Vec::with_capacity(want.min(1024));
    let mut after = after;
    loop {
        let chunk = store::scan_prefix(prefix, after.as_deref(), want.clamp(16, 1024) as u32);
        let exhausted = chunk.len() < want.clamp(16, 1024);
        for (key, _) in &chunk {
            if let Some(r) = row(key)? {
                rows.push(r);
                if rows.len() == want {
                    rows.truncate(limit);
                    return Ok((rows, true));
                }
            }
        }
        match chunk.into_iter().next_back() {
            Some((last, _)) if !exhausted => after = Some(last),
            _ => return Ok((rows, false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_match_go() {
        // The upstream e2e token for the second page of finality providers.
        let t = FpToken {
            finality_provider_pk_hex: "0d2f9728abc45c0cdeefdd73f52a0e0102470e35fb689fc5bc681959a61b021f".into(),
            active_tvl: 3000000000,
        };
        let key = encode(&t);
        assert_eq!(
            key,
            "eyJmaW5hbGl0eV9wcm92aWRlcl9wa19oZXgiOiIwZDJmOTcyOGFiYzQ1YzBjZGVlZmRkNzNmNTJhMGUwMTAyNDcwZTM1ZmI2ODlmYzViYzY4MTk1OWE2MWIwMjFmIiwiYWN0aXZlX3R2bCI6MzAwMDAwMDAwMH0="
        );
        assert!(is_base64_encoded(&key));
        assert_eq!(decode::<FpToken>(&key).unwrap(), t);
        assert!(!is_base64_encoded("invalid"));
        assert!(!is_base64_encoded("ab-_"));
        assert!(decode::<FpToken>("AAAA").is_err());
    }
}
