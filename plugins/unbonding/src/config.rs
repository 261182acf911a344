//! The plugin's configuration: the runtime file's `config` table, handed over as JSON.
//!
//! ```toml
//! config = { requests_url = "http://127.0.0.1:8090/plugins/phase1-staking/unbonding-requests",
//!            global_params_file = "demo/global-params.json",
//!            covenant_signers = ["http://<33-byte covenant pk hex>@127.0.0.1:9791"] }
//! ```
//!
//! `covenant_signers` uses the legacy pipeline's `remote-signer-config.urls` format: the member's
//! compressed key as the URL's user part, then the signer's address.

use std::collections::BTreeMap;

use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::params::GlobalParams;
use serde::Deserialize;

/// Requests a job run handles at most (the rest wait for the next run).
pub const DEFAULT_BATCH: u32 = 20;
/// Attempts per request before it stays in its failed state.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default milliseconds between job runs.
pub const DEFAULT_JOB_INTERVAL_MS: u32 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    requests_url: Option<String>,
    global_params: Option<String>,
    #[serde(default)]
    covenant_signers: Vec<String>,
    #[serde(default)]
    job_interval_ms: Option<u32>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    batch: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)]
    global_params_file: Option<String>,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The phase1-staking route listing accepted requests in arrival order.
    pub requests_url: String,
    pub params: GlobalParams,
    /// Covenant member (compressed key) → signer base URL (`http://host:port`).
    pub signers: BTreeMap<PublicKey, String>,
    pub job_interval_ms: u32,
    pub max_attempts: u32,
    pub batch: u32,
}

const KEYS: &str = "requests_url (required), global_params_file (required), covenant_signers, job_interval_ms, \
                    max_attempts, batch";

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: Raw = serde_json::from_str(text.trim())
            .map_err(|e| format!("unbonding config is not the expected JSON object ({e}); keys: {KEYS}"))?;
        let requests_url = raw.requests_url.ok_or(
            "unbonding config needs requests_url = \"http://<engine listen>/plugins/phase1-staking/unbonding-requests\"",
        )?;
        if !(requests_url.starts_with("http://") || requests_url.starts_with("https://")) {
            return Err(format!("unbonding config: requests_url {requests_url:?} must be an http:// or https:// URL"));
        }
        let params_text = raw
            .global_params
            .ok_or("unbonding config needs global_params_file = \"<path to global-params.json>\" (the file phase1-staking uses)")?;
        let params = GlobalParams::parse(&params_text).map_err(|e| format!("unbonding config: global params: {e}"))?;
        let mut signers = BTreeMap::new();
        for url in &raw.covenant_signers {
            let (pk, base) = parse_signer_url(url)?;
            if signers.insert(pk, base).is_some() {
                return Err(format!(
                    "unbonding config: covenant_signers names key {pk} twice: keep one URL per member"
                ));
            }
        }
        let job_interval_ms = raw.job_interval_ms.unwrap_or(DEFAULT_JOB_INTERVAL_MS);
        if job_interval_ms == 0 {
            return Err("unbonding config: job_interval_ms must be at least 1 (the pipeline is the job)".into());
        }
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1);
        let batch = raw.batch.unwrap_or(DEFAULT_BATCH).clamp(1, 1000);
        Ok(Config { requests_url, params, signers, job_interval_ms, max_attempts, batch })
    }
}

/// `http://<compressed pk hex>@host:port[/]` → (key, `http://host:port`).
pub fn parse_signer_url(url: &str) -> Result<(PublicKey, String), String> {
    let bad = |why: &str| {
        format!(
            "unbonding config: covenant_signers entry {url:?} {why}; write it as \
             \"http://<33-byte covenant public key hex>@<host>:<port>\" (the legacy remote-signer-config format)"
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("has no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("is not http or https"));
    }
    let (pk_hex, address) = rest.split_once('@').ok_or_else(|| bad("names no covenant key before '@'"))?;
    if pk_hex.len() != 66 {
        return Err(bad("does not start with a 33-byte compressed public key in hex"));
    }
    let pk: PublicKey =
        pk_hex.parse().map_err(|_| bad("does not start with a 33-byte compressed public key in hex"))?;
    let address = address.trim_end_matches('/');
    if address.is_empty() {
        return Err(bad("has no host"));
    }
    Ok((pk, format!("{scheme}://{address}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "0249766ccd9e3cd94343e2040474a77fb37cdfd30530d05f9f1e96ae1e2102c86e";

    #[test]
    fn signer_urls() {
        let (pk, base) = parse_signer_url(&format!("http://{PK}@127.0.0.1:9791/")).unwrap();
        assert_eq!((pk.to_string(), base.as_str()), (PK.to_string(), "http://127.0.0.1:9791"));
        for bad in
            ["127.0.0.1:9791", "http://127.0.0.1:9791", "ftp://x@y", "http://02ab@host", &format!("http://{PK}@")]
        {
            let e = parse_signer_url(bad).unwrap_err();
            assert!(e.contains("legacy remote-signer-config format"), "{bad}: {e}");
        }
    }
}
