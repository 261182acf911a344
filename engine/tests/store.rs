//! The plugin store against real RocksDB on disk: reads-see-own-writes, undo equivalence,
//! refusals, isolation, kill -9 crash safety, outbox, and commit throughput.

#[path = "../src/bin/store-crash-helper.rs"]
mod helper;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::plugin_api::{BlockContext, BlockRef};
use engine::store::{Cursor, PluginStore, Status, Store, StoreConfig};
use helper::Rng;
use sha2::{Digest, Sha256};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// An outbox entry without its sequence number: (plugin, height, block hash, queue, body).
type Msg = (String, u32, [u8; 32], String, Vec<u8>);

/// The digest formula, written independently of the store's code.
fn expected_digest(prev: &[u8; 32], block: BlockRef, writes: &Writes, publishes: &[(String, Vec<u8>)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(block.height.to_be_bytes());
    h.update(block.hash);
    for (k, v) in writes {
        match v {
            Some(v) => {
                h.update([1u8]);
                h.update((k.len() as u32).to_be_bytes());
                h.update(k);
                h.update((v.len() as u32).to_be_bytes());
                h.update(v);
            }
            None => {
                h.update([0u8]);
                h.update((k.len() as u32).to_be_bytes());
                h.update(k);
            }
        }
    }
    for (q, b) in publishes {
        h.update([2u8]);
        h.update((q.len() as u32).to_be_bytes());
        h.update(q.as_bytes());
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    }
    h.finalize().into()
}

fn hash_of(tag: &str, branch: u32, height: u32) -> [u8; 32] {
    if height == 0 {
        return [0u8; 32];
    }
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update(branch.to_be_bytes());
    h.update(height.to_be_bytes());
    h.finalize().into()
}

/// Branch `b > 0` forks off branch 0 after height `fork`.
fn chain_block(branch: u32, fork: u32, height: u32) -> (BlockRef, [u8; 32]) {
    let b = if height <= fork { 0 } else { branch };
    let pb = if height - 1 <= fork { 0 } else { branch };
    (BlockRef { height, hash: hash_of("t", b, height) }, hash_of("t", pb, height - 1))
}

fn all(ps: &PluginStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    ps.scan_prefix(b"", None, u32::MAX).unwrap()
}

fn model_scan(view: &Map, lo: &[u8], hi: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    view.iter()
        .filter(|(k, _)| k.as_slice() >= lo && hi.is_none_or(|h| k.as_slice() < h))
        .take(limit as usize)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn model_scan_prefix(view: &Map, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    view.iter()
        .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_slice() > a))
        .take(limit as usize)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn rand_key(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: [u8; 6] = [0x00, 0x01, b'a', b'b', 0xFE, 0xFF];
    let len = rng.below(4) as usize + (rng.below(8) == 0) as usize * 3;
    (0..len).map(|_| ALPHABET[rng.below(6) as usize]).collect()
}

fn rand_limit(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => u32::MAX,
        1 => 0,
        _ => 1 + rng.below(20) as u32,
    }
}

/// A deterministic block: puts/deletes (and a publish) drawn from `seed` and the block hash.
fn gen_block(tx: &mut impl BlockContext, block: BlockRef, writes_n: usize) {
    let mut rng = Rng(u64::from_be_bytes(block.hash[..8].try_into().unwrap()));
    for _ in 0..writes_n {
        let key = format!("key{:03}", rng.below(200)).into_bytes();
        if rng.below(3) == 0 {
            tx.delete(&key).unwrap();
        } else {
            let v = rng.next_u64().to_be_bytes();
            tx.put(&key, &v[..1 + rng.below(8) as usize]).unwrap();
        }
    }
    tx.publish("q", &block.hash[..4]).unwrap();
}

fn apply_gen(ps: &PluginStore, block: BlockRef, parent: [u8; 32]) -> Cursor {
    let mut tx = ps.begin_block(block, parent).unwrap();
    gen_block(&mut tx, block, 60);
    tx.commit().unwrap()
}

fn apply_chain(ps: &PluginStore, branch: u32, fork: u32, from: u32, to: u32) -> Option<Cursor> {
    let mut c = None;
    for h in from..=to {
        let (b, p) = chain_block(branch, fork, h);
        c = Some(apply_gen(ps, b, p));
    }
    c
}

/// A namespace's raw entries without its message counter (which an undo never takes back).
fn dump_sans_counter(s: &Store, ns: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut counter = engine::store::codec::plugin_prefix(ns);
    counter.push(engine::store::codec::SUB_MSGNO);
    s.dump_namespace_raw(ns).unwrap().into_iter().filter(|(k, _)| *k != counter).collect()
}

fn outbox_sans_seq(s: &Store) -> Vec<Msg> {
    s.outbox_pending(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.plugin, e.height, e.block_hash, e.queue, e.body))
        .collect()
}

#[test]
fn handles_are_send_sync_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<PluginStore>();
    check::<engine::store::BlockTx>();
}

#[test]
fn reads_see_own_writes_and_scans_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ps = store.plugin("p1");
    let mut rng = Rng(42);
    let mut committed = Map::new();
    let mut digest = [0u8; 32];
    let mut parent = [0u8; 32];
    let mut checks = 0usize;
    for h in 1..=60u32 {
        let block = BlockRef { height: h, hash: hash_of("r", 0, h) };
        let mut tx = ps.begin_block(block, parent).unwrap();
        let mut view = committed.clone();
        let mut writes = Writes::new();
        let mut publishes = Vec::new();
        for _ in 0..200 {
            match rng.below(10) {
                0..=3 => {
                    let k = rand_key(&mut rng);
                    let v = rng.next_u64().to_be_bytes()[..rng.below(9) as usize].to_vec();
                    tx.set(&k, &v);
                    view.insert(k.clone(), v.clone());
                    writes.insert(k, Some(v));
                }
                4..=5 => {
                    let k = if rng.below(2) == 0 || view.is_empty() {
                        rand_key(&mut rng)
                    } else {
                        view.keys().nth(rng.below(view.len() as u64) as usize).unwrap().clone()
                    };
                    tx.remove(&k);
                    view.remove(&k);
                    writes.insert(k, None);
                }
                6 => {
                    let k = rand_key(&mut rng);
                    assert_eq!(tx.get(&k), view.get(&k).cloned(), "get {k:?} at block {h}");
                    checks += 1;
                }
                7 | 8 => {
                    let p = rand_key(&mut rng);
                    let p = &p[..p.len().min(2)];
                    let after = (rng.below(2) == 0).then(|| rand_key(&mut rng));
                    let limit = rand_limit(&mut rng);
                    assert_eq!(
                        tx.scan_prefix(p, after.as_deref(), limit),
                        model_scan_prefix(&view, p, after.as_deref(), limit),
                        "scan_prefix {p:?} after {after:?} limit {limit} at block {h}"
                    );
                    checks += 1;
                }
                _ => {
                    let (a, b) = (rand_key(&mut rng), rand_key(&mut rng));
                    let limit = rand_limit(&mut rng);
                    let want = if a < b { model_scan(&view, &a, Some(&b), limit) } else { Vec::new() };
                    assert_eq!(tx.scan_range(&a, &b, limit), want, "scan_range {a:?}..{b:?} at block {h}");
                    checks += 1;
                }
            }
            if rng.below(50) == 0 {
                let body = rng.next_u64().to_be_bytes().to_vec();
                tx.publish("events", &body).unwrap();
                publishes.push(("events".to_string(), body));
            }
        }
        // Nothing is visible outside the block before commit.
        assert_eq!(all(&ps), committed.clone().into_iter().collect::<Vec<_>>());
        let c = tx.commit().unwrap();
        digest = expected_digest(&digest, block, &writes, &publishes);
        assert_eq!(c, Cursor { height: h, hash: block.hash, digest });
        assert_eq!(ps.cursor().unwrap(), Some(c));
        assert_eq!(ps.digest_at(h).unwrap(), Some((block.hash, digest)));
        committed = view;
        assert_eq!(all(&ps), committed.clone().into_iter().collect::<Vec<_>>());
        parent = block.hash;
    }
    // Outside-block reads agree with the model too.
    for _ in 0..200 {
        let k = rand_key(&mut rng);
        assert_eq!(ps.get(&k).unwrap(), committed.get(&k).cloned());
        let p = rand_key(&mut rng);
        let after = (rng.below(2) == 0).then(|| rand_key(&mut rng));
        assert_eq!(
            ps.scan_prefix(&p, after.as_deref(), 7).unwrap(),
            model_scan_prefix(&committed, &p, after.as_deref(), 7)
        );
    }
    // Abort and drop write nothing.
    let before = store.dump_namespace_raw("p1").unwrap();
    let mut tx = ps.begin_block(BlockRef { height: 61, hash: [7; 32] }, parent).unwrap();
    tx.set(b"x", b"y");
    tx.publish("events", b"z").unwrap();
    tx.abort();
    {
        let mut tx = ps.begin_block(BlockRef { height: 61, hash: [7; 32] }, parent).unwrap();
        tx.remove(&committed.keys().next().unwrap().clone());
    }
    assert_eq!(store.dump_namespace_raw("p1").unwrap(), before);
    println!("reads_see_own_writes: 60 blocks, {checks} read checks, final digest {}", hex::encode(digest));
}

#[test]
fn undo_equals_never_applied_and_branch_switch_equals_direct() {
    let root = tempfile::tempdir().unwrap();
    let a_store = Store::open(&root.path().join("a")).unwrap();
    let a = a_store.plugin("idx");
    a.set_meta("version", b"v1").unwrap();
    apply_chain(&a, 0, 0, 1, 20);
    let published = a_store.outbox_pending(usize::MAX).unwrap();
    for k in 1..=10u32 {
        let tip = a.cursor().unwrap().unwrap();
        let back = a.undo_block(tip.block()).unwrap().unwrap();
        assert_eq!(back.height, 20 - k);

        let b_store = Store::open(&root.path().join(format!("b{k}"))).unwrap();
        let b = b_store.plugin("idx");
        b.set_meta("version", b"v1").unwrap();
        let bc = apply_chain(&b, 0, 0, 1, 20 - k).unwrap();
        assert_eq!(back, bc, "cursor after undoing {k}");
        assert_eq!(a.cursor().unwrap(), Some(bc));
        // Byte for byte: data, cursor, undo records, digest history, metadata (not the message
        // counter). The outbox keeps every committed message: an undo takes none back.
        assert_eq!(dump_sans_counter(&a_store, "idx"), dump_sans_counter(&b_store, "idx"), "k={k}");
        assert_eq!(a_store.outbox_pending(usize::MAX).unwrap(), published);
        assert!(a.message_count().unwrap() > b.message_count().unwrap(), "the counter never goes back");
    }
    // Now at 10: switch to branch 1 (forking after 10) and compare with a direct run.
    let ac = apply_chain(&a, 1, 10, 11, 20).unwrap();
    let c_store = Store::open(&root.path().join("c")).unwrap();
    let c = c_store.plugin("idx");
    c.set_meta("version", b"v1").unwrap();
    let cc = apply_chain(&c, 1, 10, 1, 20).unwrap();
    assert_eq!(ac, cc, "same chain, same digest");
    assert_ne!(ac.digest, apply_chain(&a_store.plugin("other"), 0, 0, 1, 20).unwrap().digest);
    assert_eq!(all(&a), all(&c));
    assert_eq!(a.history().unwrap(), c.history().unwrap());
    // a's outbox: c's messages plus those of the undone branch-0 blocks, which stay.
    let c_msgs = outbox_sans_seq(&c_store);
    let on_c = |e: &Msg| c_msgs.iter().any(|c| c.2 == e.2);
    let a_msgs: Vec<Msg> = outbox_sans_seq(&a_store).into_iter().filter(|e| e.0 == "idx").collect();
    assert_eq!(a_msgs.iter().filter(|e| on_c(e)).cloned().collect::<Vec<_>>(), c_msgs);
    assert_eq!(a_msgs.iter().filter(|e| !on_c(e)).count(), c_msgs.len() / 2, "branch 0's blocks 11..=20 stay");

    // rewind_to: one batch, equal to a store that stopped there.
    let d_store = Store::open(&root.path().join("d")).unwrap();
    let d = d_store.plugin("idx");
    apply_chain(&d, 1, 10, 1, 20);
    let e_store = Store::open(&root.path().join("e")).unwrap();
    let e = e_store.plugin("idx");
    apply_chain(&e, 1, 10, 1, 7);
    assert_eq!(d.rewind_to(7).unwrap(), e.cursor().unwrap());
    assert_eq!(dump_sans_counter(&d_store, "idx"), dump_sans_counter(&e_store, "idx"));
    assert_eq!(d.rewind_to(7).unwrap(), e.cursor().unwrap(), "rewind to the cursor is a no-op");
    // Rewinding below the first block empties the namespace's state (its message counter and
    // committed messages stay, so ids never repeat and nothing published is taken back).
    let before = d_store.outbox_pending(usize::MAX).unwrap();
    assert_eq!(d.rewind_to(0).unwrap(), None);
    assert!(dump_sans_counter(&d_store, "idx").is_empty());
    assert_eq!(d_store.outbox_pending(usize::MAX).unwrap(), before);
    assert_eq!(d.message_count().unwrap(), before.len() as u64);
    // And an emptied namespace starts again like a fresh one.
    apply_chain(&d, 1, 10, 1, 7);
    assert_eq!(d_store.dump_namespace_raw("idx").unwrap().len(), e_store.dump_namespace_raw("idx").unwrap().len());
    assert_eq!(d.cursor().unwrap(), e.cursor().unwrap());
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), StoreConfig { undo_window: 5 }).unwrap();
    let ps = store.plugin("r");
    // An empty namespace accepts any start height.
    let (b, p) = chain_block(0, 0, 100);
    apply_gen(&ps, b, p);
    apply_chain(&ps, 0, 0, 101, 110);
    let snapshot = |s: &Store| (s.dump_namespace_raw("r").unwrap(), s.outbox_pending(usize::MAX).unwrap());
    let before = snapshot(&store);
    let tip = ps.cursor().unwrap().unwrap();
    assert_eq!(tip.height, 110);

    let (next, parent) = chain_block(0, 0, 111);
    let err = |r: anyhow::Result<engine::store::BlockTx>| format!("{:#}", r.err().expect("must refuse"));
    let e = err(ps.begin_block(next, [9; 32]));
    assert!(e.contains("parent"), "{e}");
    let (skip, skip_parent) = chain_block(0, 0, 112);
    let e = err(ps.begin_block(skip, skip_parent));
    assert!(e.contains("height 111"), "{e}");
    let e = err(ps.begin_block(tip.block(), chain_block(0, 0, 110).1));
    assert!(e.contains("height 111"), "{e}");
    let e = err(ps.begin_block(BlockRef { height: 110, hash: [5; 32] }, chain_block(0, 0, 109).0.hash));
    assert!(e.contains("height 111"), "{e}");
    assert_eq!(snapshot(&store), before);

    // Undo of a block that is not the tip.
    let e = format!("{:#}", ps.undo_block(chain_block(0, 0, 109).0).unwrap_err());
    assert!(e.contains("tip"), "{e}");
    // Rewind beyond the window (records for 106..=110 only): refused as a whole.
    let e = format!("{:#}", ps.rewind_to(104).unwrap_err());
    assert!(e.contains("undo window"), "{e}");
    let e = format!("{:#}", ps.rewind_to(111).unwrap_err());
    assert!(e.contains("at height 110"), "{e}");
    assert_eq!(snapshot(&store), before);

    // Halted: blocks refused, status persisted; undo still allowed.
    ps.set_status(&Status::Halted { height: 111, reason: "trap: unreachable".into() }).unwrap();
    let e = err(ps.begin_block(next, parent));
    assert!(e.contains("halted"), "{e}");
    drop(ps);
    drop(store);
    let store = Store::open_with(dir.path(), StoreConfig { undo_window: 5 }).unwrap();
    let ps = store.plugin("r");
    assert_eq!(ps.status().unwrap(), Status::Halted { height: 111, reason: "trap: unreachable".into() });
    ps.set_status(&Status::Active).unwrap();
    assert_eq!(snapshot(&store), before);

    // Undo one by one down to the window's edge, then one more is refused.
    for h in (106..=110).rev() {
        let c = ps.cursor().unwrap().unwrap();
        assert_eq!(c.height, h);
        ps.undo_block(c.block()).unwrap();
    }
    let at105 = snapshot(&store);
    let c = ps.cursor().unwrap().unwrap();
    assert_eq!(c.height, 105);
    let e = format!("{:#}", ps.undo_block(c.block()).unwrap_err());
    assert!(e.contains("beyond the undo window"), "{e}");
    assert_eq!(snapshot(&store), at105);

    // Two transactions on the same tip: only the first commits.
    let (next, parent) = chain_block(0, 0, 106);
    let mut t1 = ps.begin_block(next, parent).unwrap();
    let mut t2 = ps.begin_block(next, parent).unwrap();
    t1.set(b"one", b"1");
    t2.set(b"two", b"2");
    t1.commit().unwrap();
    let e = format!("{:#}", t2.commit().unwrap_err());
    assert!(e.contains("cursor moved"), "{e}");
    assert_eq!(ps.get(b"one").unwrap(), Some(b"1".to_vec()));
    assert_eq!(ps.get(b"two").unwrap(), None);

    // Locked and unreadable paths give clear errors.
    let e = format!("{:#}", Store::open(dir.path()).unwrap_err());
    assert!(e.contains("locked"), "{e}");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = format!("{:#}", Store::open(&file).unwrap_err());
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn namespaces_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let names = ["a", "b", "ab", "", "a\u{0}", "b\u{ff}", "\u{1}\u{0}\u{0}\u{0}b"];
    // Keys that look like other namespaces' raw keys, prefixes and bounds.
    let mut nasty: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xFF; 9], b"d".to_vec(), b"c".to_vec()];
    for n in names {
        let p = engine::store::codec::plugin_prefix(n);
        nasty.push(p.clone());
        nasty.push([p.as_slice(), b"d"].concat());
        nasty.push([p.as_slice(), b"dkey"].concat());
        nasty.push(p[1..].to_vec());
        nasty.push([&p[5..], b"dkey".as_slice()].concat());
        nasty.push(n.as_bytes().to_vec());
    }
    for (i, n) in names.iter().enumerate() {
        let ps = store.plugin(n);
        let mut tx = ps.begin_block(BlockRef { height: 1, hash: [i as u8; 32] }, [0; 32]).unwrap();
        for k in &nasty {
            tx.set(k, format!("{n}:{}", hex::encode(k)).as_bytes());
        }
        tx.commit().unwrap();
    }
    for n in names {
        let ps = store.plugin(n);
        let mine = all(&ps);
        assert_eq!(mine.len(), {
            let mut s = nasty.clone();
            s.sort();
            s.dedup();
            s.len()
        });
        for (k, v) in &mine {
            assert_eq!(v, format!("{n}:{}", hex::encode(k)).as_bytes(), "plugin {n:?} sees a foreign value");
        }
        assert_eq!(ps.scan_range(&[], &[0xFF; 16], u32::MAX).unwrap(), mine);
        assert_eq!(ps.cursor().unwrap().unwrap().height, 1);
    }
    let mut listed = store.plugins().unwrap();
    listed.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);

    // "b" sees nothing of what "a" wrote, even after "b" is emptied.
    let b = store.plugin("b");
    b.rewind_to(0).unwrap();
    assert!(all(&b).is_empty());
    for k in &nasty {
        assert_eq!(b.get(k).unwrap(), None);
    }
    // drop_plugin removes exactly one namespace.
    store.drop_plugin("a").unwrap();
    assert!(all(&store.plugin("a")).is_empty());
    assert_eq!(store.plugin("a").cursor().unwrap(), None);
    assert_eq!(all(&store.plugin("ab")).len(), all(&store.plugin("a\u{0}")).len());
    assert!(!all(&store.plugin("ab")).is_empty());
    assert!(!store.plugins().unwrap().contains(&"a".to_string()));
}

#[test]
fn outbox_order_reopen_ack_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let (b1, b2, b3) = (
        BlockRef { height: 1, hash: [1; 32] },
        BlockRef { height: 2, hash: [2; 32] },
        BlockRef { height: 3, hash: [3; 32] },
    );
    {
        let store = Store::open(dir.path()).unwrap();
        let x = store.plugin("x");
        let y = store.plugin("y");
        let mut t = x.begin_block(b1, [0; 32]).unwrap();
        t.publish("q1", b"x1a").unwrap();
        t.publish("q2", b"x1b").unwrap();
        t.commit().unwrap();
        let mut t = y.begin_block(b1, [0; 32]).unwrap();
        t.publish("q1", b"y1").unwrap();
        t.commit().unwrap();
        let mut t = x.begin_block(b2, b1.hash).unwrap();
        t.publish("q1", b"x2").unwrap();
        t.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let pending = store.outbox_pending(100).unwrap();
    let bodies: Vec<&[u8]> = pending.iter().map(|e| e.body.as_slice()).collect();
    assert_eq!(bodies, [&b"x1a"[..], &b"x1b"[..], &b"y1"[..], &b"x2"[..]]);
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!((pending[3].plugin.as_str(), pending[3].height, pending[3].block_hash), ("x", 2, [2; 32]));
    assert_eq!(pending[1].queue, "q2");
    assert_eq!(store.outbox_pending(2).unwrap(), pending[..2]);

    // Ack the first two; they are gone, also after reopen.
    assert_eq!(store.outbox_ack(pending[1].seq).unwrap(), 2);
    assert_eq!(store.outbox_pending(100).unwrap(), pending[2..]);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.outbox_pending(100).unwrap(), pending[2..]);

    // Undo x's block 2: its pending entry stays (committed messages are never taken back).
    let x = store.plugin("x");
    x.undo_block(b2).unwrap();
    assert_eq!(store.outbox_pending(100).unwrap(), pending[2..]);
    // Undo x's block 1: the compensation goes out with the undo, after everything before it.
    x.undo_block_publishing(b1, &[("q1".to_string(), b"retract x1".to_vec())]).unwrap();
    let now = store.outbox_pending(100).unwrap();
    assert_eq!(now.len(), 3);
    assert_eq!(now[2].body, b"retract x1");
    assert!(now[2].seq > pending[3].seq, "sequence never reused");
    // Ids: plugin, block, and the namespace's message number (x published 3 before the retraction).
    assert_eq!(now[2].number, 3);
    assert_eq!(now[2].message_id(), format!("x:1:{}:3", "01".repeat(32)));
    assert_eq!(pending[2].message_id(), format!("y:1:{}:0", "01".repeat(32)));

    // Ack everything; a new publish after reopen still gets a higher sequence.
    store.outbox_ack(u64::MAX).unwrap();
    assert!(store.outbox_pending(100).unwrap().is_empty());
    let last = now[2].seq;
    drop(x);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let y = store.plugin("y");
    let mut t = y.begin_block(b2, b1.hash).unwrap();
    t.publish("q1", b"y2").unwrap();
    t.commit().unwrap();
    let p = store.outbox_pending(100).unwrap();
    assert_eq!(p.len(), 1);
    assert!(p[0].seq > last);
    // drop_plugin keeps committed messages: they are delivered whatever happens to the namespace.
    let mut t = y.begin_block(b3, b2.hash).unwrap();
    t.publish("q1", b"y3").unwrap();
    t.commit().unwrap();
    store.drop_plugin("y").unwrap();
    assert!(store.plugin("y").cursor().unwrap().is_none());
    let bodies: Vec<Vec<u8>> = store.outbox_pending(100).unwrap().into_iter().map(|e| e.body).collect();
    assert_eq!(bodies, vec![b"y2".to_vec(), b"y3".to_vec()]);
}

/// State of the crash-test namespace, for comparison.
#[derive(Debug, PartialEq)]
struct Observed {
    cursor: Option<Cursor>,
    data: Vec<(Vec<u8>, Vec<u8>)>,
    history: Vec<engine::store::HistoryEntry>,
    outbox: Vec<Msg>,
}

fn observe(path: &Path) -> Observed {
    let store = Store::open(path).unwrap();
    let ps = store.plugin(helper::PLUGIN);
    let seqs: Vec<u64> = store.outbox_pending(usize::MAX).unwrap().iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    Observed {
        cursor: ps.cursor().unwrap(),
        data: all(&ps),
        history: ps.history().unwrap(),
        outbox: outbox_sans_seq(&store),
    }
}

/// Expected cursor digest after ops `..n`, from the formula and the script alone.
fn script_digests(seed: u64) -> Vec<[u8; 32]> {
    let mut stack = vec![[0u8; 32]];
    let mut out = vec![[0u8; 32]];
    for op in helper::script() {
        match op {
            helper::Op::Apply { branch, height } => {
                let (writes, publishes) = helper::block_ops(seed, branch, height);
                let net: Writes = writes.into_iter().collect();
                let d =
                    expected_digest(stack.last().unwrap(), helper::block_ref(seed, branch, height), &net, &publishes);
                stack.push(d);
            }
            helper::Op::Undo { .. } => {
                stack.pop();
            }
        }
        out.push(*stack.last().unwrap());
    }
    out
}

/// Every message the applied blocks of the executed ops (indices into the script, in the order
/// they ran, re-runs after a resume included) published: an undo takes none back.
fn expected_outbox(seed: u64, executed: &[usize]) -> Vec<Msg> {
    let script = helper::script();
    let mut out: Vec<Msg> = Vec::new();
    for &i in executed {
        if let helper::Op::Apply { branch, height } = script[i] {
            let r = helper::block_ref(seed, branch, height);
            let (_, p) = helper::block_ops(seed, branch, height);
            out.extend(p.into_iter().map(|(q, b)| (helper::PLUGIN.to_string(), height, r.hash, q, b)));
        }
    }
    out
}

#[test]
fn kill_9_leaves_a_committed_block_boundary() {
    let seed = 20240917u64;
    let exe = env!("CARGO_BIN_EXE_store-crash-helper");
    let script = helper::script();
    let states = helper::states(seed);
    let digests = script_digests(seed);
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("crash");
    let mut rng = Rng(seed ^ 0x5eed);
    let mut kills = 0;
    let mut torn_candidates = 0; // kills after which the in-flight op turned out durable
    let mut finished = false;
    // Script ops in the order they durably ran, across the helper's runs.
    let mut executed: Vec<usize> = Vec::new();
    while kills < 20 {
        let mut child = Command::new(exe)
            .arg(&db)
            .arg(seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let resume: usize = first.strip_prefix("resume ").unwrap().parse().unwrap();
        if kills == 0 {
            // Another process holds the store: opening it must fail clearly.
            let e = format!("{:#}", Store::open(&db).unwrap_err());
            assert!(e.contains("locked"), "{e}");
        }
        // Ops 0..done are durable once printed.
        let mut done = resume;
        let wait_ops = rng.below(5);
        for _ in 0..wait_ops {
            match lines.next() {
                Some(Ok(l)) if l == "done" => finished = true,
                Some(Ok(l)) => done = l.strip_prefix("op ").unwrap().parse::<usize>().unwrap() + 1,
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(25_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        for l in lines {
            let l = l.unwrap();
            if l == "done" {
                finished = true;
            } else {
                done = l.strip_prefix("op ").unwrap().parse::<usize>().unwrap() + 1;
            }
        }
        kills += 1;

        let seen = observe(&db);
        // The cursor is the state after `done` ops, or after the op that was in flight.
        let n = if seen.cursor.map(|c| c.block()) == done.checked_sub(1).and_then(|i| states[i])
            || (done == 0 && seen.cursor.is_none())
        {
            done
        } else {
            assert!(done < script.len(), "kill {kills}: cursor moved past the end");
            assert_eq!(
                seen.cursor.map(|c| c.block()),
                states[done],
                "kill {kills}: cursor is not at a committed boundary (done {done})"
            );
            torn_candidates += 1;
            done + 1
        };
        assert_eq!(seen.cursor.map_or([0u8; 32], |c| c.digest), digests[n], "kill {kills}: digest");
        let model: Vec<_> = helper::model_content(seed, n).into_iter().collect();
        assert!(seen.data == model, "kill {kills}: namespace content differs from the script at op {n}");
        executed.extend(resume..n);
        assert_eq!(seen.outbox, expected_outbox(seed, &executed), "kill {kills}: outbox");
        println!(
            "kill {kills:2}: after op {n:3}/{} (helper had printed {done}), cursor {:?}",
            script.len(),
            seen.cursor.map(|c| c.height)
        );
        if finished {
            break;
        }
    }
    // Let it finish.
    let out = Command::new(exe).arg(&db).arg(seed.to_string()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("done\n"));
    let resume: usize = stdout.lines().next().unwrap().strip_prefix("resume ").unwrap().parse().unwrap();
    executed.extend(resume..script.len());
    let interrupted = observe(&db);
    // Messages: each durable run of an op published once (a fork excursion re-run after a kill
    // publishes again, as it should: those blocks were applied again).
    assert_eq!(interrupted.outbox, expected_outbox(seed, &executed), "final outbox");

    // Uninterrupted run, in a separate process too.
    let clean = root.path().join("clean");
    let out = Command::new(exe).arg(&clean).arg(seed.to_string()).output().unwrap();
    assert!(out.status.success());
    let uninterrupted = observe(&clean);
    assert_eq!(interrupted.cursor, uninterrupted.cursor);
    assert_eq!(interrupted.cursor.unwrap().digest, *digests.last().unwrap());
    assert_eq!(uninterrupted.outbox, expected_outbox(seed, &(0..script.len()).collect::<Vec<_>>()));
    let state = |o: &Observed| (o.cursor, o.data.clone(), o.history.clone());
    assert!(state(&interrupted) == state(&uninterrupted), "final state differs from an uninterrupted run");
    println!(
        "crash test: {kills} kills ({torn_candidates} with the in-flight op durable), final height {}, digest {}",
        interrupted.cursor.unwrap().height,
        hex::encode(interrupted.cursor.unwrap().digest)
    );
    assert!(kills >= 20 || finished);
}

#[test]
fn commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (writes, blocks) in [(1_000usize, 200u32), (10_000, 40)] {
        let ps = store.plugin(&format!("bench{writes}"));
        let mut rng = Rng(writes as u64);
        let mut parent = [0u8; 32];
        let start = Instant::now();
        for h in 1..=blocks {
            let block = BlockRef { height: h, hash: hash_of("bench", writes as u32, h) };
            let mut tx = ps.begin_block(block, parent).unwrap();
            for _ in 0..writes {
                let k = rng.next_u64().to_be_bytes();
                let k = [b"utxo/".as_slice(), &k[..6]].concat();
                if rng.below(5) == 0 {
                    tx.remove(&k);
                } else {
                    tx.set(&k, &rng.next_u64().to_le_bytes().repeat(5));
                }
            }
            tx.publish("events", &block.hash).unwrap();
            tx.commit().unwrap();
            parent = block.hash;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "commit throughput: {blocks} blocks x {writes} writes in {secs:.2}s = {:.1} blocks/s ({:.0} writes/s)",
            blocks as f64 / secs,
            (blocks as usize * writes) as f64 / secs
        );
    }
}
