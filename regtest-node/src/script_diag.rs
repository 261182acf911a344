//! Script failure diagnosis for inputs that Bitcoin Core's consensus code has already rejected.
//!
//! The node decides script validity with libbitcoinkernel, which only answers valid or invalid.
//! Bitcoin Core's reject reason for such an input is
//! `mandatory-script-verify-flag-failed (<ScriptErrorString>)`, so when the kernel says INVALID
//! the node still needs the error Core's interpreter would have hit. This module re-runs the
//! input through a port of Core's `VerifyScript`/`EvalScript` (src/script/interpreter.cpp) under
//! the consensus flags P2SH|DERSIG|NULLDUMMY|CHECKLOCKTIMEVERIFY|CHECKSEQUENCEVERIFY|WITNESS|TAPROOT
//! and returns the first error it meets, as the exact text of Core's `ScriptErrorString()`.
//!
//! It never decides validity: if it finds no error (or lacks the data to look), it answers
//! `"unknown error"`, Core's text for `SCRIPT_ERR_UNKNOWN_ERROR`.
//!
//! Covered: legacy (bare and P2SH) scripts, P2WPKH, P2WSH, P2SH-wrapped segwit v0, taproot key
//! path and tapscript (leaf version 0xc0), with every opcode Core's interpreter knows, the ECDSA
//! (legacy and BIP143) and Schnorr (BIP341/342) signature hashes, the annex, OP_CODESEPARATOR,
//! FindAndDelete, OP_SUCCESSx and the tapscript validation-weight budget.

use std::sync::OnceLock;

use bitcoin::consensus::encode::{serialize, VarInt};
use bitcoin::hashes::{hash160, ripemd160, sha1, sha256, sha256d, Hash};
use bitcoin::secp256k1::{self, ecdsa, schnorr, Message, Scalar, Secp256k1, VerifyOnly};
use bitcoin::sighash::{Annex, Prevouts, SighashCache, TapSighashType, TaprootError};
use bitcoin::taproot::TapLeafHash;
use bitcoin::{Script, Transaction, TxOut, Witness};

/// Bitcoin Core's ScriptErrorString for the first script error this input hits under consensus flags.
/// `spent` holds the outputs spent by every input of `tx`, in input order (needed for taproot sighashes).
pub fn diagnose(tx: &Transaction, input_index: usize, spent: &[TxOut]) -> &'static str {
    match run(tx, input_index, spent) {
        Err(error) => error.as_str(),
        // No error found: the kernel saw something this port does not, so say nothing specific.
        Ok(()) => ScriptError::UnknownError.as_str(),
    }
}

/// Verifies one input the way Core's `VerifyScript` does under the consensus flags.
fn run(tx: &Transaction, input_index: usize, spent: &[TxOut]) -> Result<(), ScriptError> {
    let (Some(txin), Some(prevout)) = (tx.input.get(input_index), spent.get(input_index)) else {
        return Err(ScriptError::UnknownError);
    };
    let checker = Checker { tx, input_index, spent };
    verify_script(txin.script_sig.as_bytes(), prevout.script_pubkey.as_bytes(), &txin.witness, &checker)
}

/// The subset of Core's `ScriptError` that the consensus flags can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptError {
    UnknownError,
    EvalFalse,
    OpReturn,
    ScriptSize,
    PushSize,
    OpCount,
    StackSize,
    SigCount,
    PubkeyCount,
    Verify,
    EqualVerify,
    CheckMultisigVerify,
    CheckSigVerify,
    NumEqualVerify,
    BadOpcode,
    DisabledOpcode,
    InvalidStackOperation,
    InvalidAltstackOperation,
    UnbalancedConditional,
    NegativeLocktime,
    UnsatisfiedLocktime,
    SigDer,
    SigPushOnly,
    SigNullDummy,
    CleanStack,
    WitnessProgramWrongLength,
    WitnessProgramWitnessEmpty,
    WitnessProgramMismatch,
    WitnessMalleated,
    WitnessMalleatedP2sh,
    WitnessUnexpected,
    SchnorrSigSize,
    SchnorrSigHashtype,
    SchnorrSig,
    TaprootWrongControlSize,
    TapscriptValidationWeight,
    TapscriptCheckMultisig,
    TapscriptMinimalIf,
    TapscriptEmptyPubkey,
    ScriptNum,
}

impl ScriptError {
    /// Core's `ScriptErrorString()` text (src/script/script_error.cpp).
    fn as_str(&self) -> &'static str {
        match self {
            ScriptError::UnknownError => "unknown error",
            ScriptError::EvalFalse => {
                "Script evaluated without error but finished with a false/empty top stack element"
            }
            ScriptError::OpReturn => "OP_RETURN was encountered",
            ScriptError::ScriptSize => "Script is too big",
            ScriptError::PushSize => "Push value size limit exceeded",
            ScriptError::OpCount => "Operation limit exceeded",
            ScriptError::StackSize => "Stack size limit exceeded",
            ScriptError::SigCount => "Signature count negative or greater than pubkey count",
            ScriptError::PubkeyCount => "Pubkey count negative or limit exceeded",
            ScriptError::Verify => "Script failed an OP_VERIFY operation",
            ScriptError::EqualVerify => "Script failed an OP_EQUALVERIFY operation",
            ScriptError::CheckMultisigVerify => "Script failed an OP_CHECKMULTISIGVERIFY operation",
            ScriptError::CheckSigVerify => "Script failed an OP_CHECKSIGVERIFY operation",
            ScriptError::NumEqualVerify => "Script failed an OP_NUMEQUALVERIFY operation",
            ScriptError::BadOpcode => "Opcode missing or not understood",
            ScriptError::DisabledOpcode => "Attempted to use a disabled opcode",
            ScriptError::InvalidStackOperation => "Operation not valid with the current stack size",
            ScriptError::InvalidAltstackOperation => "Operation not valid with the current altstack size",
            ScriptError::UnbalancedConditional => "Invalid OP_IF construction",
            ScriptError::NegativeLocktime => "Negative locktime",
            ScriptError::UnsatisfiedLocktime => "Locktime requirement not satisfied",
            ScriptError::SigDer => "Non-canonical DER signature",
            ScriptError::SigPushOnly => "Only push operators allowed in signatures",
            ScriptError::SigNullDummy => "Dummy CHECKMULTISIG argument must be zero",
            ScriptError::CleanStack => "Stack size must be exactly one after execution",
            ScriptError::WitnessProgramWrongLength => "Witness program has incorrect length",
            ScriptError::WitnessProgramWitnessEmpty => "Witness program was passed an empty witness",
            ScriptError::WitnessProgramMismatch => "Witness program hash mismatch",
            ScriptError::WitnessMalleated => "Witness requires empty scriptSig",
            ScriptError::WitnessMalleatedP2sh => "Witness requires only-redeemscript scriptSig",
            ScriptError::WitnessUnexpected => "Witness provided for non-witness script",
            ScriptError::SchnorrSigSize => "Invalid Schnorr signature size",
            ScriptError::SchnorrSigHashtype => "Invalid Schnorr signature hash type",
            ScriptError::SchnorrSig => "Invalid Schnorr signature",
            ScriptError::TaprootWrongControlSize => "Invalid Taproot control block size",
            ScriptError::TapscriptValidationWeight => "Too much signature validation relative to witness weight",
            ScriptError::TapscriptCheckMultisig => "OP_CHECKMULTISIG(VERIFY) is not available in tapscript",
            ScriptError::TapscriptMinimalIf => "OP_IF/NOTIF argument must be minimal in tapscript",
            // Released Core (the `mandatory-script-verify-flag-failed` era) reports an empty
            // tapscript public key as SCRIPT_ERR_PUBKEYTYPE. Core's master branch has a dedicated
            // SCRIPT_ERR_TAPSCRIPT_EMPTY_PUBKEY, "Empty public key in tapscript".
            ScriptError::TapscriptEmptyPubkey => "Public key is neither compressed or uncompressed",
            // Released Core turns a script number overflow into SCRIPT_ERR_UNKNOWN_ERROR. Core's
            // master branch has SCRIPT_ERR_SCRIPTNUM, "Script number overflowed or is
            // non-minimally encoded".
            ScriptError::ScriptNum => "unknown error",
        }
    }
}

use ScriptError as E;

/// Which rule set a script runs under (Core's `SigVersion`, less TAPROOT, which runs no script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigVersion {
    Base,
    WitnessV0,
    Tapscript,
}

const MAX_SCRIPT_ELEMENT_SIZE: usize = 520;
const MAX_OPS_PER_SCRIPT: usize = 201;
const MAX_PUBKEYS_PER_MULTISIG: i64 = 20;
const MAX_SCRIPT_SIZE: usize = 10_000;
const MAX_STACK_SIZE: usize = 1000;
const LOCKTIME_THRESHOLD: i64 = 500_000_000;
const SEQUENCE_FINAL: u32 = 0xffff_ffff;
const SEQUENCE_LOCKTIME_DISABLE_FLAG: i64 = 1 << 31;
const SEQUENCE_LOCKTIME_TYPE_FLAG: i64 = 1 << 22;
const SEQUENCE_LOCKTIME_MASK: i64 = 0x0000_ffff;
const ANNEX_TAG: u8 = 0x50;
const TAPROOT_LEAF_MASK: u8 = 0xfe;
const TAPROOT_LEAF_TAPSCRIPT: u8 = 0xc0;
const TAPROOT_CONTROL_BASE_SIZE: usize = 33;
const TAPROOT_CONTROL_NODE_SIZE: usize = 32;
const TAPROOT_CONTROL_MAX_SIZE: usize = TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * 128;
const VALIDATION_WEIGHT_PER_SIGOP_PASSED: i64 = 50;
const VALIDATION_WEIGHT_OFFSET: i64 = 50;
const SIGHASH_ANYONECANPAY: u8 = 0x80;
const SIGHASH_NONE: u8 = 0x02;
const SIGHASH_SINGLE: u8 = 0x03;

/// Opcode values, named as in Core's script.h.
#[allow(dead_code)]
mod op {
    pub const OP_0: u8 = 0x00;
    pub const OP_PUSHDATA1: u8 = 0x4c;
    pub const OP_PUSHDATA2: u8 = 0x4d;
    pub const OP_PUSHDATA4: u8 = 0x4e;
    pub const OP_1NEGATE: u8 = 0x4f;
    pub const OP_1: u8 = 0x51;
    pub const OP_2: u8 = 0x52;
    pub const OP_16: u8 = 0x60;
    pub const OP_NOP: u8 = 0x61;
    pub const OP_IF: u8 = 0x63;
    pub const OP_NOTIF: u8 = 0x64;
    pub const OP_ELSE: u8 = 0x67;
    pub const OP_ENDIF: u8 = 0x68;
    pub const OP_VERIFY: u8 = 0x69;
    pub const OP_RETURN: u8 = 0x6a;
    pub const OP_TOALTSTACK: u8 = 0x6b;
    pub const OP_FROMALTSTACK: u8 = 0x6c;
    pub const OP_2DROP: u8 = 0x6d;
    pub const OP_2DUP: u8 = 0x6e;
    pub const OP_3DUP: u8 = 0x6f;
    pub const OP_2OVER: u8 = 0x70;
    pub const OP_2ROT: u8 = 0x71;
    pub const OP_2SWAP: u8 = 0x72;
    pub const OP_IFDUP: u8 = 0x73;
    pub const OP_DEPTH: u8 = 0x74;
    pub const OP_DROP: u8 = 0x75;
    pub const OP_DUP: u8 = 0x76;
    pub const OP_NIP: u8 = 0x77;
    pub const OP_OVER: u8 = 0x78;
    pub const OP_PICK: u8 = 0x79;
    pub const OP_ROLL: u8 = 0x7a;
    pub const OP_ROT: u8 = 0x7b;
    pub const OP_SWAP: u8 = 0x7c;
    pub const OP_TUCK: u8 = 0x7d;
    pub const OP_CAT: u8 = 0x7e;
    pub const OP_SUBSTR: u8 = 0x7f;
    pub const OP_LEFT: u8 = 0x80;
    pub const OP_RIGHT: u8 = 0x81;
    pub const OP_SIZE: u8 = 0x82;
    pub const OP_INVERT: u8 = 0x83;
    pub const OP_AND: u8 = 0x84;
    pub const OP_OR: u8 = 0x85;
    pub const OP_XOR: u8 = 0x86;
    pub const OP_EQUAL: u8 = 0x87;
    pub const OP_EQUALVERIFY: u8 = 0x88;
    pub const OP_1ADD: u8 = 0x8b;
    pub const OP_1SUB: u8 = 0x8c;
    pub const OP_2MUL: u8 = 0x8d;
    pub const OP_2DIV: u8 = 0x8e;
    pub const OP_NEGATE: u8 = 0x8f;
    pub const OP_ABS: u8 = 0x90;
    pub const OP_NOT: u8 = 0x91;
    pub const OP_0NOTEQUAL: u8 = 0x92;
    pub const OP_ADD: u8 = 0x93;
    pub const OP_SUB: u8 = 0x94;
    pub const OP_MUL: u8 = 0x95;
    pub const OP_DIV: u8 = 0x96;
    pub const OP_MOD: u8 = 0x97;
    pub const OP_LSHIFT: u8 = 0x98;
    pub const OP_RSHIFT: u8 = 0x99;
    pub const OP_BOOLAND: u8 = 0x9a;
    pub const OP_BOOLOR: u8 = 0x9b;
    pub const OP_NUMEQUAL: u8 = 0x9c;
    pub const OP_NUMEQUALVERIFY: u8 = 0x9d;
    pub const OP_NUMNOTEQUAL: u8 = 0x9e;
    pub const OP_LESSTHAN: u8 = 0x9f;
    pub const OP_GREATERTHAN: u8 = 0xa0;
    pub const OP_LESSTHANOREQUAL: u8 = 0xa1;
    pub const OP_GREATERTHANOREQUAL: u8 = 0xa2;
    pub const OP_MIN: u8 = 0xa3;
    pub const OP_MAX: u8 = 0xa4;
    pub const OP_WITHIN: u8 = 0xa5;
    pub const OP_RIPEMD160: u8 = 0xa6;
    pub const OP_SHA1: u8 = 0xa7;
    pub const OP_SHA256: u8 = 0xa8;
    pub const OP_HASH160: u8 = 0xa9;
    pub const OP_HASH256: u8 = 0xaa;
    pub const OP_CODESEPARATOR: u8 = 0xab;
    pub const OP_CHECKSIG: u8 = 0xac;
    pub const OP_CHECKSIGVERIFY: u8 = 0xad;
    pub const OP_CHECKMULTISIG: u8 = 0xae;
    pub const OP_CHECKMULTISIGVERIFY: u8 = 0xaf;
    pub const OP_NOP1: u8 = 0xb0;
    pub const OP_CHECKLOCKTIMEVERIFY: u8 = 0xb1;
    pub const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;
    pub const OP_NOP4: u8 = 0xb3;
    pub const OP_NOP10: u8 = 0xb9;
    pub const OP_CHECKSIGADD: u8 = 0xba;
}

use op::*;

/// Opcodes disabled since 2010 (CVE-2010-5137); they fail even in an unexecuted branch.
fn is_disabled(opcode: u8) -> bool {
    matches!(
        opcode,
        OP_CAT
            | OP_SUBSTR
            | OP_LEFT
            | OP_RIGHT
            | OP_INVERT
            | OP_AND
            | OP_OR
            | OP_XOR
            | OP_2MUL
            | OP_2DIV
            | OP_MUL
            | OP_DIV
            | OP_MOD
            | OP_LSHIFT
            | OP_RSHIFT
    )
}

/// BIP342's OP_SUCCESSx opcodes (Core's `IsOpSuccess`).
fn is_op_success(opcode: u8) -> bool {
    matches!(opcode, 80 | 98 | 126..=129 | 131..=134 | 137..=138 | 141..=142 | 149..=153 | 187..=254)
}

/// Reads the opcode at `*pc` and its push data, moving `*pc` exactly as Core's `GetScriptOp`
/// does, including on failure (a truncated push), where it returns `None`.
fn get_op<'s>(script: &'s [u8], pc: &mut usize) -> Option<(u8, &'s [u8])> {
    let opcode = *script.get(*pc)?;
    *pc += 1;
    if opcode > OP_PUSHDATA4 {
        return Some((opcode, &[]));
    }
    let remaining = |pc: usize| script.len() - pc;
    let size = match opcode {
        OP_PUSHDATA1 => {
            if remaining(*pc) < 1 {
                return None;
            }
            *pc += 1;
            script[*pc - 1] as usize
        }
        OP_PUSHDATA2 => {
            if remaining(*pc) < 2 {
                return None;
            }
            *pc += 2;
            u16::from_le_bytes([script[*pc - 2], script[*pc - 1]]) as usize
        }
        OP_PUSHDATA4 => {
            if remaining(*pc) < 4 {
                return None;
            }
            *pc += 4;
            let bytes = [script[*pc - 4], script[*pc - 3], script[*pc - 2], script[*pc - 1]];
            u32::from_le_bytes(bytes) as usize
        }
        direct => direct as usize,
    };
    if remaining(*pc) < size {
        return None;
    }
    let data = &script[*pc..*pc + size];
    *pc += size;
    Some((opcode, data))
}

/// Core's `CScript() << data`: the smallest push opcode carrying `data`.
fn push_data(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    let len = data.len();
    if len < OP_PUSHDATA1 as usize {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend([OP_PUSHDATA1, len as u8]);
    } else if len <= 0xffff {
        out.push(OP_PUSHDATA2);
        out.extend((len as u16).to_le_bytes());
    } else {
        out.push(OP_PUSHDATA4);
        out.extend((len as u32).to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn is_push_only(script: &[u8]) -> bool {
    let mut pc = 0;
    while pc < script.len() {
        match get_op(script, &mut pc) {
            Some((opcode, _)) if opcode <= OP_16 => {}
            _ => return false,
        }
    }
    true
}

fn is_pay_to_script_hash(script: &[u8]) -> bool {
    script.len() == 23 && script[0] == OP_HASH160 && script[1] == 0x14 && script[22] == OP_EQUAL
}

/// Core's `CScript::IsWitnessProgram`: a version push followed by one 2..=40-byte direct push.
fn witness_program(script: &[u8]) -> Option<(u8, &[u8])> {
    if !(4..=42).contains(&script.len()) {
        return None;
    }
    let version = match script[0] {
        OP_0 => 0,
        v @ OP_1..=OP_16 => v - (OP_1 - 1),
        _ => return None,
    };
    (script[1] as usize + 2 == script.len()).then(|| (version, &script[2..]))
}

fn cast_to_bool(value: &[u8]) -> bool {
    match value.split_last() {
        None => false,
        // Negative zero (0x80 as the last byte, zeroes before) is false too.
        Some((&last, rest)) => rest.iter().any(|&b| b != 0) || (last != 0 && last != 0x80),
    }
}

/// Reads a `CScriptNum`. Minimal encoding is a policy rule (MINIMALDATA), so only the size is
/// enforced here.
fn script_num(value: &[u8], max_size: usize) -> Result<i64, ScriptError> {
    if value.len() > max_size {
        return Err(E::ScriptNum);
    }
    let Some((&last, _)) = value.split_last() else {
        return Ok(0);
    };
    let magnitude = value.iter().enumerate().fold(0i64, |acc, (i, &b)| acc | (i64::from(b) << (8 * i)));
    if last & 0x80 != 0 {
        Ok(-(magnitude & !(0x80i64 << (8 * (value.len() - 1)))))
    } else {
        Ok(magnitude)
    }
}

/// `CScriptNum::getint()`: the value clamped to the `int` range.
fn script_int(value: &[u8]) -> Result<i64, ScriptError> {
    Ok(script_num(value, 4)?.clamp(i32::MIN.into(), i32::MAX.into()))
}

/// `CScriptNum::serialize`: little-endian sign-magnitude, empty for zero.
fn num_bytes(value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let negative = value < 0;
    let mut magnitude = value.unsigned_abs();
    while magnitude != 0 {
        out.push((magnitude & 0xff) as u8);
        magnitude >>= 8;
    }
    if let Some(last) = out.last_mut() {
        if *last & 0x80 != 0 {
            out.push(if negative { 0x80 } else { 0 });
        } else if negative {
            *last |= 0x80;
        }
    }
    out
}

fn bool_bytes(value: bool) -> Vec<u8> {
    if value {
        vec![1]
    } else {
        Vec::new()
    }
}

/// BIP66's strict DER check (Core's `IsValidSignatureEncoding`), the hash type byte included.
fn is_valid_signature_encoding(sig: &[u8]) -> bool {
    if sig.len() < 9 || sig.len() > 73 || sig[0] != 0x30 || sig[1] as usize != sig.len() - 3 {
        return false;
    }
    let len_r = sig[3] as usize;
    if 5 + len_r >= sig.len() {
        return false;
    }
    let len_s = sig[5 + len_r] as usize;
    if len_r + len_s + 7 != sig.len() {
        return false;
    }
    if sig[2] != 0x02 || len_r == 0 || sig[4] & 0x80 != 0 {
        return false;
    }
    if len_r > 1 && sig[4] == 0x00 && sig[5] & 0x80 == 0 {
        return false;
    }
    if sig[len_r + 4] != 0x02 || len_s == 0 || sig[len_r + 6] & 0x80 != 0 {
        return false;
    }
    !(len_s > 1 && sig[len_r + 6] == 0x00 && sig[len_r + 7] & 0x80 == 0)
}

/// Core's `FindAndDelete`: removes every occurrence of `needle` that starts on an opcode boundary.
fn find_and_delete(script: &[u8], needle: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return script.to_vec();
    }
    let mut result = Vec::with_capacity(script.len());
    let (mut pc, mut kept_from, mut found) = (0, 0, false);
    loop {
        result.extend_from_slice(&script[kept_from..pc]);
        while script.len() - pc >= needle.len() && script[pc..].starts_with(needle) {
            pc += needle.len();
            found = true;
        }
        kept_from = pc;
        if get_op(script, &mut pc).is_none() {
            break;
        }
    }
    if !found {
        return script.to_vec();
    }
    result.extend_from_slice(&script[kept_from..]);
    result
}

/// The script code as the legacy sighash serializes it: with every OP_CODESEPARATOR removed.
fn strip_codeseparators(script: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(script.len());
    let (mut pc, mut kept_from) = (0, 0);
    while let Some((opcode, _)) = get_op(script, &mut pc) {
        if opcode == OP_CODESEPARATOR {
            out.extend_from_slice(&script[kept_from..pc - 1]);
            kept_from = pc;
        }
    }
    out.extend_from_slice(&script[kept_from..pc.max(kept_from)]);
    out
}

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static SECP: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    SECP.get_or_init(Secp256k1::verification_only)
}

/// BIP340 tagged hash of the concatenated `parts`.
fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let tag_hash = sha256::Hash::hash(tag.as_bytes());
    let mut data = Vec::with_capacity(64 + parts.iter().map(|p| p.len()).sum::<usize>());
    data.extend_from_slice(tag_hash.as_byte_array());
    data.extend_from_slice(tag_hash.as_byte_array());
    for part in parts {
        data.extend_from_slice(part);
    }
    sha256::Hash::hash(&data).to_byte_array()
}

fn tapleaf_hash(leaf_version: u8, script: &[u8]) -> [u8; 32] {
    let len = serialize(&VarInt(script.len() as u64));
    tagged_hash("TapLeaf", &[&[leaf_version], &len, script])
}

/// Core's `VerifyTaprootCommitment`: does `program` commit to the leaf through `control`?
fn verify_taproot_commitment(control: &[u8], program: &[u8], leaf_hash: [u8; 32]) -> bool {
    let internal_bytes = &control[1..TAPROOT_CONTROL_BASE_SIZE];
    let (Ok(internal), Ok(output)) =
        (secp256k1::XOnlyPublicKey::from_slice(internal_bytes), secp256k1::XOnlyPublicKey::from_slice(program))
    else {
        return false;
    };
    let merkle_root =
        control[TAPROOT_CONTROL_BASE_SIZE..].chunks(TAPROOT_CONTROL_NODE_SIZE).fold(leaf_hash, |k, node| {
            if k.as_slice() < node {
                tagged_hash("TapBranch", &[&k, node])
            } else {
                tagged_hash("TapBranch", &[node, &k])
            }
        });
    let tweak = tagged_hash("TapTweak", &[internal_bytes, &merkle_root]);
    let Ok(tweak) = Scalar::from_be_bytes(tweak) else {
        return false;
    };
    let parity = if control[0] & 1 == 1 { secp256k1::Parity::Odd } else { secp256k1::Parity::Even };
    internal.tweak_add_check(secp(), &output, parity, tweak)
}

/// Per-input taproot state (Core's `ScriptExecutionData`).
struct ExecData {
    annex: Option<Vec<u8>>,
    tapleaf_hash: [u8; 32],
    codeseparator_pos: u32,
    validation_weight_left: i64,
}

impl ExecData {
    fn new() -> Self {
        ExecData { annex: None, tapleaf_hash: [0; 32], codeseparator_pos: u32::MAX, validation_weight_left: 0 }
    }
}

/// Signature and lock time checks against the spending transaction
/// (Core's `GenericTransactionSignatureChecker`).
struct Checker<'a> {
    tx: &'a Transaction,
    input_index: usize,
    spent: &'a [TxOut],
}

impl Checker<'_> {
    /// `CheckECDSASignature`: false for any unparsable key or signature, like Core.
    fn check_ecdsa(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        script_code: &[u8],
        sigversion: SigVersion,
    ) -> Result<bool, ScriptError> {
        let Ok(pubkey) = secp256k1::PublicKey::from_slice(pubkey) else {
            return Ok(false);
        };
        let Some((&hash_type, der)) = sig.split_last() else {
            return Ok(false);
        };
        let Ok(mut signature) = ecdsa::Signature::from_der_lax(der) else {
            return Ok(false);
        };
        // Core's CPubKey::Verify accepts high-S signatures by normalizing them first.
        signature.normalize_s();
        let sighash = match sigversion {
            SigVersion::Base => self.legacy_sighash(script_code, hash_type)?,
            _ => self.segwit_v0_sighash(script_code, hash_type)?,
        };
        let message = Message::from_digest(sighash);
        Ok(secp().verify_ecdsa(&message, &signature, &pubkey).is_ok())
    }

    /// The pre-segwit sighash, hash type taken as the raw byte like Core.
    fn legacy_sighash(&self, script_code: &[u8], hash_type: u8) -> Result<[u8; 32], ScriptError> {
        let script_code = strip_codeseparators(script_code);
        SighashCache::new(self.tx)
            .legacy_signature_hash(self.input_index, Script::from_bytes(&script_code), u32::from(hash_type))
            .map(|hash| hash.to_byte_array())
            .map_err(|_| E::UnknownError)
    }

    /// BIP143's sighash, written out because Core hashes the raw hash type byte (any value),
    /// which rust-bitcoin's `EcdsaSighashType` cannot carry.
    fn segwit_v0_sighash(&self, script_code: &[u8], hash_type: u8) -> Result<[u8; 32], ScriptError> {
        let tx = self.tx;
        let amount = self.spent.get(self.input_index).ok_or(E::UnknownError)?.value;
        let txin = &tx.input[self.input_index];
        let anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY != 0;
        let base_type = hash_type & 0x1f;
        let single_or_none = base_type == SIGHASH_SINGLE || base_type == SIGHASH_NONE;
        let hash_all = |parts: Vec<Vec<u8>>| sha256d::Hash::hash(&parts.concat()).to_byte_array();

        let hash_prevouts = if anyone_can_pay {
            [0; 32]
        } else {
            hash_all(tx.input.iter().map(|i| serialize(&i.previous_output)).collect())
        };
        let hash_sequence = if anyone_can_pay || single_or_none {
            [0; 32]
        } else {
            hash_all(tx.input.iter().map(|i| serialize(&i.sequence)).collect())
        };
        let hash_outputs = if !single_or_none {
            hash_all(tx.output.iter().map(serialize).collect())
        } else if base_type == SIGHASH_SINGLE && self.input_index < tx.output.len() {
            hash_all(vec![serialize(&tx.output[self.input_index])])
        } else {
            [0; 32]
        };

        let mut preimage = serialize(&tx.version);
        preimage.extend_from_slice(&hash_prevouts);
        preimage.extend_from_slice(&hash_sequence);
        preimage.extend(serialize(&txin.previous_output));
        preimage.extend(serialize(&VarInt(script_code.len() as u64)));
        preimage.extend_from_slice(script_code);
        preimage.extend(amount.to_sat().to_le_bytes());
        preimage.extend(serialize(&txin.sequence));
        preimage.extend_from_slice(&hash_outputs);
        preimage.extend(serialize(&tx.lock_time));
        preimage.extend(u32::from(hash_type).to_le_bytes());
        Ok(sha256d::Hash::hash(&preimage).to_byte_array())
    }

    /// `CheckSchnorrSignature` for the key path (`tapscript == false`) or a tapscript.
    fn check_schnorr(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        tapscript: bool,
        execdata: &ExecData,
    ) -> Result<(), ScriptError> {
        let (sig, hash_type) = match sig.len() {
            64 => (sig, 0x00),
            65 if sig[64] == 0x00 => return Err(E::SchnorrSigHashtype),
            65 => (&sig[..64], sig[64]),
            _ => return Err(E::SchnorrSigSize),
        };
        let sighash_type = TapSighashType::from_consensus_u8(hash_type).map_err(|_| E::SchnorrSigHashtype)?;
        if self.spent.len() != self.tx.input.len() {
            return Err(E::UnknownError);
        }
        let annex = match &execdata.annex {
            Some(bytes) => Some(Annex::new(bytes).map_err(|_| E::UnknownError)?),
            None => None,
        };
        let leaf = tapscript.then(|| (TapLeafHash::from_byte_array(execdata.tapleaf_hash), execdata.codeseparator_pos));
        let sighash = SighashCache::new(self.tx)
            .taproot_signature_hash(self.input_index, &Prevouts::All(self.spent), annex, leaf, sighash_type)
            .map_err(|error| match error {
                TaprootError::SingleMissingOutput(_) | TaprootError::InvalidSighashType(_) => E::SchnorrSigHashtype,
                _ => E::UnknownError,
            })?;
        let message = Message::from_digest(sighash.to_byte_array());
        let valid = match (secp256k1::XOnlyPublicKey::from_slice(pubkey), schnorr::Signature::from_slice(sig)) {
            (Ok(pubkey), Ok(sig)) => secp().verify_schnorr(&sig, &message, &pubkey).is_ok(),
            _ => false,
        };
        if valid {
            Ok(())
        } else {
            Err(E::SchnorrSig)
        }
    }

    /// `CheckLockTime` (BIP65).
    fn check_lock_time(&self, lock_time: i64) -> bool {
        let tx_lock_time = i64::from(self.tx.lock_time.to_consensus_u32());
        let same_kind = (tx_lock_time < LOCKTIME_THRESHOLD) == (lock_time < LOCKTIME_THRESHOLD);
        same_kind && lock_time <= tx_lock_time && self.tx.input[self.input_index].sequence.0 != SEQUENCE_FINAL
    }

    /// `CheckSequence` (BIP112).
    fn check_sequence(&self, sequence: i64) -> bool {
        let tx_sequence = i64::from(self.tx.input[self.input_index].sequence.0);
        // Core's transaction version is unsigned.
        if (self.tx.version.0 as u32) < 2 || tx_sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
            return false;
        }
        let mask = SEQUENCE_LOCKTIME_TYPE_FLAG | SEQUENCE_LOCKTIME_MASK;
        let (tx_masked, masked) = (tx_sequence & mask, sequence & mask);
        let same_kind = (tx_masked < SEQUENCE_LOCKTIME_TYPE_FLAG) == (masked < SEQUENCE_LOCKTIME_TYPE_FLAG);
        same_kind && masked <= tx_masked
    }
}

/// Port of Core's `VerifyScript` under the consensus flags.
fn verify_script(
    script_sig: &[u8],
    script_pubkey: &[u8],
    witness: &Witness,
    checker: &Checker,
) -> Result<(), ScriptError> {
    let mut had_witness = false;
    let mut stack = Vec::new();
    eval_script(&mut stack, script_sig, SigVersion::Base, checker, &mut ExecData::new())?;
    let stack_after_sig = stack.clone();
    eval_script(&mut stack, script_pubkey, SigVersion::Base, checker, &mut ExecData::new())?;
    if !stack.last().is_some_and(|top| cast_to_bool(top)) {
        return Err(E::EvalFalse);
    }

    if let Some((version, program)) = witness_program(script_pubkey) {
        had_witness = true;
        if !script_sig.is_empty() {
            return Err(E::WitnessMalleated);
        }
        verify_witness_program(witness, version, program, checker, false)?;
    }

    if is_pay_to_script_hash(script_pubkey) {
        if !is_push_only(script_sig) {
            return Err(E::SigPushOnly);
        }
        let mut stack = stack_after_sig;
        let redeem_script = stack.pop().ok_or(E::UnknownError)?;
        eval_script(&mut stack, &redeem_script, SigVersion::Base, checker, &mut ExecData::new())?;
        if !stack.last().is_some_and(|top| cast_to_bool(top)) {
            return Err(E::EvalFalse);
        }
        if let Some((version, program)) = witness_program(&redeem_script) {
            had_witness = true;
            if script_sig != push_data(&redeem_script) {
                return Err(E::WitnessMalleatedP2sh);
            }
            verify_witness_program(witness, version, program, checker, true)?;
        }
    }

    if !had_witness && !witness.is_empty() {
        return Err(E::WitnessUnexpected);
    }
    Ok(())
}

/// Port of Core's `VerifyWitnessProgram`.
fn verify_witness_program(
    witness: &Witness,
    version: u8,
    program: &[u8],
    checker: &Checker,
    is_p2sh: bool,
) -> Result<(), ScriptError> {
    let mut stack: Vec<Vec<u8>> = witness.iter().map(<[u8]>::to_vec).collect();
    let mut execdata = ExecData::new();

    if version == 0 {
        if program.len() == 32 {
            let script = stack.pop().ok_or(E::WitnessProgramWitnessEmpty)?;
            if sha256::Hash::hash(&script).as_byte_array() != program {
                return Err(E::WitnessProgramMismatch);
            }
            return execute_witness_script(stack, &script, SigVersion::WitnessV0, checker, &mut execdata);
        }
        if program.len() == 20 {
            if stack.len() != 2 {
                return Err(E::WitnessProgramMismatch);
            }
            let mut script = vec![OP_DUP, OP_HASH160];
            script.extend(push_data(program));
            script.extend([OP_EQUALVERIFY, OP_CHECKSIG]);
            return execute_witness_script(stack, &script, SigVersion::WitnessV0, checker, &mut execdata);
        }
        return Err(E::WitnessProgramWrongLength);
    }

    if version != 1 || program.len() != 32 || is_p2sh {
        // Pay-to-anchor and future witness versions are anyone-can-spend under consensus.
        return Ok(());
    }

    // Taproot (BIP341).
    if stack.is_empty() {
        return Err(E::WitnessProgramWitnessEmpty);
    }
    let validation_weight = witness_stack_size(&stack) as i64 + VALIDATION_WEIGHT_OFFSET;
    if stack.len() >= 2 && stack.last().is_some_and(|last| last.first() == Some(&ANNEX_TAG)) {
        execdata.annex = stack.pop();
    }
    if stack.len() == 1 {
        return checker.check_schnorr(&stack[0], program, false, &execdata);
    }
    let control = stack.pop().expect("script path has at least two elements");
    let script = stack.pop().expect("script path has at least two elements");
    if control.len() < TAPROOT_CONTROL_BASE_SIZE
        || control.len() > TAPROOT_CONTROL_MAX_SIZE
        || !(control.len() - TAPROOT_CONTROL_BASE_SIZE).is_multiple_of(TAPROOT_CONTROL_NODE_SIZE)
    {
        return Err(E::TaprootWrongControlSize);
    }
    let leaf_version = control[0] & TAPROOT_LEAF_MASK;
    execdata.tapleaf_hash = tapleaf_hash(leaf_version, &script);
    if !verify_taproot_commitment(&control, program, execdata.tapleaf_hash) {
        return Err(E::WitnessProgramMismatch);
    }
    if leaf_version != TAPROOT_LEAF_TAPSCRIPT {
        // Unknown leaf versions are anyone-can-spend under consensus.
        return Ok(());
    }
    execdata.validation_weight_left = validation_weight;
    execute_witness_script(stack, &script, SigVersion::Tapscript, checker, &mut execdata)
}

/// The serialized size of a witness stack (`GetSerializeSize(witness.stack)`).
fn witness_stack_size(stack: &[Vec<u8>]) -> usize {
    let var_int_len = |n: usize| serialize(&VarInt(n as u64)).len();
    var_int_len(stack.len()) + stack.iter().map(|e| var_int_len(e.len()) + e.len()).sum::<usize>()
}

/// Port of Core's `ExecuteWitnessScript`.
fn execute_witness_script(
    mut stack: Vec<Vec<u8>>,
    script: &[u8],
    sigversion: SigVersion,
    checker: &Checker,
    execdata: &mut ExecData,
) -> Result<(), ScriptError> {
    if sigversion == SigVersion::Tapscript {
        // OP_SUCCESSx overrides everything, including the stack element size limits.
        let mut pc = 0;
        while pc < script.len() {
            let (opcode, _) = get_op(script, &mut pc).ok_or(E::BadOpcode)?;
            if is_op_success(opcode) {
                return Ok(());
            }
        }
        if stack.len() > MAX_STACK_SIZE {
            return Err(E::StackSize);
        }
    }
    if stack.iter().any(|elem| elem.len() > MAX_SCRIPT_ELEMENT_SIZE) {
        return Err(E::PushSize);
    }
    eval_script(&mut stack, script, sigversion, checker, execdata)?;
    // Witness scripts implicitly require a clean stack.
    if stack.len() != 1 {
        return Err(E::CleanStack);
    }
    if !cast_to_bool(&stack[0]) {
        return Err(E::EvalFalse);
    }
    Ok(())
}

/// Fails with "Operation not valid with the current stack size" unless `stack` holds `n` items.
fn need(stack: &[Vec<u8>], n: usize) -> Result<(), ScriptError> {
    if stack.len() < n {
        Err(E::InvalidStackOperation)
    } else {
        Ok(())
    }
}

/// The item `depth` places from the top (1 is the top), as Core's `stacktop(-depth)`.
fn top(stack: &[Vec<u8>], depth: usize) -> &[u8] {
    &stack[stack.len() - depth]
}

/// Port of Core's `EvalScript` for BASE, WITNESS_V0 and TAPSCRIPT under the consensus flags.
fn eval_script(
    stack: &mut Vec<Vec<u8>>,
    script: &[u8],
    sigversion: SigVersion,
    checker: &Checker,
    execdata: &mut ExecData,
) -> Result<(), ScriptError> {
    let pre_tapscript = sigversion != SigVersion::Tapscript;
    if pre_tapscript && script.len() > MAX_SCRIPT_SIZE {
        return Err(E::ScriptSize);
    }
    let mut pc = 0;
    let mut code_start = 0;
    let mut conditions: Vec<bool> = Vec::new();
    let mut altstack: Vec<Vec<u8>> = Vec::new();
    let mut op_count = 0;
    let mut opcode_pos: u32 = 0;
    execdata.codeseparator_pos = u32::MAX;

    while pc < script.len() {
        let executing = conditions.iter().all(|&c| c);
        let (opcode, data) = get_op(script, &mut pc).ok_or(E::BadOpcode)?;
        if data.len() > MAX_SCRIPT_ELEMENT_SIZE {
            return Err(E::PushSize);
        }
        if pre_tapscript && opcode > OP_16 {
            op_count += 1;
            if op_count > MAX_OPS_PER_SCRIPT {
                return Err(E::OpCount);
            }
        }
        if is_disabled(opcode) {
            return Err(E::DisabledOpcode);
        }

        if executing && opcode <= OP_PUSHDATA4 {
            stack.push(data.to_vec());
        } else if executing || (OP_IF..=OP_ENDIF).contains(&opcode) {
            match opcode {
                OP_1NEGATE | OP_1..=OP_16 => {
                    stack.push(num_bytes(i64::from(opcode) - i64::from(OP_1 - 1)));
                }
                OP_NOP | OP_NOP1 | OP_NOP4..=OP_NOP10 => {}
                OP_CHECKLOCKTIMEVERIFY => {
                    need(stack, 1)?;
                    let lock_time = script_num(top(stack, 1), 5)?;
                    if lock_time < 0 {
                        return Err(E::NegativeLocktime);
                    }
                    if !checker.check_lock_time(lock_time) {
                        return Err(E::UnsatisfiedLocktime);
                    }
                }
                OP_CHECKSEQUENCEVERIFY => {
                    need(stack, 1)?;
                    let sequence = script_num(top(stack, 1), 5)?;
                    if sequence < 0 {
                        return Err(E::NegativeLocktime);
                    }
                    // With the disable flag set the operand is reserved for soft forks: a NOP.
                    if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG == 0 && !checker.check_sequence(sequence) {
                        return Err(E::UnsatisfiedLocktime);
                    }
                }
                OP_IF | OP_NOTIF => {
                    let mut value = false;
                    if executing {
                        need(stack, 1)?;
                        let condition = top(stack, 1);
                        if sigversion == SigVersion::Tapscript
                            && (condition.len() > 1 || (condition.len() == 1 && condition[0] != 1))
                        {
                            return Err(E::TapscriptMinimalIf);
                        }
                        value = cast_to_bool(condition) == (opcode == OP_IF);
                        stack.pop();
                    }
                    conditions.push(value);
                }
                OP_ELSE => {
                    let last = conditions.last_mut().ok_or(E::UnbalancedConditional)?;
                    *last = !*last;
                }
                OP_ENDIF => {
                    conditions.pop().ok_or(E::UnbalancedConditional)?;
                }
                OP_VERIFY => {
                    need(stack, 1)?;
                    if !cast_to_bool(top(stack, 1)) {
                        return Err(E::Verify);
                    }
                    stack.pop();
                }
                OP_RETURN => return Err(E::OpReturn),

                OP_TOALTSTACK => {
                    need(stack, 1)?;
                    altstack.extend(stack.pop());
                }
                OP_FROMALTSTACK => {
                    let item = altstack.pop().ok_or(E::InvalidAltstackOperation)?;
                    stack.push(item);
                }
                OP_2DROP => {
                    need(stack, 2)?;
                    stack.truncate(stack.len() - 2);
                }
                OP_2DUP | OP_3DUP | OP_2OVER => {
                    let (depth, count) = match opcode {
                        OP_2DUP => (2, 2),
                        OP_3DUP => (3, 3),
                        _ => (4, 2),
                    };
                    need(stack, depth)?;
                    let start = stack.len() - depth;
                    let copied = stack[start..start + count].to_vec();
                    stack.extend(copied);
                }
                OP_2ROT => {
                    need(stack, 6)?;
                    let start = stack.len() - 6;
                    let moved: Vec<_> = stack.drain(start..start + 2).collect();
                    stack.extend(moved);
                }
                OP_2SWAP => {
                    need(stack, 4)?;
                    let len = stack.len();
                    stack.swap(len - 4, len - 2);
                    stack.swap(len - 3, len - 1);
                }
                OP_IFDUP => {
                    need(stack, 1)?;
                    if cast_to_bool(top(stack, 1)) {
                        stack.push(top(stack, 1).to_vec());
                    }
                }
                OP_DEPTH => stack.push(num_bytes(stack.len() as i64)),
                OP_DROP => {
                    need(stack, 1)?;
                    stack.pop();
                }
                OP_DUP => {
                    need(stack, 1)?;
                    stack.push(top(stack, 1).to_vec());
                }
                OP_NIP => {
                    need(stack, 2)?;
                    stack.remove(stack.len() - 2);
                }
                OP_OVER => {
                    need(stack, 2)?;
                    stack.push(top(stack, 2).to_vec());
                }
                OP_PICK | OP_ROLL => {
                    need(stack, 2)?;
                    let n = script_int(top(stack, 1))?;
                    stack.pop();
                    if n < 0 || n >= stack.len() as i64 {
                        return Err(E::InvalidStackOperation);
                    }
                    let index = stack.len() - n as usize - 1;
                    let item = if opcode == OP_ROLL { stack.remove(index) } else { stack[index].clone() };
                    stack.push(item);
                }
                OP_ROT => {
                    need(stack, 3)?;
                    let len = stack.len();
                    stack.swap(len - 3, len - 2);
                    stack.swap(len - 2, len - 1);
                }
                OP_SWAP => {
                    need(stack, 2)?;
                    let len = stack.len();
                    stack.swap(len - 2, len - 1);
                }
                OP_TUCK => {
                    need(stack, 2)?;
                    let item = top(stack, 1).to_vec();
                    stack.insert(stack.len() - 2, item);
                }
                OP_SIZE => {
                    need(stack, 1)?;
                    stack.push(num_bytes(top(stack, 1).len() as i64));
                }

                OP_EQUAL | OP_EQUALVERIFY => {
                    need(stack, 2)?;
                    let equal = top(stack, 2) == top(stack, 1);
                    stack.truncate(stack.len() - 2);
                    if opcode == OP_EQUALVERIFY {
                        if !equal {
                            return Err(E::EqualVerify);
                        }
                    } else {
                        stack.push(bool_bytes(equal));
                    }
                }

                OP_1ADD | OP_1SUB | OP_NEGATE | OP_ABS | OP_NOT | OP_0NOTEQUAL => {
                    need(stack, 1)?;
                    let n = script_num(top(stack, 1), 4)?;
                    let result = match opcode {
                        OP_1ADD => n + 1,
                        OP_1SUB => n - 1,
                        OP_NEGATE => -n,
                        OP_ABS => n.abs(),
                        OP_NOT => i64::from(n == 0),
                        _ => i64::from(n != 0),
                    };
                    stack.pop();
                    stack.push(num_bytes(result));
                }
                OP_ADD
                | OP_SUB
                | OP_BOOLAND
                | OP_BOOLOR
                | OP_NUMEQUAL
                | OP_NUMEQUALVERIFY
                | OP_NUMNOTEQUAL
                | OP_LESSTHAN
                | OP_GREATERTHAN
                | OP_LESSTHANOREQUAL
                | OP_GREATERTHANOREQUAL
                | OP_MIN
                | OP_MAX => {
                    need(stack, 2)?;
                    let a = script_num(top(stack, 2), 4)?;
                    let b = script_num(top(stack, 1), 4)?;
                    let result = match opcode {
                        OP_ADD => a + b,
                        OP_SUB => a - b,
                        OP_BOOLAND => i64::from(a != 0 && b != 0),
                        OP_BOOLOR => i64::from(a != 0 || b != 0),
                        OP_NUMEQUAL | OP_NUMEQUALVERIFY => i64::from(a == b),
                        OP_NUMNOTEQUAL => i64::from(a != b),
                        OP_LESSTHAN => i64::from(a < b),
                        OP_GREATERTHAN => i64::from(a > b),
                        OP_LESSTHANOREQUAL => i64::from(a <= b),
                        OP_GREATERTHANOREQUAL => i64::from(a >= b),
                        OP_MIN => a.min(b),
                        _ => a.max(b),
                    };
                    stack.truncate(stack.len() - 2);
                    if opcode == OP_NUMEQUALVERIFY {
                        if result == 0 {
                            return Err(E::NumEqualVerify);
                        }
                    } else {
                        stack.push(num_bytes(result));
                    }
                }
                OP_WITHIN => {
                    need(stack, 3)?;
                    let x = script_num(top(stack, 3), 4)?;
                    let min = script_num(top(stack, 2), 4)?;
                    let max = script_num(top(stack, 1), 4)?;
                    stack.truncate(stack.len() - 3);
                    stack.push(bool_bytes(min <= x && x < max));
                }

                OP_RIPEMD160 | OP_SHA1 | OP_SHA256 | OP_HASH160 | OP_HASH256 => {
                    need(stack, 1)?;
                    let value = stack.pop().expect("checked by need");
                    stack.push(match opcode {
                        OP_RIPEMD160 => ripemd160::Hash::hash(&value).to_byte_array().to_vec(),
                        OP_SHA1 => sha1::Hash::hash(&value).to_byte_array().to_vec(),
                        OP_SHA256 => sha256::Hash::hash(&value).to_byte_array().to_vec(),
                        OP_HASH160 => hash160::Hash::hash(&value).to_byte_array().to_vec(),
                        _ => sha256d::Hash::hash(&value).to_byte_array().to_vec(),
                    });
                }
                OP_CODESEPARATOR => {
                    code_start = pc;
                    execdata.codeseparator_pos = opcode_pos;
                }
                OP_CHECKSIG | OP_CHECKSIGVERIFY => {
                    need(stack, 2)?;
                    let script_code = &script[code_start..];
                    let success =
                        eval_checksig(top(stack, 2), top(stack, 1), script_code, sigversion, checker, execdata)?;
                    stack.truncate(stack.len() - 2);
                    if opcode == OP_CHECKSIGVERIFY {
                        if !success {
                            return Err(E::CheckSigVerify);
                        }
                    } else {
                        stack.push(bool_bytes(success));
                    }
                }
                OP_CHECKSIGADD => {
                    if pre_tapscript {
                        return Err(E::BadOpcode);
                    }
                    need(stack, 3)?;
                    let n = script_num(top(stack, 2), 4)?;
                    let script_code = &script[code_start..];
                    let success =
                        eval_checksig(top(stack, 3), top(stack, 1), script_code, sigversion, checker, execdata)?;
                    stack.truncate(stack.len() - 3);
                    stack.push(num_bytes(n + i64::from(success)));
                }
                OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => {
                    if !pre_tapscript {
                        return Err(E::TapscriptCheckMultisig);
                    }
                    let success = eval_checkmultisig(stack, &script[code_start..], sigversion, checker, &mut op_count)?;
                    if opcode == OP_CHECKMULTISIGVERIFY {
                        if !success {
                            return Err(E::CheckMultisigVerify);
                        }
                    } else {
                        stack.push(bool_bytes(success));
                    }
                }
                _ => return Err(E::BadOpcode),
            }
        }

        if stack.len() + altstack.len() > MAX_STACK_SIZE {
            return Err(E::StackSize);
        }
        opcode_pos += 1;
    }

    if !conditions.is_empty() {
        return Err(E::UnbalancedConditional);
    }
    Ok(())
}

/// Core's `EvalChecksig`: `Ok(success)`, or the error that aborts the script.
fn eval_checksig(
    sig: &[u8],
    pubkey: &[u8],
    script_code: &[u8],
    sigversion: SigVersion,
    checker: &Checker,
    execdata: &mut ExecData,
) -> Result<bool, ScriptError> {
    if sigversion == SigVersion::Tapscript {
        // BIP342: an empty signature is a clean failure; any other failure aborts.
        let success = !sig.is_empty();
        if success {
            execdata.validation_weight_left -= VALIDATION_WEIGHT_PER_SIGOP_PASSED;
            if execdata.validation_weight_left < 0 {
                return Err(E::TapscriptValidationWeight);
            }
        }
        match pubkey.len() {
            0 => return Err(E::TapscriptEmptyPubkey),
            32 if success => checker.check_schnorr(sig, pubkey, true, execdata)?,
            // Other sizes are upgradable public key types, which succeed unchecked.
            _ => {}
        }
        return Ok(success);
    }

    let script_code = if sigversion == SigVersion::Base {
        find_and_delete(script_code, &push_data(sig))
    } else {
        script_code.to_vec()
    };
    if !sig.is_empty() && !is_valid_signature_encoding(sig) {
        return Err(E::SigDer);
    }
    // NULLFAIL is policy only, so a failing non-empty signature just pushes false.
    checker.check_ecdsa(sig, pubkey, &script_code, sigversion)
}

/// Core's OP_CHECKMULTISIG: consumes its arguments and returns whether it succeeded.
fn eval_checkmultisig(
    stack: &mut Vec<Vec<u8>>,
    script_code: &[u8],
    sigversion: SigVersion,
    checker: &Checker,
    op_count: &mut usize,
) -> Result<bool, ScriptError> {
    let mut i = 1;
    need(stack, i)?;
    let mut keys_count = script_int(top(stack, i))?;
    if !(0..=MAX_PUBKEYS_PER_MULTISIG).contains(&keys_count) {
        return Err(E::PubkeyCount);
    }
    *op_count += keys_count as usize;
    if *op_count > MAX_OPS_PER_SCRIPT {
        return Err(E::OpCount);
    }
    i += 1;
    let mut ikey = i;
    i += keys_count as usize;
    need(stack, i)?;
    let mut sigs_count = script_int(top(stack, i))?;
    if sigs_count < 0 || sigs_count > keys_count {
        return Err(E::SigCount);
    }
    i += 1;
    let mut isig = i;
    i += sigs_count as usize;
    need(stack, i)?;

    let mut script_code = script_code.to_vec();
    if sigversion == SigVersion::Base {
        for k in 0..sigs_count as usize {
            script_code = find_and_delete(&script_code, &push_data(top(stack, isig + k)));
        }
    }

    let mut success = true;
    while success && sigs_count > 0 {
        let sig = top(stack, isig);
        let pubkey = top(stack, ikey);
        if !sig.is_empty() && !is_valid_signature_encoding(sig) {
            return Err(E::SigDer);
        }
        if checker.check_ecdsa(sig, pubkey, &script_code, sigversion)? {
            isig += 1;
            sigs_count -= 1;
        }
        ikey += 1;
        keys_count -= 1;
        // More signatures left than keys: too many have failed.
        if sigs_count > keys_count {
            success = false;
        }
    }

    stack.truncate(stack.len() - (i - 1));
    // The extra item CHECKMULTISIG consumes by a historical bug must be empty (NULLDUMMY).
    let dummy = stack.pop().ok_or(E::InvalidStackOperation)?;
    if !dummy.is_empty() {
        return Err(E::SigNullDummy);
    }
    Ok(success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::key::{Keypair, TapTweak};
    use bitcoin::opcodes::all as opcodes;
    use bitcoin::script::Builder;
    use bitcoin::secp256k1::{All, SecretKey};
    use bitcoin::sighash::EcdsaSighashType;
    use bitcoin::taproot::{LeafVersion, TaprootBuilder, TaprootSpendInfo};
    use bitcoin::{
        absolute, transaction, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, TxIn, Txid, XOnlyPublicKey,
    };

    const EVAL_FALSE: &str = "Script evaluated without error but finished with a false/empty top stack element";

    fn signer() -> Secp256k1<All> {
        Secp256k1::new()
    }

    fn keypair(byte: u8) -> Keypair {
        Keypair::from_secret_key(&signer(), &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    fn xonly(byte: u8) -> XOnlyPublicKey {
        keypair(byte).x_only_public_key().0
    }

    /// A one-input, one-output transaction spending `script_pubkey`.
    fn spend(script_pubkey: ScriptBuf, version: i32, sequence: u32) -> (Transaction, Vec<TxOut>) {
        let prevout = TxOut { value: Amount::from_sat(100_000), script_pubkey };
        let tx = Transaction {
            version: transaction::Version(version),
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([7; 32]), 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence(sequence),
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(90_000), script_pubkey: ScriptBuf::new_op_return([1, 2, 3]) }],
        };
        (tx, vec![prevout])
    }

    fn with_witness(mut tx: Transaction, items: Vec<Vec<u8>>) -> Transaction {
        tx.input[0].witness = Witness::from_slice(&items);
        tx
    }

    fn check(tx: &Transaction, spent: &[TxOut]) -> Result<(), &'static str> {
        run(tx, 0, spent).map_err(|e| e.as_str())
    }

    // ----- taproot key path -----

    fn key_path_sig(tx: &Transaction, spent: &[TxOut], hash_type: TapSighashType) -> Vec<u8> {
        let sighash =
            SighashCache::new(tx).taproot_key_spend_signature_hash(0, &Prevouts::All(spent), hash_type).unwrap();
        let tweaked = keypair(1).tap_tweak(&signer(), None);
        let msg = Message::from_digest(sighash.to_byte_array());
        let sig = signer().sign_schnorr_no_aux_rand(&msg, &tweaked.to_keypair());
        let mut bytes = sig.as_ref().to_vec();
        if hash_type != TapSighashType::Default {
            bytes.push(hash_type as u8);
        }
        bytes
    }

    fn p2tr_key_only() -> ScriptBuf {
        ScriptBuf::new_p2tr(&signer(), xonly(1), None)
    }

    #[test]
    fn key_path_valid_signature_has_no_error() {
        let (tx, spent) = spend(p2tr_key_only(), 2, 0xffff_fffd);
        let sig = key_path_sig(&tx, &spent, TapSighashType::Default);
        assert_eq!(check(&with_witness(tx.clone(), vec![sig]), &spent), Ok(()));
        let sig = key_path_sig(&tx, &spent, TapSighashType::AllPlusAnyoneCanPay);
        let tx = with_witness(tx, vec![sig]);
        assert_eq!(check(&tx, &spent), Ok(()));
        // diagnose is only called after a rejection; with nothing to find it says so.
        assert_eq!(diagnose(&tx, 0, &spent), "unknown error");
    }

    #[test]
    fn key_path_corrupted_signature() {
        let (tx, spent) = spend(p2tr_key_only(), 2, 0xffff_fffd);
        let mut sig = key_path_sig(&tx, &spent, TapSighashType::Default);
        sig[10] ^= 1;
        let tx = with_witness(tx, vec![sig]);
        assert_eq!(diagnose(&tx, 0, &spent), "Invalid Schnorr signature");
    }

    #[test]
    fn key_path_signature_shape_errors() {
        let (tx, spent) = spend(p2tr_key_only(), 2, 0xffff_fffd);
        let sig = key_path_sig(&tx, &spent, TapSighashType::Default);
        let cases = [
            (vec![], "Witness program was passed an empty witness"),
            (vec![sig[..63].to_vec()], "Invalid Schnorr signature size"),
            (vec![[&sig[..], &[0x00]].concat()], "Invalid Schnorr signature hash type"),
            (vec![[&sig[..], &[0x04]].concat()], "Invalid Schnorr signature hash type"),
            // SIGHASH_DEFAULT signature, explicitly marked SIGHASH_ALL: a different sighash.
            (vec![[&sig[..], &[0x01]].concat()], "Invalid Schnorr signature"),
        ];
        for (witness, expected) in cases {
            let tx = with_witness(tx.clone(), witness);
            assert_eq!(diagnose(&tx, 0, &spent), expected);
        }
        // SIGHASH_SINGLE without a matching output.
        let mut two_inputs = tx.clone();
        two_inputs.input.push(tx.input[0].clone());
        let spent2 = vec![spent[0].clone(), spent[0].clone()];
        let sig_single = [&sig[..], &[0x03]].concat();
        two_inputs.input[1].witness = Witness::from_slice(&[sig_single]);
        assert_eq!(diagnose(&two_inputs, 1, &spent2), "Invalid Schnorr signature hash type");
    }

    #[test]
    fn key_path_with_annex_commits_to_the_annex() {
        let (tx, spent) = spend(p2tr_key_only(), 2, 0xffff_fffd);
        let annex = vec![ANNEX_TAG, 1, 2, 3];
        let sighash = SighashCache::new(&tx)
            .taproot_signature_hash(
                0,
                &Prevouts::All(&spent),
                Some(Annex::new(&annex).unwrap()),
                None,
                TapSighashType::Default,
            )
            .unwrap();
        let tweaked = keypair(1).tap_tweak(&signer(), None);
        let msg = Message::from_digest(sighash.to_byte_array());
        let sig = signer().sign_schnorr_no_aux_rand(&msg, &tweaked.to_keypair());
        let good = with_witness(tx.clone(), vec![sig.as_ref().to_vec(), annex.clone()]);
        assert_eq!(check(&good, &spent), Ok(()));
        let other_annex = with_witness(tx, vec![sig.as_ref().to_vec(), vec![ANNEX_TAG, 9]]);
        assert_eq!(check(&other_annex, &spent), Err("Invalid Schnorr signature"));
    }

    // ----- taproot script path -----

    const CSV_BLOCKS: i64 = 10;

    fn leaf_a() -> ScriptBuf {
        Builder::new()
            .push_x_only_key(&xonly(1))
            .push_opcode(opcodes::OP_CHECKSIGVERIFY)
            .push_x_only_key(&xonly(2))
            .push_opcode(opcodes::OP_CHECKSIG)
            .into_script()
    }

    fn leaf_b() -> ScriptBuf {
        Builder::new()
            .push_x_only_key(&xonly(1))
            .push_opcode(opcodes::OP_CHECKSIGVERIFY)
            .push_int(CSV_BLOCKS)
            .push_opcode(opcodes::OP_CSV)
            .into_script()
    }

    fn covenant_leaf() -> ScriptBuf {
        Builder::new()
            .push_x_only_key(&xonly(1))
            .push_opcode(opcodes::OP_CHECKSIGVERIFY)
            .push_x_only_key(&xonly(11))
            .push_opcode(opcodes::OP_CHECKSIG)
            .push_x_only_key(&xonly(12))
            .push_opcode(opcodes::OP_CHECKSIGADD)
            .push_x_only_key(&xonly(13))
            .push_opcode(opcodes::OP_CHECKSIGADD)
            .push_int(2)
            .push_opcode(opcodes::OP_NUMEQUAL)
            .into_script()
    }

    fn tree(leaves: &[&ScriptBuf]) -> TaprootSpendInfo {
        let depth = if leaves.len() == 1 { 0 } else { 1 };
        leaves
            .iter()
            .fold(TaprootBuilder::new(), |b, &leaf| b.add_leaf(depth, leaf.clone()).unwrap())
            .finalize(&signer(), xonly(3))
            .unwrap()
    }

    fn control(info: &TaprootSpendInfo, leaf: &ScriptBuf) -> Vec<u8> {
        info.control_block(&(leaf.clone(), LeafVersion::TapScript)).unwrap().serialize()
    }

    fn script_sig(tx: &Transaction, spent: &[TxOut], leaf: &ScriptBuf, key: u8) -> Vec<u8> {
        let leaf_hash = TapLeafHash::from_script(leaf, LeafVersion::TapScript);
        let sighash = SighashCache::new(tx)
            .taproot_script_spend_signature_hash(0, &Prevouts::All(spent), leaf_hash, TapSighashType::Default)
            .unwrap();
        let msg = Message::from_digest(sighash.to_byte_array());
        let sig = signer().sign_schnorr_no_aux_rand(&msg, &keypair(key));
        sig.as_ref().to_vec()
    }

    fn two_leaf_spend(sequence: u32) -> (TaprootSpendInfo, Transaction, Vec<TxOut>) {
        let info = tree(&[&leaf_a(), &leaf_b()]);
        let (tx, spent) = spend(ScriptBuf::new_p2tr_tweaked(info.output_key()), 2, sequence);
        (info, tx, spent)
    }

    #[test]
    fn leaf_a_with_both_signatures_has_no_error() {
        let (info, tx, spent) = two_leaf_spend(0xffff_fffd);
        let (a, b) = (script_sig(&tx, &spent, &leaf_a(), 1), script_sig(&tx, &spent, &leaf_a(), 2));
        let witness = vec![b, a, leaf_a().to_bytes(), control(&info, &leaf_a())];
        assert_eq!(check(&with_witness(tx, witness), &spent), Ok(()));
    }

    #[test]
    fn leaf_a_with_empty_second_signature_is_false() {
        let (info, tx, spent) = two_leaf_spend(0xffff_fffd);
        let a = script_sig(&tx, &spent, &leaf_a(), 1);
        let witness = vec![vec![], a, leaf_a().to_bytes(), control(&info, &leaf_a())];
        assert_eq!(diagnose(&with_witness(tx, witness), 0, &spent), EVAL_FALSE);
    }

    #[test]
    fn leaf_a_with_corrupted_second_signature() {
        let (info, tx, spent) = two_leaf_spend(0xffff_fffd);
        let a = script_sig(&tx, &spent, &leaf_a(), 1);
        let mut b = script_sig(&tx, &spent, &leaf_a(), 2);
        b[5] ^= 0x40;
        let witness = vec![b, a, leaf_a().to_bytes(), control(&info, &leaf_a())];
        assert_eq!(diagnose(&with_witness(tx, witness), 0, &spent), "Invalid Schnorr signature");
    }

    #[test]
    fn leaf_a_with_empty_first_signature_fails_checksigverify() {
        let (info, tx, spent) = two_leaf_spend(0xffff_fffd);
        let b = script_sig(&tx, &spent, &leaf_a(), 2);
        let witness = vec![b, vec![], leaf_a().to_bytes(), control(&info, &leaf_a())];
        assert_eq!(diagnose(&with_witness(tx, witness), 0, &spent), "Script failed an OP_CHECKSIGVERIFY operation");
    }

    #[test]
    fn leaf_b_checks_the_relative_lock_time() {
        for (sequence, expected) in [
            (CSV_BLOCKS as u32, Ok(())),
            (CSV_BLOCKS as u32 + 5, Ok(())),
            (CSV_BLOCKS as u32 - 5, Err("Locktime requirement not satisfied")),
            // Time-based sequence against a height-based operand.
            ((1 << 22) | 100, Err("Locktime requirement not satisfied")),
            // Relative lock time disabled on the input.
            (0xffff_fffe, Err("Locktime requirement not satisfied")),
        ] {
            let (info, tx, spent) = two_leaf_spend(sequence);
            let a = script_sig(&tx, &spent, &leaf_b(), 1);
            let witness = vec![a, leaf_b().to_bytes(), control(&info, &leaf_b())];
            assert_eq!(check(&with_witness(tx, witness), &spent), expected, "{sequence:#x}");
        }
        // Version 1 transactions do not enforce BIP68, so CSV fails.
        let info = tree(&[&leaf_a(), &leaf_b()]);
        let (tx, spent) = spend(ScriptBuf::new_p2tr_tweaked(info.output_key()), 1, 100);
        let a = script_sig(&tx, &spent, &leaf_b(), 1);
        let witness = vec![a, leaf_b().to_bytes(), control(&info, &leaf_b())];
        assert_eq!(check(&with_witness(tx, witness), &spent), Err("Locktime requirement not satisfied"));
    }

    #[test]
    fn bad_control_blocks() {
        let (info, tx, spent) = two_leaf_spend(0xffff_fffd);
        let a = script_sig(&tx, &spent, &leaf_b(), 1);
        let good = control(&info, &leaf_b());

        let mut wrong_path = good.clone();
        wrong_path[40] ^= 1;
        let mut wrong_parity = good.clone();
        wrong_parity[0] ^= 1;
        let cases = [
            (wrong_path, "Witness program hash mismatch"),
            (wrong_parity, "Witness program hash mismatch"),
            (good[..good.len() - 1].to_vec(), "Invalid Taproot control block size"),
            (good[..32].to_vec(), "Invalid Taproot control block size"),
        ];
        for (control, expected) in cases {
            let witness = vec![a.clone(), leaf_b().to_bytes(), control];
            assert_eq!(diagnose(&with_witness(tx.clone(), witness), 0, &spent), expected);
        }
        // The right control block for the other leaf.
        let witness = vec![a, leaf_b().to_bytes(), control(&info, &leaf_a())];
        assert_eq!(diagnose(&with_witness(tx, witness), 0, &spent), "Witness program hash mismatch");
    }

    #[test]
    fn babylon_covenant_leaf() {
        let leaf = covenant_leaf();
        let info = tree(&[&leaf]);
        let (tx, spent) = spend(ScriptBuf::new_p2tr_tweaked(info.output_key()), 2, 0xffff_fffd);
        let staker = script_sig(&tx, &spent, &leaf, 1);
        let c = |key| script_sig(&tx, &spent, &leaf, key);
        let witness = |c3: Vec<u8>, c2: Vec<u8>, c1: Vec<u8>| {
            let items = vec![c3, c2, c1, staker.clone(), leaf.to_bytes(), control(&info, &leaf)];
            with_witness(tx.clone(), items)
        };
        assert_eq!(diagnose(&witness(vec![], vec![], vec![]), 0, &spent), EVAL_FALSE);
        assert_eq!(diagnose(&witness(vec![], vec![], c(11)), 0, &spent), EVAL_FALSE);
        assert_eq!(check(&witness(vec![], c(12), c(11)), &spent), Ok(()));
        assert_eq!(check(&witness(c(13), vec![], c(11)), &spent), Ok(()));
        // Three signatures count 3, which is not 2.
        assert_eq!(check(&witness(c(13), c(12), c(11)), &spent), Err(EVAL_FALSE));
        // A signature from the wrong covenant key aborts.
        assert_eq!(check(&witness(vec![], c(11), c(11)), &spent), Err("Invalid Schnorr signature"));
    }

    #[test]
    fn tapscript_signatures_commit_to_codeseparator_and_annex() {
        let leaf = Builder::new()
            .push_opcode(opcodes::OP_CODESEPARATOR)
            .push_x_only_key(&xonly(1))
            .push_opcode(opcodes::OP_CHECKSIG)
            .into_script();
        let info = tree(&[&leaf]);
        let (tx, spent) = spend(ScriptBuf::new_p2tr_tweaked(info.output_key()), 2, 0xffff_fffd);
        let annex = vec![ANNEX_TAG, 0xaa];
        let sign = |codesep_pos: u32, annex: Option<&[u8]>| {
            let leaf_hash = TapLeafHash::from_script(&leaf, LeafVersion::TapScript);
            let sighash = SighashCache::new(&tx)
                .taproot_signature_hash(
                    0,
                    &Prevouts::All(&spent),
                    annex.map(|a| Annex::new(a).unwrap()),
                    Some((leaf_hash, codesep_pos)),
                    TapSighashType::Default,
                )
                .unwrap();
            let msg = Message::from_digest(sighash.to_byte_array());
            let sig = signer().sign_schnorr_no_aux_rand(&msg, &keypair(1));
            sig.as_ref().to_vec()
        };
        let spend_with = |sig: Vec<u8>, annex: Option<&Vec<u8>>| {
            let mut items = vec![sig, leaf.to_bytes(), control(&info, &leaf)];
            items.extend(annex.cloned());
            check(&with_witness(tx.clone(), items), &spent)
        };
        // The OP_CODESEPARATOR is opcode 0 of the leaf.
        assert_eq!(spend_with(sign(0, None), None), Ok(()));
        assert_eq!(spend_with(sign(u32::MAX, None), None), Err("Invalid Schnorr signature"));
        assert_eq!(spend_with(sign(0, Some(&annex)), Some(&annex)), Ok(()));
        assert_eq!(spend_with(sign(0, None), Some(&annex)), Err("Invalid Schnorr signature"));
    }

    /// Runs `leaf` as the only leaf of a tree, with `stack` as its inputs.
    fn run_tapscript(leaf: ScriptBuf, stack: Vec<Vec<u8>>) -> Result<(), &'static str> {
        let info = tree(&[&leaf]);
        let (tx, spent) = spend(ScriptBuf::new_p2tr_tweaked(info.output_key()), 2, 0xffff_fffd);
        let mut items = stack;
        items.push(leaf.to_bytes());
        items.push(control(&info, &leaf));
        check(&with_witness(tx, items), &spent)
    }

    fn script(bytes: &[u8]) -> ScriptBuf {
        ScriptBuf::from_bytes(bytes.to_vec())
    }

    /// A leaf script, its input stack and the expected outcome.
    type TapscriptCase = (Vec<u8>, Vec<Vec<u8>>, Result<(), &'static str>);

    #[test]
    fn tapscript_interpreter_errors() {
        let cases: Vec<TapscriptCase> = vec![
            (vec![OP_1], vec![], Ok(())),
            (vec![OP_1, OP_1], vec![], Err("Stack size must be exactly one after execution")),
            (vec![OP_0], vec![], Err(EVAL_FALSE)),
            (vec![OP_DROP, OP_1], vec![], Err("Operation not valid with the current stack size")),
            (vec![OP_RETURN], vec![], Err("OP_RETURN was encountered")),
            (vec![OP_IF, OP_1, OP_ENDIF], vec![vec![2]], Err("OP_IF/NOTIF argument must be minimal in tapscript")),
            (vec![OP_IF, OP_1, OP_ELSE, OP_0, OP_ENDIF], vec![vec![1]], Ok(())),
            (vec![OP_NOTIF, OP_1, OP_ELSE, OP_0, OP_ENDIF], vec![vec![]], Ok(())),
            (vec![OP_IF, OP_1], vec![vec![1]], Err("Invalid OP_IF construction")),
            (vec![OP_ENDIF], vec![], Err("Invalid OP_IF construction")),
            (vec![OP_VERIFY, OP_1], vec![vec![]], Err("Script failed an OP_VERIFY operation")),
            (vec![OP_EQUALVERIFY, OP_1], vec![vec![1], vec![2]], Err("Script failed an OP_EQUALVERIFY operation")),
            (vec![OP_NUMEQUALVERIFY, OP_1], vec![vec![1], vec![1, 0]], Ok(())),
            (
                vec![OP_NUMEQUALVERIFY, OP_1],
                vec![vec![1], vec![2]],
                Err("Script failed an OP_NUMEQUALVERIFY operation"),
            ),
            (vec![OP_ADD, OP_1 + 2, OP_NUMEQUAL], vec![vec![1], vec![2]], Ok(())),
            (vec![OP_ADD], vec![vec![1, 2, 3, 4, 5], vec![1]], Err("unknown error")),
            (vec![OP_WITHIN], vec![vec![5], vec![1], vec![6]], Ok(())),
            (vec![OP_SIZE, OP_SWAP, OP_DROP], vec![vec![0; 7]], Ok(())),
            (vec![OP_SHA256, OP_SIZE, 0x01, 32, OP_EQUALVERIFY], vec![vec![]], Ok(())),
            (vec![OP_CHECKMULTISIG], vec![], Err("OP_CHECKMULTISIG(VERIFY) is not available in tapscript")),
            (vec![OP_0, OP_0, OP_CHECKSIG], vec![], Err("Public key is neither compressed or uncompressed")),
            // Unknown public key types succeed without a check.
            (vec![0x01, 0x05, OP_CHECKSIG], vec![vec![1; 64]], Ok(())),
            (vec![0x20, 0x02], vec![], Err("Opcode missing or not understood")),
            // OP_SUCCESSx wins even over a later malformed-looking script.
            (vec![OP_RETURN, 0x50], vec![], Ok(())),
            (vec![OP_0, OP_CHECKLOCKTIMEVERIFY, OP_DROP, OP_1], vec![], Ok(())),
            (vec![OP_0, OP_CHECKLOCKTIMEVERIFY], vec![], Err(EVAL_FALSE)),
            (vec![OP_1NEGATE, OP_CHECKLOCKTIMEVERIFY], vec![], Err("Negative locktime")),
            (vec![0x01, 0x05, OP_CHECKLOCKTIMEVERIFY], vec![], Err("Locktime requirement not satisfied")),
            // CSV with the disable flag set is a NOP.
            (vec![0x05, 0, 0, 0, 0x80, 0, OP_CHECKSEQUENCEVERIFY], vec![], Ok(())),
        ];
        for (bytes, stack, expected) in cases {
            assert_eq!(run_tapscript(script(&bytes), stack), expected, "{}", hex::encode(&bytes));
        }
    }

    #[test]
    fn tapscript_validation_weight() {
        // The budget is the witness size plus 50; each non-empty signature costs 50. The
        // signatures below are checked against a 1-byte (unknown type) key, so they pass.
        let checks = |n: usize| {
            let mut bytes = Vec::new();
            for _ in 0..n {
                bytes.extend([OP_DUP, 0x01, 0x05, OP_CHECKSIGVERIFY]);
            }
            bytes.extend([OP_DROP, OP_1]);
            run_tapscript(script(&bytes), vec![vec![1; 64]])
        };
        // A witness of 1 + 65 + 15 + 34 = 115 bytes: 165 covers three checks.
        assert_eq!(checks(3), Ok(()));
        // 1 + 65 + 19 + 34 = 119 bytes: 169 does not cover four.
        assert_eq!(checks(4), Err("Too much signature validation relative to witness weight"));
    }

    // ----- segwit v0 -----

    fn p2wpkh_key() -> CompressedPublicKey {
        CompressedPublicKey(keypair(5).public_key())
    }

    fn ecdsa_sig(sighash: [u8; 32], key: u8, hash_type: u8) -> Vec<u8> {
        let secret = SecretKey::from_slice(&[key; 32]).unwrap();
        let sig = signer().sign_ecdsa(&Message::from_digest(sighash), &secret);
        let mut bytes = sig.serialize_der().to_vec();
        bytes.push(hash_type);
        bytes
    }

    #[test]
    fn p2wpkh_spends() {
        let spk = ScriptBuf::new_p2wpkh(&p2wpkh_key().wpubkey_hash());
        let (tx, spent) = spend(spk.clone(), 2, 0xffff_fffd);
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &spk, spent[0].value, EcdsaSighashType::All)
            .unwrap()
            .to_byte_array();
        let pubkey = p2wpkh_key().to_bytes().to_vec();
        let good = ecdsa_sig(sighash, 5, 0x01);
        let wrong = ecdsa_sig([9; 32], 5, 0x01);
        let other_key = CompressedPublicKey(keypair(6).public_key()).to_bytes().to_vec();
        let mut not_der = good.clone();
        not_der[0] = 0x31;
        let cases = [
            (vec![good.clone(), pubkey.clone()], Ok(())),
            (vec![wrong, pubkey.clone()], Err(EVAL_FALSE)),
            (vec![vec![], pubkey.clone()], Err(EVAL_FALSE)),
            (vec![not_der, pubkey.clone()], Err("Non-canonical DER signature")),
            (vec![good.clone(), other_key], Err("Script failed an OP_EQUALVERIFY operation")),
            (vec![good.clone()], Err("Witness program hash mismatch")),
            (vec![], Err("Witness program hash mismatch")),
            (vec![vec![], good, pubkey], Err("Witness program hash mismatch")),
        ];
        for (witness, expected) in cases {
            assert_eq!(check(&with_witness(tx.clone(), witness), &spent), expected);
        }
    }

    #[test]
    fn segwit_v0_sighash_matches_rust_bitcoin() {
        let spk = ScriptBuf::new_p2wpkh(&p2wpkh_key().wpubkey_hash());
        let (mut tx, mut spent) = spend(spk.clone(), 2, 0xffff_fffd);
        tx.input.push(tx.input[0].clone());
        tx.input[1].previous_output.vout = 1;
        spent.push(spent[0].clone());
        let checker = Checker { tx: &tx, input_index: 1, spent: &spent };
        let script_code = spk.p2wpkh_script_code().unwrap();
        for ty in [
            EcdsaSighashType::All,
            EcdsaSighashType::None,
            EcdsaSighashType::Single,
            EcdsaSighashType::AllPlusAnyoneCanPay,
            EcdsaSighashType::NonePlusAnyoneCanPay,
            EcdsaSighashType::SinglePlusAnyoneCanPay,
        ] {
            let expected =
                SighashCache::new(&tx).p2wpkh_signature_hash(1, &spk, spent[1].value, ty).unwrap().to_byte_array();
            let ours = checker.segwit_v0_sighash(script_code.as_bytes(), ty as u8).unwrap();
            assert_eq!(ours, expected, "{ty:?}");
        }
    }

    fn p2wsh(witness_script: &ScriptBuf) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&witness_script.wscript_hash())
    }

    #[test]
    fn p2wsh_spends() {
        let multisig = Builder::new()
            .push_int(1)
            .push_slice(p2wpkh_key().to_bytes())
            .push_int(1)
            .push_opcode(opcodes::OP_CHECKMULTISIG)
            .into_script();
        let (tx, spent) = spend(p2wsh(&multisig), 2, 0xffff_fffd);
        let sighash = SighashCache::new(&tx)
            .p2wsh_signature_hash(0, &multisig, spent[0].value, EcdsaSighashType::All)
            .unwrap()
            .to_byte_array();
        let good = ecdsa_sig(sighash, 5, 0x01);
        let ms = multisig.to_bytes();
        let cases = [
            (vec![vec![], good.clone(), ms.clone()], Ok(())),
            (vec![vec![1], good.clone(), ms.clone()], Err("Dummy CHECKMULTISIG argument must be zero")),
            (vec![vec![], ecdsa_sig([1; 32], 5, 1), ms.clone()], Err(EVAL_FALSE)),
            (vec![good.clone(), ms.clone()], Err("Operation not valid with the current stack size")),
            (vec![vec![], good.clone(), ms[1..].to_vec()], Err("Witness program hash mismatch")),
            (vec![], Err("Witness program was passed an empty witness")),
        ];
        for (witness, expected) in cases {
            assert_eq!(check(&with_witness(tx.clone(), witness), &spent), expected);
        }
        // A non-standard hash type byte is hashed as is, like Core.
        let sighash_0x41 = Checker { tx: &tx, input_index: 0, spent: &spent }.segwit_v0_sighash(&ms, 0x41).unwrap();
        let odd = ecdsa_sig(sighash_0x41, 5, 0x41);
        assert_eq!(check(&with_witness(tx, vec![vec![], odd, ms]), &spent), Ok(()));
    }

    #[test]
    fn p2sh_wrapped_p2wpkh() {
        let redeem = ScriptBuf::new_p2wpkh(&p2wpkh_key().wpubkey_hash());
        let (mut tx, spent) = spend(ScriptBuf::new_p2sh(&redeem.script_hash()), 2, 0xffff_fffd);
        tx.input[0].script_sig = ScriptBuf::from_bytes(push_data(redeem.as_bytes()));
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &redeem, spent[0].value, EcdsaSighashType::All)
            .unwrap()
            .to_byte_array();
        let pubkey = p2wpkh_key().to_bytes().to_vec();
        let good = with_witness(tx.clone(), vec![ecdsa_sig(sighash, 5, 1), pubkey.clone()]);
        assert_eq!(check(&good, &spent), Ok(()));
        let bad = with_witness(tx.clone(), vec![ecdsa_sig([3; 32], 5, 1), pubkey.clone()]);
        assert_eq!(check(&bad, &spent), Err(EVAL_FALSE));
        let mut malleated = good.clone();
        let mut sig = vec![OP_0];
        sig.extend(push_data(redeem.as_bytes()));
        malleated.input[0].script_sig = ScriptBuf::from_bytes(sig);
        assert_eq!(check(&malleated, &spent), Err("Witness requires only-redeemscript scriptSig"));
    }

    // ----- legacy -----

    #[test]
    fn p2pkh_spends() {
        let spk = ScriptBuf::new_p2pkh(&bitcoin::PublicKey::new(keypair(5).public_key()).pubkey_hash());
        let (tx, spent) = spend(spk.clone(), 1, 0xffff_ffff);
        let sighash = SighashCache::new(&tx).legacy_signature_hash(0, &spk, 1).unwrap().to_byte_array();
        let pubkey = p2wpkh_key().to_bytes();
        let sig_script = |sig: Vec<u8>| {
            let mut bytes = push_data(&sig);
            bytes.extend(push_data(&pubkey));
            bytes
        };
        let mut good = tx.clone();
        good.input[0].script_sig = ScriptBuf::from_bytes(sig_script(ecdsa_sig(sighash, 5, 1)));
        assert_eq!(check(&good, &spent), Ok(()));
        let mut bad = tx.clone();
        bad.input[0].script_sig = ScriptBuf::from_bytes(sig_script(ecdsa_sig([4; 32], 5, 1)));
        assert_eq!(check(&bad, &spent), Err(EVAL_FALSE));
        let mut with_witness_data = good.clone();
        with_witness_data.input[0].witness = Witness::from_slice(&[vec![1]]);
        assert_eq!(check(&with_witness_data, &spent), Err("Witness provided for non-witness script"));
        let mut native_with_sig = with_witness(tx, vec![]);
        native_with_sig.input[0].script_sig = ScriptBuf::from_bytes(vec![OP_1]);
        let p2tr = vec![TxOut { value: spent[0].value, script_pubkey: p2tr_key_only() }];
        assert_eq!(check(&native_with_sig, &p2tr), Err("Witness requires empty scriptSig"));
    }

    // ----- helpers -----

    #[test]
    fn script_numbers_round_trip() {
        for n in [0i64, 1, -1, 127, 128, -128, 255, 256, -255, 32767, 32768, 1 << 31, -(1 << 31)] {
            assert_eq!(script_num(&num_bytes(n), 5), Ok(n), "{n}");
        }
        assert_eq!(num_bytes(128), vec![0x80, 0x00]);
        assert_eq!(num_bytes(-1), vec![0x81]);
        // Non-minimal encodings are accepted under consensus.
        assert_eq!(script_num(&[0x01, 0x00], 4), Ok(1));
        assert_eq!(script_num(&[0x00, 0x80], 4), Ok(0));
        assert_eq!(script_num(&[1, 2, 3, 4, 5], 4), Err(ScriptError::ScriptNum));
        assert!(!cast_to_bool(&[0, 0, 0x80]));
        assert!(cast_to_bool(&[0, 1, 0x80]));
    }

    #[test]
    fn find_and_delete_matches_core() {
        // Core's script_tests FindAndDelete vectors.
        let cases: [(&str, &str, &str); 6] = [
            ("0302ff030302ff03", "0302ff03", ""),
            ("0302ff030302ff03", "02", "0302ff030302ff03"),
            ("0302ff030302ff03", "ff", "0302ff030302ff03"),
            ("02feed5169", "feed51", "02feed5169"),
            ("02feed5169", "02feed51", "69"),
            ("516902feed5169", "feed51", "516902feed5169"),
        ];
        for (script, needle, expected) in cases {
            let script = hex::decode(script).unwrap();
            let needle = hex::decode(needle).unwrap();
            assert_eq!(hex::encode(find_and_delete(&script, &needle)), expected);
        }
    }

    #[test]
    fn op_success_table_matches_rust_bitcoin_names() {
        assert!(is_op_success(opcodes::OP_RESERVED.to_u8()));
        assert!(is_op_success(opcodes::OP_CAT.to_u8()));
        assert!(!is_op_success(opcodes::OP_CHECKSIGADD.to_u8()));
        assert_eq!(OP_CHECKSIGADD, opcodes::OP_CHECKSIGADD.to_u8());
        assert_eq!(OP_CHECKLOCKTIMEVERIFY, opcodes::OP_CLTV.to_u8());
        assert_eq!(OP_WITHIN, opcodes::OP_WITHIN.to_u8());
        assert_eq!(OP_NOP10, opcodes::OP_NOP10.to_u8());
    }
}
