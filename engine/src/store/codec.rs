//! Byte layouts of the store: keys, values, and the state digest. Everything here is pure.
//!
//! Key layout (one RocksDB database, default column family, keys compared bytewise):
//!
//! ```text
//! 'g' "format"                         -> u8 format version (2)
//! 'g' "outbox_seq"                     -> u64 BE: next outbox sequence number
//! 'o' seq:u64 BE                       -> outbox entry (see encode_outbox)
//! 'p' len:u32 BE name  'c'             -> cursor: height u32 BE, hash[32], digest[32]
//! 'p' len:u32 BE name  'd' key         -> the plugin's value for `key`
//! 'p' len:u32 BE name  'h' height BE   -> digest history: hash[32], digest[32]
//! 'p' len:u32 BE name  'l' key         -> the plugin's off-chain ("local") value for `key`
//! 'p' len:u32 BE name  'm' meta-key    -> metadata value
//! 'p' len:u32 BE name  'n'             -> u64 BE: messages the namespace has emitted so far
//! 'p' len:u32 BE name  's'             -> status (absent = Active)
//! 'p' len:u32 BE name  'u' height BE   -> undo record of the block at `height`
//! ```
//!
//! The namespace prefix `'p' len name` is prefix-free (the length comes before the name), so no
//! key of one plugin can start with another plugin's prefix, whatever bytes the name or the
//! plugin's keys contain; all plugin reads are bounded to `prefix 'd' ..= prefix 'd' 0xFF..`.

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};

use super::{Cursor, Status};
use crate::plugin_api::BlockRef;

pub const FORMAT_VERSION: u8 = 2;
pub const KEY_FORMAT: &[u8] = b"gformat";
pub const KEY_OUTBOX_SEQ: &[u8] = b"goutbox_seq";
pub const OUTBOX_TAG: u8 = b'o';
pub const PLUGIN_TAG: u8 = b'p';

pub const SUB_CURSOR: u8 = b'c';
pub const SUB_DATA: u8 = b'd';
pub const SUB_HISTORY: u8 = b'h';
pub const SUB_LOCAL: u8 = b'l';
pub const SUB_META: u8 = b'm';
pub const SUB_MSGNO: u8 = b'n';
pub const SUB_STATUS: u8 = b's';
pub const SUB_UNDO: u8 = b'u';

/// `'p' len:u32 BE name`.
pub fn plugin_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + name.len());
    k.push(PLUGIN_TAG);
    k.extend_from_slice(&(name.len() as u32).to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// Parses the plugin name at the start of a raw key starting with `'p'`.
pub fn plugin_name_of(raw: &[u8]) -> Option<(&str, usize)> {
    if raw.len() < 5 || raw[0] != PLUGIN_TAG {
        return None;
    }
    let len = u32::from_be_bytes(raw[1..5].try_into().ok()?) as usize;
    let name = raw.get(5..5 + len)?;
    Some((std::str::from_utf8(name).ok()?, 5 + len))
}

pub fn sub_key(prefix: &[u8], sub: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 1 + rest.len());
    k.extend_from_slice(prefix);
    k.push(sub);
    k.extend_from_slice(rest);
    k
}

pub fn height_key(prefix: &[u8], sub: u8, height: u32) -> Vec<u8> {
    sub_key(prefix, sub, &height.to_be_bytes())
}

pub fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(OUTBOX_TAG);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn outbox_seq_of(raw: &[u8]) -> Option<u64> {
    if raw.len() == 9 && raw[0] == OUTBOX_TAG {
        Some(u64::from_be_bytes(raw[1..9].try_into().ok()?))
    } else {
        None
    }
}

/// The smallest byte string greater than every string starting with `prefix`; `None` if there is
/// none (empty prefix or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last != 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

pub fn encode_cursor(c: &Cursor) -> Vec<u8> {
    let mut v = Vec::with_capacity(68);
    v.extend_from_slice(&c.height.to_be_bytes());
    v.extend_from_slice(&c.hash);
    v.extend_from_slice(&c.digest);
    v
}

pub fn decode_cursor(v: &[u8]) -> Result<Cursor> {
    if v.len() != 68 {
        bail!("corrupt cursor record ({} bytes, expected 68)", v.len());
    }
    Ok(Cursor {
        height: u32::from_be_bytes(v[0..4].try_into().unwrap()),
        hash: v[4..36].try_into().unwrap(),
        digest: v[36..68].try_into().unwrap(),
    })
}

pub fn encode_status(s: &Status) -> Vec<u8> {
    match s {
        Status::Active => vec![0],
        Status::Halted { height, reason } => {
            let mut v = vec![1];
            v.extend_from_slice(&height.to_be_bytes());
            v.extend_from_slice(reason.as_bytes());
            v
        }
    }
}

pub fn decode_status(v: &[u8]) -> Result<Status> {
    match v.first() {
        Some(0) if v.len() == 1 => Ok(Status::Active),
        Some(1) if v.len() >= 5 => Ok(Status::Halted {
            height: u32::from_be_bytes(v[1..5].try_into().unwrap()),
            reason: String::from_utf8_lossy(&v[5..]).into_owned(),
        }),
        _ => bail!("corrupt status record"),
    }
}

/// What is needed to take one block back out of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRecord {
    /// The cursor before the block (`None`: the namespace was empty).
    pub prev: Option<Cursor>,
    pub block_hash: [u8; 32],
    /// Every key the block wrote, with its value before the block (`None`: absent), key order.
    pub before: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Outbox sequence numbers of the block's publishes.
    pub seqs: Vec<u64>,
}

const UNDO_VERSION: u8 = 1;

pub fn encode_undo(u: &UndoRecord) -> Vec<u8> {
    let size: usize = u.before.iter().map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| v.len())).sum();
    let mut out = Vec::with_capacity(120 + size + 8 * u.seqs.len());
    out.push(UNDO_VERSION);
    match &u.prev {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&encode_cursor(c));
        }
    }
    out.extend_from_slice(&u.block_hash);
    out.extend_from_slice(&(u.before.len() as u32).to_be_bytes());
    for (k, v) in &u.before {
        put_bytes(&mut out, k);
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v);
            }
        }
    }
    out.extend_from_slice(&(u.seqs.len() as u32).to_be_bytes());
    for s in &u.seqs {
        out.extend_from_slice(&s.to_be_bytes());
    }
    out
}

pub fn decode_undo(v: &[u8]) -> Result<UndoRecord> {
    let mut r = Reader { buf: v, pos: 0 };
    if r.u8()? != UNDO_VERSION {
        bail!("corrupt undo record: unknown version");
    }
    let prev = match r.u8()? {
        0 => None,
        1 => Some(decode_cursor(r.take(68)?)?),
        _ => bail!("corrupt undo record: bad cursor flag"),
    };
    let block_hash: [u8; 32] = r.take(32)?.try_into().unwrap();
    let n = r.u32()? as usize;
    let mut before = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let k = r.bytes()?.to_vec();
        let v = match r.u8()? {
            0 => None,
            1 => Some(r.bytes()?.to_vec()),
            _ => bail!("corrupt undo record: bad value flag"),
        };
        before.push((k, v));
    }
    let m = r.u32()? as usize;
    let mut seqs = Vec::with_capacity(m.min(1 << 20));
    for _ in 0..m {
        seqs.push(u64::from_be_bytes(r.take(8)?.try_into().unwrap()));
    }
    if r.pos != v.len() {
        bail!("corrupt undo record: trailing bytes");
    }
    Ok(UndoRecord { prev, block_hash, before, seqs })
}

pub fn encode_history(hash: &[u8; 32], digest: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(hash);
    v.extend_from_slice(digest);
    v
}

pub fn decode_history(v: &[u8]) -> Result<([u8; 32], [u8; 32])> {
    if v.len() != 64 {
        bail!("corrupt digest history record");
    }
    Ok((v[0..32].try_into().unwrap(), v[32..64].try_into().unwrap()))
}

/// Outbox value: plugin (u32 len + bytes), height u32, block hash[32], message number u64 (the
/// namespace's count of emitted messages before this one), queue (u32 len + bytes), body (rest).
pub fn encode_outbox(plugin: &str, block: &BlockRef, number: u64, queue: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(56 + plugin.len() + queue.len() + body.len());
    put_bytes(&mut v, plugin.as_bytes());
    v.extend_from_slice(&block.height.to_be_bytes());
    v.extend_from_slice(&block.hash);
    v.extend_from_slice(&number.to_be_bytes());
    put_bytes(&mut v, queue.as_bytes());
    v.extend_from_slice(body);
    v
}

pub struct OutboxFields {
    pub plugin: String,
    pub height: u32,
    pub block_hash: [u8; 32],
    pub number: u64,
    pub queue: String,
    pub body: Vec<u8>,
}

pub fn decode_outbox(v: &[u8]) -> Result<OutboxFields> {
    let mut r = Reader { buf: v, pos: 0 };
    let plugin = String::from_utf8(r.bytes()?.to_vec())?;
    let height = r.u32()?;
    let block_hash = r.take(32)?.try_into().unwrap();
    let number = u64::from_be_bytes(r.take(8)?.try_into().unwrap());
    let queue = String::from_utf8(r.bytes()?.to_vec())?;
    let body = v[r.pos..].to_vec();
    Ok(OutboxFields { plugin, height, block_hash, number, queue, body })
}

/// The state digest after a block:
///
/// ```text
/// sha256( prev_digest[32] || height u32 BE || block_hash[32]
///         || for each written key, ascending:  0x01 klen:u32 BE key vlen:u32 BE value   (put)
///                                          |  0x00 klen:u32 BE key                      (delete)
///         || for each publish, in order:       0x02 qlen:u32 BE queue blen:u32 BE body )
/// ```
///
/// `writes` is the block's net write set (last write per key wins) in ascending key order. The
/// empty namespace starts from 32 zero bytes. Publishes are included so that a divergence in
/// what a plugin emits shows up in the digest as well as a divergence in its state.
pub fn block_digest<'a>(
    prev: &[u8; 32],
    block: &BlockRef,
    writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    publishes: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(block.height.to_be_bytes());
    h.update(block.hash);
    for (k, v) in writes {
        match v {
            Some(v) => {
                h.update([1u8]);
                h.update((k.len() as u32).to_be_bytes());
                h.update(k);
                h.update((v.len() as u32).to_be_bytes());
                h.update(v);
            }
            None => {
                h.update([0u8]);
                h.update((k.len() as u32).to_be_bytes());
                h.update(k);
            }
        }
    }
    for (q, b) in publishes {
        h.update([2u8]);
        h.update((q.len() as u32).to_be_bytes());
        h.update(q.as_bytes());
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    }
    h.finalize().into()
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else { bail!("corrupt record: truncated") };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Bitcoin's display order (reversed) hex of a hash in internal byte order, for messages.
pub fn hash_hex(h: &[u8; 32]) -> String {
    let mut r = *h;
    r.reverse();
    hex::encode(r)
}
