//! Transaction and PSBT signing with the wallet's keys: BIP-340/341 (key path and every tapscript
//! leaf that pushes one of the input's signing keys, chosen as Core chooses them: see
//! `Signer::input_keys`) and ECDSA (BIP-143 / legacy), all over rust-bitcoin's sighash code; plus
//! finalization of the inputs that need no other party.

use std::collections::BTreeSet;

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak, XOnlyPublicKey};
use bitcoin::psbt::{Input as PsbtInput, Psbt, PsbtSighashType};
use bitcoin::script::{Builder, Instruction, PushBytesBuf};
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{self, LeafVersion, TapLeafHash};
use bitcoin::{ecdsa, PubkeyHash, PublicKey, Script, ScriptBuf, Transaction, TxOut, WPubkeyHash, Witness};
use miniscript::psbt::{PsbtExt, PsbtInputExt, PsbtOutputExt};

use super::instance::{SigningKeys, Wallet};
use super::keys::{secp, Origin};
use crate::rpc::error::{RpcError, RPC_DESERIALIZATION_ERROR, RPC_INVALID_PARAMETER};

pub const SIGHASH_DEFAULT: u32 = 0;
pub const SIGHASH_ALL: u32 = 1;
const SIGHASH_ANYONECANPAY: u32 = 0x80;

/// Core's `ParseSighashString`: None for null.
pub fn parse_sighash(s: Option<&str>) -> Result<Option<u32>, RpcError> {
    let Some(s) = s else {
        return Ok(None);
    };
    let v = match s {
        "DEFAULT" => 0,
        "ALL" => 1,
        "NONE" => 2,
        "SINGLE" => 3,
        "ALL|ANYONECANPAY" => 0x81,
        "NONE|ANYONECANPAY" => 0x82,
        "SINGLE|ANYONECANPAY" => 0x83,
        _ => return Err(RpcError::new(RPC_INVALID_PARAMETER, format!("'{s}' is not a valid sighash parameter."))),
    };
    Ok(Some(v))
}

fn sighash_mismatch() -> RpcError {
    RpcError::new(RPC_DESERIALIZATION_ERROR, "Specified sighash value does not match value stored in PSBT")
}

/// What `walletprocesspsbt` was asked to do.
#[derive(Clone, Copy, Debug)]
pub struct PsbtOptions {
    pub sign: bool,
    pub sighash: Option<u32>,
    pub bip32derivs: bool,
    pub finalize: bool,
}

/// The wallet's view used while signing: ownership tables plus (when unlocked) private keys.
pub struct Signer<'a> {
    pub wallet: &'a Wallet,
    pub keys: Option<&'a SigningKeys>,
}

impl Signer<'_> {
    /// The private keys input `input` (spending `spk`) may be signed with, chosen as Core's
    /// `FillPSBT` chooses its signing provider, descriptor by descriptor: the descriptor that owns
    /// `spk` gives its keys at that script's index; every other descriptor gives the keys the PSBT
    /// names for it (`bip32_derivation`, `tap_key_origins`) and a taproot output key of its own.
    /// So a PSBT spending someone else's output is signed only with the keys it asks for: a wallet
    /// holding several covenant keys signs with exactly the one the covenant signer named.
    fn input_keys(&self, input: &PsbtInput, spk: &Script) -> InputKeys {
        let Some(keys) = self.keys else {
            return InputKeys::default();
        };
        let index = self.wallet.index();
        let owner = self.wallet.origin_of(spk);
        let mut origins: BTreeSet<Origin> = owner.into_iter().collect();
        let mut named: Vec<XOnlyPublicKey> = Vec::new();
        for pk in input.bip32_derivation.keys() {
            if let Some(o) = index.full_keys.get(&PublicKey::new(*pk)) {
                origins.extend(Some(*o).filter(|o| owner.is_none_or(|w| w.0 != o.0)));
            }
            named.push(pk.x_only_public_key().0);
        }
        named.extend(input.tap_key_origins.keys().copied());
        if spk.is_p2tr() {
            named.extend(XOnlyPublicKey::from_slice(&spk.as_bytes()[2..]).ok());
        }
        for x in named {
            if let Some(o) = index.xonly_keys.get(&x) {
                origins.extend(Some(*o).filter(|o| owner.is_none_or(|w| w.0 != o.0)));
            }
        }
        let secp = secp();
        let secrets = origins.into_iter().flat_map(|o| keys.at(o)).map(|sk| (sk, sk.public_key(secp))).collect();
        InputKeys { secrets }
    }
}

/// The private keys (with their public keys) one input may be signed with.
#[derive(Default)]
struct InputKeys {
    secrets: Vec<(SecretKey, bitcoin::secp256k1::PublicKey)>,
}

impl InputKeys {
    fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn for_xonly(&self, x: &XOnlyPublicKey) -> Option<SecretKey> {
        self.secrets.iter().find(|(_, pk)| pk.x_only_public_key().0 == *x).map(|(sk, _)| *sk)
    }

    fn for_full(&self, pk: &PublicKey) -> Option<SecretKey> {
        self.secrets.iter().find(|(_, k)| *k == pk.inner).map(|(sk, _)| *sk)
    }

    /// Keys (with a private key here) that `script` refers to by key or key hash.
    fn ecdsa_keys_in(&self, wallet: &Wallet, script: &Script) -> Vec<(PublicKey, SecretKey)> {
        let index = wallet.index();
        let mut out: Vec<(PublicKey, SecretKey)> = Vec::new();
        for ins in script.instructions() {
            let Ok(Instruction::PushBytes(pb)) = ins else {
                continue;
            };
            let bytes = pb.as_bytes();
            let candidate = match bytes.len() {
                33 | 65 => PublicKey::from_slice(bytes).ok(),
                20 => PubkeyHash::from_slice(bytes).ok().and_then(|h| index.key_hashes.get(&h).copied()),
                _ => None,
            };
            if let Some(pk) = candidate {
                if out.iter().any(|(k, _)| *k == pk) {
                    continue;
                }
                if let Some(sk) = self.for_full(&pk) {
                    out.push((pk, sk));
                }
            }
        }
        out
    }
}

pub fn is_finalized(input: &PsbtInput) -> bool {
    input.final_script_sig.is_some() || input.final_script_witness.is_some()
}

/// The output an input spends, from `witness_utxo` or `non_witness_utxo`.
pub fn utxo_of(psbt: &Psbt, index: usize) -> Option<TxOut> {
    let input = psbt.inputs.get(index)?;
    if let Some(u) = &input.witness_utxo {
        return Some(u.clone());
    }
    let prev = input.non_witness_utxo.as_ref()?;
    let txin = psbt.unsigned_tx.input.get(index)?;
    if prev.compute_txid() != txin.previous_output.txid {
        return None;
    }
    prev.output.get(txin.previous_output.vout as usize).cloned()
}

/// Adds what the wallet knows about its own inputs and outputs (scripts, taproot internal key
/// and tree, and, with `bip32derivs`, key origins).
pub fn update_psbt(wallet: &Wallet, psbt: &mut Psbt, bip32derivs: bool) {
    for i in 0..psbt.inputs.len() {
        if is_finalized(&psbt.inputs[i]) {
            continue;
        }
        let Some(utxo) = utxo_of(psbt, i) else {
            continue;
        };
        let Some((_, derived)) = wallet.derived_for(&utxo.script_pubkey) else {
            continue;
        };
        let Some(def) = derived.definite else {
            continue;
        };
        let input = &mut psbt.inputs[i];
        let (bip32, origins) = (input.bip32_derivation.clone(), input.tap_key_origins.clone());
        let mut updated = input.clone();
        if updated.update_with_descriptor_unchecked(&def).is_ok() {
            *input = updated;
        }
        if !bip32derivs {
            input.bip32_derivation = bip32;
            input.tap_key_origins = origins;
        }
    }
    for j in 0..psbt.outputs.len() {
        let Some(txout) = psbt.unsigned_tx.output.get(j) else {
            continue;
        };
        let Some((_, derived)) = wallet.derived_for(&txout.script_pubkey) else {
            continue;
        };
        let Some(def) = derived.definite else {
            continue;
        };
        let output = &mut psbt.outputs[j];
        let (bip32, origins) = (output.bip32_derivation.clone(), output.tap_key_origins.clone());
        let mut updated = output.clone();
        if updated.update_with_descriptor_unchecked(&def).is_ok() {
            *output = updated;
        }
        if !bip32derivs {
            output.bip32_derivation = bip32;
            output.tap_key_origins = origins;
        }
    }
}

/// Core's checks that existing signatures use the sighash type we are about to use.
fn check_existing_sighashes(input: &PsbtInput, sighash: u32) -> Result<(), RpcError> {
    if sighash == SIGHASH_DEFAULT {
        let ok = input.tap_key_sig.is_none_or(|s| s.sighash_type == TapSighashType::Default)
            && input.tap_script_sigs.values().all(|s| s.sighash_type == TapSighashType::Default);
        if !ok {
            return Err(sighash_mismatch());
        }
    } else {
        let ok = input.tap_key_sig.is_none_or(|s| s.sighash_type as u32 == sighash)
            && input.tap_script_sigs.values().all(|s| s.sighash_type as u32 == sighash)
            && input.partial_sigs.values().all(|s| s.sighash_type.to_u32() == sighash);
        if !ok {
            return Err(sighash_mismatch());
        }
    }
    Ok(())
}

fn message(digest: [u8; 32]) -> Message {
    Message::from_digest(digest)
}

/// Signs every input we can. Errors only for Core's sighash-mismatch conditions.
#[allow(clippy::needless_range_loop)]
pub fn sign_psbt(signer: &Signer, psbt: &mut Psbt, requested: Option<u32>) -> Result<(), RpcError> {
    let tx = psbt.unsigned_tx.clone();
    let utxos: Vec<Option<TxOut>> = (0..psbt.inputs.len()).map(|i| utxo_of(psbt, i)).collect();
    let all_utxos: Option<Vec<TxOut>> = utxos.iter().cloned().collect();
    let mut cache = SighashCache::new(&tx);
    for i in 0..psbt.inputs.len() {
        if is_finalized(&psbt.inputs[i]) {
            continue;
        }
        let Some(utxo) = utxos[i].clone() else {
            continue;
        };
        let is_taproot = utxo.script_pubkey.is_p2tr();
        let sighash = requested.unwrap_or(if is_taproot { SIGHASH_DEFAULT } else { SIGHASH_ALL });
        let input = &mut psbt.inputs[i];
        if let Some(stored) = input.sighash_type {
            if stored.to_u32() != sighash {
                return Err(sighash_mismatch());
            }
        }
        let set_field =
            if is_taproot { sighash != SIGHASH_DEFAULT } else { sighash != SIGHASH_DEFAULT && sighash != SIGHASH_ALL };
        if set_field {
            input.sighash_type = Some(PsbtSighashType::from_u32(sighash));
        }
        check_existing_sighashes(input, sighash)?;
        let keys = signer.input_keys(input, &utxo.script_pubkey);
        if keys.is_empty() {
            continue;
        }
        if is_taproot {
            let prevouts = match &all_utxos {
                Some(all) => Prevouts::All(all.as_slice()),
                None if sighash & SIGHASH_ANYONECANPAY != 0 => Prevouts::One(i, utxo.clone()),
                None => continue,
            };
            let Ok(tap_ty) = u8::try_from(sighash)
                .map_err(|_| ())
                .and_then(|s| TapSighashType::from_consensus_u8(s).map_err(|_| ()))
            else {
                continue;
            };
            sign_taproot_input(&keys, &mut cache, i, input, &utxo, &prevouts, tap_ty);
        } else {
            let ecdsa_ty = if sighash == SIGHASH_DEFAULT {
                EcdsaSighashType::All
            } else {
                match EcdsaSighashType::from_standard(sighash) {
                    Ok(t) => t,
                    Err(_) => continue,
                }
            };
            sign_ecdsa_input(signer.wallet, &keys, &mut cache, i, input, &utxo, ecdsa_ty);
        }
    }
    Ok(())
}

fn sign_taproot_input<T: std::borrow::Borrow<TxOut>>(
    keys: &InputKeys,
    cache: &mut SighashCache<&Transaction>,
    i: usize,
    input: &mut PsbtInput,
    utxo: &TxOut,
    prevouts: &Prevouts<T>,
    tap_ty: TapSighashType,
) {
    let secp = secp();
    let Ok(output_key) = XOnlyPublicKey::from_slice(&utxo.script_pubkey.as_bytes()[2..]) else {
        return;
    };
    // Key path: the internal key tweaked with the merkle root, or a raw (untweaked) output key.
    let mut key_path: Option<Keypair> = None;
    if let Some(internal) = input.tap_internal_key {
        if let Some(sk) = keys.for_xonly(&internal) {
            let tweaked = Keypair::from_secret_key(secp, &sk).tap_tweak(secp, input.tap_merkle_root);
            let kp = tweaked.to_keypair();
            if kp.x_only_public_key().0 == output_key {
                key_path = Some(kp);
            }
        }
    }
    if key_path.is_none() {
        if let Some(sk) = keys.for_xonly(&output_key) {
            let kp = Keypair::from_secret_key(secp, &sk);
            if kp.x_only_public_key().0 == output_key {
                key_path = Some(kp);
            }
        }
    }
    if let Some(kp) = key_path {
        if let Ok(h) = cache.taproot_key_spend_signature_hash(i, prevouts, tap_ty) {
            let signature = secp.sign_schnorr(&message(h.to_byte_array()), &kp);
            input.tap_key_sig = Some(taproot::Signature { signature, sighash_type: tap_ty });
        }
    }
    // Script path: every tapscript leaf that pushes one of our x-only keys.
    let leaves: Vec<(ScriptBuf, LeafVersion)> = input.tap_scripts.values().cloned().collect();
    for (script, ver) in leaves {
        if ver != LeafVersion::TapScript {
            continue;
        }
        let leaf_hash = TapLeafHash::from_script(&script, ver);
        for ins in script.instructions() {
            let Ok(Instruction::PushBytes(pb)) = ins else {
                continue;
            };
            if pb.len() != 32 {
                continue;
            }
            let Ok(x) = XOnlyPublicKey::from_slice(pb.as_bytes()) else {
                continue;
            };
            let Some(sk) = keys.for_xonly(&x) else {
                continue;
            };
            let kp = Keypair::from_secret_key(secp, &sk);
            if let Ok(h) = cache.taproot_script_spend_signature_hash(i, prevouts, leaf_hash, tap_ty) {
                let signature = secp.sign_schnorr(&message(h.to_byte_array()), &kp);
                input.tap_script_sigs.insert((x, leaf_hash), taproot::Signature { signature, sighash_type: tap_ty });
            }
        }
    }
}

enum EcdsaKind {
    Legacy,
    Wpkh,
    Wsh,
}

fn sign_ecdsa_input(
    wallet: &Wallet,
    keys: &InputKeys,
    cache: &mut SighashCache<&Transaction>,
    i: usize,
    input: &mut PsbtInput,
    utxo: &TxOut,
    ty: EcdsaSighashType,
) {
    let spk = &utxo.script_pubkey;
    let (script, kind) = if spk.is_p2wpkh() {
        (spk.clone(), EcdsaKind::Wpkh)
    } else if spk.is_p2wsh() {
        match &input.witness_script {
            Some(ws) => (ws.clone(), EcdsaKind::Wsh),
            None => return,
        }
    } else if spk.is_p2sh() {
        let Some(redeem) = input.redeem_script.clone() else {
            return;
        };
        if redeem.is_p2wpkh() {
            (redeem, EcdsaKind::Wpkh)
        } else if redeem.is_p2wsh() {
            match &input.witness_script {
                Some(ws) => (ws.clone(), EcdsaKind::Wsh),
                None => return,
            }
        } else {
            (redeem, EcdsaKind::Legacy)
        }
    } else if spk.is_witness_program() {
        return;
    } else {
        (spk.clone(), EcdsaKind::Legacy)
    };
    for (pk, sk) in keys.ecdsa_keys_in(wallet, &script) {
        let digest = match kind {
            EcdsaKind::Wpkh => cache.p2wpkh_signature_hash(i, &script, utxo.value, ty).map(|h| h.to_byte_array()).ok(),
            EcdsaKind::Wsh => cache.p2wsh_signature_hash(i, &script, utxo.value, ty).map(|h| h.to_byte_array()).ok(),
            EcdsaKind::Legacy => cache.legacy_signature_hash(i, &script, ty.to_u32()).map(|h| h.to_byte_array()).ok(),
        };
        let Some(digest) = digest else {
            continue;
        };
        let signature = secp().sign_ecdsa_low_r(&message(digest), &sk);
        input.partial_sigs.insert(pk, ecdsa::Signature { signature, sighash_type: ty });
    }
}

fn ecdsa_sig_for_hash(
    input: &PsbtInput,
    matches: impl Fn(&PublicKey) -> bool,
) -> Option<(&PublicKey, &ecdsa::Signature)> {
    input.partial_sigs.iter().find(|(pk, _)| matches(pk))
}

/// Finalizes one input if it can be completed with what the PSBT holds. Key-path taproot,
/// P2WPKH, P2SH-P2WPKH and P2PKH are handled directly; anything else goes through miniscript's
/// finalizer (which needs every input's UTXO).
pub fn finalize_input(psbt: &mut Psbt, i: usize) -> bool {
    if is_finalized(&psbt.inputs[i]) {
        return true;
    }
    let Some(utxo) = utxo_of(psbt, i) else {
        return false;
    };
    let spk = &utxo.script_pubkey;
    let input = &psbt.inputs[i];
    let simple: Option<(ScriptBuf, Witness)> = if spk.is_p2tr() {
        input.tap_key_sig.map(|sig| (ScriptBuf::new(), Witness::p2tr_key_spend(&sig)))
    } else if spk.is_p2wpkh() {
        let program = &spk.as_bytes()[2..];
        ecdsa_sig_for_hash(input, |pk| pk.wpubkey_hash().map(|h| h.as_byte_array() == program).unwrap_or(false))
            .map(|(pk, sig)| (ScriptBuf::new(), Witness::p2wpkh(sig, &pk.inner)))
    } else if spk.is_p2pkh() {
        let hash = &spk.as_bytes()[3..23];
        ecdsa_sig_for_hash(input, |pk| pk.pubkey_hash().as_byte_array() == hash)
            .map(|(pk, sig)| (Builder::new().push_slice(sig.serialize()).push_key(pk).into_script(), Witness::new()))
    } else if spk.is_p2sh() {
        match &input.redeem_script {
            Some(redeem) if redeem.is_p2wpkh() && ScriptBuf::new_p2sh(&redeem.script_hash()) == *spk => {
                let program = redeem.as_bytes()[2..].to_vec();
                let push = PushBytesBuf::try_from(redeem.to_bytes()).ok();
                ecdsa_sig_for_hash(input, |pk| {
                    pk.wpubkey_hash().map(|h: WPubkeyHash| h.as_byte_array()[..] == program[..]).unwrap_or(false)
                })
                .and_then(|(pk, sig)| {
                    let push = push?;
                    Some((Builder::new().push_slice(push).into_script(), Witness::p2wpkh(sig, &pk.inner)))
                })
            }
            _ => None,
        }
    } else {
        None
    };
    match simple {
        Some((script_sig, witness)) => {
            let original = std::mem::take(&mut psbt.inputs[i]);
            let input = &mut psbt.inputs[i];
            input.non_witness_utxo = original.non_witness_utxo;
            input.witness_utxo = original.witness_utxo;
            input.unknown = original.unknown;
            input.proprietary = original.proprietary;
            input.final_script_sig = if script_sig.is_empty() { None } else { Some(script_sig) };
            input.final_script_witness = if witness.is_empty() { None } else { Some(witness) };
            true
        }
        None => psbt.finalize_inp_mut(secp(), i).is_ok(),
    }
}

/// Finalizes every input possible; returns whether all are final.
pub fn finalize_psbt(psbt: &mut Psbt) -> bool {
    let mut complete = true;
    for i in 0..psbt.inputs.len() {
        complete &= finalize_input(psbt, i);
    }
    complete
}

/// The network transaction of a fully finalized PSBT.
pub fn extract(psbt: &Psbt) -> Transaction {
    let mut tx = psbt.unsigned_tx.clone();
    for (txin, input) in tx.input.iter_mut().zip(psbt.inputs.iter()) {
        if let Some(s) = &input.final_script_sig {
            txin.script_sig = s.clone();
        }
        if let Some(w) = &input.final_script_witness {
            txin.witness = w.clone();
        }
    }
    tx
}

/// A previous output supplied to `signrawtransactionwithwallet`.
#[derive(Clone, Debug)]
pub struct PrevoutInfo {
    pub script_pubkey: ScriptBuf,
    /// None when `prevtxs` gave no amount.
    pub amount: Option<bitcoin::Amount>,
    pub redeem_script: Option<ScriptBuf>,
    pub witness_script: Option<ScriptBuf>,
}

pub struct TxSignResult {
    pub tx: Transaction,
    pub complete: bool,
    /// (input index, Core's error text).
    pub errors: Vec<(usize, String)>,
}

/// `signrawtransactionwithwallet`: signs and finalizes what the wallet can, keeping inputs that
/// already carry a scriptSig or witness.
#[allow(clippy::needless_range_loop)]
pub fn sign_transaction(
    signer: &Signer,
    tx: &Transaction,
    prevouts: &[Option<PrevoutInfo>],
    sighash: Option<u32>,
) -> Result<TxSignResult, RpcError> {
    let mut stripped = tx.clone();
    for txin in &mut stripped.input {
        txin.script_sig = ScriptBuf::new();
        txin.witness = Witness::new();
    }
    let mut psbt = Psbt::from_unsigned_tx(stripped)
        .map_err(|e| RpcError::new(RPC_DESERIALIZATION_ERROR, format!("TX decode failed {e}")))?;
    let mut missing_amount = vec![false; tx.input.len()];
    for (i, txin) in tx.input.iter().enumerate() {
        let input = &mut psbt.inputs[i];
        if !txin.script_sig.is_empty() {
            input.final_script_sig = Some(txin.script_sig.clone());
        }
        if !txin.witness.is_empty() {
            input.final_script_witness = Some(txin.witness.clone());
        }
        if let Some(Some(p)) = prevouts.get(i) {
            match p.amount {
                Some(value) => input.witness_utxo = Some(TxOut { value, script_pubkey: p.script_pubkey.clone() }),
                None if !p.script_pubkey.is_witness_program() && !p.script_pubkey.is_p2sh() => {
                    input.witness_utxo =
                        Some(TxOut { value: bitcoin::Amount::ZERO, script_pubkey: p.script_pubkey.clone() })
                }
                None => missing_amount[i] = true,
            }
            if p.redeem_script.is_some() {
                input.redeem_script = p.redeem_script.clone();
            }
            if p.witness_script.is_some() {
                input.witness_script = p.witness_script.clone();
            }
        }
    }
    update_psbt(signer.wallet, &mut psbt, false);
    sign_psbt(signer, &mut psbt, sighash)?;
    let mut out = tx.clone();
    let mut errors = Vec::new();
    for i in 0..psbt.inputs.len() {
        let had_data = !tx.input[i].script_sig.is_empty() || !tx.input[i].witness.is_empty();
        if !had_data && finalize_input(&mut psbt, i) {
            let input = &psbt.inputs[i];
            out.input[i].script_sig = input.final_script_sig.clone().unwrap_or_default();
            out.input[i].witness = input.final_script_witness.clone().unwrap_or_default();
            continue;
        }
        if had_data {
            continue;
        }
        let err = match prevouts.get(i) {
            None | Some(None) => "Input not found or already spent".to_string(),
            Some(Some(_)) if missing_amount[i] => "Missing amount".to_string(),
            Some(Some(p)) if p.script_pubkey.is_witness_program() => {
                "Witness program was passed an empty witness".to_string()
            }
            Some(Some(_)) => "Unable to sign input, invalid stack size (possibly missing key)".to_string(),
        };
        errors.push((i, err));
    }
    Ok(TxSignResult { tx: out, complete: errors.is_empty(), errors })
}
