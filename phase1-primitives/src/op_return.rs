//! The 73-byte V0 identification OP_RETURN output (spec §1.2).

use bitcoin::{Script, ScriptBuf, XOnlyPublicKey};

use crate::script::OP_RETURN;

/// Size of the OP_RETURN payload: tag (4) ‖ version (1) ‖ staker (32) ‖ FP (32) ‖ time (2).
pub const V0_OP_RETURN_DATA_SIZE: usize = 71;
/// Size of the whole pkScript: `6a 47` ‖ payload.
pub const V0_OP_RETURN_SCRIPT_SIZE: usize = V0_OP_RETURN_DATA_SIZE + 2;
/// Length of the tag.
pub const TAG_LEN: usize = 4;

/// The decoded Babylon V0 OP_RETURN payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V0OpReturn {
    /// The 4-byte params tag (e.g. `62626e31`, "bbn1").
    pub tag: [u8; 4],
    /// Version byte (0 for every decodable payload).
    pub version: u8,
    /// Staker x-only key.
    pub staker_pk: XOnlyPublicKey,
    /// Finality-provider x-only key.
    pub fp_pk: XOnlyPublicKey,
    /// Staking time in blocks (big-endian on the wire).
    pub staking_time: u16,
}

/// The 71 data bytes of `script` if it is what Babylon's `getV0OpReturnBytes` accepts: exactly 73
/// bytes and a btcd "null data" script (`OP_RETURN` followed by exactly one push of at most 80
/// bytes). The payload is always `script[2..]`, as in Go.
///
/// In practice that is `6a 47 <71 bytes>`; btcd's `IsNullData` also accepts the non-minimal pushes
/// `6a 4c 46 …`, `6a 4d 4500 …` and `6a 4e 43000000 …` of the same total length, and Go then takes
/// the push-length bytes as part of the payload. This function reproduces that quirk so that the
/// "more than one V0 OP_RETURN" rule of Step B decides exactly as the Go indexer did.
pub fn v0_op_return_data(script: &[u8]) -> Option<&[u8; V0_OP_RETURN_DATA_SIZE]> {
    if script.len() != V0_OP_RETURN_SCRIPT_SIZE || script[0] != OP_RETURN {
        return None;
    }
    // The rest (72 bytes) must be exactly one data push.
    let single_push = match script[1] {
        0x47 => true,                                                                   // OP_DATA_71
        0x4c => script[2] == 70,                                                        // OP_PUSHDATA1 70
        0x4d => u16::from_le_bytes([script[2], script[3]]) == 69,                       // OP_PUSHDATA2 69
        0x4e => u32::from_le_bytes([script[2], script[3], script[4], script[5]]) == 67, // OP_PUSHDATA4 67
        _ => false,
    };
    if !single_push {
        return None;
    }
    script[2..].try_into().ok()
}

impl V0OpReturn {
    /// A version-0 payload.
    pub fn new(tag: [u8; 4], staker_pk: XOnlyPublicKey, fp_pk: XOnlyPublicKey, staking_time: u16) -> V0OpReturn {
        V0OpReturn { tag, version: 0, staker_pk, fp_pk, staking_time }
    }

    /// The 71 payload bytes.
    pub fn data_bytes(&self) -> [u8; V0_OP_RETURN_DATA_SIZE] {
        let mut d = [0u8; V0_OP_RETURN_DATA_SIZE];
        d[..4].copy_from_slice(&self.tag);
        d[4] = self.version;
        d[5..37].copy_from_slice(&self.staker_pk.serialize());
        d[37..69].copy_from_slice(&self.fp_pk.serialize());
        d[69..71].copy_from_slice(&self.staking_time.to_be_bytes());
        d
    }

    /// The 73-byte pkScript bytes `6a 47 ‖ payload`.
    pub fn to_bytes(&self) -> [u8; V0_OP_RETURN_SCRIPT_SIZE] {
        let mut s = [0u8; V0_OP_RETURN_SCRIPT_SIZE];
        s[0] = OP_RETURN;
        s[1] = V0_OP_RETURN_DATA_SIZE as u8;
        s[2..].copy_from_slice(&self.data_bytes());
        s
    }

    /// The 73-byte pkScript `6a 47 ‖ payload`.
    pub fn to_script(&self) -> ScriptBuf {
        ScriptBuf::from_bytes(self.to_bytes().to_vec())
    }

    /// Decodes a payload as Babylon's `NewV0OpReturnDataFromBytes` does: version byte must be 0 and
    /// both keys valid x-only points. The tag is not checked.
    pub fn from_data(d: &[u8; V0_OP_RETURN_DATA_SIZE]) -> Option<V0OpReturn> {
        if d[4] != 0 {
            return None;
        }
        let staker_pk = crate::curve::xonly_key(&d[5..37])?;
        let fp_pk = crate::curve::xonly_key(&d[37..69])?;
        Some(V0OpReturn {
            tag: [d[0], d[1], d[2], d[3]],
            version: 0,
            staker_pk,
            fp_pk,
            staking_time: u16::from_be_bytes([d[69], d[70]]),
        })
    }

    /// Decodes a pkScript: 73-byte null data (see [`v0_op_return_data`]), version byte 0, both keys
    /// valid x-only points — regardless of the tag. `None` for anything else.
    pub fn parse(script: &Script) -> Option<V0OpReturn> {
        v0_op_return_data(script.as_bytes()).and_then(V0OpReturn::from_data)
    }
}
