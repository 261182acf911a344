//! The Wasm host: loads plugin components (WIT world `phase1:indexer/plugin`, in
//! `guest-sdk/wit`) and runs them sandboxed, deterministically and within limits.
//!
//! - One wasmtime `Engine` per [`WasmHost`]: component model, fuel, epoch interruption, NaN
//!   canonicalisation, no threads, deterministic relaxed SIMD, pooling allocator with a fixed
//!   linear-memory ceiling per instance.
//! - Compiled components are cached on disk as `<sha256 of the wasm>-<engine hash>.cwasm` under
//!   the cache directory the caller gives ([`LoadedPlugin::cache_hit`] tells which path ran).
//! - Every call (init, each block, each undo) gets a FRESH instance from a cached `InstancePre`:
//!   nothing survives in the guest between blocks; state lives in the `BlockContext`.
//! - WASI p2 is linked (Rust's std imports it) but deterministic: no env, args, preopens or
//!   network; wall and monotonic clocks read 0; "random" bytes are a fixed sequence; stdout is
//!   discarded, stderr captured and attached to fault messages.
//! - Limits per call ([`Limits`]): fuel, memory ceiling (`ResourceLimiter` + pool slot size),
//!   wall-clock deadline via an epoch watchdog thread. Any failure becomes a [`PluginFault`].
//!
//! Block delivery: [`LoadedPlugin::apply_block`] decodes the block once (or take a shared
//! [`DecodedBlock`] with [`LoadedPlugin::apply_decoded`]), applies the manifest's prefilters on
//! the host and calls the `apply-block` export with the selected transactions only (or
//! `apply-raw-block` with the whole block when the manifest asks for it). The export is called
//! for every block, even when no transaction passed.

mod block;
mod host;
mod limits;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bitcoin::hashes::Hash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

pub use block::{op_return_data, tx_to_bytes, DecodedBlock};
pub use host::CallCounters;
use host::{classify, HostState, PluginPre};
pub use limits::Limits;
use limits::Watchdog;

use crate::plugin_api::BlockContext;

/// Reserved key prefix of watched outpoints in a plugin's namespace:
/// `WATCH_PREFIX ++ txid (32 bytes, internal order) ++ vout (4 bytes, big-endian)`.
pub const WATCH_PREFIX: &[u8] = b"\x00watch\x00";

/// Version of the WIT contract this host implements (`phase1:indexer@…`).
pub const CONTRACT_VERSION: &str = "0.3.1";

/// Identity of the block being applied or undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockInfo {
    pub height: u32,
    /// Internal byte order (as `BlockHash::to_byte_array`).
    pub hash: [u8; 32],
    pub prev_hash: [u8; 32],
    /// Header time, Unix seconds.
    pub time: u32,
}

impl BlockInfo {
    pub fn from_header(height: u32, header: &bitcoin::block::Header) -> Self {
        BlockInfo {
            height,
            hash: header.block_hash().to_byte_array(),
            prev_hash: header.prev_blockhash.to_byte_array(),
            time: header.time,
        }
    }

    fn to_wit(self) -> host::types::BlockInfo {
        host::types::BlockInfo {
            height: self.height,
            hash: self.hash.to_vec(),
            prev_hash: self.prev_hash.to_vec(),
            time: self.time,
        }
    }
}

/// What a plugin declared in `init` (see the WIT `manifest` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub op_return_prefixes: Vec<Vec<u8>>,
    pub watch_spends: bool,
    pub all_transactions: bool,
    pub raw_block: bool,
    /// (from height, depth), ascending by height; empty = depth 1.
    pub confirmation_depths: Vec<(u32, u32)>,
    pub unconfirmed_blocks: bool,
    /// HTTP routes served through `handle-request`.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Milliseconds between two runs of `run-job`; 0 = no job.
    #[serde(default)]
    pub job_interval_ms: u32,
}

/// One HTTP route a plugin serves (see the WIT `route` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub legacy: bool,
    pub write: bool,
}

/// Fuel and wall-clock time for one call (requests and jobs have their own, smaller than a
/// block's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub fuel: u64,
    pub timeout: Duration,
}

/// A request as it crosses into `handle-request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub route: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Manifest {
    /// The confirmation depth in force at `height` (at least 1).
    pub fn depth_at(&self, height: u32) -> u32 {
        // Below the first entry the first entry's depth applies.
        let entry = self.confirmation_depths.iter().rev().find(|(from, _)| *from <= height);
        entry.or(self.confirmation_depths.first()).map_or(1, |(_, d)| (*d).max(1))
    }

    /// The largest confirmation depth the plugin ever asks for.
    pub fn max_depth(&self) -> u32 {
        self.confirmation_depths.iter().map(|(_, d)| *d).max().unwrap_or(1).max(1)
    }

    /// Checks what the host relies on: depths ascending by height and within the undo window.
    pub fn validate(&self, undo_window: u32) -> Result<(), String> {
        for w in self.confirmation_depths.windows(2) {
            if w[0].0 >= w[1].0 {
                return Err(format!(
                    "manifest of {}: confirmation-depths must be strictly ascending by from-height ({} then {})",
                    self.name, w[0].0, w[1].0
                ));
            }
        }
        for r in &self.routes {
            if !matches!(r.method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
                return Err(format!(
                    "manifest of {}: route {} {}: method must be GET, POST, PUT or DELETE",
                    self.name, r.method, r.path
                ));
            }
            if !r.path.starts_with('/') || r.path.contains("//") || r.path.contains(['?', '#', '*', ':']) {
                return Err(format!(
                    "manifest of {}: route path {:?} must be absolute, like /v1/items/{{id}}, without ?, #, * or :",
                    self.name, r.path
                ));
            }
        }
        if self.max_depth() > undo_window {
            return Err(format!(
                "manifest of {}: confirmation depth {} exceeds the engine's undo window of {} blocks; raise [engine] undo_window in the runtime file to at least {}",
                self.name,
                self.max_depth(),
                undo_window,
                self.max_depth()
            ));
        }
        Ok(())
    }

    /// Whether any prefilter is declared (without one, every transaction is delivered).
    pub fn has_prefilter(&self) -> bool {
        self.all_transactions || self.watch_spends || !self.op_return_prefixes.is_empty()
    }
}

impl From<host::types::Manifest> for Manifest {
    fn from(m: host::types::Manifest) -> Self {
        Manifest {
            name: m.name,
            version: m.version,
            op_return_prefixes: m.op_return_prefixes,
            watch_spends: m.watch_spends,
            all_transactions: m.all_transactions,
            raw_block: m.raw_block,
            confirmation_depths: m.confirmation_depths.iter().map(|d| (d.from_height, d.depth)).collect(),
            unconfirmed_blocks: m.unconfirmed_blocks,
            routes: m
                .routes
                .into_iter()
                .map(|r| Route { method: r.method, path: r.path, legacy: r.legacy, write: r.write })
                .collect(),
            job_interval_ms: m.job_interval_ms,
        }
    }
}

/// Why a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// A Wasm trap: panic/abort/unreachable, stack overflow, bad memory access, misuse of a
    /// host import (e.g. a store write during init).
    Trap,
    /// The call used up its fuel budget.
    OutOfFuel,
    /// The call ran past its wall-clock deadline (epoch interruption).
    Timeout,
    /// Linear memory would grow past the ceiling.
    OutOfMemory,
    /// The plugin returned `Err(message)`.
    Guest(String),
    /// Not the plugin's fault: malformed block bytes, instantiation failed (e.g. no free
    /// pooling slot), ...
    Host,
}

/// A failed plugin call. Never a panic or a process abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFault {
    pub kind: FaultKind,
    pub message: String,
}

impl std::fmt::Display for PluginFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin fault ({:?}): {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginFault {}

impl PluginFault {
    fn host(message: impl Into<String>) -> Self {
        PluginFault { kind: FaultKind::Host, message: message.into() }
    }
}

/// What one block (or undo) call cost and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub fuel_used: u64,
    /// Transactions passed into Wasm (after prefilters; 0 for raw-block and undo calls).
    pub txs_delivered: u32,
    pub txs_in_block: u32,
    /// Time to create the store and instantiate from the pre-instance.
    pub instantiate_time: Duration,
    /// Time inside the export call.
    pub call_time: Duration,
    /// Peak linear-memory size requested by the instance.
    pub peak_memory: usize,
    pub counters: CallCounters,
}

struct Shared {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: PathBuf,
    /// Distinguishes cached artefacts of differently configured engines / wasmtime versions.
    engine_tag: String,
    _watchdog: Watchdog,
}

/// The wasmtime engine, linker, compile cache and epoch watchdog shared by loaded plugins.
#[derive(Clone)]
pub struct WasmHost {
    shared: Arc<Shared>,
}

/// The `wasmtime::Config` the host uses (exposed for tests and tools).
pub fn engine_config(limits: &Limits) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .wasm_threads(false)
        .wasm_relaxed_simd(false)
        .relaxed_simd_deterministic(true)
        .wasm_memory64(false)
        .parallel_compilation(true);
    // `ENGINE_WASM_PROFILE=perfmap` names JIT-compiled plugin functions for `perf` (diagnostics).
    if std::env::var("ENGINE_WASM_PROFILE").is_ok_and(|v| v == "perfmap") {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pool = PoolingAllocationConfig::new();
    let n = limits.max_instances.max(1);
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(limits.memory_bytes)
        .max_memories_per_component(2)
        .max_unused_warm_slots(n.min(8))
        // A slot is reused for every block, request and job run. Resetting the first 256 KiB of
        // linear memory with memset (only the pages that were touched, with pagemap_scan) and
        // batching the decommits of the rest keeps slots resident: without it each call's page
        // faults and madvise TLB shootdowns cost more than a small call (measured on the staking
        // API: 2.2x the requests/s, and 4x faster indexing of 1,000-stake blocks; a plugin that
        // touches megabytes per block pays ~30 µs more per instantiation).
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(16)
        .pagemap_scan(wasmtime::Enabled::Auto);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

impl WasmHost {
    /// Creates the engine (with `limits`), the linker (WIT imports + deterministic WASI) and the
    /// epoch watchdog; compiled components are cached under `cache_dir` (created if missing).
    pub fn new(cache_dir: &Path, limits: Limits) -> Result<WasmHost> {
        let engine = Engine::new(&engine_config(&limits))
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("linking WASI")?;
        host::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)
            .context("linking the plugin imports")?;
        std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
        let engine_tag = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        let watchdog = Watchdog::start(engine.clone(), limits.epoch_tick).context("starting the epoch watchdog")?;
        Ok(WasmHost {
            shared: Arc::new(Shared {
                engine,
                linker,
                limits,
                cache_dir: cache_dir.to_path_buf(),
                engine_tag,
                _watchdog: watchdog,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Loads a component file: compiled, or deserialized from the cache when the same bytes
    /// were compiled before by an identically configured engine.
    pub fn load(&self, wasm_path: &Path) -> Result<LoadedPlugin> {
        let bytes = std::fs::read(wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
        self.load_bytes(&bytes).with_context(|| format!("loading {}", wasm_path.display()))
    }

    /// Same as [`WasmHost::load`] from bytes.
    pub fn load_bytes(&self, wasm: &[u8]) -> Result<LoadedPlugin> {
        let start = Instant::now();
        let sh = &self.shared;
        let content_hash: [u8; 32] = Sha256::digest(wasm).into();
        let cache_file = sh.cache_dir.join(format!("{}-{}.cwasm", hex::encode(content_hash), sh.engine_tag));
        let mut cache_hit = false;
        let mut component = None;
        if cache_file.is_file() {
            // Read into memory rather than `deserialize_file`: an mmapped file truncated or
            // rewritten in place by someone else would crash the process with SIGBUS.
            let cached = std::fs::read(&cache_file).map_err(wasmtime::Error::from);
            // SAFETY: the cache directory is the engine's own (written below by `serialize`);
            // deserializing trusts its contents, so it must not be writable by untrusted parties.
            // Wasmtime checks the header (version, engine configuration) before using it.
            match cached.and_then(|bytes| unsafe { Component::deserialize(&sh.engine, &bytes) }) {
                Ok(c) => {
                    component = Some(c);
                    cache_hit = true;
                }
                Err(e) => tracing::warn!("ignoring unusable compile cache {}: {e}", cache_file.display()),
            }
        }
        let component = match component {
            Some(c) => c,
            None => {
                let c =
                    Component::new(&sh.engine, wasm).map_err(anyhow::Error::from).context("compiling the component")?;
                let bytes = c.serialize().map_err(anyhow::Error::from).context("serializing the compiled component")?;
                let tmp = cache_file.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, &bytes)
                    .and_then(|_| std::fs::rename(&tmp, &cache_file))
                    .with_context(|| format!("writing {}", cache_file.display()))?;
                c
            }
        };
        let instance_pre = sh
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("linking the component's imports")?;
        let pre = PluginPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export the plugin world")?;
        Ok(LoadedPlugin {
            shared: sh.clone(),
            pre,
            content_hash,
            cache_hit,
            load_time: start.elapsed(),
            config: Arc::from(""),
            name: Arc::from(format!("plugin-{}", &hex::encode(content_hash)[..12])),
        })
    }
}

/// The block's transactions that pass the manifest's prefilters, as they cross into Wasm.
fn selected_txs(decoded: &DecodedBlock<'_>, manifest: &Manifest, ctx: &mut dyn BlockContext) -> Vec<host::types::Tx> {
    decoded
        .select(manifest, ctx)
        .into_iter()
        .map(|i| host::types::Tx {
            index: i as u32,
            txid: decoded.txid(i).to_byte_array().to_vec(),
            raw: decoded.tx_bytes(i).to_vec(),
        })
        .collect()
}

/// A compiled plugin ready to be instantiated per call. Cheap to clone (shared compiled code).
#[derive(Clone)]
pub struct LoadedPlugin {
    shared: Arc<Shared>,
    pre: PluginPre<HostState>,
    content_hash: [u8; 32],
    cache_hit: bool,
    load_time: Duration,
    config: Arc<str>,
    name: Arc<str>,
}

impl LoadedPlugin {
    /// sha256 of the Wasm bytes.
    pub fn content_hash(&self) -> [u8; 32] {
        self.content_hash
    }

    pub fn content_hash_hex(&self) -> String {
        hex::encode(self.content_hash)
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn cache_hit(&self) -> bool {
        self.cache_hit
    }

    /// Time `load` took (read/hash, compile or deserialize, link).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Plugin name (from the manifest once `init` succeeded).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn new_store(&self, ctx: Option<&mut (dyn BlockContext + '_)>, budget: Option<CallBudget>) -> Store<HostState> {
        let limits = &self.shared.limits;
        let state = HostState::new(limits, self.config.clone(), self.name.clone(), ctx);
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        let (fuel, ticks) = match budget {
            Some(b) => {
                let l = Limits { timeout: b.timeout, ..limits.clone() };
                (b.fuel, l.deadline_ticks())
            }
            None => (limits.fuel, limits.deadline_ticks()),
        };
        store.set_fuel(fuel).expect("fuel is enabled in the engine config");
        store.set_epoch_deadline(ticks);
        store
    }

    /// Runs `call` on a fresh instance; classifies failures.
    fn call<R>(
        &self,
        ctx: Option<&mut (dyn BlockContext + '_)>,
        call: impl FnOnce(&host::Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<(R, ApplyStats), PluginFault> {
        self.call_with_budget(ctx, None, call)
    }

    fn call_with_budget<R>(
        &self,
        ctx: Option<&mut (dyn BlockContext + '_)>,
        budget: Option<CallBudget>,
        call: impl FnOnce(&host::Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<(R, ApplyStats), PluginFault> {
        let t0 = Instant::now();
        let fuel = budget.map_or(self.shared.limits.fuel, |b| b.fuel);
        let mut store = self.new_store(ctx, budget);
        let instance = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => {
                let mut f = classify(e, store.data());
                if f.kind == FaultKind::Trap {
                    // Failing to instantiate (e.g. no free pool slot) is the host's problem
                    // unless it was a start-function trap; report it as such.
                    f.kind = FaultKind::Host;
                    f.message = format!("instantiation failed: {}", f.message);
                }
                return Err(f);
            }
        };
        let t1 = Instant::now();
        let result = call(&instance, &mut store);
        let t2 = Instant::now();
        let fuel_left = store.get_fuel().unwrap_or(0);
        let stats = ApplyStats {
            fuel_used: fuel.saturating_sub(fuel_left),
            instantiate_time: t1 - t0,
            call_time: t2 - t1,
            peak_memory: store.data().limiter.peak,
            counters: store.data().counters,
            ..Default::default()
        };
        match result {
            Ok(Ok(r)) => Ok((r, stats)),
            Ok(Err(msg)) => Err(PluginFault { kind: FaultKind::Guest(msg.clone()), message: msg }),
            Err(e) => Err(classify(e, store.data())),
        }
    }

    /// Calls `init(config)`; the config is remembered and returned by the `env.config` import
    /// during every later call.
    pub fn init(&mut self, config: &str) -> Result<Manifest, PluginFault> {
        self.config = Arc::from(config);
        let (m, _) = self.call(None, |p, s| p.call_init(&mut *s, config))?;
        let manifest = Manifest::from(m);
        self.name = Arc::from(manifest.name.as_str());
        Ok(manifest)
    }

    /// Decodes `raw_block`, applies the manifest's prefilters and calls the plugin.
    pub fn apply_block(
        &self,
        ctx: &mut dyn BlockContext,
        block: &BlockInfo,
        raw_block: &[u8],
        manifest: &Manifest,
    ) -> Result<ApplyStats, PluginFault> {
        if manifest.raw_block {
            return self.apply_raw(ctx, block, raw_block);
        }
        let decoded = DecodedBlock::parse(raw_block).map_err(PluginFault::host)?;
        self.apply_decoded(ctx, block, &decoded, manifest)
    }

    /// Like [`LoadedPlugin::apply_block`] with a block decoded once for several plugins.
    pub fn apply_decoded(
        &self,
        ctx: &mut dyn BlockContext,
        block: &BlockInfo,
        decoded: &DecodedBlock<'_>,
        manifest: &Manifest,
    ) -> Result<ApplyStats, PluginFault> {
        if manifest.raw_block {
            return self.apply_raw(ctx, block, decoded.raw());
        }
        self.call_with_txs(ctx, block, decoded, manifest, |p, s, b, txs| p.call_apply_block(s, b, txs))
    }

    /// Calls `apply-unconfirmed` for a new tip that is not confirmed yet (prefilters applied).
    pub fn apply_unconfirmed(
        &self,
        ctx: &mut dyn BlockContext,
        block: &BlockInfo,
        decoded: &DecodedBlock<'_>,
        manifest: &Manifest,
    ) -> Result<ApplyStats, PluginFault> {
        self.call_with_txs(ctx, block, decoded, manifest, |p, s, b, txs| p.call_apply_unconfirmed(s, b, txs))
    }

    /// Calls a block export with the transactions that pass the manifest's prefilters.
    fn call_with_txs(
        &self,
        ctx: &mut dyn BlockContext,
        block: &BlockInfo,
        decoded: &DecodedBlock<'_>,
        manifest: &Manifest,
        export: impl FnOnce(
            &host::Plugin,
            &mut Store<HostState>,
            &host::types::BlockInfo,
            &[host::types::Tx],
        ) -> wasmtime::Result<Result<(), String>>,
    ) -> Result<ApplyStats, PluginFault> {
        let txs = selected_txs(decoded, manifest, ctx);
        let wit_block = block.to_wit();
        let ((), mut stats) = self.call(Some(ctx), |p, s| export(p, s, &wit_block, &txs))?;
        stats.txs_delivered = txs.len() as u32;
        stats.txs_in_block = decoded.len() as u32;
        Ok(stats)
    }

    fn apply_raw(&self, ctx: &mut dyn BlockContext, block: &BlockInfo, raw: &[u8]) -> Result<ApplyStats, PluginFault> {
        let wit_block = block.to_wit();
        let ((), stats) = self.call(Some(ctx), |p, s| p.call_apply_raw_block(&mut *s, &wit_block, raw))?;
        Ok(stats)
    }

    /// Calls `undo-block` before the store takes `block` back (the context should only accept
    /// publishes; see the WIT).
    pub fn undo_block(&self, ctx: &mut dyn BlockContext, block: &BlockInfo) -> Result<ApplyStats, PluginFault> {
        let wit_block = block.to_wit();
        let ((), stats) = self.call(Some(ctx), |p, s| p.call_undo_block(&mut *s, &wit_block))?;
        Ok(stats)
    }

    /// Calls `handle-request` in a fresh instance; `ctx` decides what the handler may touch.
    pub fn handle_request(
        &self,
        ctx: &mut dyn BlockContext,
        req: &HttpRequest,
        budget: CallBudget,
    ) -> Result<(HttpResponse, ApplyStats), PluginFault> {
        let wit = host::types::HttpRequest {
            method: req.method.clone(),
            route: req.route.clone(),
            path: req.path.clone(),
            params: req.params.clone(),
            query: req.query.clone(),
            body: req.body.clone(),
        };
        let (r, stats) =
            self.call_with_budget(Some(ctx), Some(budget), |p, s| p.call_handle_request(&mut *s, &wit).map(Ok))?;
        Ok((HttpResponse { status: r.status, content_type: r.content_type, body: r.body }, stats))
    }

    /// Calls `run-job` in a fresh instance.
    pub fn run_job(&self, ctx: &mut dyn BlockContext, budget: CallBudget) -> Result<ApplyStats, PluginFault> {
        let ((), stats) = self.call_with_budget(Some(ctx), Some(budget), |p, s| p.call_run_job(&mut *s))?;
        Ok(stats)
    }

    /// Instantiates a fresh instance and drops it (what every call pays before the export
    /// runs); for benchmarks.
    pub fn instantiate_only(&self) -> Result<Duration> {
        let t0 = Instant::now();
        let mut store = self.new_store(None, None);
        self.pre.instantiate(&mut store).map_err(anyhow::Error::from)?;
        Ok(t0.elapsed())
    }
}
