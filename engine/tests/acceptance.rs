//! Acceptance tests with real processes: the `engine` binary following a `regtest-node` process,
//! RocksDB on disk, and the test plugins compiled to wasm32-wasip2.
//!
//! Run after `cargo build --release --workspace --all-targets`:
//! `cargo test --release -p engine --test acceptance`. Random choices print their seed;
//! `ACCEPTANCE_SEED=<seed>` repeats a run.

mod testing;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testing::*;

/// Indexes the node's current chain from scratch with `plugins` (fresh data dir) and returns each
/// plugin's digest at the tip.
fn from_scratch(node: &Node, plugins: &[PluginDef]) -> BTreeMap<String, String> {
    let mut e = Engine::start(node, plugins);
    let digests = e.wait_all_synced(node).into_iter().collect();
    e.stop();
    digests
}

fn digests(e: &mut Engine, node: &Node) -> BTreeMap<String, String> {
    e.wait_all_synced(node).into_iter().collect()
}

/// Checks that namespace `ns` holds exactly one `block/` key per height 0..=tip and that the
/// plugin's per-block messages (label `label`) name exactly the final chain, each height once.
fn assert_counter_exact(store: &engine::store::Store, ns: &str, label: &str, chain: &[String], log: &str) {
    let heights: Vec<u32> = block_entries(store, ns).into_iter().map(|(h, _)| h).collect();
    let want: Vec<u32> = (0..chain.len() as u32).collect();
    assert_eq!(heights, want, "namespace {ns}: block/ keys are not exactly the heights 0..={}\n{log}", chain.len() - 1);
    let mut applies = counter_applies(store, label);
    applies.sort();
    let want: Vec<(u32, String)> = chain.iter().enumerate().map(|(h, hash)| (h as u32, hash.clone())).collect();
    if applies != want {
        let dup: Vec<u32> = applies.windows(2).filter(|w| w[0].0 == w[1].0).map(|w| w[0].0).collect();
        let missing: Vec<u32> = want.iter().filter(|w| !applies.contains(w)).map(|w| w.0).collect();
        panic!(
            "{label}: net per-block messages (applies minus undos) do not match the final chain exactly once per block: \
             {} messages for {} blocks; duplicated heights {dup:?}; missing/wrong heights {missing:?}\n{log}",
            applies.len(),
            want.len()
        );
    }
}

#[test]
fn cli_help_and_broken_runtime_files() {
    let out = std::process::Command::new(engine_binary()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "engine --help exited with {}: {help}", out.status);
    for cmd in ["run", "check", "replay", "status", "plugin", "rewind"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(cmd)), "engine --help does not list `{cmd}`:\n{help}");
    }

    let dir = tempfile::tempdir().unwrap();
    let counter = plugin_wasm("counter");
    let good = format!(
        "[bitcoind]\nurl = \"http://127.0.0.1:{}\"\nuser = \"u\"\npassword = \"p\"\n\n[engine]\ndata_dir = \"{}\"\n\
         listen = \"127.0.0.1:{}\"\n\n[[plugin]]\nname = \"counter\"\nwasm = \"{}\"\n",
        free_port(),
        dir.path().join("eng").display(),
        free_port(),
        counter.display()
    );
    // `engine check` loads each plugin and runs its init with its config.
    let check = |text: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::process::Command::new(engine_binary()).arg("check").arg(&path).output().unwrap()
    };
    let out = check(&good, "check-good.toml");
    assert!(out.status.success(), "engine check: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("plugin counter: init ok"));
    let out = check(&format!("{good}config = {{ depths = \"deep\" }}\n"), "check-bad.toml");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "engine check accepted a config its plugin refuses:\n{stdout}");
    assert!(stdout.contains("config.depths") && stderr.contains("counter"), "{stdout}\n{stderr}");

    let missing = dir.path().join("no-such-plugin.wasm");
    let cases = [
        (good.replace("[engine]\n", "[engine]\nbogus_key = 1\n"), "bogus_key"),
        (good.replace(&counter.display().to_string(), &missing.display().to_string()), "no-such-plugin.wasm"),
        (format!("{good}limits = {{ memory_mb = 1 }}\n"), "memory_mb"),
        (good.replace("listen = ", "poll_interval_ms = \"fast\"\nlisten = "), "poll_interval_ms"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("runtime{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let started = Instant::now();
        let out = std::process::Command::new(engine_binary()).arg("run").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "engine run with a broken runtime file ({needle}) succeeded:\n{text}");
        assert!(stderr.contains(needle), "the error for a broken runtime file does not name {needle:?}:\n{stderr}");
        assert!(started.elapsed() < Duration::from_secs(20), "engine run took {:?} to reject", started.elapsed());
    }
}

/// Acceptance 1: random reorgs of depth 1..10 interleaved with new blocks, while the engine
/// runs, end in the digest of indexing the final chain from scratch.
#[test]
fn random_reorgs_end_in_the_from_scratch_digest() {
    let mut rng = Rng::new("random_reorgs");
    let node = Node::start();
    node.generate(30);
    let plugins = [PluginDef::test("counter")];
    let mut e = Engine::start(&node, &plugins);
    e.wait_synced(&node, "counter");
    let mut reorgs = Vec::new();
    for round in 0..24 {
        if round % 2 == 0 || rng.chance(30) {
            let depth = rng.range(1, 10) as u32;
            let new_blocks = depth + rng.range(0, 2) as u32 - u32::from(rng.chance(20));
            node.reorg(depth, new_blocks);
            reorgs.push((depth, new_blocks));
        } else {
            node.generate(rng.range(1, 4) as u32);
        }
        // Sometimes let the engine settle, sometimes hit it mid-way.
        if rng.chance(40) {
            e.wait_synced(&node, "counter");
        } else {
            std::thread::sleep(Duration::from_millis(rng.range(0, 150)));
        }
    }
    node.generate(2);
    eprintln!("reorgs (depth, new blocks): {reorgs:?}");
    let live = digests(&mut e, &node);
    e.stop();
    let log = e.log_tail();
    let chain = node.chain();
    let store = e.open_store();
    assert_counter_exact(&store, "counter", "counter", &chain, &log);
    let undos = messages(&store, "counter", "counter").iter().filter(|(_, v)| v.get("undo").is_some()).count();
    assert!(undos > 0, "the engine never undid a block (no {{\"undo\":h}} message), so it never saw a reorg\n{log}");
    drop(store);
    let scratch = from_scratch(&node, &plugins);
    assert_eq!(live, scratch, "after reorgs {reorgs:?} the digest differs from indexing the final chain from scratch");
}

/// Acceptance 2: kill -9 at 20 random points during catch-up of a long chain, restarting each
/// time, ends in the digest of an uninterrupted run. (The engine indexes a few hundred regtest
/// blocks per second and needs some tens of milliseconds to start, so the chain is long enough
/// for all 20 kills to land mid-catch-up.)
#[test]
fn kill9_during_catch_up_ends_in_the_uninterrupted_digest() {
    const CHAIN: u32 = 500;
    let mut rng = Rng::new("kill9");
    let node = Node::start();
    node.generate(CHAIN);
    let plugins = [PluginDef::test("counter"), PluginDef::test("touch")];

    let t0 = Instant::now();
    let reference = from_scratch(&node, &plugins);
    let full = t0.elapsed();
    eprintln!("uninterrupted catch-up of {CHAIN} blocks: {full:?}");

    // Kill points: a random number of blocks (1..=10) past the height the previous run reached
    // (the engine keeps its progress across kills); a quarter of the kills instead land a random
    // few milliseconds after the start (opening the store, loading the plugins, first blocks).
    let mut e = Engine::configure(&node, &plugins);
    let mut points = Vec::new();
    let mut mid_catch_up = 0;
    let mut progress = 0;
    for _ in 0..20 {
        let target = (progress + rng.range(1, 10)).min(CHAIN as u64 - 1);
        e.spawn();
        let early = rng.chance(25);
        let seen = if early {
            std::thread::sleep(Duration::from_millis(rng.range(0, 80)));
            e.try_status("counter").and_then(|s| s["height"].as_u64())
        } else {
            e.wait_for(&format!("counter to pass height {target}"), SYNC_TIMEOUT, |e| {
                e.try_status("counter").and_then(|s| s["height"].as_u64()).filter(|h| *h >= target)
            });
            std::thread::sleep(Duration::from_micros(rng.range(0, 2000)));
            e.try_status("counter").and_then(|s| s["height"].as_u64())
        };
        e.kill9();
        progress = seen.unwrap_or(progress).max(progress);
        if seen.is_none_or(|h| h < CHAIN as u64) {
            mid_catch_up += 1;
        }
        points.push((if early { None } else { Some(target) }, seen));
    }
    eprintln!("kill points (target height, None = early; counter height seen just before the kill): {points:?}");
    assert!(mid_catch_up >= 15, "too few kills landed mid-catch-up: {points:?}");
    e.spawn();
    let after = digests(&mut e, &node);
    e.stop();
    let log = e.log_tail();
    assert_eq!(after, reference, "after 20 kill -9 the digests differ from an uninterrupted run");
    let store = e.open_store();
    assert_counter_exact(&store, "counter", "counter", &node.chain(), &log);
    let undos: Vec<Value> = messages(&store, "counter", "counter")
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v.get("undo").is_some())
        .collect();
    assert!(undos.is_empty(), "counter undid blocks although the chain never reorganised: {undos:?}\n{log}");
    let touch: Vec<u32> = block_entries(&store, "touch").into_iter().map(|(h, _)| h).collect();
    assert_eq!(touch, (0..=CHAIN).collect::<Vec<_>>(), "touch: block/ keys are not exactly 0..={CHAIN}\n{log}");
}

/// Acceptance 3: a plugin that traps, loops forever or allocates without bound is halted at its
/// configured height with the fault named, while `counter` keeps indexing to the tip and on.
#[test]
fn faulty_plugins_halt_alone() {
    let node = Node::start();
    node.generate(20);
    let plugins = [
        PluginDef::test("counter"),
        PluginDef::test("trap")
            .with("config = { height = 10 }")
            .with("limits = { fuel_per_block = 2_000_000_000, memory_mb = 64, timeout_ms = 2000 }"),
        PluginDef::test("spin")
            .with("config = { height = 12 }")
            .with("limits = { fuel_per_block = 50_000_000, memory_mb = 64, timeout_ms = 2000 }"),
        PluginDef::new("spin-timeout", &plugin_wasm("spin"))
            .with("config = { height = 13 }")
            .with("limits = { fuel_per_block = 1_000_000_000_000, memory_mb = 64, timeout_ms = 300 }"),
        PluginDef::test("hog")
            .with("config = { height = 14 }")
            .with("limits = { fuel_per_block = 2_000_000_000, memory_mb = 16, timeout_ms = 5000 }"),
    ];
    let mut e = Engine::start(&node, &plugins);
    let faults = [
        ("trap", 10, &["Trap"][..]),
        ("spin", 12, &["OutOfFuel"][..]),
        ("spin-timeout", 13, &["Timeout"][..]),
        ("hog", 14, &["OutOfMemory"][..]),
    ];
    let check_halted = |e: &mut Engine| {
        for (name, at, kinds) in faults {
            let s = e.wait_for(&format!("{name} to halt"), SYNC_TIMEOUT, |e| {
                e.try_status(name).filter(|s| s["status"] == "halted")
            });
            let reason = s["reason"].as_str().unwrap_or_default();
            eprintln!("{name}: halted at {} with {:?}", s["halted_at"], reason.lines().next().unwrap_or_default());
            assert_eq!(s["halted_at"], json!(at), "{name}: halted_at; status {s}\n{}", e.log_tail());
            assert_eq!(s["height"], json!(at - 1), "{name}: cursor after halting; status {s}\n{}", e.log_tail());
            assert!(
                kinds.iter().any(|k| reason.contains(k)),
                "{name}: the halt reason names none of {kinds:?}: {reason:?}\n{}",
                e.log_tail()
            );
        }
    };
    check_halted(&mut e);
    let s = e.wait_synced(&node, "counter");
    assert_eq!(s["status"], "active", "counter: {s}");
    // New blocks: counter follows them, the halted ones stay where they are.
    node.generate(3);
    e.wait_synced(&node, "counter");
    node.generate(2);
    let s = e.wait_synced(&node, "counter");
    assert_eq!(s["height"], json!(25));
    check_halted(&mut e);
    e.assert_alive();
    // The CLI sees the same.
    let out = e.cli(&["plugin", "list", "--json"]);
    assert!(out.status.success(), "engine plugin list: {}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_name: BTreeMap<&str, &Value> = list.iter().map(|s| (s["name"].as_str().unwrap(), s)).collect();
    assert_eq!(by_name["counter"]["status"], "active");
    for (name, at, _) in faults {
        assert_eq!(by_name[name]["status"], "halted", "{name} in `engine plugin list`");
        assert_eq!(by_name[name]["halted_at"], json!(at));
    }
    e.stop();
}

/// Acceptance 4a: a keep-state hot swap (through the CLI) mid-chain, with blocks mined before,
/// during and after: each block is applied exactly once, by the old code up to the swap height
/// and by the new code after it.
#[test]
fn hot_swap_keep_misses_no_block() {
    let node = Node::start();
    node.generate(20);
    let plugins = [PluginDef::test("counter")];
    let mut e = Engine::start(&node, &plugins);
    e.wait_synced(&node, "counter");
    let before = e.status("counter");

    let touch = plugin_wasm("touch");
    // Blocks keep coming while the CLI asks the running engine to swap.
    let out = std::thread::scope(|s| {
        let node = &node;
        let miner = s.spawn(move || {
            for _ in 0..15 {
                node.generate(1);
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        std::thread::sleep(Duration::from_millis(150));
        let out = e.cli(&["plugin", "upgrade", "counter", touch.to_str().unwrap(), "--mode", "keep"]);
        miner.join().unwrap();
        out
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "engine plugin upgrade: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let swap_height: u32 = stdout
        .split("from height ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no `from height H` in the upgrade output: {stdout}"));
    node.generate(5);
    let after = e.wait_synced(&node, "counter");
    assert_ne!(after["version"], before["version"], "the version did not change: {after}");
    assert_eq!(after["namespace"], before["namespace"], "keep mode must keep the namespace");
    let ns = after["namespace"].as_str().unwrap().to_string();
    e.stop();
    let log = e.log_tail();
    let tip = node.height();
    eprintln!("keep swap at height {swap_height}, tip {tip}");
    assert!(swap_height >= 20 && swap_height < tip, "swap height {swap_height} should be mid-chain (tip {tip})");

    let store = e.open_store();
    let entries = block_entries(&store, &ns);
    let heights: Vec<u32> = entries.iter().map(|(h, _)| *h).collect();
    assert_eq!(heights, (0..=tip).collect::<Vec<_>>(), "block/ keys are not exactly 0..={tip}\n{log}");
    for (h, v) in &entries {
        if *h <= swap_height {
            assert!(is_counter_shape(v), "height {h} <= swap height {swap_height} is not counter's: {v}\n{log}");
        } else {
            assert!(is_touch_shape(v), "height {h} > swap height {swap_height} is not touch's: {v}\n{log}");
        }
    }
    let mut applies: Vec<u32> = counter_applies(&store, "counter").into_iter().map(|(h, _)| h).collect();
    applies.sort();
    assert_eq!(
        applies,
        (0..=swap_height).collect::<Vec<_>>(),
        "the old code's messages must cover 0..={swap_height} exactly once (touch publishes nothing)\n{log}"
    );
    let registry = engine::registry::Registry::open(&store, &e.data_dir).unwrap();
    let active = registry.active("counter").unwrap().unwrap();
    assert_eq!(active.since_height, Some(swap_height), "registry: {active:?}");
}

/// Acceptance 4b: rebuild-mode hot swaps mid-chain with blocks mined while rebuilding: the new
/// version takes over with the digest of running it from scratch, and the messages cover every
/// block exactly once (old version up to the takeover, new version after).
///
/// `counter` is rebuilt with a variant of itself (same behaviour, other bytes), so both versions
/// publish per-block messages; `ctouch` (counter's code at first) is rebuilt with `touch`.
#[test]
fn hot_swap_rebuild_misses_no_block() {
    let node = Node::start();
    node.generate(150);
    let counter = plugin_wasm("counter");
    let plugins = [PluginDef::new("counter", &counter), PluginDef::new("ctouch", &counter)];
    let mut e = Engine::start(&node, &plugins);
    e.wait_all_synced(&node);
    let variant = wasm_variant(&counter, "v2", &e.dir.join("counter-v2.wasm"));
    let touch = plugin_wasm("touch");

    // Blocks keep coming before, during and after the rebuilds.
    let (up_counter, up_ctouch, upgraded_at) = std::thread::scope(|s| {
        let node = &node;
        let miner = s.spawn(move || {
            for _ in 0..25 {
                node.generate(1);
                std::thread::sleep(Duration::from_millis(40));
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let a = e.upgrade("counter", &variant, "rebuild");
        let b = e.upgrade("ctouch", &touch, "rebuild");
        let upgraded_at = node.height();
        miner.join().unwrap();
        (a, b, upgraded_at)
    });
    assert_eq!(up_counter["mode"], "rebuild");
    let versions = [("counter", up_counter["version"].clone()), ("ctouch", up_ctouch["version"].clone())];
    for (name, version) in &versions {
        e.wait_for(&format!("{name}'s rebuild to take over"), SYNC_TIMEOUT, |e| {
            e.try_status(name).filter(|s| s["rebuild"].is_null() && s["version"] == *version)
        });
    }
    node.generate(4);
    let live = digests(&mut e, &node);
    let namespaces: BTreeMap<String, String> = ["counter", "ctouch"]
        .iter()
        .map(|n| (n.to_string(), e.status(n)["namespace"].as_str().unwrap().to_string()))
        .collect();
    e.stop();
    let log = e.log_tail();
    let chain = node.chain();
    let tip = chain.len() as u32 - 1;

    let store = e.open_store();
    let registry = engine::registry::Registry::open(&store, &e.data_dir).unwrap();
    let takeover: BTreeMap<&str, u32> = ["counter", "ctouch"]
        .iter()
        .map(|n| (*n, registry.active(n).unwrap().unwrap().since_height.expect("takeover height")))
        .collect();
    eprintln!("rebuilds asked at node height {upgraded_at}; takeovers at {takeover:?}, tip {tip}, {namespaces:?}");
    for (n, t) in &takeover {
        assert!(*t >= 150 && *t < tip, "{n}: takeover height {t} should be mid-chain (tip {tip})");
        assert_ne!(namespaces[*n], *n, "{n}: a rebuild runs in a new namespace");
    }
    assert!(
        !store.plugins().unwrap().iter().any(|ns| ns == "counter" || ns == "ctouch"),
        "the old namespaces should be dropped after the takeover: {:?}",
        store.plugins().unwrap()
    );
    // State: the new namespaces hold every block once, in the new code's shape.
    let ct = block_entries(&store, &namespaces["ctouch"]);
    assert_eq!(ct.iter().map(|(h, _)| *h).collect::<Vec<_>>(), (0..=tip).collect::<Vec<_>>(), "ctouch keys\n{log}");
    assert!(ct.iter().all(|(_, v)| is_touch_shape(v)), "ctouch: not all blocks in touch's shape\n{log}");
    let cn: Vec<u32> = block_entries(&store, &namespaces["counter"]).into_iter().map(|(h, _)| h).collect();
    assert_eq!(cn, (0..=tip).collect::<Vec<_>>(), "counter keys\n{log}");
    let counter_msgs = counter_applies(&store, "counter");
    let ctouch_msgs = counter_applies(&store, "ctouch");
    drop(registry);
    drop(store);

    // Digests: as if the new code had run from the start.
    let scratch =
        from_scratch(&node, &[PluginDef::new("counter", &plugin_wasm("counter")), PluginDef::new("ctouch", &touch)]);
    assert_eq!(live, scratch, "after the rebuild swaps the digests differ from running the new code from scratch");

    // Messages. counter: the new version (same behaviour) published every block above the
    // takeover once; the old version every block up to it, once.
    let heights = |msgs: &[(u32, String)], range: std::ops::RangeInclusive<u32>| {
        let mut hs: Vec<u32> = msgs.iter().map(|(h, _)| *h).filter(|h| range.contains(h)).collect();
        hs.sort();
        hs
    };
    let t = takeover["counter"];
    assert_eq!(
        heights(&counter_msgs, t + 1..=tip),
        (t + 1..=tip).collect::<Vec<_>>(),
        "counter: the new version's messages must cover {}..={tip} exactly once\n{log}",
        t + 1
    );
    let summary: Vec<u32> = counter_msgs.iter().map(|(h, _)| *h).collect();
    let old = heights(&counter_msgs, 0..=t);
    assert_eq!(
        old,
        (0..=t).collect::<Vec<_>>(),
        "counter's old-version messages for heights 0..={t} (published before the rebuild took over at {t}, never \
         delivered or pending) must be there exactly once; found {} of {}. All counter heights: \
         {summary:?}\n{log}",
        old.len(),
        t + 1
    );
    // ctouch: the old version (counter's code) published 0..=takeover once; touch publishes nothing.
    let t = takeover["ctouch"];
    assert_eq!(
        heights(&ctouch_msgs, 0..=u32::MAX),
        (0..=t).collect::<Vec<_>>(),
        "ctouch's old-version messages must cover 0..={t} exactly once (see above)\n{log}"
    );
}

/// Acceptance 5: the node stopped and restarted mid-run: the engine keeps running, catches up
/// after the restart, and ends in the from-scratch digest.
#[test]
fn node_restart_is_survived() {
    let mut node = Node::start();
    node.generate(20);
    let plugins = [PluginDef::test("counter")];
    let mut e = Engine::start(&node, &plugins);
    e.wait_synced(&node, "counter");
    node.generate(30);
    node.stop();
    // Longer than the engine's 5 s give-up on an unreachable node: its threads retry.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(7) {
        e.assert_alive();
        let s = e.try_status("counter");
        assert!(s.is_some(), "the engine's status endpoint must answer while the node is down\n{}", e.log_tail());
        assert_eq!(s.unwrap()["status"], "active");
        std::thread::sleep(Duration::from_millis(250));
    }
    node.restart();
    assert_eq!(node.height(), 50, "the node lost blocks over its restart");
    node.generate(5);
    node.reorg(2, 3);
    let live = digests(&mut e, &node);
    e.stop();
    assert!(e.log_text().contains("unreachable"), "the engine should have noticed the node was down");
    let scratch = from_scratch(&node, &plugins);
    assert_eq!(live, scratch, "after a node restart the digest differs from indexing from scratch");
}
