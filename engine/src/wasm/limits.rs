//! Per-call resource limits: fuel, linear-memory ceiling, wall-clock deadline (epoch watchdog).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Limits applied to every call into a plugin (init, each block, each undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call (about one unit per Wasm operator). Exhausted → `FaultKind::OutOfFuel`.
    pub fuel: u64,
    /// Linear-memory ceiling per instance, in bytes (pooling slot size and `ResourceLimiter`).
    /// Growing past it → `FaultKind::OutOfMemory`.
    pub memory_bytes: usize,
    /// Wall-clock deadline per call, enforced by epoch interruption even when fuel is plentiful.
    /// Exceeded → `FaultKind::Timeout`.
    pub timeout: Duration,
    /// Period of the epoch watchdog thread; the deadline's resolution.
    pub epoch_tick: Duration,
    /// Concurrent instances the pooling allocator reserves slots for (per `WasmHost`).
    pub max_instances: u32,
    /// Captured guest stderr per call (attached to fault messages). A guest writing more gets a
    /// write error (Rust's `eprintln!` then panics) — deterministic, as the size is fixed.
    pub stderr_bytes: usize,
    /// Log messages forwarded to `tracing` per call; the rest are dropped.
    pub max_log_messages: u32,
    /// Upper bound on the `limit` of one `scan-prefix`/`scan-range` call.
    pub max_scan: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 20_000_000_000,
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            epoch_tick: Duration::from_millis(10),
            max_instances: 32,
            stderr_bytes: 64 << 10,
            max_log_messages: 1000,
            max_scan: 100_000,
        }
    }
}

impl Limits {
    /// Epoch ticks for the per-call deadline (at least 1 more than the timeout needs).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        (self.timeout.as_nanos().div_ceil(tick) as u64).saturating_add(1)
    }
}

/// Marker error returned by the limiter when a memory would grow past the ceiling; the trap it
/// raises is classified as `FaultKind::OutOfMemory`.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
    /// Why the growth failed when it was within the ceiling (e.g. the OS refused).
    pub detail: Option<String>,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            None => write!(
                f,
                "linear memory would grow to {} bytes, over the ceiling of {} bytes",
                self.desired, self.limit
            ),
            Some(d) => write!(f, "linear memory growth failed (ceiling {} bytes): {d}", self.limit),
        }
    }
}

impl std::error::Error for MemoryLimitExceeded {}

/// `ResourceLimiter` enforcing the memory ceiling with a trap (not a silent `memory.grow`
/// failure, which Rust guests turn into an abort that would look like any other trap).
pub(crate) struct MemoryLimiter {
    pub limit: usize,
    pub peak: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { desired, limit: self.limit, detail: None }));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        let detail = Some(format!("{error}"));
        Err(wasmtime::Error::new(MemoryLimitExceeded { desired: 0, limit: self.limit, detail }))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

/// Background thread that advances the engine's epoch every `tick`; stops when dropped.
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(engine: wasmtime::Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })?;
        Ok(Watchdog { stop, handle: Some(handle) })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
