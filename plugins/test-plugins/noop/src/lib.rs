//! Benchmark plugin `noop`: declares an OP_RETURN prefilter that no transaction matches, so the
//! host decodes each block and runs the prefilter but no transaction crosses into Wasm, and its
//! `apply-block` does nothing. Replaying it measures the engine's fixed per-block cost.

use guest_sdk::{BlockInfo, Manifest, Plugin, Tx};

pub struct Noop;

/// An OP_RETURN prefix no real transaction carries.
pub const NEVER_MATCHES: &[u8] = b"\xffnoop-never-matches";

impl Plugin for Noop {
    fn init(_config: &str) -> Result<Manifest, String> {
        let mut m = guest_sdk::manifest("noop", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![NEVER_MATCHES.to_vec()];
        Ok(m)
    }

    fn apply_block(_block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        Ok(())
    }
}

guest_sdk::export_plugin!(Noop);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_sdk::testing::{block_info, TestHost};

    #[test]
    fn does_nothing() {
        let mut h = TestHost::new("");
        let m = h.init::<Noop>().unwrap();
        assert!(!m.all_transactions);
        assert_eq!(m.op_return_prefixes, vec![NEVER_MATCHES.to_vec()]);
        h.apply_block::<Noop>(&block_info(1, [1; 32], [0; 32], 0), &[]).unwrap();
        assert!(h.store.is_empty());
        assert!(h.take_published().is_empty());
    }
}
