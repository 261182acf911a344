//! Test plugin `trap`: panics (a Wasm trap) when applying the block at the configured height.
//! Config: the height, e.g. `"100"`. Other blocks: records `last` = height.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};

pub struct Trap;

fn target() -> Result<u32, String> {
    guest_sdk::config_number(&guest_sdk::config(), "height").map(|h| h as u32)
}

impl Plugin for Trap {
    fn init(config: &str) -> Result<Manifest, String> {
        guest_sdk::config_number(config, "height")?;
        let mut m = guest_sdk::manifest("trap", env!("CARGO_PKG_VERSION"));
        // A prefix nothing uses: the block still arrives, with no transactions.
        m.op_return_prefixes = vec![b"\xfftest-trap".to_vec()];
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        if block.height == target()? {
            panic!("trap plugin: configured panic at height {}", block.height);
        }
        store::put_u64("last", block.height as u64);
        Ok(())
    }
}

guest_sdk::export_plugin!(Trap);
