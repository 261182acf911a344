//! Host tests against the test plugins in plugins/test-plugins (built here for wasm32-wasip2).

use super::*;
use crate::plugin_api::BlockContext;
use bitcoin::absolute::LockTime;
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::consensus::serialize;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version;
use bitcoin::{Amount, Block, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One recorded write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Publish(String, Vec<u8>),
}

/// In-memory `BlockContext` recording every write (state in [`MemoryContext`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MemCtx {
    mem: crate::testing::MemoryContext,
    ops: Vec<Op>,
}

impl BlockContext for MemCtx {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.mem.get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.ops.push(Op::Put(key.to_vec(), value.to_vec()));
        self.mem.put(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> Result<(), String> {
        self.ops.push(Op::Delete(key.to_vec()));
        self.mem.delete(key)
    }
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.mem.scan_prefix(prefix, after, limit)
    }
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.mem.scan_range(start, end, limit)
    }
    fn publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String> {
        self.ops.push(Op::Publish(queue.to_string(), body.to_vec()));
        Ok(())
    }
}

impl MemCtx {
    fn published(&self) -> Vec<(String, Vec<u8>)> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Publish(q, b) => Some((q.clone(), b.clone())),
                _ => None,
            })
            .collect()
    }
    fn json(&self, key: &str) -> serde_json::Value {
        serde_json::from_slice(self.mem.kv.get(key.as_bytes()).unwrap_or_else(|| panic!("no key {key}"))).unwrap()
    }
}

fn plugin_path(name: &str) -> PathBuf {
    crate::testing::test_plugin(name)
}

fn mainnet_block() -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/research-data/mainnet/block-864790.bin");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            println!("SKIP: {} not readable ({e})", path.display());
            None
        }
    }
}

fn coinbase(height: u32, outputs: usize) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new().push_int(height as i64).push_int(1).into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: (0..outputs)
            .map(|i| TxOut { value: Amount::from_sat(1000 + i as u64), script_pubkey: ScriptBuf::new() })
            .collect(),
    }
}

fn spend(prev: OutPoint, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs,
    }
}

fn op_return(data: &[u8]) -> TxOut {
    let push = PushBytesBuf::try_from(data.to_vec()).unwrap();
    TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::new_op_return(push) }
}

/// A block (not mined: the host does not check proof of work) on top of `prev`.
fn make_block(prev: &Block, height: u32, txs: Vec<Transaction>) -> Block {
    let mut block = Block { header: prev.header, txdata: txs };
    block.header.prev_blockhash = prev.block_hash();
    block.header.time = prev.header.time + 600;
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    let _ = height;
    block
}

fn fast_limits() -> Limits {
    Limits {
        // Huge: the deadline, not fuel, must stop runaway loops here.
        fuel: u64::MAX / 4,
        memory_bytes: 64 << 20,
        timeout: Duration::from_millis(500),
        epoch_tick: Duration::from_millis(5),
        max_instances: 8,
        ..Limits::default()
    }
}

fn new_host(limits: Limits) -> (WasmHost, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (WasmHost::new(dir.path(), limits).unwrap(), dir)
}

#[test]
fn counter_counts_blocks_and_keeps_a_total() {
    let (host, _dir) = new_host(Limits::default());
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let manifest = counter.init("").unwrap();
    assert_eq!(manifest.name, "counter");
    assert!(manifest.all_transactions);

    let mut ctx = MemCtx::default();
    // Mainnet genesis, then a synthetic block with 3 transactions and 6 outputs.
    let genesis = genesis_block(Network::Bitcoin);
    let g = host_block_info(0, &genesis);
    let stats = counter.apply_block(&mut ctx, &g, &serialize(&genesis), &manifest).unwrap();
    assert_eq!((stats.txs_delivered, stats.txs_in_block), (1, 1));
    let cb = coinbase(1, 2);
    let t1 = spend(OutPoint::new(genesis.txdata[0].compute_txid(), 0), vec![op_return(b"hello"), op_return(b"x")]);
    let t2 = spend(OutPoint::new(t1.compute_txid(), 0), vec![op_return(b"bbn1abc"); 2]);
    let b1 = make_block(&genesis, 1, vec![cb, t1, t2]);
    counter.apply_block(&mut ctx, &host_block_info(1, &b1), &serialize(&b1), &manifest).unwrap();
    assert_eq!(ctx.json("block/0000000000"), serde_json::json!({"txs": 1, "outputs": 1}));
    assert_eq!(ctx.json("block/0000000001"), serde_json::json!({"txs": 3, "outputs": 6}));
    assert_eq!(ctx.json("total"), serde_json::json!({"blocks": 2, "txs": 4, "outputs": 7}));
    assert_eq!(ctx.published().len(), 2);

    // The host-side prefilter: same plugin, manifest narrowed to OP_RETURN prefix "bbn1".
    let narrowed = Manifest { all_transactions: false, op_return_prefixes: vec![b"bbn1".to_vec()], ..manifest.clone() };
    let mut ctx2 = MemCtx::default();
    let stats = counter.apply_block(&mut ctx2, &host_block_info(1, &b1), &serialize(&b1), &narrowed).unwrap();
    assert_eq!((stats.txs_delivered, stats.txs_in_block), (1, 3));

    // Real mainnet block 864790: 5,043 transactions.
    if let Some(raw) = mainnet_block() {
        let block: Block = bitcoin::consensus::deserialize(&raw).unwrap();
        let info = host_block_info(864790, &block);
        let stats = counter.apply_block(&mut ctx, &info, &raw, &manifest).unwrap();
        assert_eq!(stats.txs_delivered, 5043);
        let outputs: u64 = block.txdata.iter().map(|t| t.output.len() as u64).sum();
        assert_eq!(ctx.json("block/0000864790"), serde_json::json!({"txs": 5043, "outputs": outputs}));
        assert_eq!(ctx.json("total")["txs"], serde_json::json!(5043 + 4));
        let (q, body) = ctx.published().pop().unwrap();
        assert_eq!(q, "counter");
        let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(msg["hash"], serde_json::json!(block.block_hash().to_string()));
        println!(
            "counter on block 864790: {} txs, {} outputs, fuel {}, call {:?}",
            stats.txs_delivered, outputs, stats.fuel_used, stats.call_time
        );

        let mut ctx3 = MemCtx::default();
        let stats = counter.apply_block(&mut ctx3, &info, &raw, &narrowed).unwrap();
        println!("OP_RETURN prefix 'bbn1' prefilter on block 864790: {} of 5043 txs delivered", stats.txs_delivered);
        assert!(stats.txs_delivered > 0 && stats.txs_delivered < 5043);
        assert_eq!(ctx3.json("block/0000864790")["txs"], serde_json::json!(stats.txs_delivered));
    }

    // Undo notification: compensating message; store untouched by the plugin.
    let before = ctx.mem.kv.clone();
    counter.undo_block(&mut ctx, &host_block_info(1, &b1)).unwrap();
    assert_eq!(ctx.mem.kv, before);
    let (_, body) = ctx.published().pop().unwrap();
    assert_eq!(body, br#"{"undo":1}"#);
}

fn host_block_info(height: u32, block: &Block) -> BlockInfo {
    BlockInfo::from_header(height, &block.header)
}

#[test]
fn same_block_through_fresh_instances_gives_identical_writes() {
    let (host, _dir) = new_host(Limits::default());
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let manifest = counter.init("").unwrap();
    let (raw, height) = match mainnet_block() {
        Some(raw) => (raw, 864790),
        None => (serialize(&genesis_block(Network::Bitcoin)), 0),
    };
    let block: Block = bitcoin::consensus::deserialize(&raw).unwrap();
    let info = host_block_info(height, &block);
    let mut a = MemCtx::default();
    let mut b = MemCtx::default();
    let sa = counter.apply_block(&mut a, &info, &raw, &manifest).unwrap();
    let sb = counter.apply_block(&mut b, &info, &raw, &manifest).unwrap();
    assert!(!a.ops.is_empty());
    assert_eq!(a.ops, b.ops, "writes differ between two fresh instances");
    assert_eq!(sa.fuel_used, sb.fuel_used, "fuel differs between two fresh instances");
    // A second host (separately compiled, same config) agrees too.
    let (host2, _dir2) = new_host(Limits::default());
    let mut counter2 = host2.load(&plugin_path("counter")).unwrap();
    counter2.init("").unwrap();
    let mut c = MemCtx::default();
    let sc = counter2.apply_block(&mut c, &info, &raw, &manifest).unwrap();
    assert_eq!(a.ops, c.ops);
    assert_eq!(sa.fuel_used, sc.fuel_used);
}

fn fault_of(host: &WasmHost, plugin: &str, config: &str, height: u32) -> (PluginFault, Duration) {
    let mut p = host.load(&plugin_path(plugin)).unwrap();
    let manifest = p.init(config).unwrap();
    let genesis = genesis_block(Network::Bitcoin);
    let raw = serialize(&genesis);
    let mut ctx = MemCtx::default();
    // The block before the configured height is fine.
    p.apply_block(&mut ctx, &BlockInfo { height: height - 1, ..host_block_info(0, &genesis) }, &raw, &manifest)
        .unwrap();
    assert_eq!(ctx.mem.kv.get(b"last".as_slice()), Some(&u64::from(height - 1).to_be_bytes().to_vec()));
    let t = Instant::now();
    let err = p
        .apply_block(&mut ctx, &BlockInfo { height, ..host_block_info(0, &genesis) }, &raw, &manifest)
        .expect_err("the plugin should fault");
    (err, t.elapsed())
}

fn counter_still_works(host: &WasmHost) {
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let manifest = counter.init("").unwrap();
    let genesis = genesis_block(Network::Bitcoin);
    let mut ctx = MemCtx::default();
    counter.apply_block(&mut ctx, &host_block_info(0, &genesis), &serialize(&genesis), &manifest).unwrap();
    assert_eq!(ctx.json("total")["txs"], serde_json::json!(1));
}

#[test]
fn faults_become_typed_errors_and_the_host_keeps_working() {
    let (host, _dir) = new_host(fast_limits());

    let (f, t) = fault_of(&host, "trap", "7", 7);
    println!("trap: {:?} after {t:?}", f.kind);
    assert_eq!(f.kind, FaultKind::Trap, "{f}");
    assert!(f.message.contains("configured panic at height 7"), "{f}");
    counter_still_works(&host);

    // Fuel is practically unlimited: the epoch deadline (500 ms) must stop the loop.
    let (f, t) = fault_of(&host, "spin", "3", 3);
    println!("spin (deadline): {:?} after {t:?}", f.kind);
    assert_eq!(f.kind, FaultKind::Timeout, "{f}");
    assert!(t < Duration::from_secs(5), "took {t:?}");
    counter_still_works(&host);

    let (f, t) = fault_of(&host, "hog", "5", 5);
    println!("hog: {:?} after {t:?}: {}", f.kind, f.message.lines().next().unwrap_or(""));
    assert_eq!(f.kind, FaultKind::OutOfMemory, "{f}");
    assert!(t < Duration::from_secs(5), "took {t:?}");
    counter_still_works(&host);

    // Small fuel, long deadline: fuel runs out first.
    let (host2, _dir2) = new_host(Limits { fuel: 50_000_000, timeout: Duration::from_secs(60), ..fast_limits() });
    let (f, t) = fault_of(&host2, "spin", "3", 3);
    println!("spin (fuel): {:?} after {t:?}", f.kind);
    assert_eq!(f.kind, FaultKind::OutOfFuel, "{f}");
    assert!(t < Duration::from_secs(5), "took {t:?}");
    counter_still_works(&host2);

    // A guest error (bad config) is `Guest`, not a trap.
    let mut trap = host.load(&plugin_path("trap")).unwrap();
    let f = trap.init("not a height").unwrap_err();
    assert!(matches!(f.kind, FaultKind::Guest(_)), "{f}");
    // Malformed block bytes are the host's problem.
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let m = counter.init("").unwrap();
    let f = counter.apply_block(
        &mut MemCtx::default(),
        &host_block_info(0, &genesis_block(Network::Bitcoin)),
        &[1, 2, 3],
        &m,
    );
    assert_eq!(f.unwrap_err().kind, FaultKind::Host);
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = plugin_path("counter");
    let host = WasmHost::new(dir.path(), Limits::default()).unwrap();
    let first = host.load(&path).unwrap();
    assert!(!first.cache_hit());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(first.content_hash().to_vec(), sha2::Sha256::digest(&bytes).to_vec());
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].to_string_lossy().starts_with(&first.content_hash_hex()));
    // Same host, and a new host over the same directory: both hit the cache.
    let second = host.load(&path).unwrap();
    assert!(second.cache_hit());
    let host2 = WasmHost::new(dir.path(), Limits::default()).unwrap();
    let mut third = host2.load(&path).unwrap();
    assert!(third.cache_hit());
    println!("load: compile {:?}, from cache {:?} / {:?}", first.load_time(), second.load_time(), third.load_time());
    assert!(second.load_time() < first.load_time());
    // A cached component works.
    let m = third.init("").unwrap();
    let genesis = genesis_block(Network::Bitcoin);
    third.apply_block(&mut MemCtx::default(), &host_block_info(0, &genesis), &serialize(&genesis), &m).unwrap();
    // A corrupt cache entry is ignored and rewritten.
    let file = dir.path().join(&cached[0]);
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"garbage").unwrap();
    let fourth = host.load(&path).unwrap();
    assert!(!fourth.cache_hit());
    assert!(host.load(&path).unwrap().cache_hit());
}

#[test]
fn watch_spends_prefilter_delivers_spends_of_watched_outpoints_and_their_children_in_the_block() {
    let (host, _dir) = new_host(Limits::default());
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let manifest = counter.init("").unwrap();
    let watching = Manifest { all_transactions: false, watch_spends: true, ..manifest };
    let genesis = genesis_block(Network::Bitcoin);
    let watched = OutPoint::new(genesis.txdata[0].compute_txid(), 0);
    let t1 = spend(watched, vec![TxOut { value: Amount::ONE_SAT, script_pubkey: ScriptBuf::new() }]);
    // t2 spends t1 (delivered earlier in the same block): delivered too; t3 spends nothing known.
    let t2 = spend(OutPoint::new(t1.compute_txid(), 5), vec![]);
    let t3 = spend(OutPoint::new(genesis.block_hash().to_raw_hash().into(), 7), vec![]);
    let b1 = make_block(&genesis, 1, vec![coinbase(1, 1), t1, t2, t3]);
    let mut ctx = MemCtx::default();
    let mut key = WATCH_PREFIX.to_vec();
    key.extend_from_slice(watched.txid.as_byte_array());
    key.extend_from_slice(&0u32.to_be_bytes());
    ctx.mem.kv.insert(key, vec![]);
    let stats = counter.apply_block(&mut ctx, &host_block_info(1, &b1), &serialize(&b1), &watching).unwrap();
    assert_eq!(stats.txs_delivered, 2);
    let raw = serialize(&b1);
    let d = DecodedBlock::parse(&raw).unwrap();
    assert_eq!(d.select(&watching, &mut ctx), vec![1, 2]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Measurements (run with `--nocapture` to see them): per-block instantiation from the
/// pre-instance, and the counter plugin on block 864790 vs plain decoding + txids.
#[test]
fn measure_instantiation_and_apply() {
    let (host, _dir) = new_host(Limits::default());
    let mut counter = host.load(&plugin_path("counter")).unwrap();
    let manifest = counter.init("").unwrap();
    for _ in 0..50 {
        counter.instantiate_only().unwrap();
    }
    let inst: Vec<Duration> = (0..1000).map(|_| counter.instantiate_only().unwrap()).collect();
    let med = median(inst);
    println!("MEASURE instantiate (fresh store + WASI ctx + instance from InstancePre): median of 1000 = {med:?}");
    assert!(med < Duration::from_millis(5), "instantiation median {med:?}");

    let Some(raw) = mainnet_block() else { return };
    let block: Block = bitcoin::consensus::deserialize(&raw).unwrap();
    let info = host_block_info(864790, &block);
    let runs = 7;
    let mut apply = Vec::new();
    let mut call = Vec::new();
    let mut fuel = 0;
    for _ in 0..runs {
        let mut ctx = MemCtx::default();
        let t = Instant::now();
        let s = counter.apply_block(&mut ctx, &info, &raw, &manifest).unwrap();
        apply.push(t.elapsed());
        call.push(s.call_time);
        fuel = s.fuel_used;
    }
    let mut plain = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let b: Block = bitcoin::consensus::deserialize(&raw).unwrap();
        let txids: Vec<_> = b.txdata.iter().map(|t| t.compute_txid()).collect();
        std::hint::black_box(&txids);
        plain.push(t.elapsed());
    }
    let mut host_prep = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let d = DecodedBlock::parse(&raw).unwrap();
        let sel = d.select(&manifest, &mut MemCtx::default());
        let txs: Vec<_> = sel.iter().map(|&i| (d.txid(i), d.tx_bytes(i).to_vec())).collect();
        std::hint::black_box(&txs);
        host_prep.push(t.elapsed());
    }
    println!(
        "MEASURE block 864790 (5043 txs, {} bytes): counter apply_block total median {:?} (inside Wasm {:?}, fuel {}); \
         host decode+prefilter+txids+copy {:?}; plain bitcoin::consensus::deserialize + txids {:?}",
        raw.len(),
        median(apply),
        median(call),
        fuel,
        median(host_prep),
        median(plain)
    );
}
