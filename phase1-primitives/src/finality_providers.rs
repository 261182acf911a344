//! Finality-provider files (spec §3.5): the API file `{"finality_providers": [...]}` and a single
//! registry entry `{description, eots_pk, commission}`.
//!
//! Entries may carry the key as `eots_pk` (preferred when non-empty) or `btc_pk` (older files).
//! Unknown fields are ignored, as the Go loaders ignore them (the signet registry carries a
//! `deposit` object, for instance).

use std::fmt;

use bitcoin::XOnlyPublicKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Human-readable description of a finality provider (all fields may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Display name.
    #[serde(default)]
    pub moniker: String,
    /// Keybase-style identity.
    #[serde(default)]
    pub identity: String,
    /// Web site.
    #[serde(default)]
    pub website: String,
    /// Security contact.
    #[serde(default)]
    pub security_contact: String,
    /// Free text.
    #[serde(default)]
    pub details: String,
}

/// One finality provider as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityProvider {
    /// Description.
    pub description: Description,
    /// Commission as a decimal string in [0, 1] (kept as written, e.g. "0.05").
    pub commission: String,
    /// The x-only BTC (EOTS) key, 64 lowercase hex characters.
    pub btc_pk: String,
}

impl FinalityProvider {
    /// The key as an x-only public key (always valid for parsed entries).
    pub fn xonly_pk(&self) -> Option<XOnlyPublicKey> {
        let bytes = <[u8; 32] as bitcoin::hex::FromHex>::from_hex(&self.btc_pk).ok()?;
        XOnlyPublicKey::from_slice(&bytes).ok()
    }
}

/// A finality-provider file problem, naming the entry (index and moniker when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FpError {
    index: Option<usize>,
    moniker: Option<String>,
    message: String,
}

impl FpError {
    fn file(message: String) -> FpError {
        FpError { index: None, moniker: None, message }
    }

    /// Index of the offending entry in `finality_providers`, if the error is about one.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The message without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.index, &self.moniker) {
            (Some(i), Some(m)) => write!(f, "finality_providers[{i}] (moniker \"{m}\"): {}", self.message),
            (Some(i), None) => write!(f, "finality_providers[{i}]: {}", self.message),
            (None, Some(m)) => write!(f, "finality provider \"{m}\": {}", self.message),
            (None, None) => write!(f, "finality providers: {}", self.message),
        }
    }
}

impl std::error::Error for FpError {}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    description: Description,
    #[serde(default)]
    commission: Value,
    #[serde(default)]
    eots_pk: Option<String>,
    #[serde(default)]
    btc_pk: Option<String>,
}

/// Checks a commission string: a plain non-negative decimal (`digits[.digits]`) between 0 and 1
/// inclusive. Returns the message on failure.
pub fn validate_commission(s: &str) -> Result<(), String> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(format!("commission \"{s}\" is not a decimal number (write it like \"0.05\" for 5 %)"));
    }
    let int_value = int.trim_start_matches('0');
    let frac_zero = frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    let in_range = int_value.is_empty() || (int_value == "1" && frac_zero);
    if !in_range {
        return Err(format!("commission \"{s}\" is outside [0, 1] (\"1.00\" means 100 %)"));
    }
    Ok(())
}

fn entry(value: &Value) -> Result<FinalityProvider, FpError> {
    let moniker = value.get("description").and_then(|d| d.get("moniker")).and_then(Value::as_str).map(str::to_owned);
    let fail = |message: String| FpError { index: None, moniker: moniker.clone(), message };
    if !value.is_object() {
        return Err(fail(format!("an entry must be a JSON object, got {value}")));
    }
    let raw: RawEntry = serde_json::from_value(value.clone()).map_err(|e| fail(format!("malformed entry: {e}")))?;
    let pk = match (raw.eots_pk.as_deref(), raw.btc_pk.as_deref()) {
        (Some(e), _) if !e.is_empty() => e,
        (_, Some(b)) if !b.is_empty() => b,
        _ => return Err(fail("has neither a non-empty \"eots_pk\" nor \"btc_pk\" (add the 64-hex x-only key)".into())),
    };
    let bytes = <[u8; 32] as bitcoin::hex::FromHex>::from_hex(pk)
        .map_err(|_| fail(format!("key \"{pk}\" must be 64 hex characters (a 32-byte x-only key)")))?;
    XOnlyPublicKey::from_slice(&bytes)
        .map_err(|_| fail(format!("key \"{pk}\" is not a valid x-only secp256k1 point (check for a typo)")))?;
    let commission = match raw.commission {
        Value::String(s) => s,
        Value::Null => return Err(fail("missing \"commission\" (a decimal string such as \"0.05\")".into())),
        other => return Err(fail(format!("commission must be a decimal string such as \"0.05\", got {other}"))),
    };
    validate_commission(&commission).map_err(fail)?;
    Ok(FinalityProvider { description: raw.description, commission, btc_pk: pk.to_ascii_lowercase() })
}

/// Parses either a finality-providers API file (`{"finality_providers": [...]}`) or one registry
/// file (`{description, eots_pk, commission}`), validating every entry: the key is 64 hex
/// characters and a valid x-only point, the commission a decimal in [0, 1], and no key appears
/// twice. Entries keep file order.
pub fn parse_finality_providers(json: &str) -> Result<Vec<FinalityProvider>, FpError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| FpError::file(format!("not valid JSON: {e} (check the file's syntax)")))?;
    let list: Vec<FinalityProvider> = match value.get("finality_providers") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| entry(v).map_err(|e| FpError { index: Some(i), ..e }))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(FpError::file(format!("\"finality_providers\" must be an array of entries, got {other}")))
        }
        None if value.is_object() => vec![entry(&value)?],
        None => return Err(FpError::file("the file must be a JSON object".into())),
    };
    for (i, fp) in list.iter().enumerate() {
        if let Some(j) = list[..i].iter().position(|p| p.btc_pk == fp.btc_pk) {
            return Err(FpError {
                index: Some(i),
                moniker: Some(fp.description.moniker.clone()),
                message: format!(
                    "key {} is already used by finality_providers[{j}] (moniker \"{}\"); each finality provider needs its own key",
                    fp.btc_pk, list[j].description.moniker
                ),
            });
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::validate_commission;

    #[test]
    fn commission_rules() {
        for ok in ["0", "0.05", "0.050000000000000000", "1", "1.00", "0.99", "00.5", "1.000"] {
            assert!(validate_commission(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".5", "5.", "-0.1", "1.01", "2", "0,05", "5%", "1e-2", " 0.1", "10.0"] {
            assert!(validate_commission(bad).is_err(), "{bad}");
        }
    }
}
