//! Test plugin `spin`: loops forever when applying the block at the configured height.
//! Config: the height, e.g. `"100"`.

use guest_sdk::{store, BlockInfo, Manifest, Plugin, Tx};

pub struct Spin;

impl Plugin for Spin {
    fn init(config: &str) -> Result<Manifest, String> {
        guest_sdk::config_number(config, "height")?;
        let mut m = guest_sdk::manifest("spin", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![b"\xfftest-spin".to_vec()];
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        let target = guest_sdk::config_number(&guest_sdk::config(), "height")? as u32;
        if block.height == target {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        store::put_u64("last", block.height as u64);
        Ok(())
    }
}

guest_sdk::export_plugin!(Spin);
