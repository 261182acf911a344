//! Plugin jobs: `run-job` every `job-interval-ms` (from the plugin's manifest), on a thread per
//! plugin. A job reads a snapshot, may call out (allow-listed HTTP, bitcoind methods), and its
//! `local` writes commit in one batch under the plugin's write lock when it returns ok (nothing
//! when it errs or faults). Block handlers never get these capabilities.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call_context::SnapshotContext;
use crate::live::Live;

/// Runs one job now; returns what happened (for logs and tests).
pub fn run_once(live: &Live) -> Result<(), String> {
    let serving = live.serving();
    let store = serving.store.store().clone();
    let snap = store.snapshot();
    let mut ctx = SnapshotContext::job(&snap, &serving.store, &live.outbound);
    let outcome = serving.plugin.run_job(&mut ctx, live.job_budget);
    if let Some(e) = ctx.error.take() {
        return Err(format!("reading plugin state: {e}"));
    }
    match outcome {
        Ok(_) => {
            let writes = ctx.take_writes();
            let _g = live.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            serving.store.commit_local(&writes).map_err(|e| format!("{e:#}"))
        }
        Err(f) => Err(f.to_string()),
    }
}

/// The job thread of a plugin: runs until `shutdown`.
pub fn spawn(live: Arc<Live>, shutdown: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("job-{}", live.name)).spawn(move || {
        let mut next = Instant::now();
        let mut failing = false;
        while !shutdown.load(Ordering::SeqCst) {
            let interval = live.serving().manifest.job_interval_ms;
            if interval == 0 {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            if Instant::now() < next {
                std::thread::sleep((next - Instant::now()).min(Duration::from_millis(100)));
                continue;
            }
            match run_once(&live) {
                Ok(()) => {
                    live.metrics.jobs_ok.inc();
                    if failing {
                        tracing::info!("{}: job runs again", live.name);
                    }
                    failing = false;
                }
                Err(e) => {
                    live.metrics.jobs_failed.inc();
                    if !failing {
                        tracing::warn!("{}: job failed: {e}", live.name);
                    } else {
                        tracing::debug!("{}: job failed: {e}", live.name);
                    }
                    failing = true;
                }
            }
            next = Instant::now() + Duration::from_millis(interval as u64);
        }
    })
}
