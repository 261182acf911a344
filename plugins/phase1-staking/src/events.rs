//! The legacy queue messages, byte-compatible with staking-queue-client v0.4.1 (what the Phase-1
//! indexer and expiry checker pinned): compact JSON, fields in the Go structs' order, no
//! `schema_version` field (consumers default it to 0). Spec §5.

use serde::Serialize;

pub const ACTIVE_STAKING_QUEUE: &str = "active_staking_queue";
pub const UNBONDING_STAKING_QUEUE: &str = "unbonding_staking_queue";
pub const WITHDRAW_STAKING_QUEUE: &str = "withdraw_staking_queue";
pub const EXPIRED_STAKING_QUEUE: &str = "expired_staking_queue";
pub const BTC_INFO_QUEUE: &str = "btc_info_queue";
pub const CONFIRMED_INFO_QUEUE: &str = "confirmed_info_queue";

/// Event type 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveStakingEvent {
    pub event_type: u8,
    pub staking_tx_hash_hex: String,
    pub staker_pk_hex: String,
    pub finality_provider_pk_hex: String,
    pub staking_value: u64,
    pub staking_start_height: u64,
    pub staking_start_timestamp: i64,
    pub staking_timelock: u64,
    pub staking_output_index: u64,
    pub staking_tx_hex: String,
    pub is_overflow: bool,
}

/// Event type 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnbondingStakingEvent {
    pub event_type: u8,
    pub staking_tx_hash_hex: String,
    pub unbonding_start_height: u64,
    pub unbonding_start_timestamp: i64,
    pub unbonding_timelock: u64,
    pub unbonding_output_index: u64,
    pub unbonding_tx_hex: String,
    pub unbonding_tx_hash_hex: String,
}

/// Event type 3 (schema 0: the staking hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithdrawStakingEvent {
    pub event_type: u8,
    pub staking_tx_hash_hex: String,
}

/// Event type 4 (the expiry checker's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredStakingEvent {
    pub event_type: u8,
    pub staking_tx_hash_hex: String,
    /// "active" or "unbonding".
    pub tx_type: &'static str,
}

/// Event type 6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BtcInfoEvent {
    pub event_type: u8,
    pub height: u64,
    pub confirmed_tvl: u64,
    pub unconfirmed_tvl: u64,
}

/// Event type 7 (only with `extra_events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfirmedInfoEvent {
    pub event_type: u8,
    pub height: u64,
    pub tvl: u64,
}

/// Publishes `event` to `queue` as compact JSON (committed with the block).
pub fn publish<T: Serialize>(queue: &str, event: &T) -> Result<(), String> {
    guest_sdk::publish_json(queue, event)
}
