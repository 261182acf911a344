//! Cheap reads of single config entries for routes that need neither the global parameters nor
//! the whole [`config::Config`]: [`config::get`] parses and validates the parameters (covenant
//! keys, committees), and every request runs in a fresh instance, so the hot and paging routes
//! read only the entry they use. `init` validated the whole config, so a missing or unreadable
//! entry here means the default.

use phase1_primitives::finality_providers::{parse_finality_providers, FinalityProvider};
use serde::Deserialize;

use crate::config;

/// The page size (`page_size`, the legacy `max-pagination-limit`), at least 2.
pub fn page_size() -> usize {
    #[derive(Deserialize)]
    struct PageSizeOnly {
        #[serde(default)]
        page_size: Option<u32>,
    }
    let text = guest_sdk::config();
    let size = serde_json::from_str::<PageSizeOnly>(text.trim()).ok().and_then(|c| c.page_size);
    size.unwrap_or(config::DEFAULT_PAGE_SIZE).max(2) as usize
}

/// The registered finality providers (empty without a file), parsed from the config's
/// `finality_providers` text only.
pub fn finality_providers() -> Result<Vec<FinalityProvider>, String> {
    #[derive(Deserialize)]
    struct FpsOnly {
        #[serde(default)]
        finality_providers: Option<String>,
    }
    let text = guest_sdk::config();
    let raw: FpsOnly =
        serde_json::from_str(text.trim()).map_err(|e| format!("phase1-staking config is not JSON: {e}"))?;
    match raw.finality_providers {
        Some(t) => parse_finality_providers(&t).map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    }
}
