//! Asking covenant members for their signature over the legacy covenant-signer API (spec §8.1):
//! `POST <signer>/v1/sign-unbonding-tx`, every member of the staking transaction's parameters
//! version in turn, each answer verified before it counts.

use guest_sdk::outbound;
use phase1_primitives::bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use phase1_primitives::bitcoin::TapSighash;
use phase1_primitives::params::ParamsVersion;
use phase1_primitives::sighash::verify_schnorr;
use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Serialize)]
struct SignRequest<'a> {
    staking_output_pk_script_hex: &'a str,
    unbonding_tx_hex: &'a str,
    staker_unbonding_sig_hex: &'a str,
    covenant_public_key: String,
}

#[derive(Deserialize)]
struct SignData {
    signature_hex: String,
}

#[derive(Deserialize)]
struct SignResponse {
    data: SignData,
}

/// What one round of asking gave: valid signatures in the order members answered, and why the
/// others did not count.
pub struct Collected {
    pub signatures: Vec<(XOnlyPublicKey, [u8; 64])>,
    pub failures: Vec<String>,
}

/// Asks every member of `params` for a signature over `sighash` (the unbonding leaf's message).
pub fn collect(
    cfg: &Config,
    params: &ParamsVersion,
    sighash: &TapSighash,
    staking_pk_script_hex: &str,
    unbonding_tx_hex: &str,
    staker_sig_hex: &str,
) -> Collected {
    let mut out = Collected { signatures: Vec::new(), failures: Vec::new() };
    for pk in &params.covenant_pks {
        match ask(cfg, pk, sighash, staking_pk_script_hex, unbonding_tx_hex, staker_sig_hex) {
            Ok(sig) => out.signatures.push((pk.x_only_public_key().0, sig)),
            Err(e) => out.failures.push(format!("{pk}: {e}")),
        }
    }
    out
}

fn ask(
    cfg: &Config,
    pk: &PublicKey,
    sighash: &TapSighash,
    staking_pk_script_hex: &str,
    unbonding_tx_hex: &str,
    staker_sig_hex: &str,
) -> Result<[u8; 64], String> {
    let base = cfg.signers.get(pk).ok_or("no signer URL in covenant_signers")?;
    let body = serde_json::to_vec(&SignRequest {
        staking_output_pk_script_hex: staking_pk_script_hex,
        unbonding_tx_hex,
        staker_unbonding_sig_hex: staker_sig_hex,
        covenant_public_key: pk.to_string(),
    })
    .map_err(|e| e.to_string())?;
    let url = format!("{base}/v1/sign-unbonding-tx");
    let reply = outbound::http_request("POST", &url, &[("Content-Type", "application/json")], body)?;
    if reply.status != 200 {
        let text: String = reply.text().chars().take(300).collect();
        return Err(format!("{url} answered {}: {text}", reply.status));
    }
    let r: SignResponse = reply.json()?;
    let sig: [u8; 64] = hex::decode(&r.data.signature_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{url} returned {:?}, not a 64-byte signature in hex", r.data.signature_hex))?;
    if !verify_schnorr(sighash, &sig, &pk.x_only_public_key().0) {
        return Err(format!("{url} returned a signature that does not verify for this key and unbonding tx"));
    }
    Ok(sig)
}
