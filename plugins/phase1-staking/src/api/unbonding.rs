//! Unbonding requests (spec §6.3, §6.6): `GET /v1/unbonding/eligibility` and the write route
//! `POST /v1/unbonding`, which validates a staker's pre-signed unbonding transaction and
//! records it in `local` (the legacy `unbonding_queue` document, state `INSERTED`).
//!
//! Everything is checked before anything is written; the engine also discards a write route's
//! `local` writes when it answers 400 or more.

use guest_sdk::bitcoin::consensus::encode::deserialize_partial;
use guest_sdk::bitcoin::hashes::Hash;
use guest_sdk::bitcoin::{OutPoint, Transaction, Txid, XOnlyPublicKey};
use guest_sdk::{local, HttpRequest};
use phase1_primitives::staking::StakingInfo;
use phase1_primitives::unbonding::{check_unbonding_request, UnbondingParams, UnbondingRequest as Request};
use serde::Deserialize;

use super::envelope::{self, ApiError, ApiResult, ErrorCode};
use super::query;
use crate::config;
use crate::state::{self, Delegation, Hash32, State, UnbondingRequest};

/// The legacy `max-content-length`: larger POST bodies are refused with 413.
pub const MAX_CONTENT_LENGTH: usize = 4096;

/// The legacy `UnbondDelegationRequestPayload` (absent fields are empty strings, unknown fields
/// are ignored, as Go's decoder does).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    staking_tx_hash_hex: String,
    unbonding_tx_hash_hex: String,
    unbonding_tx_hex: String,
    staker_signed_signature_hex: String,
}

/// A payload that passed the legacy format checks.
struct Checked {
    payload: Payload,
    unbonding_tx: Transaction,
    signature: [u8; 64],
}

/// The secp256k1 field prime p.
const FIELD_PRIME: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xfc, 0x2f,
];
/// The secp256k1 group order n.
const GROUP_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc,
    0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// The legacy `IsValidSignatureFormat` (btcd `schnorr.ParseSignature`): 64 bytes of hex with
/// `r < p` and `s < n`.
fn parse_signature(hex_sig: &str) -> Option<[u8; 64]> {
    let mut sig = [0u8; 64];
    if hex_sig.len() != 128 {
        return None;
    }
    hex::decode_to_slice(hex_sig, &mut sig).ok()?;
    (sig[..32] < FIELD_PRIME[..] && sig[32..] < GROUP_ORDER[..]).then_some(sig)
}

/// The legacy `IsValidTxHex` (btcd `MsgTx.Deserialize`, which ignores trailing bytes).
fn parse_tx(hex_tx: &str) -> Option<Transaction> {
    let bytes = hex::decode(hex_tx).ok()?;
    deserialize_partial::<Transaction>(&bytes).ok().map(|(tx, _)| tx)
}

/// The payload checks of the legacy handler, in its order, with its 400 messages.
fn check_payload(body: &[u8]) -> Result<Checked, ApiError> {
    let invalid = || ApiError::bad_request("invalid request payload");
    // Go's `json.Decoder.Decode` reads the first JSON value and ignores what follows.
    let payload: Option<Payload> =
        serde_json::Deserializer::from_slice(body).into_iter().next().ok_or_else(invalid)?.map_err(|_| invalid())?;
    let payload = payload.unwrap_or_default();
    if !query::is_valid_tx_hash(&payload.staking_tx_hash_hex) {
        return Err(ApiError::bad_request("invalid staking transaction hash"));
    }
    if !query::is_valid_tx_hash(&payload.unbonding_tx_hash_hex) {
        return Err(ApiError::bad_request("invalid unbonding transaction hash"));
    }
    let unbonding_tx = parse_tx(&payload.unbonding_tx_hex)
        .ok_or_else(|| ApiError::bad_request("invalid unbonding transaction hex"))?;
    let signature = parse_signature(&payload.staker_signed_signature_hex)
        .ok_or_else(|| ApiError::bad_request("invalid staker signed signature hex"))?;
    Ok(Checked { payload, unbonding_tx, signature })
}

/// The delegation a request names, if it may be unbonded: 403 NOT_FOUND "delegation not found",
/// 403 FORBIDDEN "delegation state is not active" (shown state, so an accepted request makes it
/// ineligible; overflow delegations are eligible).
fn eligible_delegation(txid: Option<Hash32>) -> Result<(Hash32, Delegation), ApiError> {
    let not_found = || ApiError::forbidden(ErrorCode::NotFound, "delegation not found");
    let txid = txid.ok_or_else(not_found)?;
    let d = state::delegation(&txid)?.ok_or_else(not_found)?;
    if state::shown_state(&txid, &d)? != State::Active {
        return Err(ApiError::forbidden(ErrorCode::Forbidden, "delegation state is not active"));
    }
    Ok((txid, d))
}

/// `GET /v1/unbonding/eligibility?staking_tx_hash_hex=` — 200 with body `null` when eligible.
pub fn eligibility(req: &HttpRequest) -> ApiResult {
    let txid = query::tx_hash(req, "staking_tx_hash_hex")?;
    eligible_delegation(txid)?;
    Ok(envelope::null(200))
}

fn xonly(hex_pk: &str) -> Result<XOnlyPublicKey, ApiError> {
    state::parse_hash32(hex_pk)
        .and_then(|b| phase1_primitives::curve::xonly_key(&b))
        .ok_or_else(|| ApiError::internal(format!("stored key {hex_pk:?} is not an x-only key")))
}

/// The service-level checks (§6.6 1–3): the delegation, its parameters version, and
/// `VerifyUnbondingRequest` (403 VALIDATION_ERROR with the reason).
fn verify(c: &Checked, txid: Option<Hash32>) -> Result<(Hash32, Delegation), ApiError> {
    let (txid, d) = eligible_delegation(txid)?;
    let cfg = config::get()?;
    let params = cfg
        .params_at(d.staking_tx.start_height)
        .ok_or_else(|| ApiError::internal("failed to get global params based on the staking tx height"))?;
    let staking = StakingInfo::new(
        &xonly(&d.staker_pk_hex)?,
        &[xonly(&d.finality_provider_pk_hex)?],
        params.committee(),
        u16::try_from(d.staking_tx.timelock).map_err(|_| ApiError::internal("stored timelock exceeds 65535"))?,
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    // The legacy check parses the claimed hash as btcd does (short hashes are zero-padded).
    let mut claimed = [0u8; 32];
    let padded = format!("{:0>64}", c.payload.unbonding_tx_hash_hex);
    hex::decode_to_slice(&padded, &mut claimed)
        .map_err(|_| ApiError::bad_request("invalid unbonding transaction hash"))?;
    let request = Request {
        unbonding_tx: &c.unbonding_tx,
        unbonding_txid: Txid::from_byte_array(state::reversed(&claimed)),
        staker_signature: &c.signature,
    };
    let outpoint = OutPoint { txid: Txid::from_byte_array(txid), vout: d.staking_tx.output_index };
    check_unbonding_request(
        &request,
        &staking,
        outpoint,
        d.staking_value,
        UnbondingParams::from(params),
        cfg.require_unbonding_version_2,
    )
    .map_err(|e| ApiError::forbidden(ErrorCode::ValidationError, e.to_string()))?;
    Ok((txid, d))
}

/// `POST /v1/unbonding` (write route) — 202 with body `null` once the request is recorded.
pub fn submit(req: &HttpRequest) -> ApiResult {
    if req.body.len() > MAX_CONTENT_LENGTH {
        return Err(ApiError::new(413, ErrorCode::BadRequest, "Request Entity Too Large"));
    }
    let c = check_payload(&req.body)?;
    let (txid, d) = verify(&c, query::txid_of(&c.payload.staking_tx_hash_hex))?;
    let unbonding_txid = c.unbonding_tx.compute_txid().to_byte_array();
    if local::get(state::request_by_unbonding_key(&unbonding_txid)).is_some() {
        return Err(ApiError::forbidden(ErrorCode::Forbidden, "unbonding transaction already exists"));
    }
    let seq = local::get_u64(state::REQUEST_SEQ);
    let record = UnbondingRequest {
        seq,
        staking_tx_hash_hex: d.staking_tx_hash_hex.clone(),
        staker_pk_hex: d.staker_pk_hex.clone(),
        finality_pk_hex: d.finality_provider_pk_hex.clone(),
        unbonding_tx_sig_hex: hex::encode(c.signature),
        state: "INSERTED".into(),
        unbonding_tx_hash_hex: guest_sdk::hash_hex(&unbonding_txid),
        unbonding_tx_hex: c.payload.unbonding_tx_hex.to_ascii_lowercase(),
        staking_tx_hex: d.staking_tx.tx_hex.clone(),
        staking_output_index: d.staking_tx.output_index,
        staking_timelock: d.staking_tx.timelock,
        staking_amount: d.staking_value,
    };
    local::put_json(state::request_key(&txid), &record)?;
    local::put(state::request_by_unbonding_key(&unbonding_txid), txid);
    local::put(state::request_queue_key(seq), txid);
    local::put_u64(state::REQUEST_SEQ, seq + 1);
    Ok(envelope::null(202))
}

/// Most requests one `GET /unbonding-requests` returns.
const QUEUE_PAGE_MAX: u32 = 1000;

/// `GET /plugins/phase1-staking/unbonding-requests?after=<seq>&limit=<n>` (read route): the
/// accepted unbonding requests in arrival order (the legacy `unbonding_queue` collection), those
/// with `seq > after` (all when `after` is absent), at most `limit` (default 100, at most 1000).
/// `{"data": [request, ...]}`; a request's `state` is always `INSERTED` here — the unbonding
/// pipeline keeps its own progress. This is the read-only contract `plugins/unbonding` consumes.
pub fn queue(req: &HttpRequest) -> ApiResult {
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        req.query_param(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer, got {v:?}")))
            })
            .transpose()
    };
    let after = number("after")?;
    let limit = number("limit")?.unwrap_or(100).clamp(1, QUEUE_PAGE_MAX as u64) as u32;
    let start = after.map(state::request_queue_key);
    let mut out: Vec<UnbondingRequest> = Vec::new();
    for (_, txid) in local::scan_prefix(state::REQUEST_QUEUE, start.as_deref(), limit) {
        let txid: Hash32 =
            txid.as_slice().try_into().map_err(|_| ApiError::internal("request queue entry is not a txid"))?;
        let record: UnbondingRequest = local::get_json(state::request_key(&txid))?
            .ok_or_else(|| ApiError::internal("request queue entry without its request"))?;
        out.push(record);
    }
    Ok(envelope::ok(&out))
}
