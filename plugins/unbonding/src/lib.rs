//! The `unbonding` Wasm plugin: the unbonding pipeline (issue 6). Until then it loads, asks the
//! engine for no transactions and does nothing, so a runtime file can already name it.

use guest_sdk::{BlockInfo, Manifest, Plugin, Tx};

pub use guest_sdk::CONTRACT_VERSION;

pub struct Unbonding;

/// An OP_RETURN prefix no transaction carries: the engine delivers no transactions.
const NOTHING: &[u8] = b"\xff\xfeunbonding-pending";

impl Plugin for Unbonding {
    fn init(_config: &str) -> Result<Manifest, String> {
        let mut m = guest_sdk::manifest("unbonding", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![NOTHING.to_vec()];
        Ok(m)
    }

    fn apply_block(_block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        Ok(())
    }
}

guest_sdk::export_plugin!(Unbonding);
