//! The `phase1-staking` Wasm plugin (skeleton from issue 2; its rules arrive with later issues).

pub use guest_sdk::CONTRACT_VERSION;
