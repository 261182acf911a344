//! Test plugin `emit`: a message load generator in Babylon Phase-1's legacy queue format.
//!
//! For every confirmed block it publishes `per_block` messages to `active_staking_queue`, each
//! an `ActiveStakingEvent` exactly as the Phase-1 staking indexer emits it (same fields, same
//! order, no `schema_version`), with every value derived from `(height, i)`; then one
//! `BtcInfoEvent` to `btc_info_queue` whose `confirmed_tvl` is the running sum of the
//! `staking_value` of the non-overflow events (store key `tvl`, a big-endian u64).
//! `undo-block` publishes nothing (the host restores `tvl`).
//!
//! Config: `{"per_block": N}` (or just `"N"`); empty config or no field: 100. The manifest asks
//! for no transactions (an OP_RETURN prefix nothing carries), so blocks are cheap to deliver.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};
use serde::Serialize;

pub struct Emit;

pub const ACTIVE_STAKING_QUEUE: &str = "active_staking_queue";
pub const BTC_INFO_QUEUE: &str = "btc_info_queue";
pub const DEFAULT_PER_BLOCK: u64 = 100;
/// An OP_RETURN prefix no real transaction carries.
pub const NEVER_MATCHES: &[u8] = b"\xff\xfe-none";
/// Store key of the running confirmed TVL.
pub const TVL_KEY: &str = "tvl";

/// Phase-1's `ActiveStakingEvent` (staking-queue-client), field order as serialized.
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

/// Phase-1's `BtcInfoEvent`, field order as serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BtcInfoEvent {
    pub event_type: u8,
    pub height: u64,
    pub confirmed_tvl: u64,
    pub unconfirmed_tvl: u64,
}

/// The `i`-th event of the block at `height` (header time `time`).
pub fn active_event(height: u32, time: u32, i: u64) -> ActiveStakingEvent {
    ActiveStakingEvent {
        event_type: 1,
        staking_tx_hash_hex: format!("{height:056x}{i:08x}"),
        staker_pk_hex: format!("5{height:055x}{i:08x}"),
        finality_provider_pk_hex: format!("f{:063x}", i % 8),
        staking_value: height as u64 * 1000 + i,
        staking_start_height: height as u64,
        staking_start_timestamp: time as i64,
        staking_timelock: 150,
        staking_output_index: 0,
        staking_tx_hex: "0200".into(),
        is_overflow: i % 2 == 1,
    }
}

/// Messages per block from the config.
pub fn per_block(config: &str) -> Result<u64, String> {
    let c = config.trim();
    if c.is_empty() {
        return Ok(DEFAULT_PER_BLOCK);
    }
    if c.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(c).map_err(|e| format!("config is not JSON: {e}"))?;
        return match v.get("per_block") {
            None => Ok(DEFAULT_PER_BLOCK),
            Some(n) => n.as_u64().ok_or_else(|| "config.per_block must be a non-negative integer".into()),
        };
    }
    guest_sdk::config_number(c, "per_block")
}

impl Plugin for Emit {
    fn init(config: &str) -> Result<Manifest, String> {
        per_block(config)?;
        let mut m = guest_sdk::manifest("emit", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![NEVER_MATCHES.to_vec()];
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        let n = per_block(&guest_sdk::config())?;
        let mut tvl = store::get_u64(TVL_KEY);
        for i in 0..n {
            let event = active_event(block.height, block.time, i);
            if !event.is_overflow {
                tvl = tvl.checked_add(event.staking_value).ok_or("confirmed TVL overflows u64")?;
            }
            guest_sdk::publish_json(ACTIVE_STAKING_QUEUE, &event)?;
        }
        store::put_u64(TVL_KEY, tvl);
        let info = BtcInfoEvent { event_type: 6, height: block.height as u64, confirmed_tvl: tvl, unconfirmed_tvl: 0 };
        guest_sdk::publish_json(BTC_INFO_QUEUE, &info)
    }
}

guest_sdk::export_plugin!(Emit);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_sdk::testing::{block_info, TestHost};

    #[test]
    fn manifest_asks_for_no_transactions() {
        let mut h = TestHost::new("");
        let m = h.init::<Emit>().unwrap();
        assert!(!m.all_transactions && !m.watch_spends && !m.raw_block);
        assert_eq!(m.op_return_prefixes, vec![NEVER_MATCHES.to_vec()]);
        assert!(m.routes.is_empty());
        assert_eq!(m.job_interval_ms, 0);
        assert!(TestHost::new("{\"per_block\":-1}").init::<Emit>().is_err());
        assert!(TestHost::new("{nope").init::<Emit>().is_err());
    }

    #[test]
    fn publishes_n_events_and_one_btc_info_in_the_legacy_format() {
        let mut h = TestHost::new(r#"{"per_block":3}"#);
        h.init::<Emit>().unwrap();
        h.apply_block::<Emit>(&block_info(5, [1; 32], [0; 32], 1_700_000_000), &[]).unwrap();
        let msgs = h.take_published();
        assert_eq!(msgs.len(), 3 + 1);
        let queues: Vec<&str> = msgs.iter().map(|(q, _)| q.as_str()).collect();
        assert_eq!(queues, [ACTIVE_STAKING_QUEUE, ACTIVE_STAKING_QUEUE, ACTIVE_STAKING_QUEUE, BTC_INFO_QUEUE]);
        assert_eq!(
            String::from_utf8(msgs[1].1.clone()).unwrap(),
            concat!(
                r#"{"event_type":1,"#,
                r#""staking_tx_hash_hex":"0000000000000000000000000000000000000000000000000000000500000001","#,
                r#""staker_pk_hex":"5000000000000000000000000000000000000000000000000000000500000001","#,
                r#""finality_provider_pk_hex":"f000000000000000000000000000000000000000000000000000000000000001","#,
                r#""staking_value":5001,"staking_start_height":5,"staking_start_timestamp":1700000000,"#,
                r#""staking_timelock":150,"staking_output_index":0,"staking_tx_hex":"0200","is_overflow":true}"#
            )
        );
        // Non-overflow values: i = 0 and 2.
        assert_eq!(
            String::from_utf8(msgs[3].1.clone()).unwrap(),
            r#"{"event_type":6,"height":5,"confirmed_tvl":10002,"unconfirmed_tvl":0}"#
        );
        // The TVL keeps growing with the next block.
        h.apply_block::<Emit>(&block_info(6, [2; 32], [1; 32], 1_700_000_600), &[]).unwrap();
        let msgs = h.take_published();
        let info: serde_json::Value = serde_json::from_slice(&msgs[3].1).unwrap();
        assert_eq!(info["confirmed_tvl"], 10002 + 6000 + 6002);
        // Undo publishes nothing.
        h.undo_block::<Emit>(&block_info(6, [2; 32], [1; 32], 1_700_000_600)).unwrap();
        assert!(h.take_published().is_empty());
    }

    #[test]
    fn defaults_to_100_per_block_with_64_hex_ids() {
        let mut h = TestHost::new("");
        h.apply_block::<Emit>(&block_info(840_000, [1; 32], [0; 32], 1), &[]).unwrap();
        let msgs = h.take_published();
        assert_eq!(msgs.len(), 101);
        for (_, body) in &msgs[..100] {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            for field in ["staking_tx_hash_hex", "staker_pk_hex", "finality_provider_pk_hex"] {
                let s = v[field].as_str().unwrap();
                assert_eq!(s.len(), 64, "{field}");
                assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            assert!(v.get("schema_version").is_none());
        }
    }
}
