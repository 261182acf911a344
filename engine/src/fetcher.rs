//! Block fetching shared by every plugin of one engine: a bounded in-memory cache of raw blocks
//! (by hash) in front of the real source, and a prefetch pipeline that reads ahead while a
//! plugin catches up sequentially. Plugins at the same height fetch each block once; a plugin
//! catching up never waits for the network when the prefetcher is ahead of it.
//!
//! Nothing here decides what the chain is: `hash_at` and `tip` always ask the real source, so
//! the cache can only save work, never serve a stale best chain. Blocks are immutable by hash.

use crate::source::BlockSource;
use anyhow::Result;
use bitcoin::BlockHash;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};

/// Makes a fresh connection to the real source (one per thread: RPC clients are not shared).
pub type SourceFactory = Arc<dyn Fn() -> Box<dyn BlockSource> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Bytes of raw blocks kept in memory (least recently used go first).
    pub cache_bytes: usize,
    /// How many blocks ahead of a sequential reader the prefetcher fetches.
    pub prefetch_depth: u32,
    /// Prefetch threads (0 disables prefetch).
    pub prefetch_threads: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig { cache_bytes: 256 << 20, prefetch_depth: 16, prefetch_threads: 2 }
    }
}

#[derive(Default)]
struct Cache {
    blocks: HashMap<BlockHash, (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    tick: u64,
    /// Blocks some thread is fetching right now (others wait instead of fetching again).
    inflight: HashSet<BlockHash>,
    hits: u64,
    misses: u64,
}

struct Shared {
    cache: Mutex<Cache>,
    ready: Condvar,
    config: FetchConfig,
    factory: SourceFactory,
    prefetch: Option<SyncSender<u32>>,
}

/// The engine-wide fetcher; [`Fetcher::handle`] gives each thread its own [`BlockSource`].
#[derive(Clone)]
pub struct Fetcher {
    shared: Arc<Shared>,
}

/// Cache statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub hits: u64,
    pub misses: u64,
    pub cached_blocks: usize,
    pub cached_bytes: usize,
}

impl Fetcher {
    pub fn new(factory: SourceFactory, config: FetchConfig) -> Fetcher {
        let (tx, rx) = sync_channel::<u32>(1024);
        let threads = config.prefetch_threads;
        let shared = Arc::new(Shared {
            cache: Mutex::default(),
            ready: Condvar::new(),
            config,
            factory,
            prefetch: (threads > 0).then_some(tx),
        });
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let (weak, rx) = (Arc::downgrade(&shared), rx.clone());
            std::thread::Builder::new()
                .name(format!("prefetch-{i}"))
                .spawn(move || prefetch_loop(weak, rx))
                .expect("spawning a prefetch thread");
        }
        Fetcher { shared }
    }

    /// A block source for one thread, reading through the shared cache.
    pub fn handle(&self) -> FetchHandle {
        FetchHandle { shared: self.shared.clone(), source: (self.shared.factory)(), last_height: None, ahead: 0 }
    }

    pub fn stats(&self) -> FetchStats {
        let c = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
        FetchStats { hits: c.hits, misses: c.misses, cached_blocks: c.blocks.len(), cached_bytes: c.bytes }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached block, waiting if another thread is fetching it; `None` means "fetch it
    /// yourself" (and it is now marked in flight for the caller).
    fn take_or_claim(&self, hash: &BlockHash, count: bool) -> Option<Arc<Vec<u8>>> {
        let mut c = self.lock();
        loop {
            c.tick += 1;
            let tick = c.tick;
            if let Some((raw, used)) = c.blocks.get_mut(hash) {
                *used = tick;
                let raw = raw.clone();
                if count {
                    c.hits += 1;
                }
                return Some(raw);
            }
            if !c.inflight.contains(hash) {
                c.inflight.insert(*hash);
                if count {
                    c.misses += 1;
                }
                return None;
            }
            c = self.ready.wait(c).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Ends a claim: stores the block (if fetched) and wakes waiters.
    fn finish(&self, hash: BlockHash, raw: Option<Arc<Vec<u8>>>) {
        let mut c = self.lock();
        c.inflight.remove(&hash);
        if let Some(raw) = raw {
            c.tick += 1;
            let tick = c.tick;
            c.bytes += raw.len();
            if let Some((old, _)) = c.blocks.insert(hash, (raw, tick)) {
                c.bytes -= old.len();
            }
            while c.bytes > self.config.cache_bytes && c.blocks.len() > 1 {
                let oldest = c.blocks.iter().min_by_key(|(_, (_, used))| *used).map(|(h, _)| *h).expect("non-empty");
                if let Some((raw, _)) = c.blocks.remove(&oldest) {
                    c.bytes -= raw.len();
                }
            }
        }
        drop(c);
        self.ready.notify_all();
    }

    fn fetch(&self, source: &mut dyn BlockSource, hash: &BlockHash, count: bool) -> Result<Arc<Vec<u8>>> {
        if let Some(raw) = self.take_or_claim(hash, count) {
            return Ok(raw);
        }
        match source.block(hash) {
            Ok(raw) => {
                let raw = Arc::new(raw);
                self.finish(*hash, Some(raw.clone()));
                Ok(raw)
            }
            Err(e) => {
                self.finish(*hash, None);
                Err(e)
            }
        }
    }
}

fn prefetch_loop(shared: std::sync::Weak<Shared>, rx: Arc<Mutex<Receiver<u32>>>) {
    let mut source: Option<Box<dyn BlockSource>> = None;
    loop {
        let height = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(h) => h,
            Err(_) => return,
        };
        let Some(shared) = shared.upgrade() else { return };
        let src = source.get_or_insert_with(|| (shared.factory)());
        // Prefetch is best effort: any error just means the reader fetches it itself.
        if let Ok(Some(hash)) = src.hash_at(height) {
            let _ = shared.fetch(src.as_mut(), &hash, false);
        }
    }
}

/// One thread's view of the fetcher: a [`BlockSource`] that answers `block` from the shared
/// cache and, when its caller reads heights in order, asks the prefetcher for the next ones.
pub struct FetchHandle {
    shared: Arc<Shared>,
    source: Box<dyn BlockSource>,
    last_height: Option<u32>,
    /// Highest height already handed to the prefetcher for this reader.
    ahead: u32,
}

impl BlockSource for FetchHandle {
    fn tip(&mut self) -> Result<(u32, BlockHash)> {
        self.source.tip()
    }

    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>> {
        let hash = self.source.hash_at(height)?;
        let sequential = self.last_height.is_some_and(|l| l + 1 == height);
        self.last_height = Some(height);
        if let (true, Some(_), Some(tx)) = (sequential, hash, &self.shared.prefetch) {
            let until = height.saturating_add(self.shared.config.prefetch_depth);
            let from = self.ahead.max(height + 1);
            for h in from..=until {
                match tx.try_send(h) {
                    Ok(()) => self.ahead = h,
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => break,
                }
            }
        }
        if hash.is_none() {
            // At the tip: forget the read-ahead mark so the next new block is prefetched again.
            self.ahead = 0;
        }
        Ok(hash)
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>> {
        let raw = self.shared.fetch(self.source.as_mut(), hash, true)?;
        Ok(Arc::try_unwrap(raw).unwrap_or_else(|a| (*a).clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::hashes::Hash;

    fn chain(n: u32) -> MemorySource {
        let g = genesis_block(bitcoin::Network::Regtest);
        let mut s = MemorySource::new(&g);
        for i in 1..=n {
            let mut b = g.clone();
            b.header.prev_blockhash = s.tip_hash();
            b.header.nonce = i;
            s.push(&b);
        }
        s
    }

    #[test]
    fn serves_the_source_and_fetches_each_block_once_for_two_readers() {
        let src = chain(40);
        let f = {
            let src = src.clone();
            Fetcher::new(Arc::new(move || Box::new(src.clone()) as Box<dyn BlockSource>), FetchConfig::default())
        };
        let (mut a, mut b) = (f.handle(), f.handle());
        let mut reference = src.clone();
        for h in 0..=40 {
            let ha = a.hash_at(h).unwrap().unwrap();
            assert_eq!(ha, reference.hash_at(h).unwrap().unwrap());
            assert_eq!(a.block(&ha).unwrap(), reference.block(&ha).unwrap());
            let hb = b.hash_at(h).unwrap().unwrap();
            assert_eq!(b.block(&hb).unwrap(), reference.block(&hb).unwrap());
        }
        assert_eq!(a.hash_at(41).unwrap(), None);
        let s = f.stats();
        assert_eq!(s.cached_blocks, 41);
        assert!(s.misses <= 41, "{s:?}: every block is fetched from the source at most once");
        assert!(s.hits >= 41, "{s:?}: the second reader is served from the cache");
    }

    #[test]
    fn the_cache_stays_within_its_byte_budget() {
        let src = chain(30);
        let one = bitcoin::consensus::serialize(&genesis_block(bitcoin::Network::Regtest)).len();
        let f = {
            let src = src.clone();
            let cfg = FetchConfig { cache_bytes: one * 5, prefetch_threads: 0, ..Default::default() };
            Fetcher::new(Arc::new(move || Box::new(src.clone()) as Box<dyn BlockSource>), cfg)
        };
        let mut h = f.handle();
        for i in 0..=30 {
            let hash = h.hash_at(i).unwrap().unwrap();
            h.block(&hash).unwrap();
        }
        assert!(f.stats().cached_bytes <= one * 5);
        assert!(h.block(&BlockHash::all_zeros()).is_err(), "unknown blocks are errors, not hangs");
    }
}
