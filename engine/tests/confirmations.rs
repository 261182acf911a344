//! Per-height confirmation depths and the unconfirmed window, through the real runner, store
//! and Wasm host (the `counter` test plugin configured with depths), over in-memory chains.

use engine::follower::catch_up;
use engine::runner::PluginRunner;
use engine::store::{Status, Store, StoreConfig};
use engine::testing::{block, chain};
use engine::wasm::{Limits, WasmHost};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    runner: PluginRunner,
}

fn fixture(config: &str, undo_window: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&dir.path().join("state"), StoreConfig { undo_window }).unwrap();
    let host = WasmHost::new(&dir.path().join("cache"), Limits::default()).unwrap();
    let runner =
        PluginRunner::start(&host, &store, "counter", &engine::testing::test_plugin("counter"), config, 0).unwrap();
    Fixture { _dir: dir, store, runner }
}

impl Fixture {
    fn heights(&self, prefix: &str) -> Vec<u32> {
        self.store
            .plugin("counter")
            .scan_prefix(prefix.as_bytes(), None, u32::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| std::str::from_utf8(&k[prefix.len()..]).unwrap().parse().unwrap())
            .collect()
    }
}

#[test]
fn blocks_confirm_at_their_depth_and_the_tip_window_stays_unconfirmed() {
    let mut f = fixture(r#"{"depths":[[0,3]],"unconfirmed":true}"#, 144);
    let mut src = chain(5, 0);
    catch_up(&mut src, &mut f.runner, 0).unwrap();
    // Tip 5, depth 3 (tip = 1 confirmation): 0..=3 confirmed, 4 and 5 in the window.
    assert_eq!(f.heights("block/"), vec![0, 1, 2, 3]);
    assert_eq!(f.heights("unconfirmed/"), vec![4, 5]);
    assert_eq!(f.runner.confirmed_height().unwrap(), Some(3));
}

#[test]
fn depth_changes_by_height_and_blocks_confirm_in_order() {
    // Depth 3 below height 10, depth 1 from 10 on: block 10 waits for block 9 (needs tip 11).
    let mut f = fixture(r#"{"depths":[[0,3],[10,1]],"unconfirmed":true}"#, 144);
    let mut src = chain(10, 100);
    catch_up(&mut src, &mut f.runner, 0).unwrap();
    assert_eq!(f.runner.confirmed_height().unwrap(), Some(8));
    assert_eq!(f.heights("unconfirmed/"), vec![9, 10]);
    let b = block(src.tip_hash(), 999);
    src.push(&b);
    catch_up(&mut src, &mut f.runner, 0).unwrap();
    assert_eq!(f.runner.confirmed_height().unwrap(), Some(11));
    assert_eq!(f.heights("block/"), (0..=11).collect::<Vec<_>>());
    assert!(f.heights("unconfirmed/").is_empty());
}

#[test]
fn a_reorg_inside_the_window_equals_indexing_the_new_chain_from_scratch() {
    let cfg = r#"{"depths":[[0,4]],"unconfirmed":true}"#;
    let mut f = fixture(cfg, 144);
    let mut src = chain(20, 0);
    catch_up(&mut src, &mut f.runner, 0).unwrap();
    // Replace the last 6 blocks (deeper than the window of 3 unconfirmed blocks).
    src.truncate(14);
    for salt in 500..508 {
        let b = block(src.tip_hash(), salt);
        src.push(&b);
    }
    let (applied, undone) = catch_up(&mut src, &mut f.runner, 0).unwrap();
    assert_eq!((applied, undone), (8, 6));
    let mut fresh = fixture(cfg, 144);
    catch_up(&mut src, &mut fresh.runner, 0).unwrap();
    let (a, b) = (f.runner.cursor_with_digest().unwrap().unwrap(), fresh.runner.cursor_with_digest().unwrap().unwrap());
    assert_eq!(a, b, "same chain in, same state out");
    assert_eq!(f.heights("block/"), (0..=19).collect::<Vec<_>>());
    assert_eq!(f.heights("unconfirmed/"), vec![20, 21, 22]);
    // The plugin's undo hook ran for each undone tip, newest first, and its compensating
    // messages are in the outbox (after the undone blocks' own messages, which stay).
    let undos: Vec<u64> = f
        .store
        .outbox_pending(usize::MAX)
        .unwrap()
        .iter()
        .filter_map(|e| serde_json::from_slice::<serde_json::Value>(&e.body).ok()?.get("undo")?.as_u64())
        .collect();
    assert_eq!(undos, vec![20, 19, 18, 17, 16, 15]);
}

#[test]
fn a_reorg_deeper_than_the_undo_window_halts_the_plugin_with_its_state_intact() {
    let mut f = fixture("{}", 5);
    let mut src = chain(12, 0);
    catch_up(&mut src, &mut f.runner, 0).unwrap();
    let before = f.runner.cursor_with_digest().unwrap().unwrap();
    src.truncate(4);
    for salt in 700..712 {
        let b = block(src.tip_hash(), salt);
        src.push(&b);
    }
    let err = catch_up(&mut src, &mut f.runner, 0).unwrap_err();
    assert!(format!("{err:#}").contains("deeper than the undo window"), "{err:#}");
    match f.runner.status().unwrap() {
        Status::Halted { height, reason } => {
            assert_eq!(height, 7, "the five newest blocks were undone, the sixth is beyond the window");
            assert!(reason.contains("undo_window"), "the reason says what to change: {reason}");
        }
        s => panic!("expected halted, got {s:?}"),
    }
    // What is left is exactly the state after block 7 of the old chain.
    let now = f.runner.cursor_with_digest().unwrap().unwrap();
    let mut fresh = fixture("{}", 5);
    catch_up(&mut chain(7, 0), &mut fresh.runner, 0).unwrap();
    assert_eq!(Some(now), fresh.runner.cursor_with_digest().unwrap());
    assert_ne!(now, before);
}

#[test]
fn a_confirmation_depth_beyond_the_undo_window_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&dir.path().join("state"), StoreConfig { undo_window: 5 }).unwrap();
    let host = WasmHost::new(&dir.path().join("cache"), Limits::default()).unwrap();
    let err = PluginRunner::start(
        &host,
        &store,
        "counter",
        &engine::testing::test_plugin("counter"),
        r#"{"depths":[[0,10]]}"#,
        0,
    )
    .err()
    .expect("refused");
    assert!(format!("{err:#}").contains("raise [engine] undo_window"), "{err:#}");
}
