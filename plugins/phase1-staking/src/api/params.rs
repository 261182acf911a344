//! `GET /v1/global-params` (spec §3.1, §6.5): `{"data": {"versions": [...]}}`, every field of
//! every version in the Go struct's order, zeros emitted (`staking_cap`/`cap_height` of the
//! other cap kind are 0).

use guest_sdk::HttpRequest;

use super::envelope::{self, ApiResult};
use crate::config;

/// `GET /v1/global-params`.
pub fn global_params(_req: &HttpRequest) -> ApiResult {
    Ok(envelope::ok(&config::get()?.params))
}
