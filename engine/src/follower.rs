//! Reorg-safe block delivery. The follower moves one plugin's cursor toward the source's best
//! chain one step at a time: if the cursor's block is still on the best chain it applies the
//! next block; if not, it undoes the cursor's block. Repeating the step therefore unwinds any
//! reorg to the fork point and then applies the new branch, at any depth the indexer can undo.
//!
//! Invariant: the indexer never sees a block applied twice without an undo in between, never a
//! block whose parent is not its cursor, and never an undo of anything but its cursor.

use crate::plugin_api::BlockRef;
use crate::source::BlockSource;
use anyhow::{bail, Context, Result};
use bitcoin::hashes::Hash;
use bitcoin::BlockHash;

/// The indexing side of one plugin as the follower drives it (the plugin runner implements it
/// over the Wasm host and the store).
pub trait Indexer {
    /// The last applied block, or None before the first.
    fn cursor(&self) -> Result<Option<BlockRef>>;
    /// Applies `block` (raw consensus bytes), whose parent is the cursor (or anything for the
    /// first). `source` serves earlier blocks of the same chain (e.g. blocks that the new tip
    /// makes confirmed).
    fn apply(&mut self, block: BlockRef, parent: [u8; 32], raw: &[u8], source: &mut dyn BlockSource) -> Result<()>;
    /// Undoes the cursor's block; the cursor moves to its parent.
    fn undo(&mut self, block: BlockRef, source: &mut dyn BlockSource) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Applied(u32),
    Undone(u32),
    /// The cursor is the source's tip.
    AtTip,
    /// The source changed between two reads; try again.
    Raced,
}

/// One step of the cursor toward the source's best chain: apply the next block if it builds on
/// the cursor, undo the cursor if it left the best chain. Two source reads per applied block
/// (hash at the next height, the block); the cursor's own hash is re-read only when the next
/// block does not build on it or there is no next block.
pub fn step(source: &mut dyn BlockSource, ix: &mut dyn Indexer, start_height: u32) -> Result<Progress> {
    let cursor = ix.cursor()?;
    let next_height = cursor.map_or(start_height, |c| c.height + 1);
    let next = source.hash_at(next_height)?;
    let fetched = match next {
        Some(hash) => {
            let raw = source.block(&hash)?;
            if raw.len() < 80 {
                bail!("block {hash} from the source is only {} bytes", raw.len());
            }
            let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&raw[..80])?;
            Some((hash, raw, header.prev_blockhash.to_byte_array()))
        }
        None => None,
    };
    if let Some(c) = cursor {
        let builds_on_cursor = fetched.as_ref().is_some_and(|(_, _, parent)| *parent == c.hash);
        if !builds_on_cursor {
            if source.hash_at(c.height)?.map(|h| h.to_byte_array()) != Some(c.hash) {
                // The cursor's block left the best chain (or the chain got shorter): unwind it.
                ix.undo(c, source)
                    .with_context(|| format!("undoing block {} at height {}", hex_hash(&c.hash), c.height))?;
                return Ok(Progress::Undone(c.height));
            }
            if fetched.is_some() {
                // The cursor is on the best chain but the next block is not its child: the
                // source changed between the reads.
                return Ok(Progress::Raced);
            }
        }
    }
    let Some((hash, raw, parent)) = fetched else { return Ok(Progress::AtTip) };
    ix.apply(BlockRef { height: next_height, hash: hash.to_byte_array() }, parent, &raw, source)
        .with_context(|| format!("applying block {hash} at height {next_height}"))?;
    Ok(Progress::Applied(next_height))
}

/// Steps until the cursor is at the source's tip; returns how many applies and undos it took.
pub fn catch_up(source: &mut dyn BlockSource, ix: &mut dyn Indexer, start_height: u32) -> Result<(u64, u64)> {
    let (mut applied, mut undone, mut races) = (0, 0, 0u32);
    loop {
        match step(source, ix, start_height)? {
            Progress::Applied(_) => applied += 1,
            Progress::Undone(_) => undone += 1,
            Progress::AtTip => return Ok((applied, undone)),
            Progress::Raced => {
                races += 1;
                if races > 1000 {
                    bail!("the block source keeps contradicting itself (a block's parent is never the cursor); check it serves one consistent chain");
                }
                continue;
            }
        }
        races = 0;
    }
}

pub fn hex_hash(hash: &[u8; 32]) -> String {
    BlockHash::from_byte_array(*hash).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;
    use crate::testing::block;

    /// An indexer that checks the delivery invariants and whose state is the list of applied
    /// blocks, so it must end equal to the source's best chain.
    #[derive(Default)]
    struct Recorder {
        applied: Vec<BlockRef>,
        undo_window: usize,
        undos_in_a_row: usize,
    }

    impl Indexer for Recorder {
        fn cursor(&self) -> Result<Option<BlockRef>> {
            Ok(self.applied.last().copied())
        }
        fn apply(&mut self, block: BlockRef, parent: [u8; 32], _raw: &[u8], _: &mut dyn BlockSource) -> Result<()> {
            if let Some(c) = self.cursor().unwrap() {
                assert_eq!(parent, c.hash, "applied a block whose parent is not the cursor");
                assert_eq!(block.height, c.height + 1, "skipped or repeated a height");
            }
            assert!(!self.applied.contains(&block), "block applied twice without an undo");
            self.applied.push(block);
            self.undos_in_a_row = 0;
            Ok(())
        }
        fn undo(&mut self, block: BlockRef, _: &mut dyn BlockSource) -> Result<()> {
            assert_eq!(self.cursor().unwrap(), Some(block), "undo of something other than the cursor");
            self.undos_in_a_row += 1;
            if self.undos_in_a_row > self.undo_window {
                bail!("reorg deeper than the undo window of {}", self.undo_window);
            }
            self.applied.pop();
            Ok(())
        }
    }

    fn best_chain(s: &mut MemorySource) -> Vec<BlockRef> {
        (0..=s.height()).map(|h| BlockRef { height: h, hash: s.hash_at(h).unwrap().unwrap().to_byte_array() }).collect()
    }

    #[test]
    fn random_reorgs_end_on_the_best_chain() {
        let mut seed: u64 = 0x2545F4914F6CDD1D;
        let mut rand = |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as u32
        };
        let mut salt = 0;
        let mut source = MemorySource::new(&block(BlockHash::all_zeros(), 0));
        let mut ix = Recorder { undo_window: 144, ..Default::default() };
        for _ in 0..300 {
            if source.height() > 12 && rand(3) == 0 {
                let depth = 1 + rand(10);
                source.truncate(source.height() - depth);
                for _ in 0..depth + rand(3) {
                    salt += 1;
                    let b = block(source.tip_hash(), salt);
                    source.push(&b);
                }
            } else {
                salt += 1;
                let b = block(source.tip_hash(), salt);
                source.push(&b);
            }
            if rand(2) == 0 {
                catch_up(&mut source, &mut ix, 0).unwrap();
                assert_eq!(ix.applied, best_chain(&mut source));
            }
        }
        catch_up(&mut source, &mut ix, 0).unwrap();
        assert_eq!(ix.applied, best_chain(&mut source));
    }

    #[test]
    fn a_reorg_deeper_than_the_window_stops_with_an_error() {
        let mut source = MemorySource::new(&block(BlockHash::all_zeros(), 0));
        for salt in 1..=10 {
            let b = block(source.tip_hash(), salt);
            source.push(&b);
        }
        let mut ix = Recorder { undo_window: 3, ..Default::default() };
        catch_up(&mut source, &mut ix, 0).unwrap();
        let before = ix.applied.clone();
        source.truncate(5);
        for salt in 100..110 {
            let b = block(source.tip_hash(), salt);
            source.push(&b);
        }
        let err = catch_up(&mut source, &mut ix, 0).unwrap_err();
        assert!(format!("{err:#}").contains("deeper than the undo window"), "{err:#}");
        assert_eq!(ix.applied.len(), before.len() - 3, "only the undos within the window happened");
    }

    #[test]
    fn starts_at_the_start_height() {
        let mut source = MemorySource::new(&block(BlockHash::all_zeros(), 0));
        for salt in 1..=10 {
            let b = block(source.tip_hash(), salt);
            source.push(&b);
        }
        let mut ix = Recorder { undo_window: 144, ..Default::default() };
        assert_eq!(catch_up(&mut source, &mut ix, 7).unwrap(), (4, 0));
        assert_eq!(ix.applied.first().unwrap().height, 7);
    }
}
