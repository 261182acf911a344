//! Test plugin `hog`: allocates without bound when applying the block at the configured height.
//! Config: the height, e.g. `"100"`.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};

pub struct Hog;

impl Plugin for Hog {
    fn init(config: &str) -> Result<Manifest, String> {
        guest_sdk::config_number(config, "height")?;
        let mut m = guest_sdk::manifest("hog", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![b"\xfftest-hog".to_vec()];
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        let target = guest_sdk::config_number(&guest_sdk::config(), "height")? as u32;
        if block.height == target {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0xA5; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        store::put_u64("last", block.height as u64);
        Ok(())
    }
}

guest_sdk::export_plugin!(Hog);
