//! The `POST /v1/unbonding` request (spec §6.6, cli-tools `create-phase1-unbonding-request`) and
//! the fully signed unbonding transaction once covenant signatures are in.

use phase1_primitives::bitcoin::hex::DisplayHex;
use phase1_primitives::bitcoin::secp256k1::Keypair;
use phase1_primitives::bitcoin::{TapSighash, Transaction, XOnlyPublicKey};
use phase1_primitives::sighash::{taproot_script_sighash, unbonding_witness, verify_schnorr};
use phase1_primitives::unbonding::{check_unbonding_request, UnbondingRequest};
use phase1_primitives::GlobalParams;
use serde::{Deserialize, Serialize};

use crate::input::tx_hex;
use crate::signing::sign_schnorr;
use crate::stake::Stake;
use crate::Error;

/// The body of `POST /v1/unbonding`, field for field as cli-tools' `CreateUnbondingResponse`
/// (same names, same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbondingRequestJson {
    /// The staking txid (display order).
    pub staking_tx_hash_hex: String,
    /// The unsigned canonical unbonding transaction.
    pub unbonding_tx_hex: String,
    /// Its txid.
    pub unbonding_tx_hash_hex: String,
    /// The staker's 64-byte BIP-340 signature over the unbonding leaf's script-path sighash.
    pub staker_signed_signature_hex: String,
}

/// The message staker and covenant members sign: the BIP-341 script-path sighash of input 0 of
/// `unbonding_tx` (prevout = the staking output, leaf = the unbonding script, SIGHASH_DEFAULT).
pub fn unbonding_sighash(stake: &Stake, unbonding_tx: &Transaction) -> Result<TapSighash, Error> {
    taproot_script_sighash(unbonding_tx, 0, &[stake.staking_output()], stake.info().unbonding_leaf_hash())
        .map_err(|e| Error::Build(e.to_string()))
}

/// The staker's signature over the canonical unbonding transaction of `stake`.
pub fn staker_unbonding_signature(stake: &Stake, staker: &Keypair) -> Result<[u8; 64], Error> {
    stake.check_staker(staker)?;
    let tx = stake.unbonding_tx()?;
    Ok(sign_schnorr(staker, &unbonding_sighash(stake, &tx)?))
}

/// The unbonding request for the stake `staking_tx` included at `height`, signed with `staker`.
pub fn unbonding_request(
    staker: &Keypair,
    staking_tx: &Transaction,
    params: &GlobalParams,
    height: u64,
) -> Result<UnbondingRequestJson, Error> {
    let stake = Stake::new(staking_tx.clone(), params, height)?;
    unbonding_request_for(&stake, staker)
}

/// The unbonding request for `stake`, signed with `staker`.
pub fn unbonding_request_for(stake: &Stake, staker: &Keypair) -> Result<UnbondingRequestJson, Error> {
    let sig = staker_unbonding_signature(stake, staker)?;
    unbonding_request_with_signature(stake, &sig)
}

/// The unbonding request for `stake` with a staker signature made elsewhere (e.g. a hardware
/// wallet). The request is checked as the API checks it (spec §6.6 3a–3e, version-2 rule
/// included), so a wrong signature fails here rather than at the API.
pub fn unbonding_request_with_signature(stake: &Stake, staker_sig: &[u8; 64]) -> Result<UnbondingRequestJson, Error> {
    let tx = stake.unbonding_tx()?;
    let txid = tx.compute_txid();
    let request = UnbondingRequest { unbonding_tx: &tx, unbonding_txid: txid, staker_signature: staker_sig };
    check_unbonding_request(&request, stake.info(), stake.outpoint(), stake.value(), stake.params(), true).map_err(
        |e| Error::Build(format!("the unbonding request does not pass the API's checks: {e} (is the signature made with the staker key {}?)", stake.staker())),
    )?;
    Ok(UnbondingRequestJson {
        staking_tx_hash_hex: stake.txid().to_string(),
        unbonding_tx_hex: tx_hex(&tx),
        unbonding_tx_hash_hex: txid.to_string(),
        staker_signed_signature_hex: staker_sig.to_lower_hex_string(),
    })
}

/// The fully signed canonical unbonding transaction of `stake` (spec §2.2 witness): the staker
/// signature and exactly `quorum` covenant signatures `(covenant x-only key, signature)`. Every
/// signature is verified first (a non-empty invalid signature would make the script fail).
pub fn signed_unbonding_tx(
    stake: &Stake,
    staker_sig: &[u8; 64],
    covenant_sigs: &[(XOnlyPublicKey, [u8; 64])],
) -> Result<Transaction, Error> {
    let mut tx = stake.unbonding_tx()?;
    let sighash = unbonding_sighash(stake, &tx)?;
    if !verify_schnorr(&sighash, staker_sig, &stake.staker()) {
        return Err(Error::Build(format!(
            "the staker signature does not verify over the unbonding sighash for staker key {}: sign the canonical unbonding tx with the staker key",
            stake.staker()
        )));
    }
    for (pk, sig) in covenant_sigs {
        if !verify_schnorr(&sighash, sig, pk) {
            return Err(Error::Build(format!(
                "the covenant signature for key {pk} does not verify over the unbonding sighash: drop it or ask that member again"
            )));
        }
    }
    tx.input[0].witness = unbonding_witness(covenant_sigs, staker_sig, stake.info(), stake.params().committee())
        .map_err(|e| Error::Build(e.to_string()))?;
    Ok(tx)
}
