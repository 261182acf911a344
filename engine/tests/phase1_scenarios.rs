//! The seed's demo scenarios, for what the indexer, expiry checker and API decide: the engine
//! (a real process) runs the phase1-staking plugin against the regtest node (Bitcoin Core's
//! consensus), with the seed's demo parameters (activation 115 / 130, caps 10 / 20 BTC, amounts
//! 1–10 / 2–20 BTC, depth 2, 3 covenant keys with quorum 2, unbonding time 3, fee 500). The
//! covenant keys are the test's own, so the test itself signs the unbonding transaction (the
//! covenant signers are another issue's) and both withdrawals, and the node must accept each.
//!
//! Heights follow the seed document: scenario 1 (a stake before activation is never seen),
//! 2 (cap fill and overflow), the indexing side of 3 and 4 (unbonding reopens the cap, expiry of
//! the unbonding, withdrawal), 5 (a v1 amount rule rejects a stake), 6 (timelock expiry and
//! withdrawal; active TVL is not lowered by expiry) and 7 (a one-block reorg).

mod testing;

use std::time::Duration;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness, XOnlyPublicKey,
};
use phase1_primitives::params::{GlobalParams, ParamsVersion};
use phase1_primitives::staking::{StakingInfo, UnbondingInfo};
use phase1_primitives::V0OpReturn;
use serde_json::{json, Value};
use testing::{Engine, Node, PluginDef};

const BTC: u64 = 100_000_000;
const PLUGIN: &str = "phase1-staking";
const QUEUES: &str = "capabilities = { queues = [\"active_staking_queue\", \"unbonding_staking_queue\", \
                      \"withdraw_staking_queue\", \"expired_staking_queue\", \"btc_info_queue\"] }";

struct Keys {
    secp: Secp256k1<bitcoin::secp256k1::All>,
    staker: Keypair,
    fp: XOnlyPublicKey,
    covenants: Vec<Keypair>,
}

impl Keys {
    fn new() -> Keys {
        let secp = Secp256k1::new();
        let kp = |b: u8| Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[b; 32]).unwrap());
        let staker = kp(0x51);
        let fp = kp(0x77).x_only_public_key().0;
        let covenants = vec![kp(0xc1), kp(0xc2), kp(0xc3)];
        Keys { secp, staker, fp, covenants }
    }

    fn staker_x(&self) -> XOnlyPublicKey {
        self.staker.x_only_public_key().0
    }

    fn sign(&self, kp: &Keypair, sighash: [u8; 32]) -> [u8; 64] {
        self.secp.sign_schnorr_no_aux_rand(&Message::from_digest(sighash), kp).serialize()
    }

    /// The seed's demo global configuration, with this test's covenant keys.
    fn params_json(&self) -> String {
        let pks: Vec<String> = self.covenants.iter().map(|k| k.public_key().to_string()).collect();
        json!({ "versions": [
            { "version": 0, "activation_height": 115, "staking_cap": 10 * BTC, "tag": "62627434",
              "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
              "max_staking_amount": 10 * BTC, "min_staking_amount": BTC, "max_staking_time": 1000,
              "min_staking_time": 10, "confirmation_depth": 2 },
            { "version": 1, "activation_height": 130, "staking_cap": 20 * BTC, "tag": "62627434",
              "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
              "max_staking_amount": 20 * BTC, "min_staking_amount": 2 * BTC, "max_staking_time": 5000,
              "min_staking_time": 1, "confirmation_depth": 2 }
        ]})
        .to_string()
    }
}

/// A staking transaction made as the demo made them: staking output and OP_RETURN built here,
/// funded and signed by the node's wallet.
struct Stake {
    tx: Transaction,
    vout: u32,
    value: u64,
    info: StakingInfo,
}

impl Stake {
    fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }
    fn hash(&self) -> String {
        self.txid().to_string()
    }
    fn output(&self) -> TxOut {
        self.tx.output[self.vout as usize].clone()
    }
}

struct Demo {
    node: Node,
    engine: Engine,
    keys: Keys,
    params: GlobalParams,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start() -> Demo {
        let keys = Keys::new();
        let text = keys.params_json();
        let params = GlobalParams::parse(&text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let params_file = dir.path().join("global-params.json");
        std::fs::write(&params_file, &text).unwrap();
        let node = Node::start();
        node.call("createwallet", json!(["staker"]));
        let addr = node.call("getnewaddress", json!([])).as_str().unwrap().to_string();
        node.call("generatetoaddress", json!([110, addr]));
        let wasm = engine::testing::workspace_plugin(PLUGIN);
        let plugin = PluginDef { name: PLUGIN.into(), wasm, start_height: 0, extra: String::new() }
            .with(QUEUES)
            .with(&format!("config = {{ global_params_file = \"{}\" }}", params_file.display()));
        let mut engine = Engine::start(&node, &[plugin]);
        engine.wait_synced(&node, PLUGIN);
        Demo { node, engine, keys, params, _dir: dir }
    }

    /// The version in force at `height` (the first one below its activation: scenario 1's stake).
    fn params(&self, height: u32) -> &ParamsVersion {
        self.params.for_height(height as u64).map(|(_, p)| p).unwrap_or(&self.params.versions[0])
    }

    /// Mines until the tip is `height` and the plugin has it.
    fn mine_to(&mut self, height: u32) {
        let h = self.node.height();
        assert!(height >= h, "already at {h}, asked for {height}");
        if height > h {
            self.node.generate(height - h);
        }
        self.engine.wait_synced(&self.node, PLUGIN);
    }

    fn mine(&mut self, n: u32) {
        let h = self.node.height();
        self.mine_to(h + n);
    }

    fn stake(&self, btc_sat: u64, staking_time: u16) -> Stake {
        let p = self.params(self.node.height() + 1);
        let info = StakingInfo::new(&self.keys.staker_x(), &[self.keys.fp], p.committee(), staking_time).unwrap();
        let op_return = V0OpReturn::new(p.tag_bytes(), self.keys.staker_x(), self.keys.fp, staking_time).to_script();
        let unsigned = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![],
            output: vec![
                TxOut { value: Amount::from_sat(btc_sat), script_pubkey: info.pk_script() },
                TxOut { value: Amount::ZERO, script_pubkey: op_return },
            ],
        };
        let funded = self.node.call("fundrawtransaction", json!([serialize_hex(&unsigned)]));
        let signed = self.node.call("signrawtransactionwithwallet", json!([funded["hex"]]));
        assert_eq!(signed["complete"], true, "{signed}");
        let hex = signed["hex"].as_str().unwrap();
        self.node.call("sendrawtransaction", json!([hex]));
        let tx: Transaction = bitcoin::consensus::deserialize(&hex::decode(hex).unwrap()).unwrap();
        let vout = tx.output.iter().position(|o| o.script_pubkey == info.pk_script()).unwrap() as u32;
        Stake { tx, vout, value: btc_sat, info }
    }

    /// The canonical unbonding transaction of `s` (parameters of its inclusion height) and the
    /// staker's signature over its unbonding-path sighash.
    fn unbonding_tx(&self, s: &Stake, staked_at: u32) -> (Transaction, [u8; 64]) {
        let p = self.params(staked_at);
        let value = s.value - p.unbonding_fee;
        let uinfo =
            UnbondingInfo::new(&self.keys.staker_x(), &[self.keys.fp], p.committee(), p.unbonding_time).unwrap();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(s.txid(), s.vout),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(value), script_pubkey: uinfo.pk_script() }],
        };
        let sighash = leaf_sighash(&tx, &s.output(), &s.info.unbonding_script());
        let sig = self.keys.sign(&self.keys.staker, sighash);
        (tx, sig)
    }

    /// Signs the unbonding transaction with two of the three covenant keys and broadcasts it.
    fn broadcast_unbonding(&self, s: &Stake, mut tx: Transaction, staker_sig: [u8; 64]) -> Transaction {
        let sighash = leaf_sighash(&tx, &s.output(), &s.info.unbonding_script());
        // Witness (bottom first): covenant items in descending x-only order (empty for the one
        // that does not sign), staker signature, the unbonding leaf, its control block.
        let mut covenants: Vec<(XOnlyPublicKey, Option<[u8; 64]>)> = self
            .keys
            .covenants
            .iter()
            .enumerate()
            .map(|(i, k)| (k.x_only_public_key().0, (i < 2).then(|| self.keys.sign(k, sighash))))
            .collect();
        covenants.sort_by_key(|c| std::cmp::Reverse(c.0.serialize()));
        let mut w = Witness::new();
        for (_, sig) in &covenants {
            match sig {
                Some(s) => w.push(s),
                None => w.push([]),
            }
        }
        w.push(staker_sig);
        w.push(s.info.unbonding_script().as_bytes());
        w.push(s.info.control_block(phase1_primitives::staking::Leaf::Unbonding).serialize());
        tx.input[0].witness = w;
        self.node.call("sendrawtransaction", json!([serialize_hex(&tx)]));
        tx
    }

    /// A withdrawal through a timelock leaf of `prev` (sequence = the timelock), to the wallet.
    fn withdraw(
        &self,
        prev: OutPoint,
        prev_out: &TxOut,
        script: &ScriptBuf,
        control_block: Vec<u8>,
        timelock: u16,
    ) -> Txid {
        let addr = self.node.call("getnewaddress", json!([])).as_str().unwrap().to_string();
        let to = addr
            .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
            .unwrap()
            .assume_checked()
            .script_pubkey();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::from_height(timelock),
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: prev_out.value - Amount::from_sat(2_000), script_pubkey: to }],
        };
        let sighash = leaf_sighash(&tx, prev_out, script);
        let sig = self.keys.sign(&self.keys.staker, sighash);
        let mut w = Witness::new();
        w.push(sig);
        w.push(script.as_bytes());
        w.push(control_block);
        tx.input[0].witness = w;
        let txid = self.node.call("sendrawtransaction", json!([serialize_hex(&tx)]));
        txid.as_str().unwrap().parse().unwrap()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let resp = minreq::get(format!("http://127.0.0.1:{}{path}", self.engine.port)).with_timeout(30).send().unwrap();
        let body = String::from_utf8_lossy(resp.as_bytes()).into_owned();
        (resp.status_code as u16, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    fn delegation(&self, s: &Stake) -> (String, bool) {
        let (status, v) = self.get(&format!("/v1/delegation?staking_tx_hash_hex={}", s.hash()));
        assert_eq!(status, 200, "{v}");
        (v["data"]["state"].as_str().unwrap().to_string(), v["data"]["is_overflow"].as_bool().unwrap())
    }

    fn assert_delegation(&self, s: &Stake, state: &str, overflow: bool) {
        assert_eq!(
            self.delegation(s),
            (state.to_string(), overflow),
            "delegation {} at height {}",
            s.hash(),
            self.node.height()
        );
    }

    fn stats(&self) -> Value {
        let (status, v) = self.get("/v1/stats");
        assert_eq!(status, 200, "{v}");
        v["data"].clone()
    }

    /// A Prometheus sample of the plugin's metrics (0 when absent).
    fn metric(&self, series: &str) -> u64 {
        let resp = minreq::get(format!("http://127.0.0.1:{}/plugins/{PLUGIN}/metrics", self.engine.port))
            .with_timeout(30)
            .send()
            .unwrap();
        let text = String::from_utf8_lossy(resp.as_bytes()).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// Messages the engine's default jsonl sink delivered to `queue`, once `ready` holds for
    /// them (delivery follows the commit, so it may take a moment).
    fn queue(&self, queue: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let path = self.engine.data_dir.join("queues").join(format!("{queue}.jsonl"));
        testing::wait_until(
            &format!("messages on {queue}"),
            Duration::from_secs(20),
            || self.engine.log_tail(),
            || {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let msgs: Vec<Value> = text
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .map(|m| serde_json::from_str(m["body"].as_str().unwrap()).unwrap())
                    .collect();
                ready(&msgs).then_some(msgs)
            },
        )
    }
}

/// BIP-341 script-path sighash (SIGHASH_DEFAULT) of input 0 spending `prev` through `leaf`.
fn leaf_sighash(tx: &Transaction, prev: &TxOut, leaf: &bitcoin::Script) -> [u8; 32] {
    let leaf_hash = TapLeafHash::from_script(leaf, LeafVersion::TapScript);
    let h = SighashCache::new(tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(std::slice::from_ref(prev)),
            leaf_hash,
            TapSighashType::Default,
        )
        .unwrap();
    h.to_byte_array()
}

fn expect_stats(d: &Demo, expect: Value) {
    let stats = d.stats();
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&stats[k], v, "/v1/stats {k} at height {}: {stats}", d.node.height());
    }
}

#[test]
fn the_seed_demo_scenarios_decide_as_phase1() {
    let mut d = Demo::start();
    let staked = |d: &Demo| d.node.height() + 1;

    // Scenario 1: a stake before the first activation height is never seen.
    let early = d.stake(6 * BTC, 1000);
    d.mine_to(113);
    assert_eq!(d.metric("si_total_staking_txs{tx_type=\"active\"}"), 0);
    assert_eq!(d.get(&format!("/v1/delegation?staking_tx_hash_hex={}", early.hash())).0, 404);
    expect_stats(&d, json!({"active_delegations": 0, "total_delegations": 0}));

    // Scenario 2: 2 + 8 BTC fill the 10 BTC cap; 1 BTC in the next block overflows.
    d.mine_to(115);
    let a = d.stake(2 * BTC, 1000);
    let b = d.stake(8 * BTC, 1000);
    let a_height = staked(&d);
    d.mine_to(116);
    let c = d.stake(BTC, 1000);
    d.mine_to(117);
    d.assert_delegation(&a, "active", false);
    d.assert_delegation(&b, "active", false);
    d.mine_to(118);
    d.assert_delegation(&c, "active", true);
    assert_eq!(d.metric("si_total_staking_txs{tx_type=\"active\"}"), 2);
    assert_eq!(d.metric("si_total_staking_txs{tx_type=\"overflow\"}"), 1);
    expect_stats(
        &d,
        json!({"active_delegations": 2, "total_delegations": 2, "active_tvl": 10 * BTC, "total_tvl": 10 * BTC}),
    );

    // Scenario 3: on-demand unbonding of the 2 BTC stake reopens the cap.
    d.mine_to(119);
    let (utx, staker_sig) = d.unbonding_tx(&a, a_height);
    let body = json!({
        "staking_tx_hash_hex": a.hash(),
        "unbonding_tx_hash_hex": utx.compute_txid().to_string(),
        "unbonding_tx_hex": serialize_hex(&utx),
        "staker_signed_signature_hex": hex::encode(staker_sig),
    });
    let resp = minreq::post(format!("http://127.0.0.1:{}/v1/unbonding", d.engine.port))
        .with_header("Content-Type", "application/json")
        .with_body(body.to_string())
        .with_timeout(30)
        .send()
        .unwrap();
    assert_eq!(resp.status_code, 202, "{}", String::from_utf8_lossy(resp.as_bytes()));
    assert_eq!(resp.as_str().unwrap().trim(), "null");
    d.assert_delegation(&a, "unbonding_requested", false);
    let unbonding = d.broadcast_unbonding(&a, utx, staker_sig);
    d.mine_to(120); // the unbonding transaction is in block 120
    let unbonding_height = 120;
    d.mine_to(121); // block 120 confirmed
    d.assert_delegation(&a, "unbonding", false);
    expect_stats(&d, json!({"active_delegations": 1, "total_delegations": 2, "active_tvl": 8 * BTC}));
    let new = d.stake(BTC, 1000);
    d.mine_to(123);
    d.assert_delegation(&new, "active", false);
    // Unbonding time 3: expires at height 123, applied when 123 is confirmed.
    d.mine_to(124);
    d.assert_delegation(&a, "unbonded", false);
    let unbonding_msgs = d.queue("unbonding_staking_queue", |m| !m.is_empty());
    assert_eq!(unbonding_msgs.len(), 1);
    assert_eq!(unbonding_msgs[0]["staking_tx_hash_hex"], a.hash());
    assert_eq!(unbonding_msgs[0]["unbonding_tx_hash_hex"], unbonding.compute_txid().to_string());
    assert_eq!(unbonding_msgs[0]["unbonding_start_height"], unbonding_height);
    d.queue("expired_staking_queue", |msgs| {
        msgs.iter().any(|m| m["staking_tx_hash_hex"] == a.hash() && m["tx_type"] == "unbonding")
    });

    // Scenario 4: withdrawal from the unbonding output (sequence 3).
    let p = d.params(a_height);
    let uinfo = UnbondingInfo::new(&d.keys.staker_x(), &[d.keys.fp], p.committee(), 3).unwrap();
    d.withdraw(
        OutPoint::new(unbonding.compute_txid(), 0),
        &unbonding.output[0],
        &uinfo.timelock_script(),
        uinfo.control_block_timelock().serialize(),
        3,
    );
    d.mine(2);
    d.assert_delegation(&a, "withdrawn", false);
    expect_stats(&d, json!({"active_delegations": 2, "total_delegations": 3}));
    assert_eq!(d.metric("si_total_withdraw_txs_from_unbonding"), 1);

    // Scenario 5: from 130 (v1) the minimum is 2 BTC; a 1.5 BTC stake is rejected.
    d.mine_to(130);
    let small = d.stake(150_000_000, 1000);
    d.mine_to(131);
    assert_eq!(d.metric("si_invalid_txs_counter{tx_type=\"unconfirmed_staking_transaction\"}"), 1);
    d.mine_to(132);
    assert_eq!(d.metric("si_invalid_txs_counter{tx_type=\"confirmed_staking_transaction\"}"), 1);
    assert_eq!(d.get(&format!("/v1/delegation?staking_tx_hash_hex={}", small.hash())).0, 404);

    // Scenario 6: a 5 BTC stake with a 2-block timelock expires; active TVL is not lowered.
    d.mine_to(133);
    let e = d.stake(5 * BTC, 2);
    d.mine_to(134);
    expect_stats(&d, json!({"active_tvl": 9 * BTC, "total_tvl": 11 * BTC, "unconfirmed_tvl": 14 * BTC}));
    d.mine_to(135);
    expect_stats(&d, json!({"active_tvl": 14 * BTC, "total_tvl": 16 * BTC, "unconfirmed_tvl": 14 * BTC}));
    d.assert_delegation(&e, "active", false);
    // Staked in 134 with timelock 2: expires at 136 (the expiry checker's tip >= start + timelock),
    // applied when 136 is confirmed.
    d.mine_to(137);
    d.assert_delegation(&e, "unbonded", false);
    expect_stats(&d, json!({"active_tvl": 14 * BTC, "active_delegations": 3}));
    let (_, accurate) = d.get(&format!("/plugins/{PLUGIN}/stats"));
    assert_eq!(accurate["data"]["active_tvl"], 9 * BTC, "the accurate view takes expired stake out: {accurate}");
    d.withdraw(
        OutPoint::new(e.txid(), e.vout),
        &e.output(),
        &e.info.timelock_script(),
        e.info.control_block(phase1_primitives::staking::Leaf::Timelock).serialize(),
        2,
    );
    d.mine(2);
    d.assert_delegation(&e, "withdrawn", false);
    expect_stats(&d, json!({"active_delegations": 3, "total_delegations": 4}));
    assert_eq!(d.metric("si_total_withdraw_txs_from_staking"), 1);

    // Scenario 7: a 7 BTC stake whose block is invalidated is re-mined and ends up active.
    d.mine_to(140);
    let f = d.stake(7 * BTC, 1000);
    d.mine_to(141);
    let tip = d.node.hash_at(141);
    d.node.invalidate(&tip);
    d.mine_to(141);
    assert_ne!(d.node.hash_at(141), tip);
    d.mine_to(142);
    d.assert_delegation(&f, "active", false);
    assert_eq!(d.metric("si_total_staking_txs{tx_type=\"active\"}"), 5);
    let active_msgs = d.queue("active_staking_queue", |m| m.len() >= 6);
    assert_eq!(active_msgs.iter().filter(|m| m["staking_tx_hash_hex"] == f.hash()).count(), 1, "no duplicate event");
}
