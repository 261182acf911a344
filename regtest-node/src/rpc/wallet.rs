//! Bitcoin Core's descriptor-wallet RPCs: names, positional parameters, result shapes, error
//! codes and messages as Core has them.

use std::collections::BTreeSet;
use std::str::FromStr;

use base64::Engine;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::consensus::Decodable;
use bitcoin::psbt::Psbt;
use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid};
use serde_json::{json, Map, Value};

use crate::rpc::error::{
    RpcError, RpcResult, RPC_DESERIALIZATION_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_WALLET_ERROR,
    RPC_WALLET_INSUFFICIENT_FUNDS, RPC_WALLET_INVALID_LABEL_NAME, RPC_WALLET_WRONG_ENC_STATE,
};
use crate::rpc::params::{amount_from_value, type_name, value_from_amount, value_from_sat, Params};
use crate::wallet::funding::{self, FeeRate, FundParams, InputInfo};
use crate::wallet::instance::{now_secs, ImportRequest};
use crate::wallet::keys::{self, OutputType};
use crate::wallet::signer::{self, PrevoutInfo, Signer};
use crate::wallet::store::WalletFlags;
use crate::wallet::{ChainView, Wallet, WalletCoin, WalletManager};

/// Core's RPC_METHOD_DEPRECATED (not in protocol.h's list the node exposes).
const RPC_METHOD_DEPRECATED: i32 = -32;
/// What Core's `encryptwallet` returns.
const ENCRYPTED_MESSAGE: &str = "wallet encrypted; The keypool has been flushed and a new HD seed was generated (if you are using HD). You need to make a new backup.";

/// Wallet RPCs and their parameter names, in Core's order (for named-parameter requests).
pub const WALLET_METHODS: &[(&str, &[&str])] = &[
    ("abortrescan", &[]),
    ("backupwallet", &["destination"]),
    (
        "createwallet",
        &[
            "wallet_name",
            "disable_private_keys",
            "blank",
            "passphrase",
            "avoid_reuse",
            "descriptors",
            "load_on_startup",
            "external_signer",
        ],
    ),
    ("dumpprivkey", &["address"]),
    ("encryptwallet", &["passphrase"]),
    ("fundrawtransaction", &["hexstring", "options", "iswitness"]),
    ("getaddressesbylabel", &["label"]),
    ("getaddressinfo", &["address"]),
    ("getbalance", &["dummy", "minconf", "include_watchonly", "avoid_reuse"]),
    ("getbalances", &[]),
    ("getnewaddress", &["label", "address_type"]),
    ("getrawchangeaddress", &["address_type"]),
    ("getwalletinfo", &[]),
    ("importdescriptors", &["requests"]),
    ("keypoolrefill", &["newsize"]),
    ("listdescriptors", &["private"]),
    ("listlabels", &["purpose"]),
    ("listlockunspent", &[]),
    ("listunspent", &["minconf", "maxconf", "addresses", "include_unsafe", "query_options"]),
    ("listwalletdir", &[]),
    ("listwallets", &[]),
    ("loadwallet", &["filename", "load_on_startup"]),
    ("lockunspent", &["unlock", "transactions", "persistent"]),
    ("rescanblockchain", &["start_height", "stop_height"]),
    ("restorewallet", &["wallet_name", "backup_file", "load_on_startup"]),
    (
        "sendmany",
        &[
            "dummy",
            "amounts",
            "minconf",
            "comment",
            "subtractfeefrom",
            "replaceable",
            "conf_target",
            "estimate_mode",
            "fee_rate",
            "verbose",
        ],
    ),
    (
        "sendtoaddress",
        &[
            "address",
            "amount",
            "comment",
            "comment_to",
            "subtractfeefromamount",
            "replaceable",
            "conf_target",
            "estimate_mode",
            "avoid_reuse",
            "fee_rate",
            "verbose",
        ],
    ),
    ("setlabel", &["address", "label"]),
    ("signrawtransactionwithwallet", &["hexstring", "prevtxs", "sighashtype"]),
    ("unloadwallet", &["wallet_name", "load_on_startup"]),
    ("walletcreatefundedpsbt", &["inputs", "outputs", "locktime", "options", "bip32derivs"]),
    ("walletlock", &[]),
    ("walletpassphrase", &["passphrase", "timeout"]),
    ("walletpassphrasechange", &["oldpassphrase", "newpassphrase"]),
    ("walletprocesspsbt", &["psbt", "sign", "sighashtype", "bip32derivs", "finalize"]),
];

/// Parameter names of a wallet method (None if `method` is not a wallet method).
pub fn param_names(method: &str) -> Option<&'static [&'static str]> {
    WALLET_METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// Handles a wallet RPC. `wallet` is the URL-decoded name from a `/wallet/<name>` request path
/// (None for `/`). Returns None when `method` is not a wallet method.
pub fn handle(
    mgr: &mut WalletManager,
    chain: &mut dyn ChainView,
    wallet: Option<&str>,
    method: &str,
    params: &Params,
) -> Option<RpcResult> {
    let r = match method {
        "createwallet" => createwallet(mgr, params),
        "loadwallet" => loadwallet(mgr, params),
        "restorewallet" => restorewallet(mgr, params),
        "unloadwallet" => unloadwallet(mgr, wallet, params),
        "listwallets" => Ok(json!(mgr.wallet_names())),
        "listwalletdir" => Ok(json!({
            "wallets": mgr.list_wallet_dir().into_iter().map(|n| json!({ "name": n })).collect::<Vec<_>>()
        })),
        "getwalletinfo" => with_wallet(mgr, wallet, |w| getwalletinfo(w, chain)),
        "getnewaddress" => with_wallet(mgr, wallet, |w| getnewaddress(w, params)),
        "getrawchangeaddress" => with_wallet(mgr, wallet, |w| getrawchangeaddress(w, params)),
        "getaddressinfo" => with_wallet(mgr, wallet, |w| getaddressinfo(w, params)),
        "setlabel" => with_wallet(mgr, wallet, |w| setlabel(w, params)),
        "listlabels" => with_wallet(mgr, wallet, |w| listlabels(w, params)),
        "getaddressesbylabel" => with_wallet(mgr, wallet, |w| getaddressesbylabel(w, params)),
        "importdescriptors" => with_wallet(mgr, wallet, |w| importdescriptors(w, params)),
        "listdescriptors" => with_wallet(mgr, wallet, |w| listdescriptors(w, params)),
        "getbalance" => with_wallet(mgr, wallet, |w| getbalance(w, chain, params)),
        "getbalances" => with_wallet(mgr, wallet, |w| getbalances(w, chain)),
        "listunspent" => with_wallet(mgr, wallet, |w| listunspent(w, chain, params)),
        "lockunspent" => with_wallet(mgr, wallet, |w| lockunspent(w, chain, params)),
        "listlockunspent" => with_wallet(mgr, wallet, |w| {
            Ok(Value::Array(
                w.locked_coins().iter().map(|o| json!({ "txid": o.txid.to_string(), "vout": o.vout })).collect(),
            ))
        }),
        "fundrawtransaction" => {
            let fallback = mgr.config().fallback_fee;
            with_wallet(mgr, wallet, |w| fundrawtransaction(w, chain, fallback, params))
        }
        "walletcreatefundedpsbt" => {
            let fallback = mgr.config().fallback_fee;
            with_wallet(mgr, wallet, |w| walletcreatefundedpsbt(w, chain, fallback, params))
        }
        "signrawtransactionwithwallet" => with_wallet(mgr, wallet, |w| signrawtransactionwithwallet(w, chain, params)),
        "walletprocesspsbt" => with_wallet(mgr, wallet, |w| walletprocesspsbt(w, chain, params)),
        "sendtoaddress" => {
            let fallback = mgr.config().fallback_fee;
            with_wallet(mgr, wallet, |w| sendtoaddress(w, chain, fallback, params))
        }
        "sendmany" => {
            let fallback = mgr.config().fallback_fee;
            with_wallet(mgr, wallet, |w| sendmany(w, chain, fallback, params))
        }
        "encryptwallet" => with_wallet(mgr, wallet, |w| {
            let pass = params.str(0, "passphrase")?;
            w.encrypt(pass)?;
            Ok(json!(ENCRYPTED_MESSAGE))
        }),
        "walletpassphrase" => with_wallet(mgr, wallet, |w| {
            let pass = params.str(0, "passphrase")?.to_string();
            let timeout = params.i64(1, "timeout")?;
            w.unlock(&pass, timeout)?;
            Ok(Value::Null)
        }),
        "walletpassphrasechange" => with_wallet(mgr, wallet, |w| {
            let old = params.str(0, "oldpassphrase")?.to_string();
            let new = params.str(1, "newpassphrase")?.to_string();
            w.change_passphrase(&old, &new)?;
            Ok(Value::Null)
        }),
        "walletlock" => with_wallet(mgr, wallet, |w| {
            if !w.is_encrypted() {
                return Err(RpcError::new(
                    RPC_WALLET_WRONG_ENC_STATE,
                    "Error: running with an unencrypted wallet, but walletlock was called.",
                ));
            }
            w.lock();
            Ok(Value::Null)
        }),
        "keypoolrefill" => with_wallet(mgr, wallet, |w| {
            let size = params.opt_i64(0, "newsize")?.unwrap_or(0);
            if size < 0 {
                return Err(RpcError::invalid_parameter("Invalid parameter, expected valid size."));
            }
            w.ensure_unlocked()?;
            w.keypool_refill(u32::try_from(size).unwrap_or(u32::MAX))?;
            Ok(Value::Null)
        }),
        "backupwallet" => with_wallet(mgr, wallet, |w| backupwallet(w, params)),
        "rescanblockchain" => with_wallet(mgr, wallet, |_| {
            // Coins come straight from the node's UTXO set, so there is nothing to rescan.
            let tip = i64::from(chain.tip_height());
            let start = params.opt_i64(0, "start_height")?.unwrap_or(0);
            let stop = params.opt_i64(1, "stop_height")?.unwrap_or(tip);
            if start < 0 || stop < 0 || start > tip || stop > tip {
                return Err(RpcError::invalid_parameter("Invalid start_height"));
            }
            if stop < start {
                return Err(RpcError::invalid_parameter("stop_height must be greater than start_height"));
            }
            Ok(json!({ "start_height": start, "stop_height": stop }))
        }),
        "abortrescan" => with_wallet(mgr, wallet, |_| Ok(json!(false))),
        "dumpprivkey" => {
            with_wallet(mgr, wallet, |_| Err(RpcError::wallet("Only legacy wallets are supported by this command")))
        }
        _ => return None,
    };
    Some(r)
}

fn with_wallet(mgr: &mut WalletManager, name: Option<&str>, f: impl FnOnce(&mut Wallet) -> RpcResult) -> RpcResult {
    let w = mgr.resolve(name)?;
    f(w)
}

// ------------------------------------------------------------------------ parameter helpers

fn expected(what: &str, v: &Value) -> RpcError {
    RpcError::type_error(format!("JSON value of type {} is not of expected type {what}", type_name(v)))
}

fn opt_array<'a>(params: &'a Params, i: usize, name: &str) -> Result<Option<&'a Vec<Value>>, RpcError> {
    match params.get(i) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(RpcError::type_error(format!(
            "JSON value of type {} for field {name} is not of expected type array",
            type_name(v)
        ))),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Num,
    Str,
    Arr,
    Obj,
    Any,
}

/// Core's `RPCTypeCheckObj(obj, spec, /*fAllowNull=*/true, /*fStrict=*/true)`.
fn check_obj(obj: &Map<String, Value>, spec: &[(&str, Kind)]) -> Result<(), RpcError> {
    for (k, v) in obj {
        let Some((_, kind)) = spec.iter().find(|(name, _)| name == k) else {
            return Err(RpcError::type_error(format!("Unexpected key {k}")));
        };
        let ok = matches!(
            (kind, v),
            (_, Value::Null)
                | (Kind::Any, _)
                | (Kind::Bool, Value::Bool(_))
                | (Kind::Num, Value::Number(_))
                | (Kind::Str, Value::String(_))
                | (Kind::Arr, Value::Array(_))
                | (Kind::Obj, Value::Object(_))
        );
        if !ok {
            let want = match kind {
                Kind::Bool => "bool",
                Kind::Num => "number",
                Kind::Str => "string",
                Kind::Arr => "array",
                Kind::Obj => "object",
                Kind::Any => "any",
            };
            return Err(RpcError::type_error(format!("Expected type {want} for {k}, got {}", type_name(v))));
        }
    }
    Ok(())
}

fn obj_get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn obj_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, RpcError> {
    match obj_get(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(expected("bool", v)),
    }
}

fn obj_i64(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, RpcError> {
    match obj_get(obj, key) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| expected("number", v)),
    }
}

fn obj_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, RpcError> {
    match obj_get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(expected("string", v)),
    }
}

fn label_from(v: &Value) -> Result<String, RpcError> {
    let s = v.as_str().ok_or_else(|| expected("string", v))?;
    if s == "*" {
        return Err(RpcError::new(RPC_WALLET_INVALID_LABEL_NAME, "Invalid label name"));
    }
    Ok(s.to_string())
}

/// Core's `ParseHashO`/`ParseHashV` for txids.
fn parse_txid(v: Option<&Value>, name: &str) -> Result<Txid, RpcError> {
    let s = match v {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(RpcError::type_error(format!("Expected type string for {name}, got {}", type_name(other))))
        }
        None => return Err(RpcError::type_error(format!("Missing {name}"))),
    };
    if s.len() != 64 {
        return Err(RpcError::invalid_parameter(format!("{name} must be of length 64 (not {}, for '{s}')", s.len())));
    }
    Txid::from_str(s).map_err(|_| RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{s}')")))
}

/// A validated non-negative `vout`.
fn vout_u32(vout: i64) -> Result<u32, RpcError> {
    u32::try_from(vout).map_err(|_| RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"))
}

fn parse_hex_script(v: &Value, name: &str) -> Result<ScriptBuf, RpcError> {
    let s = v.as_str().ok_or_else(|| expected("string", v))?;
    hex::decode(s)
        .map(ScriptBuf::from_bytes)
        .map_err(|_| RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{s}')")))
}

fn bad_address(s: &str) -> RpcError {
    RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, format!("Invalid Bitcoin address: {s}"))
}

fn parse_output_type(s: &str, what: &str) -> Result<OutputType, RpcError> {
    OutputType::parse(s).ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, format!("Unknown {what} type '{s}'")))
}

/// Core's `AmountFromValue(value, decimals)` as a fixed-point integer.
fn fixed_from_value(v: &Value, decimals: u32) -> Result<i64, RpcError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(RpcError::type_error("Amount is not a number or string")),
    };
    let scale = 10i64.pow(decimals);
    let invalid = || RpcError::type_error("Invalid amount");
    let value = if text.contains(['e', 'E']) {
        let f: f64 = text.parse().map_err(|_| invalid())?;
        let scaled = f * scale as f64;
        if (scaled - scaled.round()).abs() > 1e-6 || !scaled.is_finite() {
            return Err(invalid());
        }
        scaled.round() as i64
    } else {
        let (neg, body) = match text.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, text.as_str()),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() || frac.len() > decimals as usize {
            return Err(invalid());
        }
        if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| invalid())? };
        let mut frac_val: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| invalid())? };
        frac_val *= 10i64.pow(decimals - frac.len() as u32);
        let v = int.checked_mul(scale).and_then(|x| x.checked_add(frac_val)).ok_or_else(invalid)?;
        if neg {
            -v
        } else {
            v
        }
    };
    if value < 0 {
        return Err(RpcError::type_error("Amount out of range"));
    }
    Ok(value)
}

fn decode_legacy_tx(bytes: &[u8]) -> Option<Transaction> {
    let mut r: &[u8] = bytes;
    let version = transaction::Version::consensus_decode(&mut r).ok()?;
    let input = Vec::<bitcoin::TxIn>::consensus_decode(&mut r).ok()?;
    let output = Vec::<TxOut>::consensus_decode(&mut r).ok()?;
    let lock_time = absolute::LockTime::consensus_decode(&mut r).ok()?;
    if !r.is_empty() {
        return None;
    }
    Some(Transaction { version, lock_time, input, output })
}

/// Core's `DecodeHexTx`.
fn decode_hex_tx(hexstr: &str, try_no_witness: bool, try_witness: bool) -> Option<Transaction> {
    let bytes = hex::decode(hexstr.trim()).ok()?;
    let extended = if try_witness { deserialize::<Transaction>(&bytes).ok() } else { None };
    let legacy = if try_no_witness { decode_legacy_tx(&bytes) } else { None };
    match (extended, legacy) {
        (Some(tx), _) if !tx.input.is_empty() => Some(tx),
        (_, Some(tx)) => Some(tx),
        (other, None) => other,
    }
}

fn outpoint_string(op: &OutPoint) -> String {
    let t = op.txid.to_string();
    format!("COutPoint({}, {})", &t[..10], op.vout)
}

// ------------------------------------------------------------------------ wallet management

fn push_warnings(obj: &mut Map<String, Value>, warnings: Vec<String>) {
    if !warnings.is_empty() {
        obj.insert("warnings".into(), json!(warnings));
    }
}

fn createwallet(mgr: &mut WalletManager, params: &Params) -> RpcResult {
    let name = params.str(0, "wallet_name")?.to_string();
    let disable_private_keys = params.opt_bool(1, "disable_private_keys")?.unwrap_or(false);
    let blank = params.opt_bool(2, "blank")?.unwrap_or(false);
    let passphrase = params.opt_str(3, "passphrase")?.map(str::to_string);
    let avoid_reuse = params.opt_bool(4, "avoid_reuse")?.unwrap_or(false);
    let mut warnings = Vec::new();
    if passphrase.as_deref() == Some("") {
        warnings.push("Empty string given as passphrase, wallet will not be encrypted.".to_string());
    }
    if !params.opt_bool(5, "descriptors")?.unwrap_or(true) {
        return Err(RpcError::wallet(
            "descriptors argument must be set to \"true\"; it is no longer possible to create a legacy wallet.",
        ));
    }
    let load_on_startup = params.opt_bool(6, "load_on_startup")?;
    if params.opt_bool(7, "external_signer")?.unwrap_or(false) {
        return Err(RpcError::wallet("Compiled without external signing support (required for external signing)"));
    }
    let flags = WalletFlags { disable_private_keys, blank, avoid_reuse };
    warnings.extend(mgr.create_wallet(&name, flags, passphrase.as_deref(), load_on_startup)?);
    let mut obj = Map::new();
    obj.insert("name".into(), json!(name));
    push_warnings(&mut obj, warnings);
    Ok(Value::Object(obj))
}

fn loadwallet(mgr: &mut WalletManager, params: &Params) -> RpcResult {
    let name = params.str(0, "filename")?.to_string();
    let load_on_startup = params.opt_bool(1, "load_on_startup")?;
    let warnings = mgr.load_wallet(&name, load_on_startup)?;
    let mut obj = Map::new();
    obj.insert("name".into(), json!(name));
    push_warnings(&mut obj, warnings);
    Ok(Value::Object(obj))
}

fn restorewallet(mgr: &mut WalletManager, params: &Params) -> RpcResult {
    let name = params.str(0, "wallet_name")?.to_string();
    let backup = std::path::PathBuf::from(params.str(1, "backup_file")?);
    let load_on_startup = params.opt_bool(2, "load_on_startup")?;
    let warnings = mgr.restore_wallet(&name, &backup, load_on_startup)?;
    let mut obj = Map::new();
    obj.insert("name".into(), json!(name));
    push_warnings(&mut obj, warnings);
    Ok(Value::Object(obj))
}

fn unloadwallet(mgr: &mut WalletManager, endpoint: Option<&str>, params: &Params) -> RpcResult {
    let param = params.opt_str(0, "wallet_name")?;
    let name = match (endpoint, param) {
        (Some(e), Some(p)) if e != p => {
            return Err(RpcError::invalid_parameter(
                "RPC endpoint wallet and wallet_name parameter specify different wallets",
            ))
        }
        (Some(e), _) => e.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => {
            return Err(RpcError::invalid_parameter(
                "Either the RPC endpoint wallet or the wallet name parameter must be provided",
            ))
        }
    };
    let load_on_startup = params.opt_bool(1, "load_on_startup")?;
    let warnings = mgr.unload_wallet(&name, load_on_startup)?;
    let mut obj = Map::new();
    push_warnings(&mut obj, warnings);
    Ok(Value::Object(obj))
}

struct Balances {
    trusted: u64,
    untrusted_pending: u64,
    immature: u64,
}

fn balances(coins: &[WalletCoin], min_conf: i64) -> Balances {
    let mut b = Balances { trusted: 0, untrusted_pending: 0, immature: 0 };
    for c in coins {
        let v = c.txout.value.to_sat();
        if !c.mature {
            b.immature += v;
        } else if c.trusted && i64::from(c.confirmations) >= min_conf {
            b.trusted += v;
        } else if !c.trusted && c.confirmations == 0 {
            b.untrusted_pending += v;
        }
    }
    b
}

fn getwalletinfo(w: &mut Wallet, chain: &mut dyn ChainView) -> RpcResult {
    let coins = w.list_coins(&*chain);
    let bal = balances(&coins, 0);
    let (kp_ext, kp_int) = w.keypool_sizes();
    let mut obj = Map::new();
    obj.insert("walletname".into(), json!(w.name()));
    obj.insert("walletversion".into(), json!(169900));
    obj.insert("format".into(), json!("sqlite"));
    obj.insert("balance".into(), value_from_sat(bal.trusted as i64));
    obj.insert("unconfirmed_balance".into(), value_from_sat(bal.untrusted_pending as i64));
    obj.insert("immature_balance".into(), value_from_sat(bal.immature as i64));
    obj.insert("txcount".into(), json!(w.txcount()));
    obj.insert("keypoolsize".into(), json!(kp_ext));
    obj.insert("keypoolsize_hd_internal".into(), json!(kp_int));
    if w.is_encrypted() {
        obj.insert("unlocked_until".into(), json!(w.unlocked_until()));
    }
    obj.insert("paytxfee".into(), value_from_sat(0));
    obj.insert("private_keys_enabled".into(), json!(!w.flags().disable_private_keys));
    obj.insert("avoid_reuse".into(), json!(w.flags().avoid_reuse));
    obj.insert("scanning".into(), json!(false));
    obj.insert("descriptors".into(), json!(true));
    obj.insert("external_signer".into(), json!(false));
    obj.insert("blank".into(), json!(w.flags().blank));
    if let Some(b) = w.birthtime() {
        obj.insert("birthtime".into(), json!(b));
    }
    Ok(Value::Object(obj))
}

// ------------------------------------------------------------------------ addresses and labels

fn getnewaddress(w: &mut Wallet, params: &Params) -> RpcResult {
    if !w.can_get_addresses(false) {
        return Err(RpcError::wallet("Error: This wallet has no available keys"));
    }
    let label = match params.get(0) {
        Some(v) => label_from(v)?,
        None => String::new(),
    };
    let ot = match params.opt_str(1, "address_type")? {
        Some(s) => parse_output_type(s, "address")?,
        None => OutputType::Bech32m,
    };
    let addr = w.new_destination(ot, false, Some(&label))?;
    Ok(json!(addr.to_string()))
}

fn getrawchangeaddress(w: &mut Wallet, params: &Params) -> RpcResult {
    if !w.can_get_addresses(true) {
        return Err(RpcError::wallet("Error: This wallet has no available keys"));
    }
    let ot = match params.opt_str(0, "address_type")? {
        Some(s) => parse_output_type(s, "address")?,
        None => OutputType::Bech32m,
    };
    let addr = w.new_destination(ot, true, None)?;
    Ok(json!(addr.to_string()))
}

fn getaddressinfo(w: &mut Wallet, params: &Params) -> RpcResult {
    let s = params.str(0, "address")?;
    let addr = keys::parse_address(s).ok_or_else(|| {
        RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Invalid or unsupported Segwit (Bech32) or Base58 encoding.")
    })?;
    let spk = addr.script_pubkey();
    let mut obj = Map::new();
    obj.insert("address".into(), json!(addr.to_string()));
    obj.insert("scriptPubKey".into(), json!(hex::encode(spk.as_bytes())));
    let mine = w.derived_for(&spk);
    obj.insert("ismine".into(), json!(mine.is_some()));
    obj.insert("solvable".into(), json!(mine.is_some()));
    if let Some((origin, derived)) = &mine {
        if let Some(desc) = keys::inferred_descriptor(derived) {
            obj.insert("desc".into(), json!(desc));
        }
        if let Some((stored, _)) = w.descriptor(origin.0) {
            obj.insert("parent_desc".into(), json!(stored.desc));
        }
    }
    obj.insert("iswatchonly".into(), json!(mine.is_some() && w.flags().disable_private_keys));
    obj.insert("isscript".into(), json!(spk.is_p2sh() || spk.is_p2wsh()));
    obj.insert("iswitness".into(), json!(spk.is_witness_program()));
    if let Some(version) = spk.witness_version() {
        obj.insert("witness_version".into(), json!(version.to_num()));
        obj.insert("witness_program".into(), json!(hex::encode(&spk.as_bytes()[2..])));
    }
    if let Some((origin, derived)) = &mine {
        if derived.keys.len() == 1 && !spk.is_p2tr() {
            obj.insert("pubkey".into(), json!(derived.keys[0].to_string()));
            obj.insert("iscompressed".into(), json!(derived.keys[0].compressed));
        }
        obj.insert("ischange".into(), json!(w.is_change(&spk)));
        if let Some((stored, _)) = w.descriptor(origin.0) {
            obj.insert("timestamp".into(), json!(stored.timestamp));
        }
        if let Some(def) = &derived.definite {
            let mut single = None;
            miniscript::ForEachKey::for_each_key(def, |k| {
                single = Some(k.clone());
                true
            });
            if let (Some(k), 1) = (single, derived.keys.len()) {
                let (fp, path) = keys::key_origin(&k, &derived.keys[0]);
                if !path.is_empty() {
                    obj.insert("hdkeypath".into(), json!(keys::normalize_hardened(&format!("m/{path}"))));
                }
                obj.insert("hdmasterfingerprint".into(), json!(fp.to_string()));
            }
        }
    } else {
        obj.insert("ischange".into(), json!(false));
    }
    let labels: Vec<String> =
        w.address_book_entry(&addr.to_string()).map(|e| vec![e.label.clone()]).unwrap_or_default();
    obj.insert("labels".into(), json!(labels));
    Ok(Value::Object(obj))
}

fn setlabel(w: &mut Wallet, params: &Params) -> RpcResult {
    let s = params.str(0, "address")?;
    let addr =
        keys::parse_address(s).ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Invalid Bitcoin address"))?;
    let label = label_from(params.required(1, "label")?)?;
    w.set_label(&addr, &label)?;
    Ok(Value::Null)
}

fn listlabels(w: &mut Wallet, params: &Params) -> RpcResult {
    let purpose = params.opt_str(0, "purpose")?;
    let labels: BTreeSet<String> =
        w.address_book().values().filter(|e| purpose.is_none_or(|p| e.purpose == p)).map(|e| e.label.clone()).collect();
    Ok(json!(labels.into_iter().collect::<Vec<_>>()))
}

fn getaddressesbylabel(w: &mut Wallet, params: &Params) -> RpcResult {
    let label = label_from(params.required(0, "label")?)?;
    let mut obj = Map::new();
    for (addr, e) in w.address_book() {
        if e.label == label {
            obj.insert(addr.clone(), json!({ "purpose": e.purpose }));
        }
    }
    if obj.is_empty() {
        return Err(RpcError::new(RPC_WALLET_INVALID_LABEL_NAME, format!("No addresses with label {label}")));
    }
    Ok(Value::Object(obj))
}

// ------------------------------------------------------------------------ descriptors

fn import_timestamp(req: &Value) -> Result<u64, RpcError> {
    match req.get("timestamp") {
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or(0).max(1) as u64),
        Some(Value::String(s)) if s == "now" => Ok(now_secs()),
        Some(v) => Err(RpcError::type_error(format!(
            "Expected number or \"now\" timestamp value for key. got type {}",
            type_name(v)
        ))),
        None => Err(RpcError::type_error("Missing required timestamp field for key")),
    }
}

fn parse_range(v: &Value) -> Result<(u32, u32), RpcError> {
    let (low, high) = match v {
        Value::Number(n) => (0, n.as_i64().ok_or_else(|| expected("number", v))?),
        Value::Array(a) if a.len() == 2 && a[0].is_number() && a[1].is_number() => {
            let low = a[0].as_i64().ok_or_else(|| expected("number", &a[0]))?;
            let high = a[1].as_i64().ok_or_else(|| expected("number", &a[1]))?;
            if low > high {
                return Err(RpcError::invalid_parameter(
                    "Range specified as [begin,end] must not have begin after end",
                ));
            }
            (low, high)
        }
        _ => return Err(RpcError::invalid_parameter("Range must be specified as end or as [begin,end]")),
    };
    if low < 0 || (low >> 31) != 0 {
        return Err(RpcError::invalid_parameter("Range should be greater or equal than 0"));
    }
    if high < 0 || (high >> 31) != 0 {
        return Err(RpcError::invalid_parameter("End of range is too high"));
    }
    if high >= low + 1_000_000 {
        return Err(RpcError::invalid_parameter("Range is too large"));
    }
    Ok((low as u32, high as u32))
}

fn import_one(w: &mut Wallet, req: &Value, timestamp: u64) -> Result<Vec<String>, RpcError> {
    let obj = req.as_object().ok_or_else(|| expected("object", req))?;
    let desc = match obj_get(obj, "desc") {
        None => return Err(RpcError::invalid_parameter("Descriptor not found.")),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(expected("string", v)),
    };
    let active = obj_bool(obj, "active")?.unwrap_or(false);
    let label = match obj.get("label") {
        None => None,
        Some(v) => Some(label_from(v)?),
    };
    let range = match obj_get(obj, "range") {
        None => None,
        Some(v) => Some(parse_range(v)?),
    };
    let next_index = match obj_i64(obj, "next_index")? {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| RpcError::invalid_parameter("next_index is out of range"))?),
    };
    let internal = obj_bool(obj, "internal")?;
    let request = ImportRequest { desc, active, range, next_index, timestamp, internal, label };
    w.import_descriptor(&request)
}

fn importdescriptors(w: &mut Wallet, params: &Params) -> RpcResult {
    let requests = params.array(0, "requests")?.clone();
    w.ensure_unlocked()?;
    let mut out = Vec::new();
    for req in &requests {
        let timestamp = import_timestamp(req)?;
        let mut entry = Map::new();
        match import_one(w, req, timestamp) {
            Ok(warnings) => {
                entry.insert("success".into(), json!(true));
                push_warnings(&mut entry, warnings);
            }
            Err(e) => {
                entry.insert("success".into(), json!(false));
                entry.insert("error".into(), e.to_json());
            }
        }
        out.push(Value::Object(entry));
    }
    Ok(Value::Array(out))
}

fn listdescriptors(w: &mut Wallet, params: &Params) -> RpcResult {
    let private = params.opt_bool(0, "private")?.unwrap_or(false);
    if private && w.flags().disable_private_keys {
        return Err(RpcError::wallet("Can't get private descriptor string for watch-only wallets"));
    }
    let secrets = if private {
        w.ensure_unlocked()?;
        w.private_descriptors()?
    } else {
        Vec::new()
    };
    let mut entries: Vec<(String, Value)> = Vec::new();
    for (i, (d, kind)) in w.descriptors().enumerate() {
        let text = secrets.get(i).cloned().flatten().unwrap_or_else(|| d.desc.clone());
        let mut e = Map::new();
        e.insert("desc".into(), json!(text));
        e.insert("timestamp".into(), json!(d.timestamp));
        e.insert("active".into(), json!(d.active));
        if d.active {
            e.insert("internal".into(), json!(d.internal));
        }
        if kind.is_range() {
            e.insert("range".into(), json!([d.range_start, d.range_end.saturating_sub(1)]));
            e.insert("next".into(), json!(d.next_index));
            e.insert("next_index".into(), json!(d.next_index));
        }
        entries.push((text, Value::Object(e)));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(json!({
        "wallet_name": w.name(),
        "descriptors": entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }))
}

fn backupwallet(w: &mut Wallet, params: &Params) -> RpcResult {
    let dest = std::path::PathBuf::from(params.str(0, "destination")?);
    let dest = if dest.is_dir() {
        dest.join(format!("{}.json", if w.name().is_empty() { "wallet" } else { w.name() }))
    } else {
        dest
    };
    let bytes = std::fs::read(w.file_path()).map_err(|_| RpcError::wallet("Error: Wallet backup failed!"))?;
    crate::atomic_file::write(&dest, &bytes).map_err(|_| RpcError::wallet("Error: Wallet backup failed!"))?;
    Ok(Value::Null)
}

// ------------------------------------------------------------------------ balances and coins

fn getbalance(w: &mut Wallet, chain: &mut dyn ChainView, params: &Params) -> RpcResult {
    if let Some(d) = params.opt_str(0, "dummy")? {
        if d != "*" {
            return Err(RpcError::new(RPC_METHOD_DEPRECATED, "dummy first argument must be excluded or set to \"*\"."));
        }
    }
    let min_conf = params.opt_i64(1, "minconf")?.unwrap_or(0);
    let _ = params.opt_bool(2, "include_watchonly")?;
    if params.opt_bool(3, "avoid_reuse")? == Some(true) && !w.flags().avoid_reuse {
        return Err(RpcError::wallet("wallet does not have the \"avoid reuse\" feature enabled"));
    }
    let coins = w.list_coins(&*chain);
    Ok(value_from_sat(balances(&coins, min_conf).trusted as i64))
}

fn getbalances(w: &mut Wallet, chain: &mut dyn ChainView) -> RpcResult {
    let coins = w.list_coins(&*chain);
    let b = balances(&coins, 0);
    let mut mine = Map::new();
    mine.insert("trusted".into(), value_from_sat(b.trusted as i64));
    mine.insert("untrusted_pending".into(), value_from_sat(b.untrusted_pending as i64));
    mine.insert("immature".into(), value_from_sat(b.immature as i64));
    if w.flags().avoid_reuse {
        mine.insert("used".into(), value_from_sat(0));
    }
    Ok(json!({ "mine": Value::Object(mine) }))
}

fn coin_entry(w: &Wallet, c: &WalletCoin) -> Value {
    let spk = &c.txout.script_pubkey;
    let mut e = Map::new();
    e.insert("txid".into(), json!(c.outpoint.txid.to_string()));
    e.insert("vout".into(), json!(c.outpoint.vout));
    if let Some(addr) = keys::address_of(spk) {
        let a = addr.to_string();
        e.insert("address".into(), json!(a));
        if let Some(entry) = w.address_book_entry(&a) {
            e.insert("label".into(), json!(entry.label));
        }
    }
    let derived = w.derived_for(spk);
    if let Some((_, d)) = &derived {
        let (redeem, witness) = keys::redeem_and_witness_scripts(d);
        if let Some(r) = redeem {
            e.insert("redeemScript".into(), json!(hex::encode(r.as_bytes())));
        }
        if let Some(ws) = witness {
            e.insert("witnessScript".into(), json!(hex::encode(ws.as_bytes())));
        }
    }
    e.insert("scriptPubKey".into(), json!(hex::encode(spk.as_bytes())));
    e.insert("amount".into(), value_from_amount(c.txout.value));
    e.insert("confirmations".into(), json!(c.confirmations));
    e.insert("spendable".into(), json!(true));
    e.insert("solvable".into(), json!(derived.is_some()));
    if let Some((origin, d)) = &derived {
        if let Some(desc) = keys::inferred_descriptor(d) {
            e.insert("desc".into(), json!(desc));
        }
        let parents: Vec<String> = w.descriptor(origin.0).map(|(s, _)| vec![s.desc.clone()]).unwrap_or_default();
        e.insert("parent_descs".into(), json!(parents));
    } else {
        e.insert("parent_descs".into(), json!([]));
    }
    if w.flags().avoid_reuse {
        e.insert("reused".into(), json!(false));
    }
    e.insert("safe".into(), json!(c.trusted));
    Value::Object(e)
}

fn listunspent(w: &mut Wallet, chain: &mut dyn ChainView, params: &Params) -> RpcResult {
    let min_conf = params.opt_i64(0, "minconf")?.unwrap_or(1);
    let max_conf = params.opt_i64(1, "maxconf")?.unwrap_or(9_999_999);
    let mut destinations: Vec<ScriptBuf> = Vec::new();
    if let Some(addrs) = opt_array(params, 2, "addresses")? {
        for a in addrs {
            let s = a.as_str().ok_or_else(|| expected("string", a))?;
            let addr = keys::parse_address(s).ok_or_else(|| bad_address(s))?;
            let spk = addr.script_pubkey();
            if destinations.contains(&spk) {
                return Err(RpcError::invalid_parameter(format!("Invalid parameter, duplicated address: {s}")));
            }
            destinations.push(spk);
        }
    }
    let include_unsafe = params.opt_bool(3, "include_unsafe")?.unwrap_or(true);
    let (mut min_amount, mut max_amount, mut min_sum, mut max_count) = (0u64, u64::MAX, u64::MAX, u64::MAX);
    let mut include_immature = false;
    if let Some(q) = params.opt_object(4, "query_options")? {
        check_obj(
            q,
            &[
                ("minimumAmount", Kind::Any),
                ("maximumAmount", Kind::Any),
                ("minimumSumAmount", Kind::Any),
                ("maximumCount", Kind::Num),
                ("include_immature_coinbase", Kind::Bool),
            ],
        )?;
        if let Some(v) = obj_get(q, "minimumAmount") {
            min_amount = amount_from_value(v)?.to_sat();
        }
        if let Some(v) = obj_get(q, "maximumAmount") {
            max_amount = amount_from_value(v)?.to_sat();
        }
        if let Some(v) = obj_get(q, "minimumSumAmount") {
            min_sum = amount_from_value(v)?.to_sat();
        }
        if let Some(n) = obj_i64(q, "maximumCount")? {
            max_count = if n <= 0 { u64::MAX } else { n as u64 };
        }
        include_immature = obj_bool(q, "include_immature_coinbase")?.unwrap_or(false);
    }
    let coins = w.list_coins(&*chain);
    let mut out = Vec::new();
    let mut sum = 0u64;
    for c in &coins {
        let conf = i64::from(c.confirmations);
        if conf < min_conf || conf > max_conf {
            continue;
        }
        if !c.mature && !include_immature {
            continue;
        }
        if !include_unsafe && !c.trusted {
            continue;
        }
        if w.is_locked_coin(&c.outpoint) {
            continue;
        }
        let v = c.txout.value.to_sat();
        if v < min_amount || v > max_amount {
            continue;
        }
        if !destinations.is_empty() && !destinations.contains(&c.txout.script_pubkey) {
            continue;
        }
        out.push(coin_entry(w, c));
        sum += v;
        if out.len() as u64 >= max_count || sum >= min_sum {
            break;
        }
    }
    Ok(Value::Array(out))
}

fn lockunspent(w: &mut Wallet, chain: &mut dyn ChainView, params: &Params) -> RpcResult {
    let unlock = match params.required(0, "unlock")? {
        Value::Bool(b) => *b,
        v => return Err(expected("bool", v)),
    };
    let persistent = params.opt_bool(2, "persistent")?.unwrap_or(false);
    let Some(list) = opt_array(params, 1, "transactions")? else {
        if unlock {
            w.unlock_all_coins()?;
        }
        return Ok(json!(true));
    };
    let coins = w.list_coins(&*chain);
    let mut outpoints = Vec::new();
    for item in list {
        let o = item.as_object().ok_or_else(|| expected("object", item))?;
        check_obj(o, &[("txid", Kind::Str), ("vout", Kind::Num)])?;
        let txid = parse_txid(o.get("txid"), "txid")?;
        let vout = obj_i64(o, "vout")?.ok_or_else(|| RpcError::type_error("Missing vout"))?;
        if vout < 0 {
            return Err(RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"));
        }
        let op = OutPoint { txid, vout: vout_u32(vout)? };
        if !coins.iter().any(|c| c.outpoint == op) {
            let known_tx = coins.iter().any(|c| c.outpoint.txid == txid) || w.knows_txid(&txid);
            return Err(RpcError::invalid_parameter(if known_tx {
                "Invalid parameter, expected unspent output"
            } else {
                "Invalid parameter, unknown transaction"
            }));
        }
        let locked = w.is_locked_coin(&op);
        if unlock && !locked {
            return Err(RpcError::invalid_parameter("Invalid parameter, expected locked output"));
        }
        if !unlock && locked && !persistent {
            return Err(RpcError::invalid_parameter("Invalid parameter, output already locked"));
        }
        outpoints.push(op);
    }
    for op in outpoints {
        if unlock {
            w.unlock_coin(&op)?;
        } else {
            w.lock_coin(op, persistent)?;
        }
    }
    Ok(json!(true))
}

// ------------------------------------------------------------------------ fees and funding

/// Where the fee rate came from (Core's `FeeReason` strings).
struct FeeChoice {
    rate: FeeRate,
    reason: &'static str,
}

/// Core's `SetFeeEstimateMode` + `GetMinimumFeeRate` without a fee estimator: an explicit rate,
/// or the fallback fee.
fn choose_fee_rate(
    fee_rate: Option<&Value>,
    fee_rate_btc_kvb: Option<&Value>,
    conf_target: Option<&Value>,
    estimate_mode: Option<&str>,
    fallback: Option<bitcoin::FeeRate>,
) -> Result<Result<FeeChoice, String>, RpcError> {
    if let Some(fr) = fee_rate {
        if conf_target.is_some() {
            return Err(RpcError::invalid_parameter("Cannot specify both conf_target and fee_rate. Please provide either a confirmation target in blocks for automatic fee estimation, or an explicit fee rate."));
        }
        if estimate_mode.is_some_and(|m| !m.eq_ignore_ascii_case("unset")) {
            return Err(RpcError::invalid_parameter("Cannot specify both estimate_mode and fee_rate"));
        }
        let rate = fixed_from_value(fr, 3)? as u64;
        return Ok(Ok(FeeChoice { rate: FeeRate::from_sat_per_kvb(rate), reason: "PayTxFee set" }));
    }
    if let Some(fr) = fee_rate_btc_kvb {
        let rate = amount_from_value(fr)?.to_sat();
        return Ok(Ok(FeeChoice { rate: FeeRate::from_sat_per_kvb(rate), reason: "PayTxFee set" }));
    }
    if let Some(m) = estimate_mode {
        if !["unset", "economical", "conservative"].iter().any(|x| x.eq_ignore_ascii_case(m)) {
            return Err(RpcError::invalid_parameter(
                "Invalid estimate_mode parameter, must be one of: \"unset\", \"economical\", \"conservative\"",
            ));
        }
    }
    if let Some(t) = conf_target {
        let n = t.as_i64().ok_or_else(|| expected("number", t))?;
        if !(1..=1008).contains(&n) {
            return Err(RpcError::invalid_parameter("Invalid conf_target, must be between 1 and 1008"));
        }
    }
    match fallback.map(|f| f.to_sat_per_kwu() * 4).filter(|r| *r > 0) {
        Some(kvb) => Ok(Ok(FeeChoice {
            rate: FeeRate::from_sat_per_kvb(kvb.max(funding::MIN_FEE_RATE.sat_per_kvb)),
            reason: "Fallback fee",
        })),
        None => Ok(Err(
            "Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or enable -fallbackfee.".to_string()
        )),
    }
}

/// Everything `FundTransaction` needs, parsed from fundrawtransaction/walletcreatefundedpsbt
/// options or sendtoaddress arguments.
struct FundOptions {
    add_inputs: bool,
    include_unsafe: bool,
    change_address: Option<ScriptBuf>,
    change_position: Option<usize>,
    change_type: Option<OutputType>,
    lock_unspents: bool,
    fee: Result<FeeChoice, String>,
    override_min_fee: bool,
    subtract_fee_from: BTreeSet<usize>,
    replaceable: Option<bool>,
    min_conf: i64,
    max_conf: Option<i64>,
    input_weights: Vec<(OutPoint, u64)>,
}

fn parse_sffo(v: Option<&Value>, n_outputs: usize, names: Option<&[String]>) -> Result<BTreeSet<usize>, RpcError> {
    let mut set = BTreeSet::new();
    let Some(v) = v else {
        return Ok(set);
    };
    let arr = v.as_array().ok_or_else(|| expected("array", v))?;
    for item in arr {
        let pos: i64 = match item {
            Value::String(s) => match names.and_then(|n| n.iter().position(|x| x == s)) {
                Some(p) => p as i64,
                None => {
                    return Err(RpcError::invalid_parameter(format!(
                        "Invalid parameter 'subtract fee from output', destination {s} not found in tx outputs"
                    )))
                }
            },
            Value::Number(n) => n.as_i64().unwrap_or(-1),
            other => {
                return Err(RpcError::invalid_parameter(format!(
                    "Invalid parameter 'subtract fee from output', invalid value type: {}",
                    type_name(other)
                )))
            }
        };
        if set.contains(&(pos.max(0) as usize)) && pos >= 0 {
            return Err(RpcError::invalid_parameter(format!(
                "Invalid parameter 'subtract fee from output', duplicated position: {pos}"
            )));
        }
        if pos < 0 {
            return Err(RpcError::invalid_parameter(format!(
                "Invalid parameter 'subtract fee from output', negative position: {pos}"
            )));
        }
        if pos as usize >= n_outputs {
            return Err(RpcError::invalid_parameter(format!(
                "Invalid parameter 'subtract fee from output', position too large: {pos}"
            )));
        }
        set.insert(pos as usize);
    }
    Ok(set)
}

fn parse_fund_options(
    options: Option<&Map<String, Value>>,
    n_outputs: usize,
    fallback: Option<bitcoin::FeeRate>,
    default_add_inputs: bool,
) -> Result<FundOptions, RpcError> {
    let empty = Map::new();
    let o = options.unwrap_or(&empty);
    check_obj(
        o,
        &[
            ("add_inputs", Kind::Bool),
            ("include_unsafe", Kind::Bool),
            ("add_to_wallet", Kind::Bool),
            ("changeAddress", Kind::Str),
            ("change_address", Kind::Str),
            ("changePosition", Kind::Num),
            ("change_position", Kind::Num),
            ("change_type", Kind::Str),
            ("includeWatching", Kind::Bool),
            ("include_watching", Kind::Bool),
            ("inputs", Kind::Arr),
            ("lockUnspents", Kind::Bool),
            ("lock_unspents", Kind::Bool),
            ("locktime", Kind::Num),
            ("fee_rate", Kind::Any),
            ("feeRate", Kind::Any),
            ("psbt", Kind::Bool),
            ("solving_data", Kind::Obj),
            ("subtractFeeFromOutputs", Kind::Arr),
            ("subtract_fee_from_outputs", Kind::Arr),
            ("replaceable", Kind::Bool),
            ("conf_target", Kind::Num),
            ("estimate_mode", Kind::Str),
            ("minconf", Kind::Num),
            ("maxconf", Kind::Num),
            ("input_weights", Kind::Arr),
            ("max_tx_weight", Kind::Num),
        ],
    )?;
    let add_inputs = obj_bool(o, "add_inputs")?.unwrap_or(default_add_inputs);
    let change_address_str = obj_str(o, "change_address")?.or(obj_str(o, "changeAddress")?);
    let change_address = match change_address_str {
        Some(s) => Some(
            keys::parse_address(s)
                .ok_or_else(|| {
                    RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Change address must be a valid bitcoin address")
                })?
                .script_pubkey(),
        ),
        None => None,
    };
    let change_position = match obj_i64(o, "change_position")?.or(obj_i64(o, "changePosition")?) {
        Some(p) if p < 0 || p as usize > n_outputs => {
            return Err(RpcError::invalid_parameter("changePosition out of bounds"))
        }
        Some(p) => Some(p as usize),
        None => None,
    };
    let change_type = match obj_str(o, "change_type")? {
        Some(s) => {
            if change_address.is_some() {
                return Err(RpcError::invalid_parameter("Cannot specify both change address and address type options"));
            }
            Some(parse_output_type(s, "change")?)
        }
        None => None,
    };
    let lock_unspents = obj_bool(o, "lock_unspents")?.or(obj_bool(o, "lockUnspents")?).unwrap_or(false);
    let include_unsafe = obj_bool(o, "include_unsafe")?.unwrap_or(false);
    let fee_rate_btc = obj_get(o, "feeRate");
    if fee_rate_btc.is_some() {
        if obj_get(o, "fee_rate").is_some() {
            return Err(RpcError::invalid_parameter("Cannot specify both fee_rate (sat/vB) and feeRate (BTC/kvB)"));
        }
        if obj_get(o, "conf_target").is_some() {
            return Err(RpcError::invalid_parameter("Cannot specify both conf_target and feeRate. Please provide either a confirmation target in blocks for automatic fee estimation, or an explicit fee rate."));
        }
        if obj_get(o, "estimate_mode").is_some() {
            return Err(RpcError::invalid_parameter("Cannot specify both estimate_mode and feeRate"));
        }
    }
    let replaceable = obj_bool(o, "replaceable")?;
    let min_conf = obj_i64(o, "minconf")?.unwrap_or(0);
    if min_conf < 0 {
        return Err(RpcError::invalid_parameter("Negative minconf"));
    }
    let max_conf = obj_i64(o, "maxconf")?;
    if let Some(m) = max_conf {
        if m < min_conf {
            return Err(RpcError::invalid_parameter(format!("maxconf can't be lower than minconf: {m} < {min_conf}")));
        }
    }
    let fee = choose_fee_rate(
        obj_get(o, "fee_rate"),
        fee_rate_btc,
        obj_get(o, "conf_target"),
        obj_str(o, "estimate_mode")?,
        fallback,
    )?;
    let sffo_value = obj_get(o, "subtract_fee_from_outputs").or(obj_get(o, "subtractFeeFromOutputs"));
    let subtract_fee_from = parse_sffo(sffo_value, n_outputs, None)?;
    let mut input_weights = Vec::new();
    if let Some(Value::Array(items)) = obj_get(o, "input_weights") {
        for item in items {
            let io = item.as_object().ok_or_else(|| expected("object", item))?;
            let txid = parse_txid(io.get("txid"), "txid")?;
            let vout = obj_i64(io, "vout")?
                .ok_or_else(|| RpcError::invalid_parameter("Invalid parameter, missing vout key"))?;
            if vout < 0 {
                return Err(RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"));
            }
            let weight = obj_i64(io, "weight")?
                .ok_or_else(|| RpcError::invalid_parameter("Invalid parameter, missing weight key"))?;
            if weight < 165 {
                return Err(RpcError::invalid_parameter("Invalid parameter, weight cannot be less than 165 (41 bytes (size of outpoint + sequence + empty scriptSig) * 4 (witness scaling factor)) + 1 (empty witness)"));
            }
            if weight > 400_000 {
                return Err(RpcError::invalid_parameter(
                    "Invalid parameter, weight cannot be greater than the maximum standard tx weight of 400000",
                ));
            }
            input_weights.push((OutPoint { txid, vout: vout_u32(vout)? }, weight as u64));
        }
    }
    Ok(FundOptions {
        add_inputs,
        include_unsafe,
        change_address,
        change_position,
        change_type,
        lock_unspents,
        fee,
        override_min_fee: true,
        subtract_fee_from,
        replaceable,
        min_conf,
        max_conf,
        input_weights,
    })
}

struct FundOutcome {
    tx: Transaction,
    fee: Amount,
    change_position: Option<usize>,
    fee_reason: &'static str,
    /// Prevouts of every input (for signing).
    prevouts: Vec<TxOut>,
}

/// Core's `FundTransaction`: keeps the inputs/outputs of `tx`, adds wallet coins and change.
/// `error_code` is -4 for fundrawtransaction/walletcreatefundedpsbt and -6 for the send RPCs.
fn fund_transaction(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    tx: &Transaction,
    opts: &FundOptions,
    error_code: i32,
) -> Result<FundOutcome, RpcError> {
    let err = |m: &str| RpcError::new(error_code, m.to_string());
    if tx.output.is_empty() {
        return Err(RpcError::invalid_parameter("TX must have at least one output"));
    }
    let fee = match &opts.fee {
        Ok(f) => f,
        Err(m) => return Err(err(m)),
    };
    if !opts.override_min_fee && fee.rate < funding::MIN_FEE_RATE {
        return Err(err(&format!(
            "Fee rate ({}) is lower than the minimum fee rate setting ({})",
            fee.rate.to_sat_vb_string(),
            funding::MIN_FEE_RATE.to_sat_vb_string()
        )));
    }
    let coins = w.list_coins(&*chain);
    let rbf = opts.replaceable.unwrap_or(true);
    let new_sequence = if rbf { Sequence::ENABLE_RBF_NO_LOCKTIME } else { Sequence::ENABLE_LOCKTIME_NO_RBF };

    // Pre-selected inputs.
    let mut presets = Vec::new();
    for txin in &tx.input {
        let op = txin.previous_output;
        let txout = coins
            .iter()
            .find(|c| c.outpoint == op)
            .map(|c| c.txout.clone())
            .or_else(|| chain.get_unspent(&op))
            .ok_or_else(|| err(&format!("Not found pre-selected input {}", outpoint_string(&op))))?;
        let weight = if let Some((_, w8)) = opts.input_weights.iter().find(|(o, _)| *o == op) {
            Some(*w8)
        } else if let Some(w8) = w.input_weight(&txout.script_pubkey) {
            Some(w8)
        } else if !txin.script_sig.is_empty() || !txin.witness.is_empty() {
            Some(funding::signed_input_weight(txin))
        } else {
            None
        };
        let weight = weight.ok_or_else(|| err(&format!("Not solvable pre-selected input {}", outpoint_string(&op))))?;
        let segwit = w
            .is_segwit_script(&txout.script_pubkey)
            .unwrap_or(txout.script_pubkey.is_witness_program() || !txin.witness.is_empty());
        presets.push(InputInfo { outpoint: op, txout, weight, segwit, sequence: txin.sequence });
    }

    // Candidate wallet coins.
    let mut candidates = Vec::new();
    for c in &coins {
        let conf = i64::from(c.confirmations);
        if !c.mature || (!c.trusted && !opts.include_unsafe) || w.is_locked_coin(&c.outpoint) {
            continue;
        }
        if conf < opts.min_conf || opts.max_conf.is_some_and(|m| conf > m) {
            continue;
        }
        let Some(weight) = opts
            .input_weights
            .iter()
            .find(|(o, _)| *o == c.outpoint)
            .map(|(_, w8)| *w8)
            .or_else(|| w.input_weight(&c.txout.script_pubkey))
        else {
            continue;
        };
        let segwit = w.is_segwit_script(&c.txout.script_pubkey).unwrap_or(true);
        candidates.push(InputInfo {
            outpoint: c.outpoint,
            txout: c.txout.clone(),
            weight,
            segwit,
            sequence: new_sequence,
        });
    }

    // Change destination.
    let (change_script, change_origin, change_error) = match &opts.change_address {
        Some(s) => (s.clone(), None, None),
        None => {
            let ot = opts.change_type.unwrap_or_else(|| default_change_type(w));
            match w.peek_change(ot) {
                Ok((origin, spk)) => (spk, Some(origin), None),
                // Sized like a P2TR output; only an error if change turns out to be needed.
                Err(e) => (ScriptBuf::from_bytes([&[0x51u8, 0x20][..], &[0u8; 32]].concat()), None, Some(e)),
            }
        }
    };
    let params = FundParams {
        fee_rate: fee.rate,
        subtract_fee_from: opts.subtract_fee_from.clone(),
        change_script,
        change_position: opts.change_position,
        add_inputs: opts.add_inputs,
    };
    let funded = funding::fund(tx, &presets, &candidates, &params).map_err(|e| err(e.message()))?;
    if funded.used_change {
        if let Some(e) = change_error {
            return Err(err(&e.message));
        }
    }
    if funded.fee.to_sat() > funding::MAX_TX_FEE_SAT {
        return Err(err("Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)"));
    }
    if funded.used_change {
        if let Some(origin) = change_origin {
            w.mark_used(origin);
            w.save()?;
        }
    }
    if opts.lock_unspents {
        for txin in &funded.tx.input {
            w.lock_coin(txin.previous_output, false)?;
        }
    }
    let prevouts = funded
        .tx
        .input
        .iter()
        .map(|i| {
            presets
                .iter()
                .chain(candidates.iter())
                .find(|p| p.outpoint == i.previous_output)
                .map(|p| p.txout.clone())
                .unwrap_or(TxOut::NULL)
        })
        .collect();
    Ok(FundOutcome {
        tx: funded.tx,
        fee: funded.fee,
        change_position: funded.change_position,
        fee_reason: fee.reason,
        prevouts,
    })
}

fn default_change_type(w: &Wallet) -> OutputType {
    [OutputType::Bech32m, OutputType::Bech32, OutputType::P2shSegwit, OutputType::Legacy]
        .into_iter()
        .find(|ot| w.active_descriptor(*ot, true).is_some())
        .unwrap_or(OutputType::Bech32m)
}

fn fundrawtransaction(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    fallback: Option<bitcoin::FeeRate>,
    params: &Params,
) -> RpcResult {
    let hexstr = params.str(0, "hexstring")?;
    let iswitness = params.opt_bool(2, "iswitness")?;
    let (try_no_witness, try_witness) = match iswitness {
        None => (true, true),
        Some(true) => (false, true),
        Some(false) => (true, false),
    };
    let tx = decode_hex_tx(hexstr, try_no_witness, try_witness)
        .ok_or_else(|| RpcError::new(RPC_DESERIALIZATION_ERROR, "TX decode failed"))?;
    let options = match params.get(1) {
        None | Some(Value::Bool(_)) => None,
        Some(Value::Object(o)) => Some(o),
        Some(v) => return Err(expected("object", v)),
    };
    let opts = parse_fund_options(options, tx.output.len(), fallback, true)?;
    let out = fund_transaction(w, chain, &tx, &opts, RPC_WALLET_ERROR)?;
    Ok(json!({
        "hex": serialize_hex(&out.tx),
        "fee": value_from_amount(out.fee),
        "changepos": out.change_position.map(|p| p as i64).unwrap_or(-1),
    }))
}

/// Core's `AddOutputs`/`ParseOutputs` for walletcreatefundedpsbt-style outputs.
fn parse_outputs(v: &Value) -> Result<(Vec<TxOut>, Vec<String>), RpcError> {
    let mut pairs: Vec<(String, Value)> = Vec::new();
    match v {
        Value::Object(o) => pairs.extend(o.iter().map(|(k, v)| (k.clone(), v.clone()))),
        Value::Array(a) => {
            for item in a {
                let o = item.as_object().ok_or_else(|| {
                    RpcError::invalid_parameter("Invalid parameter, key-value pair must contain exactly one key")
                })?;
                if o.len() != 1 {
                    return Err(RpcError::invalid_parameter(
                        "Invalid parameter, key-value pair must contain exactly one key",
                    ));
                }
                pairs.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        _ => return Err(RpcError::invalid_parameter("Invalid parameter, output argument must be non-null")),
    }
    let mut outs = Vec::new();
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    let mut have_data = false;
    for (k, v) in pairs {
        if k == "data" {
            if have_data {
                return Err(RpcError::invalid_parameter("Invalid parameter, duplicate key: data"));
            }
            have_data = true;
            let s = v.as_str().ok_or_else(|| expected("string", &v))?;
            let data = hex::decode(s)
                .map_err(|_| RpcError::invalid_parameter(format!("Data must be hexadecimal string (not '{s}')")))?;
            let push = bitcoin::script::PushBytesBuf::try_from(data)
                .map_err(|_| RpcError::invalid_parameter("Data too large"))?;
            outs.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::new_op_return(push) });
        } else {
            let addr = keys::parse_address(&k).ok_or_else(|| bad_address(&k))?;
            if !seen.insert(k.clone()) {
                return Err(RpcError::invalid_parameter(format!("Invalid parameter, duplicated address: {k}")));
            }
            let amount = amount_from_value(&v)?;
            outs.push(TxOut { value: amount, script_pubkey: addr.script_pubkey() });
        }
        names.push(k);
    }
    Ok((outs, names))
}

fn walletcreatefundedpsbt(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    fallback: Option<bitcoin::FeeRate>,
    params: &Params,
) -> RpcResult {
    let inputs = opt_array(params, 0, "inputs")?.cloned().unwrap_or_default();
    let outputs_value = params.required(1, "outputs")?;
    let locktime = params.opt_i64(2, "locktime")?.unwrap_or(0);
    if !(0..=u32::MAX as i64).contains(&locktime) {
        return Err(RpcError::invalid_parameter("Invalid parameter, locktime out of range"));
    }
    let options = params.opt_object(3, "options")?;
    let bip32derivs = params.opt_bool(4, "bip32derivs")?.unwrap_or(true);
    let rbf = options.and_then(|o| o.get("replaceable")).and_then(Value::as_bool).unwrap_or(true);
    let mut txins = Vec::new();
    let mut weights = Vec::new();
    for item in &inputs {
        let o = item.as_object().ok_or_else(|| expected("object", item))?;
        let txid = parse_txid(o.get("txid"), "txid")?;
        let vout =
            obj_i64(o, "vout")?.ok_or_else(|| RpcError::invalid_parameter("Invalid parameter, missing vout key"))?;
        if vout < 0 {
            return Err(RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"));
        }
        let default_seq = if rbf {
            Sequence::ENABLE_RBF_NO_LOCKTIME
        } else if locktime != 0 {
            Sequence::ENABLE_LOCKTIME_NO_RBF
        } else {
            Sequence::MAX
        };
        let sequence = match obj_i64(o, "sequence")? {
            Some(s) if !(0..=u32::MAX as i64).contains(&s) => {
                return Err(RpcError::invalid_parameter("Invalid parameter, sequence number is out of range"))
            }
            Some(s) => Sequence(s as u32),
            None => default_seq,
        };
        let op = OutPoint { txid, vout: vout_u32(vout)? };
        if let Some(wt) = obj_i64(o, "weight")? {
            weights.push(json!({ "txid": txid.to_string(), "vout": vout, "weight": wt }));
        }
        txins.push(bitcoin::TxIn {
            previous_output: op,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: bitcoin::Witness::new(),
        });
    }
    let (outs, names) = parse_outputs(outputs_value)?;
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::from_consensus(locktime as u32),
        input: txins,
        output: outs,
    };
    let mut options_owned = options.cloned().unwrap_or_default();
    if !weights.is_empty() {
        if options_owned.contains_key("input_weights") {
            return Err(RpcError::invalid_parameter(
                "Input weights should be specified in inputs rather than in options.",
            ));
        }
        options_owned.insert("input_weights".into(), Value::Array(weights));
    }
    // Positions or output addresses; parsed below with the output names.
    let sffo = options_owned
        .remove("subtractFeeFromOutputs")
        .or(options_owned.remove("subtract_fee_from_outputs"))
        .filter(|v| !v.is_null());
    if let Some(v) = &sffo {
        if !v.is_array() {
            return Err(RpcError::type_error(format!(
                "Expected type array for subtractFeeFromOutputs, got {}",
                type_name(v)
            )));
        }
    }
    let mut opts = parse_fund_options(Some(&options_owned), tx.output.len(), fallback, tx.input.is_empty())?;
    opts.subtract_fee_from = parse_sffo(sffo.as_ref(), tx.output.len(), Some(&names))?;
    let out = fund_transaction(w, chain, &tx, &opts, RPC_WALLET_ERROR)?;
    let mut psbt = Psbt::from_unsigned_tx(out.tx.clone())
        .map_err(|e| RpcError::new(RPC_DESERIALIZATION_ERROR, format!("TX decode failed {e}")))?;
    for (input, prev) in psbt.inputs.iter_mut().zip(out.prevouts.iter()) {
        if prev.script_pubkey.is_witness_program() || w.is_mine(&prev.script_pubkey) {
            input.witness_utxo = Some(prev.clone());
        }
    }
    signer::update_psbt(w, &mut psbt, bip32derivs);
    Ok(json!({
        "psbt": base64::engine::general_purpose::STANDARD.encode(psbt.serialize()),
        "fee": value_from_amount(out.fee),
        "changepos": out.change_position.map(|p| p as i64).unwrap_or(-1),
    }))
}

// ------------------------------------------------------------------------ signing

fn signrawtransactionwithwallet(w: &mut Wallet, chain: &mut dyn ChainView, params: &Params) -> RpcResult {
    let hexstr = params.str(0, "hexstring")?;
    let tx = decode_hex_tx(hexstr, true, true).ok_or_else(|| {
        RpcError::new(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.")
    })?;
    w.ensure_unlocked()?;
    let mut prevouts: Vec<Option<PrevoutInfo>> = tx
        .input
        .iter()
        .map(|i| {
            chain.get_unspent(&i.previous_output).map(|o| PrevoutInfo {
                script_pubkey: o.script_pubkey,
                amount: Some(o.value),
                redeem_script: None,
                witness_script: None,
            })
        })
        .collect();
    if let Some(list) = opt_array(params, 1, "prevtxs")? {
        for item in list {
            let o = item.as_object().ok_or_else(|| expected("object", item))?;
            let txid = parse_txid(o.get("txid"), "txid")?;
            let vout = obj_i64(o, "vout")?
                .ok_or_else(|| RpcError::invalid_parameter("Invalid parameter, missing vout key"))?;
            if vout < 0 {
                return Err(RpcError::invalid_parameter("vout cannot be negative"));
            }
            let spk_value = o
                .get("scriptPubKey")
                .ok_or_else(|| RpcError::invalid_parameter("Invalid parameter, missing scriptPubKey key"))?;
            let spk = parse_hex_script(spk_value, "scriptPubKey")?;
            let amount = match obj_get(o, "amount") {
                Some(v) => Some(amount_from_value(v)?),
                None => None,
            };
            let redeem_script = obj_get(o, "redeemScript").map(|v| parse_hex_script(v, "redeemScript")).transpose()?;
            let witness_script =
                obj_get(o, "witnessScript").map(|v| parse_hex_script(v, "witnessScript")).transpose()?;
            let op = OutPoint { txid, vout: vout_u32(vout)? };
            for (i, txin) in tx.input.iter().enumerate() {
                if txin.previous_output != op {
                    continue;
                }
                if let Some(existing) = &prevouts[i] {
                    if existing.script_pubkey != spk {
                        return Err(RpcError::new(
                            RPC_DESERIALIZATION_ERROR,
                            format!(
                                "Previous output scriptPubKey mismatch:\n{}\nvs:\n{}",
                                existing.script_pubkey.to_asm_string(),
                                spk.to_asm_string()
                            ),
                        ));
                    }
                    continue;
                }
                prevouts[i] = Some(PrevoutInfo {
                    script_pubkey: spk.clone(),
                    amount,
                    redeem_script: redeem_script.clone(),
                    witness_script: witness_script.clone(),
                });
            }
        }
    }
    let sighash = signer::parse_sighash(params.opt_str(2, "sighashtype")?)?;
    let keys = if w.flags().disable_private_keys { None } else { Some(w.signing_keys()?) };
    let s = Signer { wallet: w, keys: keys.as_ref() };
    let result = signer::sign_transaction(&s, &tx, &prevouts, sighash)?;
    let mut obj = Map::new();
    obj.insert("hex".into(), json!(serialize_hex(&result.tx)));
    obj.insert("complete".into(), json!(result.complete));
    if !result.errors.is_empty() {
        let errs: Vec<Value> = result
            .errors
            .iter()
            .map(|(i, e)| {
                let txin = &result.tx.input[*i];
                json!({
                    "txid": txin.previous_output.txid.to_string(),
                    "vout": txin.previous_output.vout,
                    "witness": txin.witness.iter().map(hex::encode).collect::<Vec<_>>(),
                    "scriptSig": hex::encode(txin.script_sig.as_bytes()),
                    "sequence": txin.sequence.0,
                    "error": e,
                })
            })
            .collect();
        obj.insert("errors".into(), Value::Array(errs));
    }
    Ok(Value::Object(obj))
}

fn walletprocesspsbt(w: &mut Wallet, chain: &mut dyn ChainView, params: &Params) -> RpcResult {
    let text = params.str(0, "psbt")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| RpcError::new(RPC_DESERIALIZATION_ERROR, "TX decode failed invalid base64"))?;
    let mut psbt = Psbt::deserialize(&bytes)
        .map_err(|e| RpcError::new(RPC_DESERIALIZATION_ERROR, format!("TX decode failed {e}")))?;
    let sign = params.opt_bool(1, "sign")?.unwrap_or(true);
    let sighash = signer::parse_sighash(params.opt_str(2, "sighashtype")?)?;
    let bip32derivs = params.opt_bool(3, "bip32derivs")?.unwrap_or(true);
    let finalize = params.opt_bool(4, "finalize")?.unwrap_or(true);
    if sign {
        w.ensure_unlocked()?;
    }
    // Like Core's FillPSBT, supply the UTXO of inputs that spend our outputs.
    for i in 0..psbt.inputs.len() {
        if signer::utxo_of(&psbt, i).is_some() || signer::is_finalized(&psbt.inputs[i]) {
            continue;
        }
        if let Some(txout) = chain.get_unspent(&psbt.unsigned_tx.input[i].previous_output) {
            if w.is_mine(&txout.script_pubkey) {
                psbt.inputs[i].witness_utxo = Some(txout);
            }
        }
    }
    signer::update_psbt(w, &mut psbt, bip32derivs);
    let keys = if sign && !w.flags().disable_private_keys { Some(w.signing_keys()?) } else { None };
    {
        let s = Signer { wallet: w, keys: keys.as_ref() };
        signer::sign_psbt(&s, &mut psbt, sighash)?;
    }
    let complete;
    let mut hex_tx = None;
    if finalize {
        complete = signer::finalize_psbt(&mut psbt);
        if complete {
            hex_tx = Some(serialize_hex(&signer::extract(&psbt)));
        }
    } else {
        let mut probe = psbt.clone();
        complete = signer::finalize_psbt(&mut probe);
        if complete {
            hex_tx = Some(serialize_hex(&signer::extract(&probe)));
        }
    }
    let mut obj = Map::new();
    obj.insert("psbt".into(), json!(base64::engine::general_purpose::STANDARD.encode(psbt.serialize())));
    obj.insert("complete".into(), json!(complete));
    if let Some(h) = hex_tx {
        obj.insert("hex".into(), json!(h));
    }
    Ok(Value::Object(obj))
}

// ------------------------------------------------------------------------ sending

/// Core's `SendMoney`: fund, sign, broadcast. Returns the txid (or the verbose object).
#[allow(clippy::too_many_arguments)]
fn send_money(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    outputs: Vec<TxOut>,
    subtract_fee_from: BTreeSet<usize>,
    replaceable: Option<bool>,
    fee: Result<FeeChoice, String>,
    verbose: bool,
) -> RpcResult {
    w.ensure_unlocked()?;
    if w.flags().disable_private_keys {
        return Err(RpcError::wallet("Error: Private keys are disabled for this wallet"));
    }
    let lock_time = absolute::LockTime::from_height(chain.tip_height()).unwrap_or(absolute::LockTime::ZERO);
    let tx = funding::new_payment(outputs, lock_time);
    let opts = FundOptions {
        add_inputs: true,
        include_unsafe: false,
        change_address: None,
        change_position: None,
        change_type: None,
        lock_unspents: false,
        fee,
        override_min_fee: false,
        subtract_fee_from,
        replaceable,
        min_conf: 0,
        max_conf: None,
        input_weights: Vec::new(),
    };
    let funded = fund_transaction(w, chain, &tx, &opts, RPC_WALLET_INSUFFICIENT_FUNDS)?;
    let keys = w.signing_keys()?;
    let prevouts: Vec<Option<PrevoutInfo>> = funded
        .prevouts
        .iter()
        .map(|o| {
            Some(PrevoutInfo {
                script_pubkey: o.script_pubkey.clone(),
                amount: Some(o.value),
                redeem_script: None,
                witness_script: None,
            })
        })
        .collect();
    let signed = {
        let s = Signer { wallet: w, keys: Some(&keys) };
        signer::sign_transaction(&s, &funded.tx, &prevouts, None)?
    };
    if !signed.complete {
        return Err(RpcError::new(RPC_WALLET_INSUFFICIENT_FUNDS, "Signing transaction failed"));
    }
    let txid = chain.broadcast(&signed.tx)?;
    w.note_txid(txid);
    if verbose {
        Ok(json!({ "txid": txid.to_string(), "fee_reason": funded.fee_reason }))
    } else {
        Ok(json!(txid.to_string()))
    }
}

fn avoid_reuse_flag(w: &Wallet, v: Option<bool>) -> Result<bool, RpcError> {
    let can = w.flags().avoid_reuse;
    let want = v.unwrap_or(can);
    if want && !can {
        return Err(RpcError::wallet("wallet does not have the \"avoid reuse\" feature enabled"));
    }
    Ok(want)
}

fn sendtoaddress(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    fallback: Option<bitcoin::FeeRate>,
    params: &Params,
) -> RpcResult {
    let _comment = params.opt_str(2, "comment")?;
    let _comment_to = params.opt_str(3, "comment_to")?;
    let replaceable = params.opt_bool(5, "replaceable")?;
    avoid_reuse_flag(w, params.opt_bool(8, "avoid_reuse")?)?;
    let fee = choose_fee_rate(params.get(9), None, params.get(6), params.opt_str(7, "estimate_mode")?, fallback)?;
    w.ensure_unlocked()?;
    let addr_str = params.str(0, "address")?;
    let addr = keys::parse_address(addr_str).ok_or_else(|| bad_address(addr_str))?;
    let amount = amount_from_value(params.required(1, "amount")?)?;
    let mut sffo = BTreeSet::new();
    if params.opt_bool(4, "subtractfeefromamount")?.unwrap_or(false) {
        sffo.insert(0);
    }
    let verbose = params.opt_bool(10, "verbose")?.unwrap_or(false);
    let outputs = vec![TxOut { value: amount, script_pubkey: addr.script_pubkey() }];
    send_money(w, chain, outputs, sffo, replaceable, fee, verbose)
}

fn sendmany(
    w: &mut Wallet,
    chain: &mut dyn ChainView,
    fallback: Option<bitcoin::FeeRate>,
    params: &Params,
) -> RpcResult {
    if let Some(d) = params.opt_str(0, "dummy")? {
        if !d.is_empty() {
            return Err(RpcError::invalid_parameter("Dummy value must be set to \"\""));
        }
    }
    let amounts = params.get(1).ok_or_else(|| RpcError::invalid_parameter("Missing required parameter: amounts"))?;
    let amounts_obj = amounts.as_object().ok_or_else(|| expected("object", amounts))?;
    let _comment = params.opt_str(3, "comment")?;
    let replaceable = params.opt_bool(5, "replaceable")?;
    let fee = choose_fee_rate(params.get(8), None, params.get(6), params.opt_str(7, "estimate_mode")?, fallback)?;
    let (outputs, names) = parse_outputs(&Value::Object(amounts_obj.clone()))?;
    let sffo = parse_sffo(params.get(4), outputs.len(), Some(&names))?;
    let verbose = params.opt_bool(9, "verbose")?.unwrap_or(false);
    send_money(w, chain, outputs, sffo, replaceable, fee, verbose)
}
