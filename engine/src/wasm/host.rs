//! The per-call store data and the host side of the WIT imports (`store`, `queue`, `log`, `env`),
//! plus deterministic WASI and fault classification.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Limits, MemoryLimitExceeded, MemoryLimiter};
use super::{FaultKind, PluginFault, WATCH_PREFIX};
use crate::plugin_api::BlockContext;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../guest-sdk/wit",
    imports: { default: trappable },
});

pub(crate) use phase1::indexer::log::Level;
pub(crate) use phase1::indexer::{crypto, env, local, log, outbound, queue, store, types};

/// Counters of what a call did through the imports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounters {
    pub gets: u32,
    pub puts: u32,
    pub deletes: u32,
    pub scans: u32,
    pub publishes: u32,
    pub logs: u32,
    /// `crypto` calls (each a native secp256k1 operation).
    pub crypto: u32,
}

/// Raised by a host function the guest misused (e.g. a store write during `init`); classified
/// as `FaultKind::Trap`.
#[derive(Debug)]
pub(crate) struct HostCallError(pub String);

impl std::fmt::Display for HostCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostCallError {}

fn misuse(msg: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(HostCallError(msg.into()))
}

/// Store data of one call (one fresh instance).
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The block's context while a block/undo call runs; `None` during `init`.
    ///
    /// Lifetime-erased `&mut dyn BlockContext`: it is set by `HostState::new` from a borrow that
    /// outlives the `Store` holding this state (the store is created, used and dropped inside
    /// one `LoadedPlugin` method call and never escapes it), so dereferencing it while the
    /// store exists is sound.
    ctx: Option<NonNull<dyn BlockContext>>,
    config: Arc<str>,
    plugin: Arc<str>,
    pub limiter: MemoryLimiter,
    pub counters: CallCounters,
    stderr: MemoryOutputPipe,
    max_log_messages: u32,
    max_scan: u32,
}

// SAFETY: `ctx` is only dereferenced on the thread that runs the call (wasmtime runs sync calls
// on the caller's thread); the store never moves to another thread while `ctx` is set. The rest
// of the state is `Send`.
unsafe impl Send for HostState {}

/// A wall clock fixed at the Unix epoch: plugins use the block's header time instead.
struct FixedWallClock;
impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A monotonic clock that never advances.
struct FixedMonotonicClock;
impl wasmtime_wasi::HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Fixed "random" bytes: the same for every call of every plugin.
const RANDOM_SEED: &[u8; 32] = b"phase1-indexer:deterministic-rng";

impl HostState {
    pub fn new(
        limits: &Limits,
        config: Arc<str>,
        plugin: Arc<str>,
        ctx: Option<&mut (dyn BlockContext + '_)>,
    ) -> HostState {
        let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
        let wasi = WasiCtx::builder()
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(wasmtime_wasi::Deterministic::new(RANDOM_SEED.to_vec()))
            .insecure_random(wasmtime_wasi::Deterministic::new(RANDOM_SEED.iter().rev().copied().collect()))
            .insecure_random_seed(0x5eed)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone())
            .build();
        let ctx = ctx.map(|c| {
            let ptr: NonNull<dyn BlockContext + '_> = NonNull::from(c);
            // SAFETY: lifetime erasure only; see the field's documentation.
            unsafe { std::mem::transmute::<NonNull<dyn BlockContext + '_>, NonNull<dyn BlockContext>>(ptr) }
        });
        HostState {
            wasi,
            table: ResourceTable::new(),
            ctx,
            config,
            plugin,
            limiter: MemoryLimiter { limit: limits.memory_bytes, peak: 0 },
            counters: CallCounters::default(),
            stderr,
            max_log_messages: limits.max_log_messages,
            max_scan: limits.max_scan,
        }
    }

    /// The block context, or `None` during `init`.
    fn ctx(&mut self) -> Option<&mut dyn BlockContext> {
        // SAFETY: see the field's documentation; `&mut self` makes the borrow unique.
        self.ctx.map(|mut p| unsafe { p.as_mut() })
    }

    fn ctx_for_write(&mut self, what: &str) -> wasmtime::Result<&mut dyn BlockContext> {
        match self.ctx() {
            Some(c) => Ok(c),
            None => Err(misuse(format!("{what} is not available during init"))),
        }
    }

    /// What the guest wrote to stderr during this call (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for HostState {}

fn watch_key(txid: &[u8], vout: u32) -> wasmtime::Result<Vec<u8>> {
    if txid.len() != 32 {
        return Err(wasmtime::Error::new(HostCallError(format!(
            "watch-outpoint: txid has {} bytes, not 32",
            txid.len()
        ))));
    }
    let mut k = Vec::with_capacity(WATCH_PREFIX.len() + 36);
    k.extend_from_slice(WATCH_PREFIX);
    k.extend_from_slice(txid);
    k.extend_from_slice(&vout.to_be_bytes());
    Ok(k)
}

impl store::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.counters.gets += 1;
        Ok(self.ctx().and_then(|c| c.get(&key)))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        self.counters.puts += 1;
        self.ctx_for_write("store.put")?.put(&key, &value).map_err(misuse)
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<()> {
        self.counters.deletes += 1;
        self.ctx_for_write("store.delete")?.delete(&key).map_err(misuse)
    }

    fn scan_prefix(
        &mut self,
        prefix: Vec<u8>,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.counters.scans += 1;
        let limit = limit.min(self.max_scan);
        Ok(self.ctx().map(|c| c.scan_prefix(&prefix, after.as_deref(), limit)).unwrap_or_default())
    }

    fn scan_range(&mut self, start: Vec<u8>, end: Vec<u8>, limit: u32) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.counters.scans += 1;
        let limit = limit.min(self.max_scan);
        Ok(self.ctx().map(|c| c.scan_range(&start, &end, limit)).unwrap_or_default())
    }

    fn watch_outpoint(&mut self, txid: Vec<u8>, vout: u32) -> wasmtime::Result<()> {
        let key = watch_key(&txid, vout)?;
        self.counters.puts += 1;
        self.ctx_for_write("store.watch-outpoint")?.put(&key, &[]).map_err(misuse)
    }

    fn unwatch_outpoint(&mut self, txid: Vec<u8>, vout: u32) -> wasmtime::Result<()> {
        let key = watch_key(&txid, vout)?;
        self.counters.deletes += 1;
        self.ctx_for_write("store.unwatch-outpoint")?.delete(&key).map_err(misuse)
    }
}

impl queue::Host for HostState {
    fn publish(&mut self, queue: String, body: Vec<u8>) -> wasmtime::Result<()> {
        self.counters.publishes += 1;
        self.ctx_for_write("queue.publish")?.publish(&queue, &body).map_err(misuse)
    }
}

impl local::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.counters.gets += 1;
        self.ctx_for_write("local.get")?.local_get(&key).map_err(misuse)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        self.counters.puts += 1;
        self.ctx_for_write("local.put")?.local_put(&key, &value).map_err(misuse)
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<()> {
        self.counters.deletes += 1;
        self.ctx_for_write("local.delete")?.local_delete(&key).map_err(misuse)
    }

    fn scan_prefix(
        &mut self,
        prefix: Vec<u8>,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.counters.scans += 1;
        let limit = limit.min(self.max_scan);
        self.ctx_for_write("local.scan-prefix")?.local_scan_prefix(&prefix, after.as_deref(), limit).map_err(misuse)
    }
}

impl outbound::Host for HostState {
    fn http_request(
        &mut self,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<outbound::HttpReply, String>> {
        let req = crate::plugin_api::OutboundRequest { method, url, headers, body };
        let r = self.ctx_for_write("outbound.http-request")?.http_request(req).map_err(misuse)?;
        Ok(r.map(|r| outbound::HttpReply { status: r.status, body: r.body }))
    }

    fn bitcoind(&mut self, method: String, params: String) -> wasmtime::Result<Result<String, String>> {
        self.ctx_for_write("outbound.bitcoind")?.bitcoind(&method, &params).map_err(misuse)
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.counters.logs += 1;
        if self.counters.logs > self.max_log_messages {
            return Ok(());
        }
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl env::Host for HostState {
    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.config.to_string())
    }
}

impl crypto::Host for HostState {
    fn lift_x(&mut self, x: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.counters.crypto += 1;
        Ok(crate::crypto::lift_x(&x).map(|p| p.to_vec()))
    }

    fn taproot_tweak(&mut self, internal_key: Vec<u8>, merkle_root: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.counters.crypto += 1;
        Ok(crate::crypto::taproot_tweak(&internal_key, &merkle_root).map(|p| p.to_vec()))
    }
}

/// Turns a failed call into a `PluginFault`, never panicking.
pub(crate) fn classify(err: wasmtime::Error, state: &HostState) -> PluginFault {
    let stderr = state.stderr_text();
    let kind = if err.downcast_ref::<MemoryLimitExceeded>().is_some() {
        FaultKind::OutOfMemory
    } else if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        match trap {
            wasmtime::Trap::OutOfFuel => FaultKind::OutOfFuel,
            wasmtime::Trap::Interrupt => FaultKind::Timeout,
            _ => FaultKind::Trap,
        }
    } else {
        FaultKind::Trap
    };
    // The error chain (trap description, wasm backtrace, host error); not `{:?}`, which would
    // add a native backtrace when RUST_BACKTRACE is set.
    // Root cause first (e.g. "wasm trap: all fuel consumed"), then the outer contexts.
    let mut chain: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    let root = chain.pop().unwrap_or_default();
    chain.insert(0, root);
    let mut message = chain.join("\n");
    truncate(&mut message, 8 << 10);
    if !stderr.trim().is_empty() {
        let mut tail = stderr.trim().to_string();
        if tail.len() > 4096 {
            let mut cut = tail.len() - 4096;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail = format!("...{}", &tail[cut..]);
        }
        message.push_str("\nguest stderr:\n");
        message.push_str(&tail);
    }
    PluginFault { kind, message }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
}
