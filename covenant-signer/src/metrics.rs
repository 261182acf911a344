//! Prometheus metrics under the legacy names (`signer_received_signing_requests`,
//! `signer_succeeded_signing_requests`, `signer_failed_signing_requests`), plus two histograms
//! of where the time goes (`signer_request_duration_seconds`, `signer_wallet_duration_seconds`).
//!
//! As in the legacy service, a request counts as received only once its body decoded: malformed
//! requests are answered 400 without touching the counters.

use std::time::Duration;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, Registry, TextEncoder};

/// The signer's metrics, in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Decoded signing requests.
    pub received: IntCounter,
    /// Requests answered with a signature.
    pub succeeded: IntCounter,
    /// Decoded requests refused or failed.
    pub failed: IntCounter,
    /// Time from a decoded request to its answer.
    pub request_seconds: Histogram,
    /// Time spent in the offline wallet's `walletprocesspsbt`.
    pub wallet_seconds: Histogram,
}

impl Metrics {
    /// Fresh counters.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let received =
            counter("signer_received_signing_requests", "The total number of signing requests received by the signer");
        let succeeded = counter(
            "signer_succeeded_signing_requests",
            "The total number times the signer successfully responded with a signature",
        );
        let failed =
            counter("signer_failed_signing_requests", "The total number of times signer responded with an error");
        let buckets = vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 15.0];
        let histogram = |name: &str, help: &str| {
            let h =
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.clone())).expect("valid metric");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let request_seconds =
            histogram("signer_request_duration_seconds", "Time to answer a decoded signing request (checks + wallet)");
        let wallet_seconds =
            histogram("signer_wallet_duration_seconds", "Time spent in the offline wallet's walletprocesspsbt");
        Metrics { registry, received, succeeded, failed, request_seconds, wallet_seconds }
    }

    /// Records a wallet call's duration.
    pub fn observe_wallet(&self, d: Duration) {
        self.wallet_seconds.observe(d.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
