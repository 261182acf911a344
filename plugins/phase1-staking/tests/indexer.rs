//! The indexer's decisions, natively through `guest_sdk::testing::TestHost` (no engine): cap and
//! overflow boundaries, Step C, unbonding and withdrawal classification with the API's state
//! machine, expiry boundaries, the unconfirmed window, and the legacy event bytes.

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{absolute, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness, XOnlyPublicKey};
use guest_sdk::bitcoin;
use guest_sdk::testing::TestHost;
use guest_sdk::{store, BlockInfo, Tx};
use phase1_primitives::sighash::unbonding_sighash;
use phase1_primitives::{GlobalParams, Leaf, StakingInfo, V0OpReturn};
use phase1_staking::state::{self, Delegation, State};
use phase1_staking::Phase1Staking as P;
use serde_json::{json, Value};

const BTC: u64 = 100_000_000;

struct Fixture {
    host: TestHost,
    params: GlobalParams,
    secp: Secp256k1<bitcoin::secp256k1::All>,
    staker: Keypair,
    fp: XOnlyPublicKey,
    covenants: Vec<Keypair>,
    funding: u32,
    /// Raw bodies of the last call's messages.
    last_raw: Vec<Vec<u8>>,
}

fn keypair(secp: &Secp256k1<bitcoin::secp256k1::All>, b: u8) -> Keypair {
    Keypair::from_secret_key(secp, &SecretKey::from_slice(&[b; 32]).unwrap())
}

impl Fixture {
    /// v0 from 100: value cap 10 BTC, depth 2; v1 from 200: time cap at 205, min 2 BTC.
    fn new() -> Fixture {
        let secp = Secp256k1::new();
        let covenants = vec![keypair(&secp, 0xc1), keypair(&secp, 0xc2), keypair(&secp, 0xc3)];
        let pks: Vec<String> = covenants.iter().map(|k| k.public_key().to_string()).collect();
        let text = json!({ "versions": [
            { "version": 0, "activation_height": 100, "staking_cap": 10 * BTC, "tag": "01020304",
              "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
              "max_staking_amount": 10 * BTC, "min_staking_amount": BTC, "max_staking_time": 1000,
              "min_staking_time": 10, "confirmation_depth": 2 },
            { "version": 1, "activation_height": 200, "cap_height": 205, "tag": "01020304",
              "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
              "max_staking_amount": 20 * BTC, "min_staking_amount": 2 * BTC, "max_staking_time": 5000,
              "min_staking_time": 1, "confirmation_depth": 2 }
        ]})
        .to_string();
        let params = GlobalParams::parse(&text).unwrap();
        let mut host = TestHost::new(&json!({ "global_params": text }).to_string());
        host.init::<P>().unwrap();
        Fixture {
            host,
            params,
            staker: keypair(&secp, 0x51),
            fp: keypair(&secp, 0x77).x_only_public_key().0,
            covenants,
            secp,
            funding: 0,
            last_raw: Vec::new(),
        }
    }

    fn staker_x(&self) -> XOnlyPublicKey {
        self.staker.x_only_public_key().0
    }

    fn info(&self, height: u32, staking_time: u16) -> StakingInfo {
        let p = self.params.for_height(height as u64).unwrap().1;
        StakingInfo::new(&self.staker_x(), &[self.fp], p.committee(), staking_time).unwrap()
    }

    /// A staking transaction valid under the params at `height` (output 0 staking, 1 OP_RETURN).
    fn stake(&mut self, height: u32, value: u64, staking_time: u16) -> Transaction {
        self.funding += 1;
        let p = self.params.for_height(height as u64).unwrap().1;
        let info = self.info(height, staking_time);
        Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([9; 32]), self.funding),
                witness: Witness::from_slice(&[[1u8; 64]]),
                ..Default::default()
            }],
            output: vec![
                TxOut { value: Amount::from_sat(value), script_pubkey: info.pk_script() },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: V0OpReturn::new(p.tag_bytes(), self.staker_x(), self.fp, staking_time).to_script(),
                },
            ],
        }
    }

    /// The canonical unbonding transaction of `stake` (staked at `height`), witness with two
    /// covenant signatures; `tweak` may change it before signing.
    fn unbond(
        &self,
        stake: &Transaction,
        height: u32,
        staking_time: u16,
        tweak: impl FnOnce(&mut Transaction),
    ) -> Transaction {
        let p = self.params.for_height(height as u64).unwrap().1;
        let info = self.info(height, staking_time);
        let value = stake.output[0].value.to_sat() - p.unbonding_fee;
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(stake.compute_txid(), 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![info.unbonding_info(p.unbonding_time).unbonding_output(value)],
        };
        tweak(&mut tx);
        let sighash = unbonding_sighash(&tx, &stake.output[0], &info.unbonding_script()).unwrap();
        let sign = |k: &Keypair| self.secp.sign_schnorr_no_aux_rand(&Message::from(sighash), k).serialize();
        let sigs: Vec<(XOnlyPublicKey, [u8; 64])> =
            self.covenants[..2].iter().map(|k| (k.x_only_public_key().0, sign(k))).collect();
        tx.input[0].witness =
            phase1_primitives::sighash::unbonding_witness(&sigs, &sign(&self.staker), &info, info.committee()).unwrap();
        tx
    }

    /// A spend of `prev` revealing `script` with control block `cb` (the signature is not
    /// checked by the indexer, only the revealed script).
    fn spend(prev: OutPoint, value: u64, script: &ScriptBuf, cb: Vec<u8>, sequence: u32) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence: Sequence(sequence),
                witness: Witness::from_slice(&[vec![2u8; 64], script.to_bytes(), cb]),
            }],
            output: vec![TxOut { value: Amount::from_sat(value - 1000), script_pubkey: ScriptBuf::new_op_return([]) }],
        }
    }

    fn block(height: u32) -> BlockInfo {
        BlockInfo {
            height,
            hash: vec![height as u8; 32],
            prev_hash: vec![height as u8 - 1; 32],
            time: 1_700_000_000 + height,
        }
    }

    fn txs(list: &[&Transaction]) -> Vec<Tx> {
        list.iter()
            .enumerate()
            .map(|(i, t)| Tx {
                index: i as u32 + 1,
                txid: t.compute_txid().to_byte_array().to_vec(),
                raw: bitcoin::consensus::serialize(*t),
            })
            .collect()
    }

    fn confirm(&mut self, height: u32, list: &[&Transaction]) -> Vec<(String, Value)> {
        self.host.apply_block::<P>(&Self::block(height), &Self::txs(list)).unwrap();
        self.published()
    }

    fn unconfirmed(&mut self, height: u32, list: &[&Transaction]) -> Vec<(String, Value)> {
        self.host.apply_unconfirmed::<P>(&Self::block(height), &Self::txs(list)).unwrap();
        self.published()
    }

    fn published(&mut self) -> Vec<(String, Value)> {
        let msgs = self.host.take_published();
        self.last_raw = msgs.iter().map(|(_, b)| b.clone()).collect();
        msgs.into_iter().map(|(q, b)| (q, serde_json::from_slice(&b).unwrap())).collect()
    }

    fn delegation(&mut self, tx: &Transaction) -> Option<Delegation> {
        let id = tx.compute_txid().to_byte_array();
        self.host.run(|| state::delegation(&id).unwrap())
    }

    fn state(&mut self, tx: &Transaction) -> State {
        self.delegation(tx).expect("stored").state
    }

    fn tvl(&mut self) -> u64 {
        self.host.run(|| store::get_u64(state::TVL))
    }

    fn metric(&mut self, series: &str) -> u64 {
        self.host.run(|| phase1_staking::metrics::get(series))
    }
}

fn queues(msgs: &[(String, Value)]) -> Vec<&str> {
    msgs.iter().map(|(q, _)| q.as_str()).collect()
}

#[test]
fn blocks_before_activation_are_ignored() {
    let mut f = Fixture::new();
    let s = f.stake(100, 2 * BTC, 100);
    assert!(f.confirm(99, &[&s]).is_empty());
    assert!(f.delegation(&s).is_none());
    assert_eq!(f.metric(phase1_staking::metrics::STAKING_ACTIVE), 0);
}

#[test]
fn value_cap_overflow_starts_when_the_tvl_before_the_tx_reaches_the_cap() {
    let mut f = Fixture::new();
    // 9 BTC (TVL 0 -> 9), then 2 BTC (9 < 10: active, TVL 11), then 1 BTC (11 >= 10: overflow).
    let a = f.stake(100, 9 * BTC, 100);
    let b = f.stake(100, 2 * BTC, 100);
    let c = f.stake(100, BTC, 100);
    let msgs = f.confirm(100, &[&a, &b, &c]);
    assert_eq!(queues(&msgs), vec!["active_staking_queue"; 3]);
    let overflow: Vec<bool> = msgs.iter().map(|(_, m)| m["is_overflow"].as_bool().unwrap()).collect();
    assert_eq!(overflow, vec![false, false, true]);
    assert_eq!(f.tvl(), 11 * BTC, "overflow stake is not counted");
    assert_eq!(f.metric(phase1_staking::metrics::STAKING_ACTIVE), 2);
    assert_eq!(f.metric(phase1_staking::metrics::STAKING_OVERFLOW), 1);
    // The legacy event, byte for byte (v0.4.1: no schema_version, Go field order).
    let raw = hex::encode(bitcoin::consensus::serialize(&a));
    let expected = format!(
        "{{\"event_type\":1,\"staking_tx_hash_hex\":\"{}\",\"staker_pk_hex\":\"{}\",\"finality_provider_pk_hex\":\"{}\",\
         \"staking_value\":{},\"staking_start_height\":100,\"staking_start_timestamp\":1700000100,\"staking_timelock\":100,\
         \"staking_output_index\":0,\"staking_tx_hex\":\"{raw}\",\"is_overflow\":false}}",
        a.compute_txid(),
        hex::encode(f.staker_x().serialize()),
        hex::encode(f.fp.serialize()),
        9 * BTC
    );
    assert_eq!(String::from_utf8(f.last_raw[0].clone()).unwrap(), expected);
    let stats = f.host.get::<P>("/v1/stats").json_body::<Value>().unwrap();
    assert_eq!(stats["data"]["active_tvl"], 11 * BTC);
    assert_eq!(stats["data"]["total_delegations"], 2);
}

#[test]
fn step_c_rejects_out_of_range_amounts_and_times_and_counts_them() {
    let mut f = Fixture::new();
    let small = f.stake(100, BTC - 1, 100);
    let big = f.stake(100, 10 * BTC + 1, 100);
    let short = f.stake(100, BTC, 9);
    let long = f.stake(100, BTC, 1001);
    let edge = f.stake(100, BTC, 10);
    let msgs = f.confirm(100, &[&small, &big, &short, &long, &edge]);
    assert_eq!(msgs.len(), 1, "only the in-range stake: {msgs:?}");
    assert_eq!(f.metric(&phase1_staking::metrics::invalid_series("confirmed_staking_transaction")), 4);
    assert!(f.delegation(&small).is_none() && f.delegation(&edge).is_some());
    // Not a staking transaction at all (second Babylon OP_RETURN): ignored, not counted.
    let mut two = f.stake(100, BTC, 100);
    let extra = two.output[1].clone();
    two.output.push(extra);
    assert!(f.confirm(101, &[&two]).is_empty());
    assert_eq!(f.metric(&phase1_staking::metrics::invalid_series("confirmed_staking_transaction")), 4);
}

#[test]
fn time_cap_admits_stakes_up_to_and_including_cap_height() {
    let mut f = Fixture::new();
    let at = f.stake(205, 2 * BTC, 100);
    let after = f.stake(206, 2 * BTC, 100);
    assert_eq!(f.confirm(205, &[&at])[0].1["is_overflow"], false);
    assert_eq!(f.confirm(206, &[&after])[0].1["is_overflow"], true);
}

#[test]
fn unbonding_then_expiry_then_withdrawal_follow_the_state_machine() {
    let mut f = Fixture::new();
    let s = f.stake(100, 5 * BTC, 100);
    f.confirm(100, &[&s]);
    // RBF-enabled unbonding: invalid, counted, nothing changes.
    let rbf = f.unbond(&s, 100, 100, |t| t.input[0].sequence = Sequence(0xfffffffd));
    assert!(f.confirm(101, &[&rbf]).is_empty());
    assert_eq!(f.metric(&phase1_staking::metrics::invalid_series("confirmed_unbonding_transactions")), 1);
    assert_eq!(f.state(&s), State::Active);
    // The canonical unbonding: event, TVL down, state unbonding, expiry at 102 + 3.
    let u = f.unbond(&s, 100, 100, |_| {});
    let msgs = f.confirm(102, &[&u]);
    assert_eq!(queues(&msgs), vec!["unbonding_staking_queue"]);
    assert_eq!(msgs[0].1["unbonding_start_height"], 102);
    assert_eq!(msgs[0].1["unbonding_timelock"], 3);
    assert_eq!(msgs[0].1["unbonding_tx_hash_hex"], u.compute_txid().to_string());
    assert_eq!(f.tvl(), 0);
    assert_eq!(f.state(&s), State::Unbonding);
    assert!(f.confirm(104, &[]).is_empty(), "104 < 102 + 3: not expired yet");
    let msgs = f.confirm(105, &[]);
    assert_eq!(
        msgs,
        vec![(
            "expired_staking_queue".to_string(),
            json!({"event_type":4,"staking_tx_hash_hex": s.compute_txid().to_string(),"tx_type":"unbonding"})
        )]
    );
    assert_eq!(f.state(&s), State::Unbonded);
    // A spend of the unbonding output through its slashing leaf: invalid withdrawal.
    let p = f.params.versions[0].clone();
    let uinfo = f.info(100, 100).unbonding_info(p.unbonding_time);
    let uout = OutPoint::new(u.compute_txid(), 0);
    let bad = Fixture::spend(
        uout,
        u.output[0].value.to_sat(),
        &uinfo.slashing_script(),
        uinfo.control_block_slashing().serialize(),
        3,
    );
    assert!(f.confirm(106, &[&bad]).is_empty());
    assert_eq!(f.metric(&phase1_staking::metrics::invalid_series("confirmed_withdraw_unbonding_transactions")), 1);
    // Through the timelock leaf: withdrawn.
    let w = Fixture::spend(
        uout,
        u.output[0].value.to_sat(),
        &uinfo.timelock_script(),
        uinfo.control_block_timelock().serialize(),
        3,
    );
    let msgs = f.confirm(107, &[&w]);
    assert_eq!(
        msgs,
        vec![(
            "withdraw_staking_queue".to_string(),
            json!({"event_type":3,"staking_tx_hash_hex": s.compute_txid().to_string()})
        )]
    );
    assert_eq!(f.state(&s), State::Withdrawn);
    // The active-timelock expiry still fires later (the checker published every due document).
    let msgs = f.confirm(200, &[]);
    assert_eq!(queues(&msgs), vec!["expired_staking_queue"]);
    assert_eq!(msgs[0].1["tx_type"], "active");
    assert_eq!(f.state(&s), State::Withdrawn);
}

#[test]
fn timelock_expiry_fires_at_start_plus_timelock_and_does_not_lower_legacy_stats() {
    let mut f = Fixture::new();
    let s = f.stake(200, 5 * BTC, 2);
    f.confirm(200, &[&s]);
    assert!(f.confirm(201, &[]).is_empty());
    let msgs = f.confirm(202, &[]);
    assert_eq!(queues(&msgs), vec!["expired_staking_queue"]);
    assert_eq!(f.state(&s), State::Unbonded);
    let stats = f.host.get::<P>("/v1/stats").json_body::<Value>().unwrap();
    assert_eq!(stats["data"]["active_tvl"], 5 * BTC, "legacy: expiry does not lower active TVL");
    assert_eq!(stats["data"]["active_delegations"], 1);
    assert_eq!(f.tvl(), 5 * BTC, "nor the indexer's confirmed TVL");
    // Staking-path withdrawal (timelock leaf): withdrawn.
    let info = f.info(200, 2);
    let w = Fixture::spend(
        OutPoint::new(s.compute_txid(), 0),
        5 * BTC,
        &info.timelock_script(),
        info.control_block(Leaf::Timelock).serialize(),
        2,
    );
    let msgs = f.confirm(203, &[&w]);
    assert_eq!(queues(&msgs), vec!["withdraw_staking_queue"]);
    assert_eq!(f.state(&s), State::Withdrawn);
    assert_eq!(f.metric(phase1_staking::metrics::WITHDRAW_FROM_STAKING), 1);
}

#[test]
fn the_unconfirmed_window_adds_valid_stakes_and_subtracts_unbondings() {
    let mut f = Fixture::new();
    let s = f.stake(100, 4 * BTC, 100);
    // s arrives unconfirmed at 100: confirmed 0, unconfirmed 4 BTC.
    let msgs = f.unconfirmed(100, &[&s]);
    assert_eq!(
        msgs,
        vec![(
            "btc_info_queue".to_string(),
            json!({"event_type":6,"height":100,"confirmed_tvl":0,"unconfirmed_tvl":4 * BTC})
        )]
    );
    // 100 confirms at tip 101; an invalid stake and the unbonding of s arrive in 101.
    f.confirm(100, &[&s]);
    let bad = f.stake(101, 1, 100);
    let u = f.unbond(&s, 100, 100, |_| {});
    let msgs = f.unconfirmed(101, &[&bad, &u]);
    assert_eq!(msgs[0].1["confirmed_tvl"], 4 * BTC);
    assert_eq!(msgs[0].1["unconfirmed_tvl"], 0);
    assert_eq!(f.metric(&phase1_staking::metrics::invalid_series("unconfirmed_staking_transaction")), 1);
    assert_eq!(f.metric(phase1_staking::metrics::LAST_CALCULATED_ACTIVE_TVL), 0);
}

#[test]
fn a_block_seen_unconfirmed_confirms_exactly_as_one_parsed_from_scratch() {
    let run = |through_window: bool, other_hash: bool| {
        let mut f = Fixture::new();
        let a = f.stake(100, 4 * BTC, 100);
        let bad = f.stake(100, 1, 100);
        let b = f.stake(100, 7 * BTC, 100);
        let c = f.stake(100, 2 * BTC, 100);
        if through_window {
            let mut seen = Fixture::block(100);
            if other_hash {
                seen.hash = vec![0xee; 32]; // a different block at 100 (reorged out)
            }
            f.host.apply_unconfirmed::<P>(&seen, &Fixture::txs(&[&a, &bad, &b, &c])).unwrap();
            f.published();
        }
        let msgs = f.confirm(100, &[&a, &bad, &b, &c]);
        let window_left = f.host.run(|| store::scan_prefix(state::WINDOW, None, 10).len());
        let invalid = f.metric(&phase1_staking::metrics::invalid_series("confirmed_staking_transaction"));
        (f.last_raw.clone(), msgs.len(), invalid, f.tvl(), window_left)
    };
    let scratch = run(false, false);
    assert_eq!(scratch.1, 3);
    assert_eq!(scratch.2, 1);
    assert_eq!(scratch.3, 11 * BTC, "4 + 7 (TVL 11 >= 10 before c: overflow)");
    assert_eq!(run(true, false), scratch);
    assert_eq!(run(true, true), scratch);
}

#[test]
fn a_bad_configuration_stops_the_plugin_at_load_with_the_fix() {
    let err = TestHost::new("{}").init::<P>().unwrap_err();
    assert!(err.contains("global_params_file"), "{err}");
    let err = TestHost::new(r#"{"global_params": "{}", "typo": 1}"#).init::<P>().unwrap_err();
    assert!(err.contains("unknown field `typo`"), "{err}");
    let f = Fixture::new();
    let mut params: Value = serde_json::from_str(&f.params.to_json()).unwrap();
    params["versions"][0]["covenant_quorum"] = json!(4);
    let config = json!({ "global_params": params.to_string() }).to_string();
    let err = TestHost::new(&config).init::<P>().unwrap_err();
    assert!(err.contains("covenant_quorum"), "{err}");
    let config = json!({ "global_params": f.params.to_json(), "finality_providers": "{\"finality_providers\":[{\"btc_pk\":\"zz\"}]}" });
    let err = TestHost::new(&config.to_string()).init::<P>().unwrap_err();
    assert!(err.contains("finality providers"), "{err}");
}
