//! Script integers and the Babylon Phase-1 leaf scripts (spec §1.1 and §1.3).
//!
//! Every builder here produces exactly the bytes btcd's `ScriptBuilder` produces in Babylon's Go
//! library (`btcstaking` v0.9.0): x-only keys are pushed as `0x20 ‖ 32 bytes`, integers use the
//! minimal script-number encoding, and multisig chains are sorted ascending by x-only bytes.

use std::fmt;

use bitcoin::{ScriptBuf, XOnlyPublicKey};

use crate::committee::CovenantCommittee;

/// `OP_0` / `OP_FALSE`.
pub const OP_0: u8 = 0x00;
/// `OP_1NEGATE`.
pub const OP_1NEGATE: u8 = 0x4f;
/// `OP_1` (`OP_2`..`OP_16` follow consecutively).
pub const OP_1: u8 = 0x51;
/// `OP_RETURN`.
pub const OP_RETURN: u8 = 0x6a;
/// `OP_NUMEQUAL`.
pub const OP_NUMEQUAL: u8 = 0x9c;
/// `OP_NUMEQUALVERIFY`.
pub const OP_NUMEQUALVERIFY: u8 = 0x9d;
/// `OP_CHECKSIG`.
pub const OP_CHECKSIG: u8 = 0xac;
/// `OP_CHECKSIGVERIFY`.
pub const OP_CHECKSIGVERIFY: u8 = 0xad;
/// `OP_CHECKSEQUENCEVERIFY`.
pub const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;
/// `OP_CHECKSIGADD` (BIP-342).
pub const OP_CHECKSIGADD: u8 = 0xba;
/// `OP_PUSHBYTES_32`: the push opcode in front of every x-only key.
pub const OP_PUSHBYTES_32: u8 = 0x20;

/// Largest encoding [`script_num`] produces: a 1-byte push opcode plus up to 9 number bytes.
pub const MAX_SCRIPT_NUM_LEN: usize = 10;

/// A script integer encoded as its minimal push, held on the stack (no allocation).
///
/// `as_bytes()` gives the opcode(s) to splice into a script: `OP_0`, `OP_1NEGATE`, `OP_1`..`OP_16`,
/// or `<len> <little-endian sign-magnitude bytes>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ScriptNum {
    buf: [u8; MAX_SCRIPT_NUM_LEN],
    len: u8,
}

impl ScriptNum {
    /// The encoded push (opcode and data bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl fmt::Debug for ScriptNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptNum(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Encodes `n` as btcd's `ScriptBuilder.AddInt64` does (spec §1.1).
///
/// `0` → `OP_0`; `-1` → `OP_1NEGATE`; `1..=16` → `OP_1..OP_16`; anything else is a minimal
/// little-endian sign-magnitude push, with an extra `0x00` (or `0x80` for negatives) byte when the
/// top bit of the last magnitude byte is set. Examples: `1000` → `02e803`, `64000` → `0300fa00`,
/// `65535` → `03ffff00`, `100` → `0164`, `6` → `56`.
pub fn script_num(n: i64) -> ScriptNum {
    let mut buf = [0u8; MAX_SCRIPT_NUM_LEN];
    if n == 0 {
        buf[0] = OP_0;
        return ScriptNum { buf, len: 1 };
    }
    if n == -1 || (1..=16).contains(&n) {
        buf[0] = if n == -1 { OP_1NEGATE } else { OP_1 + (n as u8 - 1) };
        return ScriptNum { buf, len: 1 };
    }
    let negative = n < 0;
    let mut abs = n.unsigned_abs();
    let mut len = 1usize;
    while abs > 0 {
        buf[len] = (abs & 0xff) as u8;
        abs >>= 8;
        len += 1;
    }
    if buf[len - 1] & 0x80 != 0 {
        buf[len] = if negative { 0x80 } else { 0x00 };
        len += 1;
    } else if negative {
        buf[len - 1] |= 0x80;
    }
    buf[0] = (len - 1) as u8;
    ScriptNum { buf, len: len as u8 }
}

/// Appends the minimal script-number push of `n` to `out` (see [`script_num`]).
pub fn push_script_num(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(script_num(n).as_bytes());
}

/// Why a script could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// A multisig or finality-provider part was given no keys.
    NoKeys {
        /// Which part of the script (e.g. "finality provider keys").
        what: &'static str,
    },
    /// The threshold is 0 or larger than the number of keys.
    BadThreshold {
        /// Which part of the script.
        what: &'static str,
        /// Requested threshold.
        threshold: u32,
        /// Number of keys given.
        keys: usize,
    },
    /// The same x-only key appears twice.
    DuplicateKey {
        /// Which part of the script.
        what: &'static str,
        /// The repeated key.
        key: XOnlyPublicKey,
    },
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::NoKeys { what } => write!(f, "{what}: no keys given (pass at least one key)"),
            ScriptError::BadThreshold { what, threshold, keys } => write!(
                f,
                "{what}: threshold {threshold} must be between 1 and the number of keys ({keys}) (fix the quorum)"
            ),
            ScriptError::DuplicateKey { what, key } => {
                write!(f, "{what}: key {key} appears more than once (every key must be distinct)")
            }
        }
    }
}

impl std::error::Error for ScriptError {}

/// Appends `0x20 ‖ key`.
pub(crate) fn push_xonly(out: &mut Vec<u8>, key: &XOnlyPublicKey) {
    out.push(OP_PUSHBYTES_32);
    out.extend_from_slice(&key.serialize());
}

/// The `<S> OP_CHECKSIGVERIFY` prefix shared by all three leaves, on the stack.
pub(crate) fn staker_prefix(staker: &XOnlyPublicKey) -> [u8; 34] {
    let mut p = [0u8; 34];
    p[0] = OP_PUSHBYTES_32;
    p[1..33].copy_from_slice(&staker.serialize());
    p[33] = OP_CHECKSIGVERIFY;
    p
}

/// The timelock leaf bytes on the stack: `20 S ad <num(T)> b2` (at most 39 bytes).
pub(crate) fn timelock_bytes(staker: &XOnlyPublicKey, time: u16) -> ([u8; 39], usize) {
    let mut b = [0u8; 39];
    b[..34].copy_from_slice(&staker_prefix(staker));
    let num = script_num(i64::from(time));
    let n = num.as_bytes();
    b[34..34 + n.len()].copy_from_slice(n);
    b[34 + n.len()] = OP_CHECKSEQUENCEVERIFY;
    (b, 35 + n.len())
}

/// Timelock leaf: `<staker> OP_CHECKSIGVERIFY <time> OP_CHECKSEQUENCEVERIFY` (staking timelock
/// with `time = staking_time`, or the unbonding output's timelock' with `time = unbonding_time`).
pub fn timelock_script(staker: &XOnlyPublicKey, time: u16) -> ScriptBuf {
    let (b, len) = timelock_bytes(staker, time);
    ScriptBuf::from_bytes(b[..len].to_vec())
}

/// Sorts keys ascending by x-only bytes and rejects duplicates.
fn sorted_distinct(keys: &[XOnlyPublicKey], what: &'static str) -> Result<Vec<XOnlyPublicKey>, ScriptError> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable_by_key(|k| k.serialize());
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(ScriptError::DuplicateKey { what, key: w[0] });
    }
    Ok(sorted)
}

/// Appends btcd's `buildMultiSigScript(keys, threshold, withVerify)` to `out`.
///
/// One key: `<K> OP_CHECKSIG` (or `OP_CHECKSIGVERIFY` with `verify`), threshold not encoded.
/// Two or more: keys sorted ascending, `<K1> OP_CHECKSIG <K2> OP_CHECKSIGADD … <Kn> OP_CHECKSIGADD
/// <threshold> OP_NUMEQUAL` (or `OP_NUMEQUALVERIFY` with `verify`).
fn append_multisig(
    out: &mut Vec<u8>,
    keys: &[XOnlyPublicKey],
    threshold: u32,
    verify: bool,
    what: &'static str,
) -> Result<(), ScriptError> {
    if keys.is_empty() {
        return Err(ScriptError::NoKeys { what });
    }
    if threshold == 0 || threshold as usize > keys.len() {
        return Err(ScriptError::BadThreshold { what, threshold, keys: keys.len() });
    }
    if keys.len() == 1 {
        push_xonly(out, &keys[0]);
        out.push(if verify { OP_CHECKSIGVERIFY } else { OP_CHECKSIG });
        return Ok(());
    }
    let sorted = sorted_distinct(keys, what)?;
    for (i, k) in sorted.iter().enumerate() {
        push_xonly(out, k);
        out.push(if i == 0 { OP_CHECKSIG } else { OP_CHECKSIGADD });
    }
    push_script_num(out, i64::from(threshold));
    out.push(if verify { OP_NUMEQUALVERIFY } else { OP_NUMEQUAL });
    Ok(())
}

/// A general x-only multisig script (keys are sorted here; see [`covenant_multisig_script`] for the
/// exact layout). `verify` selects the `…VERIFY` variants used when the script continues.
pub fn multisig_script(keys: &[XOnlyPublicKey], threshold: u32, verify: bool) -> Result<ScriptBuf, ScriptError> {
    let mut out = Vec::with_capacity(keys.len() * 34 + 6);
    append_multisig(&mut out, keys, threshold, verify, "multisig keys")?;
    Ok(ScriptBuf::from_bytes(out))
}

/// The covenant multisig (the tail of the unbonding and slashing leaves): keys sorted ascending,
/// `<K1> OP_CHECKSIG <K2> OP_CHECKSIGADD … <num(q)> OP_NUMEQUAL`; with one key `<K1> OP_CHECKSIG`.
pub fn covenant_multisig_script(keys: &[XOnlyPublicKey], quorum: u32) -> Result<ScriptBuf, ScriptError> {
    let mut out = Vec::with_capacity(keys.len() * 34 + 6);
    append_multisig(&mut out, keys, quorum, false, "covenant keys")?;
    Ok(ScriptBuf::from_bytes(out))
}

/// Appends the finality-provider part of the slashing leaf: one key → `<F> OP_CHECKSIGVERIFY`;
/// several → the sorted `CHECKSIG/CHECKSIGADD` chain ending `<1> OP_NUMEQUALVERIFY`.
pub(crate) fn append_fp_part(out: &mut Vec<u8>, fp_keys: &[XOnlyPublicKey]) -> Result<(), ScriptError> {
    append_multisig(out, fp_keys, 1, true, "finality provider keys")
}

/// Unbonding leaf: `<staker> OP_CHECKSIGVERIFY` ‖ covenant multisig.
pub fn unbonding_script(staker: &XOnlyPublicKey, committee: &CovenantCommittee) -> ScriptBuf {
    let cov = committee.multisig_script().as_bytes();
    let mut out = Vec::with_capacity(34 + cov.len());
    out.extend_from_slice(&staker_prefix(staker));
    out.extend_from_slice(cov);
    ScriptBuf::from_bytes(out)
}

/// Slashing leaf: `<staker> OP_CHECKSIGVERIFY` ‖ finality-provider part ‖ covenant multisig.
///
/// Phase-1 always has exactly one finality provider; several are supported as in Babylon's
/// library (its test vectors have 3- and 10-key cases). Fails on an empty or duplicated FP list.
pub fn slashing_script(
    staker: &XOnlyPublicKey,
    fp_keys: &[XOnlyPublicKey],
    committee: &CovenantCommittee,
) -> Result<ScriptBuf, ScriptError> {
    let cov = committee.multisig_script().as_bytes();
    let mut out = Vec::with_capacity(34 + fp_keys.len() * 34 + 3 + cov.len());
    out.extend_from_slice(&staker_prefix(staker));
    append_fp_part(&mut out, fp_keys)?;
    out.extend_from_slice(cov);
    Ok(ScriptBuf::from_bytes(out))
}

/// True if `script` is exactly `prefix ‖ middle ‖ suffix` (compared without allocating).
pub(crate) fn is_concat(script: &[u8], prefix: &[u8], middle: &[u8], suffix: &[u8]) -> bool {
    script.len() == prefix.len() + middle.len() + suffix.len()
        && script.starts_with(prefix)
        && script[prefix.len()..prefix.len() + middle.len()] == *middle
        && script.ends_with(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(n: i64) -> String {
        script_num(n).as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn script_num_examples_from_spec() {
        assert_eq!(hex(1000), "02e803");
        assert_eq!(hex(1008), "02f003");
        assert_eq!(hex(64000), "0300fa00");
        assert_eq!(hex(65535), "03ffff00");
        assert_eq!(hex(100), "0164");
        assert_eq!(hex(6), "56");
        assert_eq!(hex(0), "00");
        assert_eq!(hex(1), "51");
        assert_eq!(hex(16), "60");
        assert_eq!(hex(17), "0111");
        assert_eq!(hex(127), "017f");
        assert_eq!(hex(128), "028000");
        assert_eq!(hex(255), "02ff00");
        assert_eq!(hex(256), "020001");
        assert_eq!(hex(-1), "4f");
        assert_eq!(hex(-2), "0182");
        assert_eq!(hex(-128), "028080");
        assert_eq!(hex(i64::MAX), "08ffffffffffffff7f");
        assert_eq!(hex(i64::MIN + 1), "08ffffffffffffffff");
    }

    #[test]
    fn script_num_matches_rust_bitcoin_push_int() {
        for n in [-1000i64, -17, -1, 0, 1, 5, 16, 17, 127, 128, 1000, 32767, 32768, 65535, 1 << 40] {
            let ours = script_num(n);
            let theirs = bitcoin::script::Builder::new().push_int(n).into_script();
            assert_eq!(ours.as_bytes(), theirs.as_bytes(), "n = {n}");
        }
    }
}
