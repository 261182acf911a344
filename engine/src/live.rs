//! What the HTTP routes and jobs of a running plugin need, shared with its block thread: the code
//! and namespace the plugin runs NOW (replaced at a hot swap or takeover), its call budgets and
//! capabilities, the lock that makes local writes serial, and its metrics.

use std::sync::{Arc, Mutex, RwLock};

use crate::call_context::Outbound;
use crate::metrics::PluginMetrics;
use crate::store::PluginStore;
use crate::wasm::{CallBudget, LoadedPlugin, Manifest};

/// The code a plugin serves with and the namespace it reads.
pub struct Serving {
    pub plugin: LoadedPlugin,
    pub manifest: Manifest,
    pub store: PluginStore,
}

pub struct Live {
    pub name: String,
    serving: RwLock<Arc<Serving>>,
    /// Held while a write route runs and while a job's writes commit: local writes are serial.
    pub write_lock: Mutex<()>,
    pub request_budget: CallBudget,
    pub job_budget: CallBudget,
    pub outbound: Outbound,
    pub metrics: Arc<PluginMetrics>,
    /// Concurrent request instances allowed (the rest wait).
    pub request_slots: Arc<tokio::sync::Semaphore>,
}

impl Live {
    pub fn new(
        name: &str,
        serving: Serving,
        request_budget: CallBudget,
        job_budget: CallBudget,
        outbound: Outbound,
        metrics: Arc<PluginMetrics>,
        max_concurrent: usize,
    ) -> Live {
        Live {
            name: name.to_string(),
            serving: RwLock::new(Arc::new(serving)),
            write_lock: Mutex::new(()),
            request_budget,
            job_budget,
            outbound,
            metrics,
            request_slots: Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1))),
        }
    }

    pub fn serving(&self) -> Arc<Serving> {
        self.serving.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Switches routes and jobs to new code / namespace (between two requests).
    pub fn set_serving(&self, s: Serving) {
        *self.serving.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }
}
