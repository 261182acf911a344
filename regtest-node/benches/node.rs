//! Benchmarks of the regtest node (printed figures, run with `cargo bench -p regtest-node`):
//!  1. mempool acceptance throughput of simple P2TR key-path spends (tx/s), full checks
//!     including libbitcoinkernel script verification;
//!  2. mining a block of 2,000 such transactions: assembly, kernel validation and connection,
//!     mirror update and mempool cleanup (ms).
//! Each figure is the median of several runs; targets are >= 2,000 tx/s and < 500 ms.

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use regtest_node::config::Config;
use regtest_node::node::Node;
use std::time::{Duration, Instant};

const N: usize = 2_000;
const RUNS: usize = 5;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::from_args([format!("-datadir={}", tmp.path().display()), "-nowallet".to_string()]).unwrap();
    let mut node = Node::open(config).unwrap();
    let secp = Secp256k1::new();
    let keypair = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[9; 32]).unwrap());
    let tweaked = keypair.tap_tweak(&secp, None).to_keypair();
    let script = Address::p2tr(&secp, keypair.x_only_public_key().0, None, Network::Regtest).script_pubkey();
    let sign = |tx: &mut Transaction, prevouts: &[TxOut]| {
        for i in 0..tx.input.len() {
            let sighash = SighashCache::new(&*tx)
                .taproot_key_spend_signature_hash(i, &Prevouts::All(prevouts), TapSighashType::Default)
                .unwrap();
            let sig = secp.sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &tweaked);
            tx.input[i].witness = Witness::from_slice(&[sig.as_ref()]);
        }
    };

    // Setup: a mature coinbase, fanned out into N outputs of the same key, confirmed.
    let hashes = node.generate(101, &script).unwrap();
    let coinbase = node.chain.block(&hashes[0]).unwrap().txdata[0].clone();
    let each = Amount::from_sat((coinbase.output[0].value.to_sat() - 1_000_000) / N as u64);
    let mut fan = spend(
        &[OutPoint::new(coinbase.compute_txid(), 0)],
        vec![TxOut { value: each, script_pubkey: script.clone() }; N],
    );
    sign(&mut fan, &[coinbase.output[0].clone()]);
    node.accept_tx(fan.clone()).unwrap();
    node.generate(1, &script).unwrap();
    let fan_txid = fan.compute_txid();
    let prevout = TxOut { value: each, script_pubkey: script.clone() };
    let txs: Vec<Transaction> = (0..N)
        .map(|i| {
            let mut t = spend(
                &[OutPoint::new(fan_txid, i as u32)],
                vec![TxOut { value: each - Amount::from_sat(500), script_pubkey: script.clone() }],
            );
            sign(&mut t, &[prevout.clone()]);
            t
        })
        .collect();

    // 1. Mempool acceptance.
    let mut accept_times = Vec::new();
    for _ in 0..RUNS {
        node.mempool.drain();
        let start = Instant::now();
        for t in &txs {
            node.accept_tx(t.clone()).unwrap();
        }
        accept_times.push(start.elapsed());
    }
    let accept = median(&mut accept_times);
    let rate = N as f64 / accept.as_secs_f64();

    // 2. Mine (assemble + kernel validation + connect) a block of N transactions; between runs
    // invalidateblock returns them to the mempool.
    let mut mine_times = Vec::new();
    for run in 0..RUNS {
        assert_eq!(node.mempool.len(), N, "run {run}: mempool holds the {N} transactions");
        let start = Instant::now();
        let hash = node.generate(1, &script).unwrap()[0];
        mine_times.push(start.elapsed());
        assert_eq!(node.chain.block(&hash).unwrap().txdata.len(), N + 1);
        node.invalidate(hash).unwrap();
    }
    let mine = median(&mut mine_times);

    println!(
        "regtest-node benchmarks ({} cores), median of {RUNS} runs:",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "  mempool acceptance, {N} P2TR key-path spends: {:.0} tx/s ({:.1} ms per {N}; runs {:?}) target >= 2000 tx/s: {}",
        rate,
        ms(accept),
        accept_times.iter().map(|d| format!("{:.0}", ms(*d))).collect::<Vec<_>>(),
        if rate >= 2000.0 { "MET" } else { "MISSED" }
    );
    println!(
        "  mine + validate a block of {N} transactions: {:.1} ms (runs {:?}) target < 500 ms: {}",
        ms(mine),
        mine_times.iter().map(|d| format!("{:.0}", ms(*d))).collect::<Vec<_>>(),
        if ms(mine) < 500.0 { "MET" } else { "MISSED" }
    );
}

fn spend(inputs: &[OutPoint], output: Vec<TxOut>) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|o| TxIn {
                previous_output: *o,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output,
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
