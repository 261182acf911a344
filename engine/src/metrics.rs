//! Prometheus metrics (`GET /metrics`): per plugin height, tip lag, blocks, blocks/s, handler
//! time, fuel, reorgs and undo depth; outbox depth and unconfirmed publishes per sink; HTTP
//! latency per route. Handles are cheap atomics bound to their labels once.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    height: IntGaugeVec,
    tip_lag: IntGaugeVec,
    blocks: IntCounterVec,
    blocks_per_second: prometheus::GaugeVec,
    handler_seconds: HistogramVec,
    fuel: IntCounterVec,
    reorgs: IntCounterVec,
    undo_depth: IntGaugeVec,
    undone: IntCounterVec,
    at_tip: IntGaugeVec,
    pub outbox_depth: IntGauge,
    pub sink_in_flight: IntGaugeVec,
    pub sink_delivered: IntGaugeVec,
    pub sink_up: IntGaugeVec,
    pub sink_reconnects: IntGaugeVec,
    http: HistogramVec,
    jobs: IntCounterVec,
}

/// One plugin's metric handles.
pub struct PluginMetrics {
    pub height: IntGauge,
    pub tip_lag: IntGauge,
    pub blocks: IntCounter,
    pub blocks_per_second: prometheus::Gauge,
    pub handler_seconds: Histogram,
    pub fuel: IntCounter,
    pub reorgs: IntCounter,
    pub undo_depth: IntGauge,
    pub undone: IntCounter,
    pub at_tip: IntGauge,
    pub jobs_ok: IntCounter,
    pub jobs_failed: IntCounter,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let p = &["plugin"];
        let gauge = |n: &str, h: &str, l: &[&str]| {
            let g = IntGaugeVec::new(opts(n, h), l).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let counter = |n: &str, h: &str, l: &[&str]| {
            let c = IntCounterVec::new(opts(n, h), l).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];
        let handler_seconds = HistogramVec::new(
            HistogramOpts::new("engine_plugin_handler_seconds", "Time inside a plugin's block handlers, per tip")
                .buckets(buckets.clone()),
            p,
        )
        .expect("valid metric");
        registry.register(Box::new(handler_seconds.clone())).expect("unique metric");
        let http = HistogramVec::new(
            HistogramOpts::new("engine_http_request_seconds", "Plugin HTTP route latency").buckets(buckets),
            &["plugin", "route", "status"],
        )
        .expect("valid metric");
        registry.register(Box::new(http.clone())).expect("unique metric");
        let bps = prometheus::GaugeVec::new(
            opts("engine_plugin_blocks_per_second", "Blocks applied per second over the last few seconds"),
            p,
        )
        .expect("valid metric");
        registry.register(Box::new(bps.clone())).expect("unique metric");
        let outbox_depth = IntGauge::new("engine_outbox_depth", "Outbox messages not yet delivered to every sink")
            .expect("valid metric");
        registry.register(Box::new(outbox_depth.clone())).expect("unique metric");
        let s = &["sink"];
        Metrics {
            height: gauge("engine_plugin_height", "Height of the plugin's last applied block", p),
            tip_lag: gauge("engine_plugin_tip_lag_blocks", "Blocks between the chain tip and the plugin", p),
            blocks: counter("engine_plugin_blocks_total", "Blocks applied", p),
            blocks_per_second: bps,
            handler_seconds,
            fuel: counter("engine_plugin_fuel_used_total", "Wasm fuel used by block handlers", p),
            reorgs: counter("engine_plugin_reorgs_total", "Reorgs (runs of undone blocks)", p),
            undo_depth: gauge("engine_plugin_last_undo_depth", "Blocks undone by the last reorg or rewind", p),
            undone: counter("engine_plugin_undone_blocks_total", "Blocks undone", p),
            at_tip: gauge("engine_plugin_at_tip", "1 when the plugin is at the chain tip", p),
            outbox_depth,
            sink_in_flight: gauge("engine_sink_unconfirmed_publishes", "Publishes awaiting the sink's confirm", s),
            sink_delivered: gauge("engine_sink_delivered", "Messages the sink confirmed since start", s),
            sink_up: gauge("engine_sink_up", "1 when the sink is connected", s),
            sink_reconnects: gauge("engine_sink_reconnects", "Reconnections after a sink failure", s),
            http,
            jobs: counter("engine_plugin_jobs_total", "Job runs by outcome", &["plugin", "outcome"]),
            registry,
        }
    }

    pub fn plugin(&self, name: &str) -> PluginMetrics {
        PluginMetrics {
            height: self.height.with_label_values(&[name]),
            tip_lag: self.tip_lag.with_label_values(&[name]),
            blocks: self.blocks.with_label_values(&[name]),
            blocks_per_second: self.blocks_per_second.with_label_values(&[name]),
            handler_seconds: self.handler_seconds.with_label_values(&[name]),
            fuel: self.fuel.with_label_values(&[name]),
            reorgs: self.reorgs.with_label_values(&[name]),
            undo_depth: self.undo_depth.with_label_values(&[name]),
            undone: self.undone.with_label_values(&[name]),
            at_tip: self.at_tip.with_label_values(&[name]),
            jobs_ok: self.jobs.with_label_values(&[name, "ok"]),
            jobs_failed: self.jobs.with_label_values(&[name, "failed"]),
        }
    }

    pub fn observe_http(&self, plugin: &str, route: &str, status: u16, seconds: f64) {
        self.http.with_label_values(&[plugin, route, &status.to_string()]).observe(seconds);
    }

    /// The text exposition format.
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
