//! Catch-up progress: an indicatif bar (height, rate, ETA) per plugin when stderr is a terminal,
//! plain log lines every few seconds otherwise; one line per new tip once caught up. Also keeps
//! the plugin's tip-lag and blocks/s gauges fresh.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::PluginMetrics;
use crate::runner::PluginRunner;
use crate::source::BlockSource;

fn bars() -> Option<&'static MultiProgress> {
    static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();
    BARS.get_or_init(|| {
        std::io::stderr().is_terminal().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
    })
    .as_ref()
}

pub struct ProgressLog {
    name: String,
    last_log: Instant,
    last_sample: Instant,
    since_log: u64,
    since_sample: u64,
    last_tip: Option<u32>,
    bar: Option<ProgressBar>,
}

impl ProgressLog {
    pub fn new(name: &str) -> ProgressLog {
        ProgressLog {
            name: name.to_string(),
            last_log: Instant::now(),
            last_sample: Instant::now(),
            since_log: 0,
            since_sample: 0,
            last_tip: None,
            bar: None,
        }
    }

    /// A block was applied or undone at `height`.
    pub fn tick(&mut self, height: u32, source: &mut dyn BlockSource, m: Option<&PluginMetrics>) {
        self.since_log += 1;
        self.since_sample += 1;
        let dt = self.last_sample.elapsed();
        if dt < Duration::from_secs(1) {
            return;
        }
        let rate = self.since_sample as f64 / dt.as_secs_f64();
        self.since_sample = 0;
        self.last_sample = Instant::now();
        let tip = source.tip().ok().map(|(h, _)| h);
        if let Some(m) = m {
            m.blocks_per_second.set(rate);
            if let Some(t) = tip {
                m.tip_lag.set(t as i64 - height as i64);
            }
        }
        if let Some(multi) = bars() {
            let bar = self.bar.get_or_insert_with(|| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_prefix(self.name.clone());
                b
            });
            if let Some(t) = tip {
                bar.set_length(t as u64);
            }
            bar.set_position(height as u64);
            return;
        }
        if self.last_log.elapsed() >= Duration::from_secs(5) {
            let rate = self.since_log as f64 / self.last_log.elapsed().as_secs_f64();
            match tip {
                Some(t) if t > height && rate > 0.0 => tracing::info!(
                    "{}: catching up, height {height} of {t} ({rate:.1} blocks/s, ETA {:.0} s)",
                    self.name,
                    (t - height) as f64 / rate
                ),
                _ => tracing::info!("{}: catching up, height {height} ({rate:.1} blocks/s)", self.name),
            }
            self.last_log = Instant::now();
            self.since_log = 0;
        }
    }

    /// The plugin is at the tip.
    pub fn at_tip(&mut self, runner: &PluginRunner) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Ok(Some(c)) = runner.cursor_with_digest() {
            if self.last_tip != Some(c.height) || self.since_log > 0 {
                tracing::info!("{}: at tip height {} digest {}", self.name, c.height, &hex::encode(c.digest)[..16]);
                self.last_tip = Some(c.height);
                self.since_log = 0;
                self.last_log = Instant::now();
            }
        }
    }
}
