//! The staking API of the `phase1-staking` plugin, run natively with `guest_sdk::testing::TestHost`
//! (chain state seeded with the plugin's own `state.rs` layout).

mod support;

#[path = "api/e2e.rs"]
mod e2e;
#[path = "api/endpoints.rs"]
mod endpoints;
#[path = "api/paging.rs"]
mod paging;
#[path = "api/unbonding.rs"]
mod unbonding;
