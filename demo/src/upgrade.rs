//! Scenario 8, beyond the seed: while the system runs, `engine plugin upgrade` replaces
//! `phase1-staking` with a rebuilt component (keep-state mode) between two blocks. The API is
//! asked continuously meanwhile and must answer every request; afterwards a second engine that
//! indexed the same chain from genesis with the rebuilt plugin must have the same state digest
//! (no block missed or applied twice) and the same queue events (none lost or duplicated).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use crate::checks::achieved;
use crate::deployment::{get_json, Deployment};
use crate::processes::wait_for;
use crate::queues::{Msg, Tap};
use crate::scenarios::{title, Demo};

/// The queues whose events follow confirmed blocks (btc_info follows every tip).
const CONFIRMED_QUEUES: [&str; 4] =
    ["active_staking_queue", "unbonding_staking_queue", "withdraw_staking_queue", "expired_staking_queue"];

pub fn eight(d: &mut Demo, dep: &Deployment, rebuilt: &Path) -> Result<()> {
    title("8 (beyond the seed)", "Upgrade the phase1-staking plugin live, between two blocks");
    let before = get_json(&format!("{}/status/phase1-staking", dep.api))?;
    println!(
        "phase1-staking runs version {} at height {} (state digest {})",
        short(&before["version"]),
        before["height"],
        short(&before["digest"])
    );

    // The API, asked all along.
    let hammer = Hammer::start(&dep.api);
    std::thread::sleep(Duration::from_millis(300));
    println!("Upgrading to the rebuilt component {} (engine plugin upgrade, keep-state mode)", rebuilt.display());
    let out = Command::new(&dep.engine_bin)
        .args(["plugin", "upgrade", "phase1-staking"])
        .arg(rebuilt)
        .args(["--mode", "keep", "--runtime"])
        .arg(&dep.runtime)
        .output()?;
    if !out.status.success() {
        bail!("engine plugin upgrade failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    println!(" {}", String::from_utf8_lossy(&out.stdout).trim());
    d.chain.next_block()?;
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, slowest) = hammer.stop();

    let after = get_json(&format!("{}/status/phase1-staking", dep.api))?;
    if after["version"] == before["version"] {
        bail!("phase1-staking still runs version {} after the upgrade", short(&before["version"]));
    }
    achieved(&format!("phase1-staking now runs version {} at height {}", short(&after["version"]), after["height"]));
    if let Some(first) = failed.first() {
        bail!(
            "the API failed {} of {} requests during the upgrade; the first: {first}",
            failed.len(),
            ok + failed.len()
        );
    }
    achieved(&format!(
        "The Staking API answered all {ok} requests during the upgrade (slowest {} ms)",
        slowest.as_millis()
    ));

    // A reference: a second engine indexing the same chain from genesis with the rebuilt plugin.
    let (runtime, reference_api) = dep.reference_runtime(rebuilt)?;
    let mut cmd = Command::new(&dep.engine_bin);
    cmd.arg("run").arg(&runtime);
    d.chain.sup.spawn("reference-engine", "reference engine (scenario 8)", &mut cmd)?;
    let result = compare(d, dep, &reference_api);
    d.chain.sup.stop_one("reference-engine");
    result
}

/// Digest and queue events of the live engine against the reference engine, at the same block.
fn compare(d: &Demo, dep: &Deployment, reference_api: &str) -> Result<()> {
    let (live, reference) =
        wait_for("the reference engine to reach the live engine's block", Duration::from_secs(120), || {
            let live = get_json(&format!("{}/status/phase1-staking", dep.api)).ok()?;
            let reference = get_json(&format!("{reference_api}/status/phase1-staking")).ok()?;
            (live["block"].is_string() && live["block"] == reference["block"]).then_some((live, reference))
        })?;
    let height = live["height"].as_u64().unwrap_or(0) as u32;
    if live["digest"] != reference["digest"] {
        bail!(
            "state digest at height {height}: the upgraded plugin has {}, a replay of the chain from genesis has {}",
            live["digest"],
            reference["digest"]
        );
    }
    achieved(&format!(
        "State digest at height {height} equals a replay of the chain from genesis: {}",
        short(&live["digest"])
    ));

    let reference_queues = Tap::files(dep.work.join("reference/queues"));
    let mut total = 0;
    for q in CONFIRMED_QUEUES {
        let theirs = wait_for(&format!("the reference engine's {q}"), Duration::from_secs(20), || {
            let theirs = up_to(reference_queues.messages(q).ok()?, height);
            let ours = up_to(d.queues.messages(q).ok()?, height);
            (theirs.len() >= ours.len()).then_some(theirs)
        })?;
        let ours = up_to(d.queues.messages(q)?, height);
        if ours != theirs {
            let first = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
            bail!(
                "{q} up to height {height}: the live system delivered {} messages, the replay {}; they differ from message {first}: live {:?}, replay {:?}",
                ours.len(),
                theirs.len(),
                ours.get(first).map(|m| &m.0),
                theirs.get(first).map(|m| &m.0)
            );
        }
        total += ours.len();
    }
    achieved(&format!(
        "Queue events up to height {height}: {total}, the same as the replay's, none lost or duplicated"
    ));
    expect_unique(d.queues)
}

/// `(message id, body)` of the messages of blocks up to `height`.
fn up_to(msgs: Vec<Msg>, height: u32) -> Vec<(String, String)> {
    msgs.into_iter().filter(|m| m.height() <= height).map(|m| (m.message_id, m.body.to_string())).collect()
}

/// Every message id on every queue is delivered once.
pub fn expect_unique(queues: &Tap) -> Result<()> {
    let all = queues.all()?;
    let mut seen = HashSet::new();
    let mut per_queue: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &all {
        if !seen.insert(&m.message_id) {
            bail!("message {} was delivered twice on {}", m.message_id, m.queue);
        }
        *per_queue.entry(m.queue.as_str()).or_default() += 1;
    }
    achieved(&format!("Every queue message delivered exactly once ({} messages: {per_queue:?})", all.len()));
    Ok(())
}

fn short(v: &Value) -> String {
    v.as_str().map(|s| s.chars().take(16).collect()).unwrap_or_else(|| v.to_string())
}

/// Asks `GET /v1/stats` back to back from a thread.
struct Hammer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>, Duration)>,
}

impl Hammer {
    fn start(api: &str) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{api}/v1/stats");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed, mut slowest) = (0, Vec::new(), Duration::ZERO);
            while !flag.load(Ordering::SeqCst) {
                let t = Instant::now();
                match minreq::get(&url).with_timeout(10).send() {
                    Ok(r) if r.status_code == 200 => ok += 1,
                    Ok(r) => failed.push(format!("HTTP {}: {}", r.status_code, r.as_str().unwrap_or_default())),
                    Err(e) => failed.push(e.to_string()),
                }
                slowest = slowest.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            (ok, failed, slowest)
        });
        Hammer { stop, thread }
    }

    fn stop(self) -> (usize, Vec<String>, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}
