//! Global parameters (`global-params.json`): format (spec §3.1), validation (§3.2, networks
//! `parameters/parser` v0.2.2) and version selection (§3.3).
//!
//! [`GlobalParams::parse`] is the only way in: it checks the JSON shape (unknown fields are
//! rejected so that a typo in a params file cannot pass silently), then applies every rule of the
//! Go parser in the Go parser's order — all per-version rules of entry *i*, then the cross-version
//! rules between *i* and *i − 1* — and precomputes the [`CovenantCommittee`] of each version.
//! Serialising a [`GlobalParams`] gives the `/v1/global-params` `data` shape (all fields present,
//! `staking_cap`/`cap_height` emitted as 0 when unset).

use std::fmt;

use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::PublicKey;
use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::committee::CovenantCommittee;

/// Minimum value of an unbonding output, in satoshis (`MinUnbondingOutputValue`).
pub const MIN_UNBONDING_OUTPUT_VALUE: u64 = 1000;

/// The JSON field names of one version, in the order the Go structs (and the API) emit them.
pub const VERSION_FIELDS: [&str; 14] = [
    "version",
    "activation_height",
    "staking_cap",
    "cap_height",
    "tag",
    "covenant_pks",
    "covenant_quorum",
    "unbonding_time",
    "unbonding_fee",
    "max_staking_amount",
    "min_staking_amount",
    "max_staking_time",
    "min_staking_time",
    "confirmation_depth",
];

/// One validated parameters version. Field names and meaning are exactly the JSON fields of §3.1;
/// numbers are narrowed to the types the Go parser produces once the rules hold.
///
/// Fields are public for reading. The covenant committee is computed when the version is
/// validated; after changing `covenant_pks` or `covenant_quorum` by hand, build a fresh version
/// with [`ParamsVersion::from_fields`] instead of relying on [`ParamsVersion::committee`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsVersion {
    /// Version number (consecutive in the file).
    pub version: u64,
    /// First BTC height at which this version applies.
    pub activation_height: u64,
    /// Value cap in satoshis (0 when the version is time-capped).
    pub staking_cap: u64,
    /// Last BTC height of the active window (0 when the version is value-capped).
    pub cap_height: u64,
    /// The 4-byte OP_RETURN tag (hex string in JSON).
    pub tag: [u8; 4],
    /// Covenant keys, 33-byte compressed (hex strings in JSON), in file order.
    pub covenant_pks: Vec<PublicKey>,
    /// Number of covenant signatures the scripts require.
    pub covenant_quorum: u32,
    /// Unbonding output timelock in blocks.
    pub unbonding_time: u16,
    /// Unbonding transaction fee in satoshis.
    pub unbonding_fee: u64,
    /// Largest valid staking value in satoshis (inclusive).
    pub max_staking_amount: u64,
    /// Smallest valid staking value in satoshis (inclusive).
    pub min_staking_amount: u64,
    /// Largest valid staking time in blocks (inclusive).
    pub max_staking_time: u16,
    /// Smallest valid staking time in blocks (inclusive).
    pub min_staking_time: u16,
    /// Confirmations before a block is final for this version.
    pub confirmation_depth: u16,
    committee: CovenantCommittee,
}

/// The unvalidated JSON fields of one version, as the Go `VersionedGlobalParams` struct holds them.
/// Feed it to [`ParamsVersion::from_fields`] to validate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamsFields {
    /// `version`.
    pub version: u64,
    /// `activation_height`.
    pub activation_height: u64,
    /// `staking_cap` (0 = absent).
    pub staking_cap: u64,
    /// `cap_height` (0 = absent).
    pub cap_height: u64,
    /// `tag`, hex.
    pub tag: String,
    /// `covenant_pks`, hex.
    pub covenant_pks: Vec<String>,
    /// `covenant_quorum`.
    pub covenant_quorum: u64,
    /// `unbonding_time`.
    pub unbonding_time: u64,
    /// `unbonding_fee`.
    pub unbonding_fee: u64,
    /// `max_staking_amount`.
    pub max_staking_amount: u64,
    /// `min_staking_amount`.
    pub min_staking_amount: u64,
    /// `max_staking_time`.
    pub max_staking_time: u64,
    /// `min_staking_time`.
    pub min_staking_time: u64,
    /// `confirmation_depth`.
    pub confirmation_depth: u64,
}

/// A params file problem: which entry (array index and version number, when known), which field,
/// and a message that says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError {
    index: Option<usize>,
    version: Option<u64>,
    field: Option<String>,
    message: String,
}

impl ParamsError {
    fn new(field: Option<&str>, message: String) -> ParamsError {
        ParamsError { index: None, version: None, field: field.map(str::to_owned), message }
    }

    fn at(mut self, index: Option<usize>, version: Option<u64>) -> ParamsError {
        self.index = self.index.or(index);
        self.version = self.version.or(version);
        self
    }

    /// Position of the offending entry in the `versions` array, if the error is about one.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The `version` number of the offending entry, if known.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The offending JSON field, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.version) {
            (Some(i), Some(v)) => write!(f, "global params versions[{i}] (version {v}): {}", self.message),
            (Some(i), None) => write!(f, "global params versions[{i}]: {}", self.message),
            (None, Some(v)) => write!(f, "global params version {v}: {}", self.message),
            (None, None) => write!(f, "global params: {}", self.message),
        }
    }
}

impl std::error::Error for ParamsError {}

fn err(field: &str, message: String) -> ParamsError {
    ParamsError::new(Some(field), message)
}

/// Levenshtein distance, for "did you mean" hints on unknown fields.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_field(name: &str, known: &[&str]) -> ParamsError {
    let best = known.iter().map(|k| (edit_distance(name, k), *k)).min();
    let hint = match best {
        Some((d, k)) if d <= 3 => format!(" (did you mean \"{k}\"?)"),
        _ => format!(" (known fields: {})", known.join(", ")),
    };
    err(name, format!("unknown field \"{name}\"{hint}; remove or rename it"))
}

fn get_u64(obj: &Map<String, Value>, name: &str, required: bool) -> Result<u64, ParamsError> {
    match obj.get(name) {
        None if required => Err(err(name, format!("missing field \"{name}\" (every version needs it)"))),
        None => Ok(0),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Some(other) => {
            Err(err(name, format!("{name} must be a non-negative integer that fits in 64 bits, got {other}")))
        }
    }
}

fn get_string(obj: &Map<String, Value>, name: &str) -> Result<String, ParamsError> {
    match obj.get(name) {
        None => Err(err(name, format!("missing field \"{name}\" (every version needs it)"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(err(name, format!("{name} must be a hex string, got {other}"))),
    }
}

fn get_string_array(obj: &Map<String, Value>, name: &str) -> Result<Vec<String>, ParamsError> {
    match obj.get(name) {
        None => Err(err(name, format!("missing field \"{name}\" (every version needs it)"))),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(err(name, format!("{name}[{i}] must be a hex string, got {other}"))),
            })
            .collect(),
        Some(other) => Err(err(name, format!("{name} must be an array of hex strings, got {other}"))),
    }
}

impl ParamsFields {
    /// Reads the fields of one version from a JSON object, rejecting unknown fields and values of
    /// the wrong JSON type (`staking_cap` and `cap_height` may be absent and then mean 0).
    pub fn from_json_value(value: &Value) -> Result<ParamsFields, ParamsError> {
        let Value::Object(obj) = value else {
            return Err(ParamsError::new(None, format!("a version must be a JSON object, got {value}")));
        };
        if let Some(k) = obj.keys().find(|k| !VERSION_FIELDS.contains(&k.as_str())) {
            return Err(unknown_field(k, &VERSION_FIELDS));
        }
        let version = get_u64(obj, "version", true)?;
        let with_version = |e: ParamsError| e.at(None, Some(version));
        Ok(ParamsFields {
            version,
            activation_height: get_u64(obj, "activation_height", true).map_err(with_version)?,
            staking_cap: get_u64(obj, "staking_cap", false).map_err(with_version)?,
            cap_height: get_u64(obj, "cap_height", false).map_err(with_version)?,
            tag: get_string(obj, "tag").map_err(with_version)?,
            covenant_pks: get_string_array(obj, "covenant_pks").map_err(with_version)?,
            covenant_quorum: get_u64(obj, "covenant_quorum", true).map_err(with_version)?,
            unbonding_time: get_u64(obj, "unbonding_time", true).map_err(with_version)?,
            unbonding_fee: get_u64(obj, "unbonding_fee", true).map_err(with_version)?,
            max_staking_amount: get_u64(obj, "max_staking_amount", true).map_err(with_version)?,
            min_staking_amount: get_u64(obj, "min_staking_amount", true).map_err(with_version)?,
            max_staking_time: get_u64(obj, "max_staking_time", true).map_err(with_version)?,
            min_staking_time: get_u64(obj, "min_staking_time", true).map_err(with_version)?,
            confirmation_depth: get_u64(obj, "confirmation_depth", true).map_err(with_version)?,
        })
    }
}

/// `parseBtcValue`: ≤ 2^63 − 1, then > 0.
fn btc_value(field: &str, v: u64) -> Result<u64, ParamsError> {
    if v > i64::MAX as u64 {
        return Err(err(
            field,
            format!("{field} {v} is too large (maximum {}) (use a smaller amount in satoshis)", i64::MAX),
        ));
    }
    if v == 0 {
        return Err(err(field, format!("{field} must be positive (set it to an amount in satoshis > 0)")));
    }
    Ok(v)
}

/// `parseTimeLockValue`: ≤ 65535, then > 0.
fn timelock(field: &str, v: u64) -> Result<u16, ParamsError> {
    if v > u64::from(u16::MAX) {
        return Err(err(field, format!("{field} {v} is too large (maximum 65535 blocks)")));
    }
    if v == 0 {
        return Err(err(field, format!("{field} must be positive (set it to a number of blocks in 1..=65535)")));
    }
    Ok(v as u16)
}

impl ParamsVersion {
    /// Validates one version with every per-version rule of §3.2, in the Go parser's order:
    ///
    /// 1. tag is hex of exactly 4 bytes;
    /// 2. covenant_pks is non-empty;
    /// 3. covenant_quorum ≤ number of keys, ≤ 2^32 − 1, and positive;
    /// 4. each covenant key is a 33-byte compressed SEC key (and, beyond the Go parser, no two keys
    ///    share an x coordinate, since such a committee could never build a script);
    /// 5. max_staking_amount, then min_staking_amount: positive and ≤ 2^63 − 1; max ≥ min;
    /// 6. unbonding_time in 1..=65535; unbonding_fee positive and ≤ 2^63 − 1;
    /// 7. min_staking_amount ≥ unbonding_fee + 1000;
    /// 8. max_staking_time, then min_staking_time in 1..=65535; max ≥ min;
    /// 9. confirmation_depth in 2..=65535; activation_height positive;
    /// 10. exactly one of staking_cap and cap_height non-zero; staking_cap ≤ 2^63 − 1 and
    ///     ≥ max_staking_amount when set.
    pub fn from_fields(p: &ParamsFields) -> Result<ParamsVersion, ParamsError> {
        Self::validate(p).map_err(|e| e.at(None, Some(p.version)))
    }

    fn validate(p: &ParamsFields) -> Result<ParamsVersion, ParamsError> {
        let tag_vec = Vec::<u8>::from_hex(&p.tag).map_err(|_| {
            err("tag", format!("tag \"{}\" is not valid hex (use 8 hex characters, e.g. \"62626e31\")", p.tag))
        })?;
        let tag: [u8; 4] = tag_vec.as_slice().try_into().map_err(|_| {
            err(
                "tag",
                format!(
                    "tag \"{}\" decodes to {} byte(s); it must be exactly 4 bytes (8 hex characters)",
                    p.tag,
                    tag_vec.len()
                ),
            )
        })?;
        if p.covenant_pks.is_empty() {
            return Err(err(
                "covenant_pks",
                "covenant_pks is empty (list at least one 33-byte compressed covenant key)".into(),
            ));
        }
        if p.covenant_quorum > p.covenant_pks.len() as u64 {
            return Err(err(
                "covenant_quorum",
                format!(
                    "covenant_quorum {} exceeds the number of covenant_pks ({}) (lower covenant_quorum or add keys)",
                    p.covenant_quorum,
                    p.covenant_pks.len()
                ),
            ));
        }
        if p.covenant_quorum > u64::from(u32::MAX) {
            return Err(err(
                "covenant_quorum",
                format!("covenant_quorum {} is too large (maximum {})", p.covenant_quorum, u32::MAX),
            ));
        }
        if p.covenant_quorum == 0 {
            return Err(err("covenant_quorum", "covenant_quorum must be positive (at least 1)".into()));
        }
        let mut covenant_pks = Vec::with_capacity(p.covenant_pks.len());
        for (i, s) in p.covenant_pks.iter().enumerate() {
            let bytes = Vec::<u8>::from_hex(s).map_err(|_| {
                err(
                    "covenant_pks",
                    format!("covenant_pks[{i}] \"{s}\" is not valid hex (use a 66-hex-character compressed key)"),
                )
            })?;
            if bytes.len() != 33 {
                return Err(err(
                    "covenant_pks",
                    format!(
                        "covenant_pks[{i}] \"{s}\" is {} bytes; covenant keys must be 33-byte compressed SEC keys (66 hex characters starting 02 or 03)",
                        bytes.len()
                    ),
                ));
            }
            let pk = PublicKey::from_slice(&bytes).map_err(|_| {
                err(
                    "covenant_pks",
                    format!("covenant_pks[{i}] \"{s}\" is not a valid secp256k1 public key (check for a typo)"),
                )
            })?;
            covenant_pks.push(pk);
        }
        for i in 1..covenant_pks.len() {
            let xi = covenant_pks[i].x_only_public_key().0;
            if let Some(j) = covenant_pks[..i].iter().position(|k| k.x_only_public_key().0 == xi) {
                return Err(err(
                    "covenant_pks",
                    format!(
                        "covenant_pks[{i}] \"{}\" has the same x-only key as covenant_pks[{j}] \"{}\" (each covenant member needs a distinct key)",
                        p.covenant_pks[i], p.covenant_pks[j]
                    ),
                ));
            }
        }
        let max_staking_amount = btc_value("max_staking_amount", p.max_staking_amount)?;
        let min_staking_amount = btc_value("min_staking_amount", p.min_staking_amount)?;
        if max_staking_amount < min_staking_amount {
            return Err(err(
                "max_staking_amount",
                format!(
                    "max_staking_amount {max_staking_amount} must be >= min_staking_amount {min_staking_amount} (raise max_staking_amount or lower min_staking_amount)"
                ),
            ));
        }
        let unbonding_time = timelock("unbonding_time", p.unbonding_time)?;
        let unbonding_fee = btc_value("unbonding_fee", p.unbonding_fee)?;
        let floor = unbonding_fee + MIN_UNBONDING_OUTPUT_VALUE;
        if min_staking_amount < floor {
            return Err(err(
                "min_staking_amount",
                format!(
                    "min_staking_amount {min_staking_amount} must be >= unbonding_fee + {MIN_UNBONDING_OUTPUT_VALUE} = {floor} (raise min_staking_amount or lower unbonding_fee)"
                ),
            ));
        }
        let max_staking_time = timelock("max_staking_time", p.max_staking_time)?;
        let min_staking_time = timelock("min_staking_time", p.min_staking_time)?;
        if max_staking_time < min_staking_time {
            return Err(err(
                "max_staking_time",
                format!(
                    "max_staking_time {max_staking_time} must be >= min_staking_time {min_staking_time} (raise max_staking_time or lower min_staking_time)"
                ),
            ));
        }
        if p.confirmation_depth > u64::from(u16::MAX) {
            return Err(err(
                "confirmation_depth",
                format!("confirmation_depth {} is too large (maximum 65535)", p.confirmation_depth),
            ));
        }
        if p.confirmation_depth <= 1 {
            return Err(err(
                "confirmation_depth",
                format!("confirmation_depth {} must be at least 2", p.confirmation_depth),
            ));
        }
        if p.activation_height == 0 {
            return Err(err("activation_height", "activation_height must be positive (a BTC block height > 0)".into()));
        }
        match (p.staking_cap, p.cap_height) {
            (c, h) if c != 0 && h != 0 => {
                return Err(err(
                    "staking_cap",
                    format!(
                        "staking_cap {c} and cap_height {h} are both set; set exactly one of them (omit the other or make it 0)"
                    ),
                ))
            }
            (0, 0) => {
                return Err(err(
                    "staking_cap",
                    "neither staking_cap nor cap_height is set; set exactly one of them (a value cap in satoshis or the last height of a time cap)".into(),
                ))
            }
            (c, _) if c != 0 => {
                btc_value("staking_cap", c)?;
            }
            _ => {}
        }
        if p.staking_cap != 0 && p.staking_cap < max_staking_amount {
            return Err(err(
                "staking_cap",
                format!(
                    "staking_cap {} must be >= max_staking_amount {max_staking_amount} (raise staking_cap or lower max_staking_amount)",
                    p.staking_cap
                ),
            ));
        }
        let committee = CovenantCommittee::new(covenant_pks.clone(), p.covenant_quorum as u32)
            .map_err(|e| err("covenant_pks", e.to_string()))?;
        Ok(ParamsVersion {
            version: p.version,
            activation_height: p.activation_height,
            staking_cap: p.staking_cap,
            cap_height: p.cap_height,
            tag,
            covenant_pks,
            covenant_quorum: p.covenant_quorum as u32,
            unbonding_time,
            unbonding_fee,
            max_staking_amount,
            min_staking_amount,
            max_staking_time,
            min_staking_time,
            confirmation_depth: p.confirmation_depth as u16,
            committee,
        })
    }

    /// The unvalidated field form (e.g. to edit and re-validate).
    pub fn to_fields(&self) -> ParamsFields {
        ParamsFields {
            version: self.version,
            activation_height: self.activation_height,
            staking_cap: self.staking_cap,
            cap_height: self.cap_height,
            tag: self.tag.to_lower_hex_string(),
            covenant_pks: self.covenant_pks.iter().map(|k| k.to_string()).collect(),
            covenant_quorum: u64::from(self.covenant_quorum),
            unbonding_time: u64::from(self.unbonding_time),
            unbonding_fee: self.unbonding_fee,
            max_staking_amount: self.max_staking_amount,
            min_staking_amount: self.min_staking_amount,
            max_staking_time: u64::from(self.max_staking_time),
            min_staking_time: u64::from(self.min_staking_time),
            confirmation_depth: u64::from(self.confirmation_depth),
        }
    }

    /// The 4-byte tag.
    pub fn tag_bytes(&self) -> [u8; 4] {
        self.tag
    }

    /// The covenant committee of this version (precomputed).
    pub fn committee(&self) -> &CovenantCommittee {
        &self.committee
    }

    /// True for a time-capped version (`cap_height != 0`).
    pub fn is_time_capped(&self) -> bool {
        self.cap_height != 0
    }
}

impl Serialize for ParamsVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ParamsVersion", VERSION_FIELDS.len())?;
        s.serialize_field("version", &self.version)?;
        s.serialize_field("activation_height", &self.activation_height)?;
        s.serialize_field("staking_cap", &self.staking_cap)?;
        s.serialize_field("cap_height", &self.cap_height)?;
        s.serialize_field("tag", &self.tag.to_lower_hex_string())?;
        let pks: Vec<String> = self.covenant_pks.iter().map(|k| k.to_string()).collect();
        s.serialize_field("covenant_pks", &pks)?;
        s.serialize_field("covenant_quorum", &self.covenant_quorum)?;
        s.serialize_field("unbonding_time", &self.unbonding_time)?;
        s.serialize_field("unbonding_fee", &self.unbonding_fee)?;
        s.serialize_field("max_staking_amount", &self.max_staking_amount)?;
        s.serialize_field("min_staking_amount", &self.min_staking_amount)?;
        s.serialize_field("max_staking_time", &self.max_staking_time)?;
        s.serialize_field("min_staking_time", &self.min_staking_time)?;
        s.serialize_field("confirmation_depth", &self.confirmation_depth)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for ParamsVersion {
    /// Deserialises and validates one version (same rules as [`ParamsVersion::from_fields`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        ParamsFields::from_json_value(&v)
            .and_then(|f| ParamsVersion::from_fields(&f))
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// All parameters versions of a network, validated, each with its covenant committee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalParams {
    /// The versions in file order (versions increase by 1, activation heights strictly increase).
    pub versions: Vec<ParamsVersion>,
}

impl GlobalParams {
    /// Parses and validates a `global-params.json` text (see the module docs for the rules).
    pub fn parse(json: &str) -> Result<GlobalParams, ParamsError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ParamsError::new(None, format!("not valid JSON: {e} (check the file's syntax)")))?;
        Self::from_json_value(&value)
    }

    /// Like [`parse`](Self::parse), from an already parsed JSON value.
    pub fn from_json_value(value: &Value) -> Result<GlobalParams, ParamsError> {
        let Value::Object(top) = value else {
            return Err(ParamsError::new(None, "the file must be a JSON object {\"versions\": [...]}".into()));
        };
        if let Some(k) = top.keys().find(|k| k.as_str() != "versions") {
            return Err(unknown_field(k, &["versions"]));
        }
        let entries = match top.get("versions") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(err("versions", format!("\"versions\" must be an array of version objects, got {other}")))
            }
            None => return Err(err("versions", "missing field \"versions\" (an array of version objects)".into())),
        };
        // JSON shape first (as Go's json.Unmarshal fails before any rule is checked) ...
        let fields = entries
            .iter()
            .enumerate()
            .map(|(i, e)| ParamsFields::from_json_value(e).map_err(|err| err.at(Some(i), None)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_fields(&fields)
    }

    /// Validates a list of versions: for each entry the per-version rules, then the cross-version
    /// rules against the previous entry (version = previous + 1; a non-zero staking_cap ≥ the last
    /// earlier non-zero staking_cap; activation_height > previous activation_height).
    pub fn from_fields(fields: &[ParamsFields]) -> Result<GlobalParams, ParamsError> {
        if fields.is_empty() {
            return Err(err("versions", "\"versions\" is empty; global params must have at least one version".into()));
        }
        let mut versions: Vec<ParamsVersion> = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            let cv = ParamsVersion::validate(f).map_err(|e| e.at(Some(i), Some(f.version)))?;
            if let Some(pv) = versions.last() {
                let located = |e: ParamsError| e.at(Some(i), Some(cv.version));
                if Some(cv.version) != pv.version.checked_add(1) {
                    return Err(located(err(
                        "version",
                        format!(
                            "version {} must be the previous entry's version {} + 1 (versions must increase by exactly 1 in array order)",
                            cv.version, pv.version
                        ),
                    )));
                }
                let last_cap = fields[..i].iter().rev().map(|p| p.staking_cap).find(|&c| c > 0).unwrap_or(0);
                if cv.staking_cap != 0 && cv.staking_cap < last_cap {
                    return Err(located(err(
                        "staking_cap",
                        format!(
                            "staking_cap {} must be >= the last earlier non-zero staking_cap {last_cap} (staking caps cannot decrease)",
                            cv.staking_cap
                        ),
                    )));
                }
                if cv.activation_height <= pv.activation_height {
                    return Err(located(err(
                        "activation_height",
                        format!(
                            "activation_height {} must be greater than the previous version's activation_height {} (activation heights must strictly increase)",
                            cv.activation_height, pv.activation_height
                        ),
                    )));
                }
            }
            versions.push(cv);
        }
        Ok(GlobalParams { versions })
    }

    /// The version that applies at BTC height `h`: the largest `activation_height ≤ h`, with its
    /// index in [`versions`](Self::versions). `None` below the first activation height.
    pub fn for_height(&self, h: u64) -> Option<(usize, &ParamsVersion)> {
        self.versions.iter().enumerate().rev().find(|(_, v)| v.activation_height <= h)
    }

    /// Serialises to the `/v1/global-params` `data` JSON shape.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("params serialise")
    }
}

impl<'de> Deserialize<'de> for GlobalParams {
    /// Deserialises and validates (same as [`GlobalParams::parse`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        GlobalParams::from_json_value(&v).map_err(|e| D::Error::custom(e.to_string()))
    }
}
