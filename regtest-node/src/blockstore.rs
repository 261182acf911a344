//! The node's own durable record of everything that shapes the chain: every block the kernel
//! accepted (side branches included) and every `invalidateblock` / `reconsiderblock`, in the
//! order they happened. It is an append-only log, fsynced per record; a torn final record left
//! by a crash is cut off on open. The kernel keeps its own block files and chainstate; this log
//! is what lets the node rebuild that chainstate from scratch (the kernel has no
//! invalidate call) and what survives if the kernel's directory is lost.

use anyhow::{bail, Context, Result};
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: [u8; 4] = *b"RNB1";
const KIND_BLOCK: u8 = 1;
const KIND_INVALIDATE: u8 = 2;
const KIND_RECONSIDER: u8 = 3;

#[derive(Debug, Clone)]
pub enum Record {
    Block(Block),
    Invalidate(BlockHash),
    Reconsider(BlockHash),
}

pub struct BlockStore {
    path: PathBuf,
    file: File,
}

impl BlockStore {
    /// Opens (creating if needed) the log and returns every intact record in order.
    pub fn open(path: &Path) -> Result<(BlockStore, Vec<Record>)> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening block log {}", path.display()))?;
        let len = file.metadata()?.len();
        let mut records = Vec::new();
        let mut good_end = 0u64;
        {
            let mut reader = BufReader::new(&mut file);
            reader.seek(SeekFrom::Start(0))?;
            loop {
                match read_record(&mut reader) {
                    Ok(Some((record, size))) => {
                        records.push(record);
                        good_end += size;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(
                            "block log {}: dropping a torn or corrupt tail at byte {good_end} of {len} ({e:#})",
                            path.display()
                        );
                        break;
                    }
                }
            }
        }
        if good_end < len {
            file.set_len(good_end)?;
            file.sync_all()?;
        }
        Ok((BlockStore { path: path.to_path_buf(), file }, records))
    }

    pub fn append(&mut self, record: &Record) -> Result<()> {
        let (kind, payload) = match record {
            Record::Block(b) => (KIND_BLOCK, serialize(b)),
            Record::Invalidate(h) => (KIND_INVALIDATE, h.to_byte_array().to_vec()),
            Record::Reconsider(h) => (KIND_RECONSIDER, h.to_byte_array().to_vec()),
        };
        let mut buf = Vec::with_capacity(payload.len() + 13);
        buf.extend_from_slice(&MAGIC);
        buf.push(kind);
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(&checksum(&payload).to_le_bytes());
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("appending to block log {}", self.path.display()))
    }
}

fn checksum(payload: &[u8]) -> u32 {
    let h = bitcoin::hashes::sha256::Hash::hash(payload);
    u32::from_le_bytes(h.as_byte_array()[..4].try_into().expect("4 bytes"))
}

fn read_record(r: &mut impl Read) -> Result<Option<(Record, u64)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..])?;
    if head[..4] != MAGIC {
        bail!("bad record magic");
    }
    let kind = head[4];
    let len = u32::from_le_bytes(head[5..9].try_into().expect("4 bytes")) as usize;
    if len > 32 * 1024 * 1024 {
        bail!("record length {len} is implausible");
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    let mut sum = [0u8; 4];
    r.read_exact(&mut sum)?;
    if u32::from_le_bytes(sum) != checksum(&payload) {
        bail!("record checksum mismatch");
    }
    let hash = |p: &[u8]| -> Result<BlockHash> {
        Ok(BlockHash::from_byte_array(p.try_into().context("hash record is not 32 bytes")?))
    };
    let record = match kind {
        KIND_BLOCK => Record::Block(deserialize(&payload).context("undecodable block record")?),
        KIND_INVALIDATE => Record::Invalidate(hash(&payload)?),
        KIND_RECONSIDER => Record::Reconsider(hash(&payload)?),
        k => bail!("unknown record kind {k}"),
    };
    Ok(Some((record, (len + 13) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        {
            let (mut store, records) = BlockStore::open(&path).unwrap();
            assert!(records.is_empty());
            store.append(&Record::Block(genesis.clone())).unwrap();
            store.append(&Record::Invalidate(genesis.block_hash())).unwrap();
        }
        // Simulate a crash half-way through a third record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&MAGIC).unwrap();
        f.write_all(&[KIND_BLOCK, 200, 0]).unwrap();
        drop(f);
        let (mut store, records) = BlockStore::open(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert!(matches!(&records[0], Record::Block(b) if b.block_hash() == genesis.block_hash()));
        assert!(matches!(records[1], Record::Invalidate(h) if h == genesis.block_hash()));
        store.append(&Record::Reconsider(genesis.block_hash())).unwrap();
        let (_, records) = BlockStore::open(&path).unwrap();
        assert_eq!(records.len(), 3);
    }
}
