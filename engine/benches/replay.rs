//! Replay benchmarks (`cargo bench -p engine --bench replay`), printed as one table of medians:
//!
//! - baseline: `bitcoin::consensus::deserialize::<Block>` + `compute_txid` of every transaction,
//!   over mainnet-shaped blocks (block 864790: 1.66 MB, 5,043 transactions), blocks/s;
//! - replay of the `noop` plugin (a prefilter that matches nothing: the engine's fixed per-block
//!   cost) and of the `touch` plugin (decodes every transaction in Wasm) through the real engine
//!   path — `ReplaySource` (unlinked mode) → `follower::catch_up` → `PluginRunner` → RocksDB
//!   commit (one fsynced batch per block) — blocks/s and ratio to the baseline of the same run;
//! - per-block Wasm instantiation (`LoadedPlugin::instantiate_only`), µs;
//! - a depth-6 reorg (6 undos + 7 applies through `catch_up`), ms;
//! - plugin upgrade activation (keep mode, code already compiled): `Supervisor::upgrade` round
//!   trip on a running plugin thread, from the request to the new code serving blocks, ms.
//!
//! Then a per-block breakdown of the replays (same path, driven by an instrumented indexer).
//! Without `../shared/research-data/mainnet/block-864790.bin` the mainnet figures print SKIP.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash};
use engine::follower::{self, Indexer};
use engine::plugin_api::{BlockContext, BlockRef};
use engine::runner::{PluginRunner, CONFIRMED_KEY};
use engine::source::{BlockSource, MemorySource, ReplaySource};
use engine::store::{PluginStore, Store};
use engine::testing::block;
use engine::wasm::{BlockInfo, DecodedBlock, Limits, LoadedPlugin, Manifest, WasmHost};

/// Copies of the mainnet block replayed per round.
const REPLAY_BLOCKS: usize = 50;
const ROUNDS: usize = 5;
const INSTANTIATIONS: usize = 2_000;
const REORG_DEPTH: u32 = 6;
const REORG_CHAIN: u32 = 20;

const NOOP_RATIO_TARGET: f64 = 0.8;
const INSTANTIATE_TARGET_US: f64 = 50.0;
const REORG_TARGET_MS: f64 = 100.0;
const UPGRADE_TARGET_MS: f64 = 200.0;

fn main() -> Result<()> {
    let wasm_dir = engine::testing::test_plugins_dir();
    let noop_wasm = wasm_dir.join("noop.wasm");
    let touch_wasm = wasm_dir.join("touch.wasm");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-bench-cwasm");
    let host = WasmHost::new(&cache, Limits::default())?;
    let mut rows = Vec::new();

    let block_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/research-data/mainnet/block-864790.bin");
    let mut breakdowns = Vec::new();
    let mainnet = std::fs::read(&block_path);
    match &mainnet {
        Err(e) => {
            println!(
                "SKIP mainnet figures (baseline, no-op and touch replay): {} not readable ({e})",
                block_path.display()
            );
        }
        Ok(raw) => {
            let txs = bitcoin::consensus::deserialize::<Block>(raw).context("decoding the mainnet block")?.txdata.len();
            println!(
                "replay: block 864790 shape ({} bytes, {txs} txs), {REPLAY_BLOCKS} blocks per round, {ROUNDS} rounds, medians",
                raw.len()
            );
            let blocks_dir = tempfile::tempdir()?;
            for i in 0..REPLAY_BLOCKS {
                let dst = blocks_dir.path().join(format!("{i:06}.bin"));
                #[cfg(unix)]
                let linked = std::os::unix::fs::symlink(&block_path, &dst).is_ok();
                #[cfg(not(unix))]
                let linked = false;
                if !linked {
                    std::fs::write(&dst, raw)?;
                }
            }
            // Warm-up (page cache, compile cache, allocator) outside the measured rounds.
            baseline_round(raw, 2);
            replay_round(&host, &noop_wasm, "noop", blocks_dir.path())?;

            let (mut base, mut noop, mut touch) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                base.push(baseline_round(raw, REPLAY_BLOCKS));
                noop.push(replay_round(&host, &noop_wasm, "noop", blocks_dir.path())?);
                touch.push(replay_round(&host, &touch_wasm, "touch", blocks_dir.path())?);
            }
            let (base, noop, touch) = (median(&mut base), median(&mut noop), median(&mut touch));
            rows.push(Row::new(
                "baseline deserialize + txid",
                format!("{base:8.1} blocks/s"),
                "1.00".into(),
                "-",
                None,
            ));
            let r = noop / base;
            rows.push(Row::new(
                "no-op plugin replay",
                format!("{noop:8.1} blocks/s"),
                format!("{r:.2}"),
                "ratio >= 0.80",
                Some(r >= NOOP_RATIO_TARGET),
            ));
            rows.push(Row::new(
                "touch-every-tx plugin replay",
                format!("{touch:8.1} blocks/s"),
                format!("{:.2}", touch / base),
                "-",
                None,
            ));
            for (name, wasm) in [("noop", &noop_wasm), ("touch", &touch_wasm)] {
                breakdowns.push((name, profiled_round(&host, wasm, blocks_dir.path())?));
            }
        }
    }

    for (name, wasm) in [("noop", &noop_wasm), ("touch", &touch_wasm)] {
        let us = instantiation_us(&host, wasm)?;
        rows.push(Row::new(
            &format!("per-block instantiation ({name})"),
            format!("{us:8.1} µs"),
            "-".into(),
            "<= 50 µs",
            Some(us <= INSTANTIATE_TARGET_US),
        ));
    }

    for (name, b) in &mut breakdowns {
        let us = median(&mut b.instantiate_us);
        rows.push(Row::new(
            &format!("  same, inside replay ({name})"),
            format!("{us:8.1} µs"),
            "-".into(),
            "<= 50 µs",
            Some(us <= INSTANTIATE_TARGET_US),
        ));
    }
    if let Ok(raw) = &mainnet {
        // Diagnostic: isolated instantiation, each right after decoding and freeing one block.
        let us = instantiation_after_decode_us(&host, &noop_wasm, raw)?;
        rows.push(Row::new("  same, after a decode, no store", format!("{us:8.1} µs"), "-".into(), "-", None));
    }

    let mut reorg = Vec::new();
    for rep in 0..ROUNDS {
        reorg.push(reorg_ms(&host, &touch_wasm, rep as u32)?);
    }
    let ms = median(&mut reorg);
    rows.push(Row::new(
        "depth-6 reorg (6 undo + 7 apply)",
        format!("{ms:8.1} ms"),
        "-".into(),
        "< 100 ms",
        Some(ms < REORG_TARGET_MS),
    ));

    let (total, activation) = upgrade_ms(&host, &noop_wasm, &touch_wasm)?;
    rows.push(Row::new(
        "upgrade activation (keep, compiled)",
        format!("{total:8.1} ms"),
        "-".into(),
        "< 200 ms",
        Some(total < UPGRADE_TARGET_MS),
    ));
    rows.push(Row::new("  of which code swap", format!("{activation:8.2} ms"), "-".into(), "-", None));

    println!();
    println!("{:<34} {:>18} {:>6}  {:<14} result", "figure", "median", "ratio", "target");
    for r in &rows {
        println!("{:<34} {:>18} {:>6}  {:<14} {}", r.figure, r.value, r.ratio, r.target, r.verdict);
    }
    for (name, b) in &breakdowns {
        b.print(name);
    }
    Ok(())
}

struct Row {
    figure: String,
    value: String,
    ratio: String,
    target: String,
    verdict: &'static str,
}

impl Row {
    fn new(figure: &str, value: String, ratio: String, target: &str, pass: Option<bool>) -> Row {
        let verdict = match pass {
            None => "-",
            Some(true) => "PASS",
            Some(false) => "MISS",
        };
        Row { figure: figure.into(), value, ratio, target: target.into(), verdict }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Builds the benchmark plugins for wasm32-wasip2 (as the engine's tests do); returns their directory.
fn baseline_round(raw: &[u8], n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let block: Block = bitcoin::consensus::deserialize(std::hint::black_box(raw)).expect("block decodes");
        for tx in &block.txdata {
            std::hint::black_box(tx.compute_txid());
        }
        std::hint::black_box(block);
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// One replay of every file in `blocks` through a fresh store and `PluginRunner`; blocks/s.
fn replay_round(host: &WasmHost, wasm: &Path, name: &str, blocks: &Path) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("store"))?;
    let mut runner = PluginRunner::start(host, &store, name, wasm, "", 0)?;
    let mut source = ReplaySource::open(blocks, 0, false)?;
    let t = Instant::now();
    let (applied, _) = follower::catch_up(&mut source, &mut runner, 0)?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(applied as usize == source.len(), "{name}: applied {applied} of {} blocks", source.len());
    Ok(applied as f64 / secs)
}

/// Median of `INSTANTIATIONS` fresh instantiations, µs.
fn instantiation_us(host: &WasmHost, wasm: &Path) -> Result<f64> {
    let plugin = host.load(wasm)?;
    for _ in 0..100 {
        plugin.instantiate_only()?;
    }
    let mut v = Vec::with_capacity(INSTANTIATIONS);
    for _ in 0..INSTANTIATIONS {
        v.push(plugin.instantiate_only()?.as_secs_f64() * 1e6);
    }
    Ok(median(&mut v))
}

/// Median of fresh instantiations each preceded by a block decode + free (as in a replay), µs.
fn instantiation_after_decode_us(host: &WasmHost, wasm: &Path, raw: &[u8]) -> Result<f64> {
    let plugin = host.load(wasm)?;
    let mut v = Vec::with_capacity(200);
    for _ in 0..200 {
        drop(std::hint::black_box(DecodedBlock::parse(raw).map_err(|e| anyhow!(e))?));
        v.push(plugin.instantiate_only()?.as_secs_f64() * 1e6);
    }
    Ok(median(&mut v))
}

/// A small regtest-style block: one coinbase made unique by `salt`.
/// Applies a chain of `REORG_CHAIN` small blocks with the touch plugin, replaces its last
/// `REORG_DEPTH` blocks with `REORG_DEPTH + 1` new ones and times the `catch_up` that handles it; ms.
fn reorg_ms(host: &WasmHost, wasm: &Path, rep: u32) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("store"))?;
    let mut runner = PluginRunner::start(host, &store, "touch", wasm, "", 0)?;
    let mut salt = rep * 1_000;
    let mut source = MemorySource::new(&block(BlockHash::all_zeros(), salt));
    for _ in 0..REORG_CHAIN {
        salt += 1;
        let b = block(source.tip_hash(), salt);
        source.push(&b);
    }
    follower::catch_up(&mut source, &mut runner, 0)?;
    source.truncate(source.height() - REORG_DEPTH);
    for _ in 0..=REORG_DEPTH {
        salt += 1;
        let b = block(source.tip_hash(), salt);
        source.push(&b);
    }
    let t = Instant::now();
    let (applied, undone) = follower::catch_up(&mut source, &mut runner, 0)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        (applied, undone) == (REORG_DEPTH as u64 + 1, REORG_DEPTH as u64),
        "reorg: {applied} applies and {undone} undos"
    );
    Ok(ms)
}

/// Where one replay's time went, summed over its blocks.
#[derive(Default)]
struct Breakdown {
    blocks: u32,
    wall: Duration,
    source: Duration,
    begin: Duration,
    decode: Duration,
    select: Duration,
    instantiate: Duration,
    call: Duration,
    commit: Duration,
    free: Duration,
    apply: Duration,
    /// In-replay instantiation time of each block, µs.
    instantiate_us: Vec<f64>,
}

impl Breakdown {
    fn print(&self, name: &str) {
        let n = self.blocks.max(1) as f64;
        let per = |d: Duration| d.as_secs_f64() * 1e3 / n;
        let total = per(self.wall);
        let other = self.wall.saturating_sub(self.source + self.apply);
        let parts = [
            ("source read (file)", self.source),
            ("header + begin_block", self.begin),
            ("decode block", self.decode),
            ("prefilter + marshal txs", self.select),
            ("Wasm instantiate", self.instantiate),
            ("Wasm call", self.call),
            ("store commit (fsync)", self.commit),
            ("free decoded block", self.free),
            ("follower/cursor reads", other),
        ];
        println!();
        println!("breakdown {name} ({} blocks, {total:.2} ms/block = {:.1} blocks/s):", self.blocks, 1e3 / total);
        let line: Vec<String> =
            parts.iter().map(|(k, d)| format!("{k} {:.2} ms ({:.0}%)", per(*d), 100.0 * per(*d) / total)).collect();
        for chunk in line.chunks(3) {
            println!("  {}", chunk.join(" | "));
        }
    }
}

/// A `ReplaySource` that times block reads.
struct TimedSource {
    inner: ReplaySource,
    spent: Duration,
}

impl BlockSource for TimedSource {
    fn tip(&mut self) -> Result<(u32, BlockHash)> {
        self.inner.tip()
    }
    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>> {
        self.inner.hash_at(height)
    }
    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>> {
        let t = Instant::now();
        let r = self.inner.block(hash);
        self.spent += t.elapsed();
        r
    }
}

/// An instrumented copy of `PluginRunner`'s apply path at confirmation depth 1, with timers.
struct Profiled {
    store: PluginStore,
    plugin: LoadedPlugin,
    manifest: Manifest,
    t: Breakdown,
}

impl Indexer for Profiled {
    fn cursor(&self) -> Result<Option<BlockRef>> {
        Ok(self.store.cursor()?.map(|c| c.block()))
    }

    fn apply(&mut self, block: BlockRef, parent: [u8; 32], raw: &[u8], _: &mut dyn BlockSource) -> Result<()> {
        let t0 = Instant::now();
        self.store.status()?;
        let header: Header = bitcoin::consensus::deserialize(&raw[..80])?;
        let info = BlockInfo { height: block.height, hash: block.hash, prev_hash: parent, time: header.time };
        let mut tx = self.store.begin_block(block, parent)?;
        // The runner's confirmed-height bookkeeping (two reads at depth 1).
        tx.get(CONFIRMED_KEY);
        tx.get(CONFIRMED_KEY);
        let t1 = Instant::now();
        let decoded = DecodedBlock::parse(raw).map_err(|e| anyhow!(e))?;
        let t2 = Instant::now();
        let stats = self.plugin.apply_decoded(&mut tx, &info, &decoded, &self.manifest).map_err(|f| anyhow!(f))?;
        let t3 = Instant::now();
        tx.commit()?;
        let t4 = Instant::now();
        drop(decoded);
        let t5 = Instant::now();
        let t = &mut self.t;
        t.blocks += 1;
        t.begin += t1 - t0;
        t.decode += t2 - t1;
        t.instantiate += stats.instantiate_time;
        t.call += stats.call_time;
        t.select += (t3 - t2).saturating_sub(stats.instantiate_time + stats.call_time);
        t.commit += t4 - t3;
        t.free += t5 - t4;
        t.instantiate_us.push(stats.instantiate_time.as_secs_f64() * 1e6);
        t.apply += t0.elapsed();
        Ok(())
    }

    fn undo(&mut self, block: BlockRef, _: &mut dyn BlockSource) -> Result<()> {
        self.store.undo_block(block).map(|_| ())
    }
}

fn profiled_round(host: &WasmHost, wasm: &Path, blocks: &Path) -> Result<Breakdown> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("store"))?;
    let mut plugin = host.load(wasm)?;
    let manifest = plugin.init("").map_err(|f| anyhow!(f))?;
    let mut ix = Profiled { store: store.plugin(&manifest.name), plugin, manifest, t: Breakdown::default() };
    let mut source = TimedSource { inner: ReplaySource::open(blocks, 0, false)?, spent: Duration::ZERO };
    let t = Instant::now();
    follower::catch_up(&mut source, &mut ix, 0)?;
    ix.t.wall = t.elapsed();
    ix.t.source = source.spent;
    Ok(ix.t)
}

/// Runs a plugin in a real `Supervisor` thread over a 20-block memory chain and upgrades it
/// (keep mode) back and forth between two already-compiled versions; medians of the whole
/// request round trip and of the swap itself, ms.
fn upgrade_ms(host: &WasmHost, a: &Path, b: &Path) -> Result<(f64, f64)> {
    use engine::fetcher::{FetchConfig, Fetcher};
    use engine::supervisor::{Mode, PluginSpec, Supervisor};
    use std::sync::Arc;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("state"))?;
    let registry = engine::registry::Registry::open(&store, dir.path())?;
    let mut source = MemorySource::new(&block(BlockHash::all_zeros(), 7_000));
    for salt in 7_001..7_020 {
        let blk = block(source.tip_hash(), salt);
        source.push(&blk);
    }
    let tip = source.height();
    let fetcher = Fetcher::new(
        Arc::new(move || Box::new(source.clone()) as Box<dyn BlockSource>),
        FetchConfig { prefetch_threads: 0, ..Default::default() },
    );
    let (wa, wb) = (std::fs::read(a)?, std::fs::read(b)?);
    // Both compiled once (the on-disk compile cache) before measuring.
    host.load_bytes(&wa)?;
    host.load_bytes(&wb)?;
    let spec = PluginSpec::new("p", 0, "", wa.clone(), host.clone());
    let metrics = std::sync::Arc::new(engine::metrics::Metrics::new());
    let sup = Supervisor::start(&store, &registry, &fetcher, vec![spec], Duration::from_millis(5), metrics)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sup.plugin_status("p")?.height != Some(tip) {
        anyhow::ensure!(Instant::now() < deadline, "the plugin did not reach the tip");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut total, mut swap) = (Vec::new(), Vec::new());
    for i in 0..2 * ROUNDS {
        let wasm = if i % 2 == 0 { wb.clone() } else { wa.clone() };
        let t = Instant::now();
        let out = sup.upgrade("p", wasm, Mode::Keep)?;
        total.push(t.elapsed().as_secs_f64() * 1e3);
        swap.push(out.activation_ms);
        anyhow::ensure!(out.height == Some(tip), "upgrade at height {:?}, expected {tip}", out.height);
    }
    sup.shutdown();
    Ok((median(&mut total), median(&mut swap)))
}
