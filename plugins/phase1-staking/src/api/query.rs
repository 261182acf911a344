//! Query-string parameters, checked as the legacy handlers check them (`parseTxHashQuery`,
//! `parsePublicKeyQuery`, `parsePaginationQuery`, `parseStateFilterQuery`), with their exact
//! 400 messages.

use guest_sdk::HttpRequest;

use super::envelope::ApiError;
use super::pagination;
use crate::state::{self, Hash32, State};

/// The first value of `name`, `""` when absent (Go's `r.URL.Query().Get`).
pub fn get<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.query_param(name).unwrap_or("")
}

/// Every value of `name`, in order (Go's `r.URL.Query()[name]`).
pub fn all<'a>(req: &'a HttpRequest, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The legacy `IsValidTxHash` (btcd's `chainhash.NewHashFromStr`): at most 64 hex digits (an odd
/// count is zero-padded, an empty string is the zero hash).
pub fn is_valid_tx_hash(s: &str) -> bool {
    s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A transaction hash the legacy check accepts, as the internal-order txid it names. `None` when
/// it is valid for the check but cannot name a stored transaction (fewer than 64 digits): the
/// legacy service then answered "not found". Hex case is ignored.
pub fn txid_of(s: &str) -> Option<Hash32> {
    state::txid_from_hex(s)
}

/// A required transaction-hash query (`staking_tx_hash_hex`): `"<name> is required"`,
/// `"invalid <name>"`.
pub fn tx_hash(req: &HttpRequest, name: &str) -> Result<Option<Hash32>, ApiError> {
    let value = get(req, name);
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{name} is required")));
    }
    if !is_valid_tx_hash(value) {
        return Err(ApiError::bad_request(format!("invalid {name}")));
    }
    Ok(txid_of(value))
}

/// A BIP-340 x-only key in hex (`schnorr.ParsePubKey` of the decoded bytes).
pub fn parse_xonly(s: &str) -> Option<Hash32> {
    let bytes = state::parse_hash32(s)?;
    phase1_primitives::curve::xonly_key(&bytes)?;
    Some(bytes)
}

/// An optional public-key query (`fp_btc_pk`, `staker_btc_pk` of the stats): `None` when absent,
/// `"invalid <name>"` when not a BIP-340 key.
pub fn public_key(req: &HttpRequest, name: &str) -> Result<Option<Hash32>, ApiError> {
    let value = get(req, name);
    if value.is_empty() {
        return Ok(None);
    }
    parse_xonly(value).map(Some).ok_or_else(|| ApiError::bad_request(format!("invalid {name}")))
}

/// A required public-key query (`staker_btc_pk` of the delegations): `"<name> is required"`,
/// `"invalid <name>"`.
pub fn required_public_key(req: &HttpRequest, name: &str) -> Result<Hash32, ApiError> {
    public_key(req, name)?.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// `pagination_key`: `None` when absent; `"invalid pagination key format"` unless it passes the
/// legacy format check (standard base64 alphabet, see [`pagination::is_base64_encoded`]).
pub fn pagination_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let value = get(req, "pagination_key");
    if value.is_empty() {
        return Ok(None);
    }
    if !pagination::is_base64_encoded(value) {
        return Err(ApiError::bad_request("invalid pagination key format"));
    }
    Ok(Some(value))
}

/// `state` (v0.3): `None` when absent; one of the five states, else
/// `"invalid delegation state: <value>"`.
pub fn state_filter(req: &HttpRequest) -> Result<Option<State>, ApiError> {
    let value = get(req, "state");
    if value.is_empty() {
        return Ok(None);
    }
    State::parse(value).map(Some).ok_or_else(|| ApiError::bad_request(format!("invalid delegation state: {value}")))
}
