//! Positional JSON-RPC parameters with Bitcoin Core's type-error messages.

use super::error::{RpcError, RPC_INVALID_PARAMETER};
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<Value>);

impl Params {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The i-th parameter, treating JSON `null` as absent (as Core does).
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i).filter(|v| !v.is_null())
    }

    fn expected(name: &str, what: &str, got: &Value) -> RpcError {
        let got = type_name(got);
        RpcError::type_error(format!("JSON value of type {got} for field {name} is not of expected type {what}"))
    }

    pub fn required(&self, i: usize, name: &str) -> Result<&Value, RpcError> {
        self.get(i).ok_or_else(|| RpcError::new(RPC_INVALID_PARAMETER, format!("Missing required parameter: {name}")))
    }

    pub fn str(&self, i: usize, name: &str) -> Result<&str, RpcError> {
        let v = self.required(i, name)?;
        v.as_str().ok_or_else(|| Self::expected(name, "string", v))
    }

    pub fn opt_str(&self, i: usize, name: &str) -> Result<Option<&str>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| Self::expected(name, "string", v)),
        }
    }

    pub fn i64(&self, i: usize, name: &str) -> Result<i64, RpcError> {
        let v = self.required(i, name)?;
        v.as_i64().ok_or_else(|| Self::expected(name, "number", v))
    }

    pub fn opt_i64(&self, i: usize, name: &str) -> Result<Option<i64>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| Self::expected(name, "number", v)),
        }
    }

    pub fn opt_f64(&self, i: usize, name: &str) -> Result<Option<f64>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| Self::expected(name, "number", v)),
        }
    }

    /// Booleans; Core also accepts 0/1 for the old verbose flags.
    pub fn opt_bool(&self, i: usize, name: &str) -> Result<Option<bool>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Self::expected(name, "bool", v)),
        }
    }

    pub fn array(&self, i: usize, name: &str) -> Result<&Vec<Value>, RpcError> {
        let v = self.required(i, name)?;
        v.as_array().ok_or_else(|| Self::expected(name, "array", v))
    }

    pub fn opt_object(&self, i: usize, name: &str) -> Result<Option<&serde_json::Map<String, Value>>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => v.as_object().map(Some).ok_or_else(|| Self::expected(name, "object", v)),
        }
    }
}

/// Core's name for a JSON value's type, as used in its type-error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a BTC amount (number or numeric string) into satoshis, as Core's AmountFromValue.
pub fn amount_from_value(v: &Value) -> Result<bitcoin::Amount, RpcError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(RpcError::type_error("Amount is not a number or string")),
    };
    let amount = bitcoin::Amount::from_str_in(&s, bitcoin::Denomination::Bitcoin)
        .or_else(|_| s.parse::<f64>().map_err(|_| ()).and_then(|f| bitcoin::Amount::from_btc(f).map_err(|_| ())))
        .map_err(|_| RpcError::type_error("Invalid amount"))?;
    if amount > bitcoin::Amount::MAX_MONEY {
        return Err(RpcError::type_error("Amount out of range"));
    }
    Ok(amount)
}

/// Satoshis as Core prints amounts: a JSON number with 8 decimals.
pub fn value_from_amount(amount: bitcoin::Amount) -> Value {
    value_from_sat(amount.to_sat() as i64)
}

pub fn value_from_sat(sat: i64) -> Value {
    let sign = if sat < 0 { "-" } else { "" };
    let abs = sat.unsigned_abs();
    let text = format!("{sign}{}.{:08}", abs / 100_000_000, abs % 100_000_000);
    serde_json::from_str(&text).expect("amount text is a valid JSON number")
}

/// Argument names of each non-wallet method (wallet ones live in `rpc::wallet`), in order, so
/// named-parameter requests (a JSON object) can be turned into positional ones as Core does.
const ARG_NAMES: &[(&str, &[&str])] = &[
    ("getblockhash", &["height"]),
    ("getblockheader", &["blockhash", "verbose"]),
    ("getblock", &["blockhash", "verbosity"]),
    ("gettxout", &["txid", "n", "include_mempool"]),
    ("getrawmempool", &["verbose", "mempool_sequence"]),
    ("getmempoolentry", &["txid"]),
    ("invalidateblock", &["blockhash"]),
    ("reconsiderblock", &["blockhash"]),
    ("getrawtransaction", &["txid", "verbosity", "blockhash"]),
    ("decoderawtransaction", &["hexstring", "iswitness"]),
    ("sendrawtransaction", &["hexstring", "maxfeerate", "maxburnamount"]),
    ("testmempoolaccept", &["rawtxs", "maxfeerate"]),
    ("generatetoaddress", &["nblocks", "address", "maxtries"]),
    ("generatetodescriptor", &["nblocks", "descriptor", "maxtries"]),
    ("generateblock", &["output", "transactions", "submit"]),
    ("submitblock", &["hexdata", "dummy"]),
];

pub fn named_to_positional(method: &str, named: &serde_json::Map<String, Value>) -> Result<Params, RpcError> {
    let names = ARG_NAMES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, n)| *n)
        .or_else(|| super::wallet::param_names(method))
        .unwrap_or(&[]);
    let mut out: Vec<Value> = Vec::new();
    for (key, value) in named {
        let pos = names
            .iter()
            .position(|n| n == key)
            .ok_or_else(|| RpcError::new(RPC_INVALID_PARAMETER, format!("Unknown named parameter {key}")))?;
        if out.len() <= pos {
            out.resize(pos + 1, Value::Null);
        }
        out[pos] = value.clone();
    }
    Ok(Params(out))
}
