//! The plugin's configuration: the runtime file's `config` table, handed over as JSON.
//!
//! ```toml
//! config = { global_params_file = "global-params.json", finality_providers_file = "finality-providers.json" }
//! ```
//!
//! (`engine run` reads each `*_file` and passes its text under the key without `_file`.) Every
//! call runs in a fresh instance, so parsing is lazy: a route that needs no parameters never
//! parses them, and one call parses them at most once.

use std::sync::Mutex;

use phase1_primitives::finality_providers::parse_finality_providers;
use phase1_primitives::params::{GlobalParams, ParamsVersion};
use serde::Deserialize;

/// Page size of the paginated `/v1` endpoints when the config does not set one (the legacy
/// service's `db.max-pagination-limit` in its sample config).
pub const DEFAULT_PAGE_SIZE: u32 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// Text of `global-params.json` (required).
    global_params: Option<String>,
    /// Text of the finality-provider file (optional: unregistered providers still receive
    /// delegations and show an empty description).
    #[serde(default)]
    finality_providers: Option<String>,
    /// Confirmed TVL before the first block this plugin indexes, for a replay that starts from
    /// a known state instead of the first activation height (default 0).
    #[serde(default)]
    start_confirmed_tvl: u64,
    /// Emit `confirmed_info_queue` messages (the indexer's `ExtraEventEnabled`).
    #[serde(default)]
    extra_events: bool,
    /// Page size of paginated endpoints (`max-pagination-limit`, at least 2).
    #[serde(default)]
    page_size: Option<u32>,
    /// `POST /v1/unbonding` also requires unbonding transaction version 2 (API v0.3.8 and the
    /// later signers); the v0.2 line accepted any version.
    #[serde(default)]
    require_unbonding_version_2: bool,
    /// The paths the texts above came from (`engine run` passes both; only the texts are used).
    #[serde(default)]
    #[allow(dead_code)]
    global_params_file: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    finality_providers_file: Option<String>,
}

/// The validated configuration (the finality-provider file is validated by [`Config::parse`] but
/// not kept: only `/v1/finality-providers` reads it, see `api/light_config.rs`).
#[derive(Debug)]
pub struct Config {
    pub params: GlobalParams,
    pub start_confirmed_tvl: u64,
    pub extra_events: bool,
    pub require_unbonding_version_2: bool,
}

impl Config {
    /// Parses and validates the whole configuration (what `init` does, so a bad file stops the
    /// plugin at load with a message that says what to fix).
    pub fn parse(text: &str) -> Result<Config, String> {
        Config::parse_with(text, true)
    }

    fn parse_with(text: &str, check_finality_providers: bool) -> Result<Config, String> {
        let raw: Raw = serde_json::from_str(text.trim()).map_err(|e| {
            format!(
                "phase1-staking config is not the expected JSON object ({e}); expected keys: global_params_file \
                 (required), finality_providers_file, start_confirmed_tvl, extra_events, page_size, \
                 require_unbonding_version_2"
            )
        })?;
        let params_text = raw.global_params.ok_or(
            "phase1-staking config needs global_params_file = \"<path to global-params.json>\" in the plugin's config table",
        )?;
        let params = GlobalParams::parse(&params_text).map_err(|e| format!("global params: {e}"))?;
        if let (true, Some(text)) = (check_finality_providers, &raw.finality_providers) {
            parse_finality_providers(text).map_err(|e| format!("finality providers: {e}"))?;
        }
        let page_size = raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page_size < 2 {
            return Err(format!("page_size {page_size} must be at least 2 (the legacy service's minimum)"));
        }
        Ok(Config {
            params,
            start_confirmed_tvl: raw.start_confirmed_tvl,
            extra_events: raw.extra_events,
            require_unbonding_version_2: raw.require_unbonding_version_2,
        })
    }

    /// The parameters version in force at `height`.
    pub fn params_at(&self, height: u32) -> Option<&ParamsVersion> {
        self.params.for_height(height as u64).map(|(_, v)| v)
    }
}

/// The configuration of this call, parsed at most once per instance (each Wasm call is a fresh
/// instance; natively, tests with different configs share a process, so it is keyed by text).
/// `init` validated it (finality providers included), so an error here means the runtime file
/// changed under a running plugin.
pub fn get() -> Result<&'static Config, String> {
    static CACHE: Mutex<Vec<(String, &'static Config)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().map_err(|_| "config cache poisoned".to_string())?;
    if cfg!(target_arch = "wasm32") {
        if let Some((_, c)) = cache.first() {
            return Ok(c);
        }
    }
    let text = guest_sdk::config();
    if let Some((_, c)) = cache.iter().find(|(t, _)| *t == text) {
        return Ok(c);
    }
    let c: &'static Config = Box::leak(Box::new(Config::parse_with(&text, false)?));
    cache.push((text, c));
    Ok(c)
}
