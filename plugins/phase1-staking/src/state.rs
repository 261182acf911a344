//! The plugin's chain state (`store`, undone with reorgs) and off-chain state (`local`): key
//! layout and records. One place owns the layout; the indexer writes it, the API reads it.
//!
//! Chain state (`store`):
//!
//! | key | value |
//! |---|---|
//! | `d` txid(32, internal order) | [`Delegation`] (JSON) |
//! | `s` staker(32) !start_height(4 BE) hash(32, display order) | empty: a staker's delegations, start height desc then hash asc |
//! | `u` unbonding txid(32) | staking txid (32) |
//! | `e` expire_height(4 BE) staking txid(32) kind(1: `a` active, `u` unbonding) | empty: the expiry queue |
//! | `tvl` | confirmed TVL, indexer semantics (u64 BE) |
//! | `height` | last processed confirmed height (u64 BE) |
//! | `btcinfo` | [`BtcInfo`] (JSON) |
//! | `stats` | overall [`Stats`] (legacy semantics) |
//! | `stats2` | overall [`Stats`] (accurate: expired and withdrawn stake not active) |
//! | `f` fp(32) / `k` staker(32) | [`Stats`] of a finality provider / staker |
//! | `F` !active_tvl(8 BE) !fp(32) / `K` !active_tvl(8 BE) !staker(32) | empty: rankings (active_tvl desc, pk desc) |
//! | `m` name | metric counter or gauge (u64 BE), see `metrics.rs` |
//! | `a` witness program (32: P2TR output key; 20: P2WPKH hash) | staker x-only key (32): a staker's addresses |
//! | `tiptime` | header time of the newest block seen (u64 BE): the plugin's only clock |
//! | `w` height(4 BE) | an unconfirmed block's staking outcome and spends ([`WindowBlock`]) |
//! | `x` txid(32) | a valid staking output of the unconfirmed window ([`WindowStake`]) |
//!
//! Off-chain state (`local`, written by `POST /v1/unbonding`):
//!
//! | key | value |
//! |---|---|
//! | `r` staking txid(32) | [`UnbondingRequest`] (JSON) |
//! | `ru` unbonding txid(32) | staking txid (32): unique unbonding txids |
//! | `rq` seq(8 BE) | staking txid (32): requests in arrival order |
//! | `rseq` | next seq (u64 BE) |

use guest_sdk::{local, store};
use serde::{Deserialize, Serialize};

pub type Hash32 = [u8; 32];

/// Lower-case hex, as `hex::encode` writes it, through a byte buffer (`hex::encode` collects
/// chars one by one, which shows in the block path for raw transactions).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut buf).expect("the buffer is twice the input");
    String::from_utf8(buf).expect("hex digits are ASCII")
}

pub const TVL: &[u8] = b"tvl";
pub const HEIGHT: &[u8] = b"height";
pub const BTC_INFO: &[u8] = b"btcinfo";
pub const STATS: &[u8] = b"stats";
pub const STATS_ACCURATE: &[u8] = b"stats2";
pub const WINDOW: &[u8] = b"w";
pub const EXPIRY: &[u8] = b"e";
pub const FP_RANK: &[u8] = b"F";
pub const STAKER_RANK: &[u8] = b"K";
pub const METRIC: &[u8] = b"m";
pub const TIP_TIME: &[u8] = b"tiptime";

/// Delegation states (the legacy API's strings). The chain state holds `active`, `unbonding`,
/// `unbonded` and `withdrawn`; `unbonding_requested` is an `active` delegation with an accepted
/// unbonding request in `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Active,
    UnbondingRequested,
    Unbonding,
    Unbonded,
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::UnbondingRequested => "unbonding_requested",
            State::Unbonding => "unbonding",
            State::Unbonded => "unbonded",
            State::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "active" => State::Active,
            "unbonding_requested" => State::UnbondingRequested,
            "unbonding" => State::Unbonding,
            "unbonded" => State::Unbonded,
            "withdrawn" => State::Withdrawn,
            _ => return None,
        })
    }
}

/// A transaction of a delegation as the API shows it (`TransactionPublic`, with the timestamp
/// kept as Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub tx_hex: String,
    pub output_index: u32,
    pub start_timestamp: i64,
    pub start_height: u32,
    pub timelock: u32,
}

/// Why a delegation became `unbonded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// The staking timelock elapsed while `active`.
    Active,
    /// The unbonding time elapsed while `unbonding`.
    Unbonding,
}

/// One staking transaction the indexer accepted (valid; active or overflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Display-order hex.
    pub staking_tx_hash_hex: String,
    pub staker_pk_hex: String,
    pub finality_provider_pk_hex: String,
    pub staking_value: u64,
    /// Chain state: never `unbonding_requested` (see [`State`]).
    pub state: State,
    pub is_overflow: bool,
    /// Index of the parameters version at the inclusion height.
    pub params_version: u32,
    pub staking_tx: TxRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbonding_tx: Option<TxRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbonding_tx_hash_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<Expiry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw_tx_hash_hex: Option<String>,
}

/// Statistics rows (legacy `overall_stats`, `finality_providers_stats`, `staker_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub active_tvl: u64,
    pub total_tvl: u64,
    pub active_delegations: u64,
    pub total_delegations: u64,
    #[serde(default)]
    pub total_stakers: u64,
}

/// The latest `btc_info` (confirmed and unconfirmed TVL at the tip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtcInfo {
    pub height: u32,
    pub confirmed_tvl: u64,
    pub unconfirmed_tvl: u64,
}

/// What the unconfirmed window keeps of a block until it confirms: the outcome of its staking
/// checks (which depend only on the block's parameters, so they are made once, when the block
/// arrives) and the spends whose outcome depends on state and is evaluated at every tip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowBlock {
    pub height: u32,
    /// The block (display hex): the confirmed block reuses this outcome only if it is the same.
    pub block_hash: String,
    /// Sum of the values of the staking transactions that passed the amount/time checks.
    pub valid_value: u64,
    /// Staking transactions that failed them.
    pub invalid: u64,
    /// Their txids (display hex).
    pub invalid_txids: Vec<String>,
    /// Txids (display hex) of its valid staking transactions (their `x` entries).
    pub stakes: Vec<String>,
    /// Inputs spending a stored staking output or a window stake: (raw tx hex, input index).
    pub spends: Vec<(String, u32)>,
}

/// A valid staking output of the unconfirmed window (store `x` + txid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowStake {
    pub vout: u32,
    pub value: u64,
    pub staker_pk_hex: String,
    pub finality_provider_pk_hex: String,
    pub staking_time: u16,
    pub params_version: u32,
}

/// An accepted `POST /v1/unbonding` (the legacy `unbonding_queue` document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbondingRequest {
    pub seq: u64,
    pub staking_tx_hash_hex: String,
    pub staker_pk_hex: String,
    pub finality_pk_hex: String,
    pub unbonding_tx_sig_hex: String,
    /// `INSERTED` when accepted (the pipeline's states follow).
    pub state: String,
    pub unbonding_tx_hash_hex: String,
    pub unbonding_tx_hex: String,
    pub staking_tx_hex: String,
    pub staking_output_index: u32,
    pub staking_timelock: u32,
    pub staking_amount: u64,
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    k.extend_from_slice(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn inverted<const N: usize>(bytes: [u8; N]) -> [u8; N] {
    bytes.map(|b| !b)
}

/// Internal-order bytes of a display-order hash (and back: the reversal is its own inverse).
pub fn reversed(h: &Hash32) -> Hash32 {
    let mut r = *h;
    r.reverse();
    r
}

/// Parses 64 hex characters into 32 bytes.
pub fn parse_hash32(s: &str) -> Option<Hash32> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Internal-order txid of a display-order hex hash.
pub fn txid_from_hex(s: &str) -> Option<Hash32> {
    parse_hash32(s).map(|h| reversed(&h))
}

pub fn delegation_key(txid: &Hash32) -> Vec<u8> {
    key(b"d", &[txid])
}

pub fn staker_index_prefix(staker: &Hash32) -> Vec<u8> {
    key(b"s", &[staker])
}

pub fn staker_index_key(staker: &Hash32, start_height: u32, txid: &Hash32) -> Vec<u8> {
    key(b"s", &[staker, &inverted(start_height.to_be_bytes()), &reversed(txid)])
}

pub fn unbonding_key(unbonding_txid: &Hash32) -> Vec<u8> {
    key(b"u", &[unbonding_txid])
}

pub fn expiry_key(expire_height: u32, txid: &Hash32, kind: Expiry) -> Vec<u8> {
    let k = match kind {
        Expiry::Active => b"a",
        Expiry::Unbonding => b"u",
    };
    key(EXPIRY, &[&expire_height.to_be_bytes(), txid, k])
}

/// Decodes an expiry key into (expire height, staking txid, kind).
pub fn parse_expiry_key(k: &[u8]) -> Option<(u32, Hash32, Expiry)> {
    if k.len() != 1 + 4 + 32 + 1 || !k.starts_with(EXPIRY) {
        return None;
    }
    let height = u32::from_be_bytes(k[1..5].try_into().ok()?);
    let txid: Hash32 = k[5..37].try_into().ok()?;
    let kind = match k[37] {
        b'a' => Expiry::Active,
        b'u' => Expiry::Unbonding,
        _ => return None,
    };
    Some((height, txid, kind))
}

pub fn fp_stats_key(fp: &Hash32) -> Vec<u8> {
    key(b"f", &[fp])
}

pub fn staker_stats_key(staker: &Hash32) -> Vec<u8> {
    key(b"k", &[staker])
}

/// Ranking key: ascending byte order = active_tvl desc, then pk desc (the legacy page filter
/// `(active_tvl < N) OR (active_tvl = N AND pk < P)`, made a total order).
pub fn rank_key(prefix: &[u8], active_tvl: u64, pk: &Hash32) -> Vec<u8> {
    key(prefix, &[&inverted(active_tvl.to_be_bytes()), &inverted(*pk)])
}

/// Decodes a ranking key into (active_tvl, pk).
pub fn parse_rank_key(k: &[u8]) -> Option<(u64, Hash32)> {
    if k.len() != 1 + 8 + 32 {
        return None;
    }
    let tvl: [u8; 8] = k[1..9].try_into().ok()?;
    let pk: Hash32 = k[9..41].try_into().ok()?;
    Some((u64::from_be_bytes(inverted(tvl)), inverted(pk)))
}

pub fn window_key(height: u32) -> Vec<u8> {
    key(WINDOW, &[&height.to_be_bytes()])
}

/// Address index key of a witness program (P2TR output key or P2WPKH key hash).
pub fn address_key(program: &[u8]) -> Vec<u8> {
    key(b"a", &[program])
}

pub fn window_stake_key(txid: &Hash32) -> Vec<u8> {
    key(b"x", &[txid])
}

pub fn metric_key(name: &str) -> Vec<u8> {
    key(METRIC, &[name.as_bytes()])
}

pub fn request_key(staking_txid: &Hash32) -> Vec<u8> {
    key(b"r", &[staking_txid])
}

pub fn request_by_unbonding_key(unbonding_txid: &Hash32) -> Vec<u8> {
    key(b"ru", &[unbonding_txid])
}

/// Prefix of the requests in arrival order.
pub const REQUEST_QUEUE: &[u8] = b"rq";

pub fn request_queue_key(seq: u64) -> Vec<u8> {
    key(REQUEST_QUEUE, &[&seq.to_be_bytes()])
}

pub const REQUEST_SEQ: &[u8] = b"rseq";

// --- typed reads and writes -------------------------------------------------------------------

pub fn delegation(txid: &Hash32) -> Result<Option<Delegation>, String> {
    store::get_json(delegation_key(txid))
}

pub fn put_delegation(txid: &Hash32, d: &Delegation) -> Result<(), String> {
    store::put_json(delegation_key(txid), d)
}

pub fn stats(key: &[u8]) -> Result<Stats, String> {
    Ok(store::get_json(key)?.unwrap_or_default())
}

pub fn confirmed_tvl(start: u64) -> u64 {
    match store::get(TVL) {
        Some(_) => store::get_u64(TVL),
        None => start,
    }
}

pub fn btc_info() -> Result<Option<BtcInfo>, String> {
    store::get_json(BTC_INFO)
}

/// The state the API shows: the chain state, except that an `active` delegation with an
/// accepted unbonding request is `unbonding_requested`. Once the chain moves on (unbonding,
/// expiry, withdrawal) the chain state wins, so a request that never reaches Bitcoin cannot
/// strand a delegation (the legacy API's stuck `unbonding_requested`).
pub fn shown_state(txid: &Hash32, d: &Delegation) -> Result<State, String> {
    if d.state == State::Active && local::get(request_key(txid)).is_some() {
        return Ok(State::UnbondingRequested);
    }
    Ok(d.state)
}
