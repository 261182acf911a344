//! A staker whose key lives in a bitcoind wallet (devnet: the regtest node's wallet). Everything
//! is built with this crate's builders; the wallet only funds, signs and never shows a key:
//!
//! * the staker key is the wallet key behind the address labelled [`STAKER_LABEL`] (made on first
//!   use with `getnewaddress <label> bech32`; `getaddressinfo` gives its public key);
//! * a stake is built here, funded by `fundrawtransaction`, signed by
//!   `signrawtransactionwithwallet` and sent;
//! * the staker's script-path signatures (unbonding request, withdrawals) come from
//!   `walletprocesspsbt`: the PSBT names the key (BIP-32 entry with fingerprint 0 and an empty path,
//!   as the covenant signer does) and the leaf, and the signature is verified over the sighash this
//!   crate computed before it is used.

use std::str::FromStr;

use phase1_primitives::bitcoin::base64::Engine as _;
use phase1_primitives::bitcoin::bip32::{DerivationPath, Fingerprint};
use phase1_primitives::bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use phase1_primitives::bitcoin::psbt::{Psbt, PsbtSighashType};
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::sighash::TapSighashType;
use phase1_primitives::bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash};
use phase1_primitives::bitcoin::{Address, Network, ScriptBuf, TapSighash, Transaction, TxOut, Txid, XOnlyPublicKey};
use phase1_primitives::params::ParamsVersion;
use phase1_primitives::sighash::verify_schnorr;
use phase1_primitives::{GlobalParams, Leaf};
use serde_json::{json, Value};

use crate::rpc::RpcClient;
use crate::{
    staking_tx, unbonding_request_with_signature, unbonding_sighash, unsigned_withdrawal_from_staking,
    unsigned_withdrawal_from_unbonding, Error, Stake, UnbondingRequestJson, UnsignedWithdrawal, WithdrawFrom,
};

/// The label of the wallet address whose key is the staker key.
pub const STAKER_LABEL: &str = "phase1-staker";

/// The staker key and its address in the wallet.
#[derive(Debug, Clone)]
pub struct StakerKey {
    /// The wallet key (compressed); the staking output uses its x-only form.
    pub key: PublicKey,
    /// The P2WPKH address it belongs to.
    pub address: String,
}

impl StakerKey {
    /// The x-only key used in staking scripts and the OP_RETURN.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.key.x_only_public_key().0
    }
}

/// A withdrawal that was sent.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    /// Its txid.
    pub txid: Txid,
    /// Which output it spent.
    pub from: WithdrawFrom,
    /// Where the coins went (a new wallet address).
    pub address: String,
}

/// The node (chain RPCs) and one of its wallets.
#[derive(Debug, Clone)]
pub struct NodeWallet {
    node: RpcClient,
    wallet: RpcClient,
    name: String,
}

impl NodeWallet {
    /// The wallet `name` of the node at `url` (no `/wallet/` suffix).
    pub fn new(url: &str, user: Option<&str>, password: Option<&str>, name: &str) -> NodeWallet {
        let base = url.trim_end_matches('/');
        NodeWallet {
            node: RpcClient::new(base, user, password),
            wallet: RpcClient::new(&format!("{base}/wallet/{name}"), user, password),
            name: name.to_string(),
        }
    }

    /// The wallet's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's chain (`getblockchaininfo`'s `chain`: `main`, `test`, `signet`, `regtest`).
    pub fn chain(&self) -> Result<String, Error> {
        let info = self.node.call("getblockchaininfo", json!([]))?;
        Ok(info["chain"].as_str().unwrap_or_default().to_string())
    }

    /// The node's tip height.
    pub fn height(&self) -> Result<u64, Error> {
        self.node
            .call("getblockcount", json!([]))?
            .as_u64()
            .ok_or_else(|| Error::Rpc("getblockcount: the answer is not a number".into()))
    }

    /// Loads the wallet if the node has it on disk, creates it if not; nothing if it is loaded.
    pub fn ensure_loaded(&self) -> Result<(), Error> {
        let loaded = self.node.call("listwallets", json!([]))?;
        if loaded.as_array().is_some_and(|ws| ws.iter().any(|w| w == self.name.as_str())) {
            return Ok(());
        }
        if self.node.call("loadwallet", json!([self.name])).is_err() {
            self.node.call("createwallet", json!([self.name])).map_err(|e| {
                Error::Rpc(format!("wallet {:?} is neither loaded nor loadable nor creatable: {e}", self.name))
            })?;
        }
        Ok(())
    }

    /// The staker key: the key of the address labelled [`STAKER_LABEL`], made on first use.
    pub fn staker_key(&self) -> Result<StakerKey, Error> {
        let existing = self.wallet.call("getaddressesbylabel", json!([STAKER_LABEL])).ok();
        let mut addresses: Vec<String> =
            existing.as_ref().and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        addresses.sort();
        let address = match addresses.into_iter().next() {
            Some(a) => a,
            None => self
                .wallet
                .call("getnewaddress", json!([STAKER_LABEL, "bech32"]))?
                .as_str()
                .ok_or_else(|| Error::Rpc("getnewaddress: the answer is not an address".into()))?
                .to_string(),
        };
        let info = self.wallet.call("getaddressinfo", json!([address]))?;
        let hex = info["pubkey"].as_str().ok_or_else(|| {
            Error::Rpc(format!(
                "getaddressinfo {address}: no \"pubkey\" (the staker address must be a P2WPKH wallet address)"
            ))
        })?;
        let key = PublicKey::from_str(hex)
            .map_err(|e| Error::Rpc(format!("getaddressinfo {address}: bad pubkey {hex}: {e}")))?;
        Ok(StakerKey { key, address })
    }

    /// The wallet's trusted balance in satoshis.
    pub fn balance_sat(&self) -> Result<u64, Error> {
        let btc = self.wallet.call("getbalance", json!([]))?;
        let btc = btc.as_f64().ok_or_else(|| Error::Rpc("getbalance: the answer is not a number".into()))?;
        Ok((btc * 100_000_000.0).round() as u64)
    }

    /// Builds the stake (`amount` sat for `staking_time` blocks with finality provider `fp`, under
    /// `params`, which must be the version of the block it will be included in), funds, signs and
    /// sends it.
    pub fn stake(
        &self,
        params: &ParamsVersion,
        fp: &XOnlyPublicKey,
        amount: u64,
        staking_time: u16,
    ) -> Result<Txid, Error> {
        let range = |what: &str, v: u64, min: u64, max: u64, unit: &str| {
            if v < min || v > max {
                Err(Error::invalid(
                    what,
                    format!("{v} {unit} is outside [{min}, {max}] {unit} of params version {}", params.version),
                ))
            } else {
                Ok(())
            }
        };
        range("staking_value", amount, params.min_staking_amount, params.max_staking_amount, "sat")?;
        range(
            "staking_time",
            staking_time.into(),
            params.min_staking_time.into(),
            params.max_staking_time.into(),
            "blocks",
        )?;
        let staker = self.staker_key()?;
        let balance = self.balance_sat()?;
        if balance <= amount {
            return Err(Error::Build(format!(
                "the wallet {:?} has {balance} sat to spend, not enough for {amount} sat plus fees: fund it (on regtest, e.g. generatetoaddress 101 {})",
                self.name, staker.address
            )));
        }
        let unsigned = staking_tx(&staker.x_only(), fp, staking_time, amount, params)?;
        let funded = self.wallet.call("fundrawtransaction", json!([serialize_hex(&unsigned)])).map_err(|e| {
            Error::Rpc(format!("{e} (the wallet {:?} needs {amount} sat plus fees in mature coins)", self.name))
        })?;
        let signed = self.wallet.call("signrawtransactionwithwallet", json!([funded["hex"]]))?;
        if signed["complete"] != json!(true) {
            return Err(Error::Rpc(format!(
                "signrawtransactionwithwallet could not sign every input: {}",
                signed["errors"]
            )));
        }
        let txid = self.node.call("sendrawtransaction", json!([signed["hex"]]))?;
        txid.as_str()
            .and_then(|t| Txid::from_str(t).ok())
            .ok_or_else(|| Error::Rpc(format!("sendrawtransaction answered {txid}, not a txid")))
    }

    /// A confirmed staking transaction of this wallet's staker, read with the params version of
    /// its inclusion height.
    pub fn find_stake(&self, txid: &Txid, params: &GlobalParams) -> Result<Stake, Error> {
        let hex = self.node.call("getrawtransaction", json!([txid.to_string()])).map_err(|e| {
            Error::invalid("staking_tx_hash_hex", format!("the node does not know transaction {txid}: {e}"))
        })?;
        let tx: Transaction = deserialize_hex(hex.as_str().unwrap_or_default())
            .map_err(|e| Error::Rpc(format!("getrawtransaction {txid}: not a transaction: {e}")))?;
        let height = self.node.inclusion_height(txid)?;
        let stake = Stake::new(tx, params, height)?;
        let staker = self.staker_key()?;
        if stake.staker() != staker.x_only() {
            return Err(Error::invalid(
                "staking_tx_hash_hex",
                format!(
                    "{txid} was staked with key {}, not with this wallet's staker key {}: only the wallet's own stakes can be signed here",
                    stake.staker(),
                    staker.x_only()
                ),
            ));
        }
        Ok(stake)
    }

    /// The `POST /v1/unbonding` body for `stake`, signed by the wallet (checked as the API checks it).
    pub fn unbonding_request(&self, stake: &Stake) -> Result<UnbondingRequestJson, Error> {
        let tx = stake.unbonding_tx()?;
        let sighash = unbonding_sighash(stake, &tx)?;
        let info = stake.info();
        let sig = self.sign_leaf(
            &tx,
            &stake.staking_output(),
            &info.unbonding_script(),
            &info.control_block(Leaf::Unbonding),
            &sighash,
        )?;
        unbonding_request_with_signature(stake, &sig)
    }

    /// Withdraws `stake` to a new wallet address: from the staking output once its timelock is
    /// over, or from the unbonding output `unbonding_time` blocks after the unbonding tx was mined.
    pub fn withdraw(&self, stake: &Stake, fee: u64) -> Result<Withdrawal, Error> {
        let tip = self.height()?;
        let outpoint = stake.outpoint();
        let unspent = !self.node.call("gettxout", json!([outpoint.txid.to_string(), outpoint.vout, true]))?.is_null();
        let from = if unspent {
            let spendable_at = stake.height() + u64::from(stake.staking_time());
            if tip + 1 < spendable_at {
                return Err(Error::invalid(
                    "staking_tx_hash_hex",
                    format!(
                        "the stake's timelock of {} blocks is not over: its output can be spent in block {spendable_at} and the chain is at {tip}; withdraw then, or unbond first",
                        stake.staking_time()
                    ),
                ));
            }
            WithdrawFrom::Staking
        } else {
            let unbonding = stake.unbonding_tx()?.compute_txid();
            let v = self.node.call("getrawtransaction", json!([unbonding.to_string(), true])).map_err(|_| {
                Error::invalid(
                    "staking_tx_hash_hex",
                    format!("the staking output of {} is spent, and not by its unbonding transaction {unbonding}: it was withdrawn already", stake.txid()),
                )
            })?;
            let Some(block) = v["blockhash"].as_str() else {
                return Err(Error::invalid(
                    "staking_tx_hash_hex",
                    format!(
                        "the unbonding transaction {unbonding} is not mined yet: withdraw {} blocks after it is",
                        stake.params().unbonding_time
                    ),
                ));
            };
            let mined = self.node.call("getblockheader", json!([block]))?["height"].as_u64().unwrap_or(u64::MAX);
            let spendable_at = mined.saturating_add(stake.params().unbonding_time.into());
            if tip + 1 < spendable_at {
                return Err(Error::invalid(
                    "staking_tx_hash_hex",
                    format!(
                        "the unbonding transaction was mined at height {mined}; its output can be spent in block {spendable_at} and the chain is at {tip}: withdraw then"
                    ),
                ));
            }
            if self.node.call("gettxout", json!([unbonding.to_string(), 0, true]))?.is_null() {
                return Err(Error::invalid(
                    "staking_tx_hash_hex",
                    format!("the unbonding output {unbonding}:0 is spent already: the stake was withdrawn"),
                ));
            }
            WithdrawFrom::Unbonding
        };
        let to = self.new_address()?;
        let unsigned = match from {
            WithdrawFrom::Staking => unsigned_withdrawal_from_staking(stake, &to.script_pubkey(), fee)?,
            WithdrawFrom::Unbonding => unsigned_withdrawal_from_unbonding(stake, None, &to.script_pubkey(), fee)?,
        };
        let tx = self.sign_withdrawal(unsigned)?;
        let sent = self.node.call("sendrawtransaction", json!([serialize_hex(&tx)]))?;
        let txid = sent.as_str().and_then(|t| Txid::from_str(t).ok()).unwrap_or_else(|| tx.compute_txid());
        Ok(Withdrawal { txid, from, address: to.to_string() })
    }

    fn sign_withdrawal(&self, w: UnsignedWithdrawal) -> Result<Transaction, Error> {
        let sig = self.sign_leaf(&w.tx, &w.prevout, &w.leaf_script, &w.control_block, &w.sighash)?;
        w.with_signature(&sig)
    }

    fn new_address(&self) -> Result<Address, Error> {
        let a = self.wallet.call("getnewaddress", json!(["", "bech32"]))?;
        let text = a.as_str().unwrap_or_default();
        Address::from_str(text)
            .ok()
            .and_then(|a| a.require_network(Network::Regtest).ok())
            .ok_or_else(|| Error::Rpc(format!("getnewaddress answered {a}, not a regtest address")))
    }

    /// The staker's BIP-340 signature for input 0 of `tx` spending `prevout` through `leaf_script`,
    /// made by the wallet and verified over `sighash`.
    fn sign_leaf(
        &self,
        tx: &Transaction,
        prevout: &TxOut,
        leaf_script: &ScriptBuf,
        control_block: &ControlBlock,
        sighash: &TapSighash,
    ) -> Result<[u8; 64], Error> {
        let staker = self.staker_key()?;
        let mut unsigned = tx.clone();
        for input in &mut unsigned.input {
            input.witness.clear();
            input.script_sig = ScriptBuf::new();
        }
        let mut psbt =
            Psbt::from_unsigned_tx(unsigned).map_err(|e| Error::Build(format!("cannot make the PSBT: {e}")))?;
        let input = &mut psbt.inputs[0];
        input.witness_utxo = Some(prevout.clone());
        input.sighash_type = Some(PsbtSighashType::from(TapSighashType::Default));
        input.bip32_derivation.insert(staker.key, (Fingerprint::default(), DerivationPath::default()));
        input.tap_scripts.insert(control_block.clone(), (leaf_script.clone(), LeafVersion::TapScript));
        let b64 = phase1_primitives::bitcoin::base64::engine::general_purpose::STANDARD;
        let answer = self
            .wallet
            .call("walletprocesspsbt", json!([b64.encode(psbt.serialize()), true, "DEFAULT", true, false]))?;
        let signed = answer["psbt"]
            .as_str()
            .and_then(|t| b64.decode(t.trim()).ok())
            .and_then(|bytes| Psbt::deserialize(&bytes).ok())
            .ok_or_else(|| Error::Rpc(format!("walletprocesspsbt answered no usable PSBT: {answer}")))?;
        let leaf = TapLeafHash::from_script(leaf_script, LeafVersion::TapScript);
        let input = &signed.inputs[0];
        let candidates: Vec<[u8; 64]> = input
            .tap_script_sigs
            .get(&(staker.x_only(), leaf))
            .map(|s| s.signature.serialize())
            .into_iter()
            .chain(
                input.final_script_witness.iter().flat_map(|w| w.iter().filter_map(|i| <[u8; 64]>::try_from(i).ok())),
            )
            .collect();
        candidates.into_iter().find(|sig| verify_schnorr(sighash, sig, &staker.x_only())).ok_or_else(|| {
            Error::Rpc(format!(
                "the wallet {:?} gave no valid signature for staker key {} (is the wallet locked, or was the key imported elsewhere?)",
                self.name,
                staker.x_only()
            ))
        })
    }
}
