//! Benchmark plugin `touch`: receives every transaction, decodes each one and sums its outputs'
//! values and counts; then writes ONE small JSON summary per block under `block/<height, 10
//! digits>` → `{"txs":..,"outputs":..,"value":..}` (value in satoshis). Replaying it measures
//! the cost of a plugin that touches every transaction.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};
use serde::{Deserialize, Serialize};

pub struct Touch;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub txs: u64,
    pub outputs: u64,
    /// Sum of all output values, satoshis.
    pub value: u64,
}

pub fn block_key(height: u32) -> String {
    format!("block/{height:010}")
}

impl Plugin for Touch {
    fn init(_config: &str) -> Result<Manifest, String> {
        let mut m = guest_sdk::manifest("touch", env!("CARGO_PKG_VERSION"));
        m.all_transactions = true;
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        let mut s = Summary::default();
        for tx in txs {
            let decoded = guest_sdk::tx::decode(tx)?;
            s.txs += 1;
            s.outputs += decoded.output.len() as u64;
            s.value = decoded.output.iter().fold(s.value, |v, o| v.saturating_add(o.value.to_sat()));
        }
        store::put_json(block_key(block.height), &s)
    }
}

guest_sdk::export_plugin!(Touch);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_sdk::testing::TestHost;

    #[test]
    fn summarises_the_genesis_block() {
        let mut h = TestHost::new("");
        let m = h.init::<Touch>().unwrap();
        assert!(m.all_transactions);
        let genesis = guest_sdk::bitcoin::blockdata::constants::genesis_block(guest_sdk::bitcoin::Network::Bitcoin);
        let raw = guest_sdk::bitcoin::consensus::serialize(&genesis);
        let (info, txs) = guest_sdk::testing::block_fixture(0, &raw).unwrap();
        h.apply_block::<Touch>(&info, &txs).unwrap();
        let s: Summary = serde_json::from_slice(&h.store[block_key(0).as_bytes()]).unwrap();
        assert_eq!(s, Summary { txs: 1, outputs: 1, value: 50 * 100_000_000 });
        assert_eq!(h.store.len(), 1);
    }
}
