//! The `unbonding` Wasm plugin (skeleton from issue 2; its rules arrive with later issues).

pub use guest_sdk::CONTRACT_VERSION;
