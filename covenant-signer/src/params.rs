//! The global params file (spec §3) and the covenant keys this process serves.
//!
//! Parsing and every validation rule are `phase1_primitives::GlobalParams::parse`; this module adds
//! the file handling and the checks that tie the params to the configuration.

use std::path::Path;

use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::GlobalParams;

/// Reads and validates `global-params.json`.
pub fn load(path: &Path) -> Result<GlobalParams, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read the params file {}: {e} (pass --params <global-params.json>)", path.display())
    })?;
    GlobalParams::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every distinct covenant key of every version, in file order.
pub fn all_covenant_keys(params: &GlobalParams) -> Vec<PublicKey> {
    let mut out: Vec<PublicKey> = Vec::new();
    for v in &params.versions {
        for k in &v.covenant_pks {
            if !out.contains(k) {
                out.push(*k);
            }
        }
    }
    out
}

/// Checks that each configured key is a covenant key of at least one params version (compressed
/// form, parity byte included, as the request's key is compared).
pub fn check_served_keys(params: &GlobalParams, keys: &[PublicKey]) -> Result<(), String> {
    for (i, k) in keys.iter().enumerate() {
        if !params.versions.iter().any(|v| v.covenant_pks.contains(k)) {
            let xonly = k.x_only_public_key().0;
            let hint = if params.versions.iter().any(|v| v.committee().contains_xonly(&xonly)) {
                " (its x coordinate is a covenant key, with the other parity byte: copy the key exactly as the params list it)"
            } else {
                ""
            };
            return Err(format!(
                "[signer-app-config] covenant-keys[{i}] {k} is not a covenant key of any params version{hint}: remove it or fix the params file"
            ));
        }
    }
    Ok(())
}

/// The versions (their numbers) in which `key` is a covenant key.
pub fn versions_of(params: &GlobalParams, key: &PublicKey) -> Vec<u64> {
    params.versions.iter().filter(|v| v.covenant_pks.contains(key)).map(|v| v.version).collect()
}
