//! Test plugin `counter`: counts every block's transactions and outputs.
//!
//! Store: `block/<height, 10 digits>` → `{"txs":..,"outputs":..}` per block; `total` →
//! `{"blocks":..,"txs":..,"outputs":..}` running total. Queue `counter`: one JSON message per
//! block `{"height":..,"hash":..,"txs":..,"outputs":..}`. On undo the host restores the store;
//! the plugin publishes a compensating `{"undo":height}` message.
//!
//! Optional config (JSON): `{"depths":[[from_height,depth],...],"unconfirmed":true}` sets the
//! confirmation depths; with `unconfirmed`, each unconfirmed tip is recorded as
//! `unconfirmed/<height, 10 digits>` until its confirmed `apply-block` removes it.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};
use serde::{Deserialize, Serialize};

pub struct Counter;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCount {
    pub txs: u64,
    pub outputs: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    pub blocks: u64,
    pub txs: u64,
    pub outputs: u64,
}

pub fn unconfirmed_key(height: u32) -> String {
    format!("unconfirmed/{height:010}")
}

pub fn block_key(height: u32) -> String {
    format!("block/{height:010}")
}

impl Plugin for Counter {
    fn init(config: &str) -> Result<Manifest, String> {
        let mut m = guest_sdk::manifest("counter", env!("CARGO_PKG_VERSION"));
        m.all_transactions = true;
        if config.trim().starts_with('{') {
            let c: serde_json::Value = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
            if let Some(depths) = c.get("depths") {
                let depths: Vec<(u32, u32)> =
                    serde_json::from_value(depths.clone()).map_err(|e| format!("config.depths: {e}"))?;
                m.confirmation_depths = depths
                    .into_iter()
                    .map(|(from_height, depth)| guest_sdk::DepthFrom { from_height, depth })
                    .collect();
            }
            m.unconfirmed_blocks = c.get("unconfirmed").and_then(|u| u.as_bool()).unwrap_or(false);
        }
        Ok(m)
    }

    fn apply_unconfirmed(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        store::put_json(unconfirmed_key(block.height), &txs.len())
    }

    fn apply_block(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        if store::get(unconfirmed_key(block.height)).is_some() {
            store::delete(unconfirmed_key(block.height));
        }
        let mut count = BlockCount::default();
        for tx in txs {
            let decoded = guest_sdk::tx::decode(tx)?;
            count.txs += 1;
            count.outputs += decoded.output.len() as u64;
        }
        store::put_json(block_key(block.height), &count)?;
        let mut total: Total = store::get_json("total")?.unwrap_or_default();
        total.blocks += 1;
        total.txs += count.txs;
        total.outputs += count.outputs;
        store::put_json("total", &total)?;
        let hash: String = block.hash.iter().rev().map(|b| format!("{b:02x}")).collect();
        guest_sdk::publish_json(
            "counter",
            &serde_json::json!({"height": block.height, "hash": hash, "txs": count.txs, "outputs": count.outputs}),
        )
    }

    fn undo_block(block: &BlockInfo) -> Result<(), String> {
        guest_sdk::publish_json("counter", &serde_json::json!({"undo": block.height}))
    }
}

guest_sdk::export_plugin!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_sdk::testing::{block_info, TestHost};

    #[test]
    fn counts_with_the_native_harness() {
        let mut h = TestHost::new("");
        let m = h.init::<Counter>().unwrap();
        assert!(m.all_transactions);
        // Genesis block: one coinbase with one output.
        let genesis = guest_sdk::bitcoin::blockdata::constants::genesis_block(guest_sdk::bitcoin::Network::Bitcoin);
        let raw = guest_sdk::bitcoin::consensus::serialize(&genesis);
        let (info, txs) = guest_sdk::testing::block_fixture(0, &raw).unwrap();
        h.apply_block::<Counter>(&info, &txs).unwrap();
        h.apply_block::<Counter>(&block_info(1, [1; 32], [0; 32], 0), &[]).unwrap();
        let total: Total = serde_json::from_slice(&h.store[b"total".as_slice()]).unwrap();
        assert_eq!(total, Total { blocks: 2, txs: 1, outputs: 1 });
        assert_eq!(h.take_published().len(), 2);
    }
}
