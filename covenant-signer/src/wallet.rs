//! Signing through the offline wallet only (spec §8.2, "signing backend").
//!
//! The PSBT is the legacy signer's: one input (the unbonding input, sequence 0xffffffff), the
//! unbonding output, `witness_utxo` = the staking output, `sighash_type` = SIGHASH_DEFAULT, a
//! BIP-32 derivation entry carrying only the compressed covenant key (fingerprint 00000000, empty
//! path — that is what makes Bitcoin Core look the key up in its descriptors, e.g. a `wpkh()` one),
//! and the unbonding leaf in `tap_scripts`. `walletprocesspsbt(psbt, true, "DEFAULT")` returns it
//! with `tap_script_sigs[(covenant key, unbonding leaf)]`, which is verified before it is returned.

use std::fmt;

use base64::Engine as _;
use phase1_primitives::bitcoin::bip32::{DerivationPath, Fingerprint};
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::psbt::{Psbt, PsbtSighashType};
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::sighash::TapSighashType;
use phase1_primitives::bitcoin::taproot::{LeafVersion, TapLeafHash, TaprootBuilder};
use phase1_primitives::bitcoin::{
    absolute, opcodes, script, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use serde_json::{json, Value};

use crate::checks::Approved;
use crate::rpc::{RpcClient, RpcError, RPC_METHOD_NOT_FOUND, RPC_WALLET_NOT_FOUND, RPC_WALLET_UNLOCK_NEEDED};

/// Why the wallet gave no usable signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletError {
    /// The wallet is encrypted and locked (RPC error -13).
    Locked {
        /// Wallet URL.
        url: String,
        /// The node's message.
        message: String,
    },
    /// The wallet signed nothing for the key.
    MissingKey {
        /// The covenant key.
        key: PublicKey,
        /// Wallet URL.
        url: String,
    },
    /// No answer, authentication failure, or an RPC error.
    Rpc {
        /// Wallet URL.
        url: String,
        /// What failed.
        error: RpcError,
    },
    /// The wallet answered something unusable (bad PSBT, a signature that does not verify, ...).
    BadAnswer(String),
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletError::Locked { url, message } => write!(
                f,
                "the offline wallet at {url} is locked: unlock it with walletpassphrase (bitcoin-cli -rpcwallet=<name> walletpassphrase \"<passphrase>\" <seconds>) and retry (RPC error -13: {message})"
            ),
            WalletError::MissingKey { key, url } => write!(
                f,
                "wallet does not maintain covenant public key {key}: the offline wallet at {url} returned no signature for it (import the key into that wallet, or point [btc-signer-config] host at the wallet that holds it)"
            ),
            WalletError::Rpc { url, error: RpcError::Auth(_) } => write!(
                f,
                "the offline wallet at {url} refused the credentials: check [btc-signer-config] user and pass"
            ),
            WalletError::Rpc { url, error: e @ RpcError::Transport(_) } => {
                write!(f, "the offline wallet at {url} does not answer: {e} (is it running? check [btc-signer-config] host)")
            }
            WalletError::Rpc { url, error: e @ RpcError::Rpc { code: RPC_WALLET_NOT_FOUND, .. } } => write!(
                f,
                "the offline wallet at {url} is not loaded: {e} (loadwallet it, or fix /wallet/<name> in [btc-signer-config] host)"
            ),
            WalletError::Rpc { url, error: e @ RpcError::Rpc { code: RPC_METHOD_NOT_FOUND, .. } } => write!(
                f,
                "the node at {url} has no wallet RPCs: {e} (start it with its wallet enabled and a wallet loaded)"
            ),
            WalletError::Rpc { url, error } => write!(f, "walletprocesspsbt at {url} failed: {error}"),
            WalletError::BadAnswer(why) => write!(f, "the offline wallet's answer is unusable: {why}"),
        }
    }
}

impl std::error::Error for WalletError {}

/// The PSBT the wallet signs for an approved request.
pub fn build_psbt(a: &Approved) -> Psbt {
    let unsigned = Transaction {
        version: a.unbonding_tx.version,
        lock_time: a.unbonding_tx.lock_time,
        input: vec![TxIn {
            previous_output: a.staking_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: a.unbonding_tx.output.clone(),
    };
    let mut psbt = Psbt::from_unsigned_tx(unsigned).expect("empty scriptSig and witness");
    let input = &mut psbt.inputs[0];
    input.witness_utxo = Some(a.staking_output.clone());
    input.sighash_type = Some(PsbtSighashType::from(TapSighashType::Default));
    input.bip32_derivation.insert(a.covenant_key, (Fingerprint::default(), DerivationPath::default()));
    input.tap_scripts.insert(a.control_block(), (a.unbonding_script(), LeafVersion::TapScript));
    psbt
}

/// Base64 of a PSBT.
pub fn psbt_base64(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

/// The covenant signature in a signed PSBT (`tap_script_sigs[(key, unbonding leaf)]`), verified
/// over the approved sighash.
pub fn signature_from_psbt(signed: &Psbt, a: &Approved, url: &str) -> Result<[u8; 64], WalletError> {
    let input = signed.inputs.first().ok_or_else(|| WalletError::BadAnswer("the signed PSBT has no input".into()))?;
    let xonly = a.covenant_key.x_only_public_key().0;
    let leaf = TapLeafHash::from_script(&a.unbonding_script(), LeafVersion::TapScript);
    let Some(sig) = input.tap_script_sigs.get(&(xonly, leaf)) else {
        // A wallet that could satisfy the whole leaf (it also holds the staker's key and a quorum)
        // finalizes the input and moves the signatures into the witness: take ours from there.
        if let Some(w) = &input.final_script_witness {
            if let Some(sig) = w.iter().filter(|item| item.len() == 64).find(|item| a.verifies(item)) {
                return Ok(sig.try_into().expect("64 bytes"));
            }
        }
        return Err(WalletError::MissingKey { key: a.covenant_key, url: url.to_string() });
    };
    if sig.sighash_type != TapSighashType::Default {
        return Err(WalletError::BadAnswer(format!(
            "the wallet signed with sighash {:?}; the unbonding witness needs SIGHASH_DEFAULT",
            sig.sighash_type
        )));
    }
    let bytes = sig.signature.serialize();
    if !a.verifies(&bytes) {
        return Err(WalletError::BadAnswer(format!(
            "the wallet's signature for {} does not verify over the unbonding sighash; it was not returned",
            a.covenant_key
        )));
    }
    Ok(bytes)
}

fn decode_psbt(result: &Value) -> Result<Psbt, WalletError> {
    let text = result
        .get("psbt")
        .and_then(Value::as_str)
        .ok_or_else(|| WalletError::BadAnswer("walletprocesspsbt returned no \"psbt\" field".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| WalletError::BadAnswer(format!("walletprocesspsbt returned bad base64: {e}")))?;
    Psbt::deserialize(&bytes).map_err(|e| WalletError::BadAnswer(format!("walletprocesspsbt returned a bad PSBT: {e}")))
}

/// What `getwalletinfo` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletInfo {
    /// Wallet name.
    pub name: String,
    /// `None` = not encrypted; `Some(0)` = locked; `Some(t)` = unlocked until `t`.
    pub unlocked_until: Option<u64>,
    /// Whether the wallet has private keys.
    pub private_keys_enabled: bool,
}

impl WalletInfo {
    /// Encrypted and locked.
    pub fn is_locked(&self) -> bool {
        self.unlocked_until == Some(0)
    }
}

/// The offline wallet.
#[derive(Debug, Clone)]
pub struct OfflineWallet {
    rpc: RpcClient,
}

impl OfflineWallet {
    /// A wallet reached through `rpc` (URL may end in `/wallet/<name>`).
    pub fn new(rpc: RpcClient) -> OfflineWallet {
        OfflineWallet { rpc }
    }

    /// The wallet's URL.
    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    fn rpc_error(&self, error: RpcError) -> WalletError {
        match error {
            RpcError::Rpc { code: RPC_WALLET_UNLOCK_NEEDED, message } => {
                WalletError::Locked { url: self.url().to_string(), message }
            }
            error => WalletError::Rpc { url: self.url().to_string(), error },
        }
    }

    /// `walletprocesspsbt(psbt, true, "DEFAULT")`.
    pub fn process_psbt(&self, psbt: &Psbt) -> Result<Psbt, WalletError> {
        let result = self
            .rpc
            .call("walletprocesspsbt", json!([psbt_base64(psbt), true, "DEFAULT"]))
            .map_err(|e| self.rpc_error(e))?;
        decode_psbt(&result)
    }

    /// Signs an approved request: the PSBT, `walletprocesspsbt`, the verified signature.
    pub fn sign(&self, a: &Approved) -> Result<[u8; 64], WalletError> {
        let signed = self.process_psbt(&build_psbt(a))?;
        signature_from_psbt(&signed, a, self.url())
    }

    /// `getwalletinfo`.
    pub fn info(&self) -> Result<WalletInfo, WalletError> {
        let v = self.rpc.call("getwalletinfo", json!([])).map_err(|e| self.rpc_error(e))?;
        Ok(WalletInfo {
            name: v.get("walletname").and_then(Value::as_str).unwrap_or("").to_string(),
            unlocked_until: v.get("unlocked_until").and_then(Value::as_u64),
            private_keys_enabled: v.get("private_keys_enabled").and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// Which of `keys` the wallet can sign a tapscript leaf with: one throw-away PSBT per key
    /// (a `<key> OP_CHECKSIG` leaf under the NUMS key, never broadcast). Needs an unlocked wallet.
    pub fn signable_keys(&self, keys: &[PublicKey]) -> Result<Vec<PublicKey>, WalletError> {
        let mut out = Vec::new();
        for key in keys {
            let (psbt, leaf) = probe_psbt(key);
            let signed = self.process_psbt(&psbt)?;
            let x = key.x_only_public_key().0;
            if signed.inputs.first().is_some_and(|i| i.tap_script_sigs.contains_key(&(x, leaf))) {
                out.push(*key);
            }
        }
        Ok(out)
    }
}

/// A throw-away PSBT whose only leaf is `<key> OP_CHECKSIGVERIFY <NUMS> OP_CHECKSIG` (for
/// [`OfflineWallet::signable_keys`]): the second key has no known private key, so the wallet can
/// sign but never finalize the input, and the signature stays in `tap_script_sigs`.
fn probe_psbt(key: &PublicKey) -> (Psbt, TapLeafHash) {
    let x = key.x_only_public_key().0;
    let nums = phase1_primitives::staking::nums_internal_key();
    let leaf_script = script::Builder::new()
        .push_x_only_key(&x)
        .push_opcode(opcodes::all::OP_CHECKSIGVERIFY)
        .push_x_only_key(&nums)
        .push_opcode(opcodes::all::OP_CHECKSIG)
        .into_script();
    let spend = TaprootBuilder::new()
        .add_leaf(0, leaf_script.clone())
        .expect("one leaf")
        .finalize(phase1_primitives::secp(), nums)
        .expect("complete tree");
    let spk = ScriptBuf::new_p2tr_tweaked(spend.output_key());
    let cb = spend.control_block(&(leaf_script.clone(), LeafVersion::TapScript)).expect("leaf in tree");
    let prevout = TxOut { value: Amount::from_sat(10_000), script_pubkey: spk };
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([0x5a; 32]), vout: 0 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![prevout.clone()],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).expect("unsigned");
    let input = &mut psbt.inputs[0];
    input.witness_utxo = Some(prevout);
    input.sighash_type = Some(PsbtSighashType::from(TapSighashType::Default));
    input.bip32_derivation.insert(*key, (Fingerprint::default(), DerivationPath::default()));
    input.tap_scripts.insert(cb, (leaf_script.clone(), LeafVersion::TapScript));
    (psbt, TapLeafHash::from_script(&leaf_script, LeafVersion::TapScript))
}
