//! End-to-end tests of the wallet RPCs against a fake `ChainView`.

use std::collections::HashMap;
use std::str::FromStr;

use base64::Engine;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash, TaprootBuilder};
use bitcoin::{
    absolute, opcodes, script, transaction, Amount, NetworkKind, OutPoint, PrivateKey, Script, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness, XOnlyPublicKey,
};
use serde_json::{json, Value};

use super::keys::{add_checksum, secp};
use super::{ChainView, WalletCoin, WalletConfig, WalletManager};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::wallet::handle;

// ------------------------------------------------------------------------ fake chain

#[derive(Default)]
struct FakeChain {
    height: u32,
    /// Confirmed UTXOs: outpoint -> (txout, confirmations, coinbase).
    confirmed: HashMap<OutPoint, (TxOut, u32, bool)>,
    mempool: Vec<Transaction>,
}

impl FakeChain {
    fn fund(&mut self, spk: ScriptBuf, sat: u64, confirmations: u32) -> OutPoint {
        let n = self.confirmed.len() as u32 + 1;
        let op = OutPoint { txid: Txid::from_byte_array([n as u8; 32]), vout: n };
        self.confirmed.insert(op, (TxOut { value: Amount::from_sat(sat), script_pubkey: spk }, confirmations, false));
        op
    }

    fn spent_in_mempool(&self, op: &OutPoint) -> bool {
        self.mempool.iter().any(|tx| tx.input.iter().any(|i| i.previous_output == *op))
    }

    fn mempool_output(&self, op: &OutPoint) -> Option<TxOut> {
        self.mempool
            .iter()
            .find(|tx| tx.compute_txid() == op.txid)
            .and_then(|tx| tx.output.get(op.vout as usize).cloned())
    }
}

impl ChainView for FakeChain {
    fn tip_height(&self) -> u32 {
        self.height
    }

    fn unspent_matching(&self, is_mine: &dyn Fn(&Script) -> bool) -> Vec<WalletCoin> {
        let mut out = Vec::new();
        let mut ops: Vec<_> = self.confirmed.keys().copied().collect();
        ops.sort();
        for op in ops {
            let (txout, conf, coinbase) = &self.confirmed[&op];
            if self.spent_in_mempool(&op) || !is_mine(&txout.script_pubkey) {
                continue;
            }
            out.push(WalletCoin {
                outpoint: op,
                txout: txout.clone(),
                confirmations: *conf,
                is_coinbase: *coinbase,
                mature: !*coinbase || *conf >= 100,
                trusted: true,
            });
        }
        for tx in &self.mempool {
            let txid = tx.compute_txid();
            let trusted = tx
                .input
                .iter()
                .all(|i| self.get_spent_output(&i.previous_output).is_some_and(|o| is_mine(&o.script_pubkey)));
            for (vout, txout) in tx.output.iter().enumerate() {
                let op = OutPoint { txid, vout: vout as u32 };
                if self.spent_in_mempool(&op) || !is_mine(&txout.script_pubkey) {
                    continue;
                }
                out.push(WalletCoin {
                    outpoint: op,
                    txout: txout.clone(),
                    confirmations: 0,
                    is_coinbase: false,
                    mature: true,
                    trusted,
                });
            }
        }
        out
    }

    fn get_unspent(&self, outpoint: &OutPoint) -> Option<TxOut> {
        if self.spent_in_mempool(outpoint) {
            return None;
        }
        self.confirmed.get(outpoint).map(|c| c.0.clone()).or_else(|| self.mempool_output(outpoint))
    }

    fn broadcast(&mut self, tx: &Transaction) -> Result<Txid, RpcError> {
        let prevouts: Vec<TxOut> = tx
            .input
            .iter()
            .map(|i| self.get_unspent(&i.previous_output))
            .collect::<Option<_>>()
            .ok_or_else(|| RpcError::new(-25, "bad-txns-inputs-missingorspent"))?;
        verify_tx(tx, &prevouts);
        self.mempool.push(tx.clone());
        Ok(tx.compute_txid())
    }
}

impl FakeChain {
    fn get_spent_output(&self, op: &OutPoint) -> Option<TxOut> {
        self.confirmed.get(op).map(|c| c.0.clone()).or_else(|| self.mempool_output(op))
    }
}

/// Verifies every input of `tx` with miniscript's interpreter (script semantics + signatures).
fn verify_tx(tx: &Transaction, prevouts: &[TxOut]) {
    for (i, txin) in tx.input.iter().enumerate() {
        let interp = miniscript::Interpreter::from_txdata(
            &prevouts[i].script_pubkey,
            &txin.script_sig,
            &txin.witness,
            txin.sequence,
            tx.lock_time,
        )
        .unwrap_or_else(|e| panic!("input {i}: {e}"));
        let prevouts = Prevouts::All(prevouts);
        for elem in interp.iter(secp(), tx, i, &prevouts) {
            elem.unwrap_or_else(|e| panic!("input {i} does not verify: {e}"));
        }
    }
}

// ------------------------------------------------------------------------ helpers

struct Env {
    _dir: tempfile::TempDir,
    mgr: WalletManager,
    chain: FakeChain,
    root: std::path::PathBuf,
}

fn config(root: &std::path::Path, fallback: Option<bitcoin::FeeRate>) -> WalletConfig {
    WalletConfig {
        wallets_dir: root.join("wallets"),
        fallback_fee: fallback,
        settings_file: root.join("settings.json"),
    }
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mgr = WalletManager::open(config(&root, Some(bitcoin::FeeRate::from_sat_per_vb(2).unwrap())), &[]).unwrap();
    Env { _dir: dir, mgr, chain: FakeChain { height: 200, ..Default::default() }, root }
}

impl Env {
    fn call(&mut self, wallet: Option<&str>, method: &str, params: Value) -> Result<Value, RpcError> {
        let params = Params(params.as_array().cloned().unwrap_or_default());
        handle(&mut self.mgr, &mut self.chain, wallet, method, &params).expect("wallet method")
    }

    fn ok(&mut self, wallet: Option<&str>, method: &str, params: Value) -> Value {
        self.call(wallet, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn err(&mut self, wallet: Option<&str>, method: &str, params: Value) -> RpcError {
        match self.call(wallet, method, params) {
            Ok(v) => panic!("{method} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    fn new_spk(&mut self, wallet: &str, ty: &str) -> ScriptBuf {
        let a = self.ok(Some(wallet), "getnewaddress", json!([null, ty]));
        super::keys::parse_address(a.as_str().unwrap()).unwrap().script_pubkey()
    }
}

fn external_spk() -> ScriptBuf {
    let sk = PrivateKey::generate(NetworkKind::Test);
    ScriptBuf::new_p2wpkh(&sk.public_key(secp()).wpubkey_hash().unwrap())
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("bitcoincore-rpc type: {e}\n{v}"))
}

fn btc(v: &Value) -> u64 {
    Amount::from_btc(v.as_f64().unwrap()).unwrap().to_sat()
}

// ------------------------------------------------------------------------ tests

#[test]
fn create_wallet_addresses_and_selection() {
    let mut e = env();
    let err = e.err(None, "getnewaddress", json!([]));
    assert_eq!(err.code, -18);
    assert!(err.message.starts_with("No wallet is loaded. Load a wallet using loadwallet"));

    let r = e.ok(None, "createwallet", json!(["w1"]));
    assert_eq!(r, json!({ "name": "w1" }));
    let _: bitcoincore_rpc::json::LoadWalletResult = typed(&r);
    let a1 = e.ok(None, "getnewaddress", json!([])).as_str().unwrap().to_string();
    assert!(a1.starts_with("bcrt1p"), "{a1}");
    assert_eq!(a1.len(), 64);
    let a2 = e.ok(Some("w1"), "getnewaddress", json!(["lbl"])).as_str().unwrap().to_string();
    assert_ne!(a1, a2);
    assert!(e.ok(None, "getnewaddress", json!(["", "bech32"])).as_str().unwrap().starts_with("bcrt1q"));
    let legacy = e.ok(None, "getnewaddress", json!(["", "legacy"])).as_str().unwrap().to_string();
    assert!(legacy.starts_with('m') || legacy.starts_with('n'), "{legacy}");
    assert!(e.ok(None, "getnewaddress", json!(["", "p2sh-segwit"])).as_str().unwrap().starts_with('2'));
    assert!(e.ok(None, "getrawchangeaddress", json!([])).as_str().unwrap().starts_with("bcrt1p"));
    let err = e.err(None, "getnewaddress", json!(["", "foo"]));
    assert_eq!((err.code, err.message.as_str()), (-5, "Unknown address type 'foo'"));
    assert_eq!(e.err(None, "getnewaddress", json!(["*"])).code, -11);

    let info = e.ok(None, "getwalletinfo", json!([]));
    let parsed: bitcoincore_rpc::json::GetWalletInfoResult = typed(&info);
    assert_eq!(parsed.wallet_name, "w1");
    assert_eq!(info["descriptors"], json!(true));
    assert!(info.get("unlocked_until").is_none());
    assert_eq!(info["keypoolsize"], json!(4 * 1000));
    assert_eq!(info["keypoolsize_hd_internal"], json!(4 * 1000));

    let err = e.err(None, "createwallet", json!(["w1"]));
    assert_eq!(err.code, -36);
    assert!(err.message.starts_with("Wallet file verification failed. Failed to create database path '"));
    assert!(err.message.ends_with("w1'. Database already exists."));
    let err = e.err(None, "loadwallet", json!(["w1"]));
    assert_eq!((err.code, err.message.as_str()), (-35, "Wallet \"w1\" is already loaded."));
    let err = e.err(None, "loadwallet", json!(["nope"]));
    assert_eq!(err.code, -18);
    assert!(err.message.ends_with("nope'. Path does not exist."), "{}", err.message);

    e.ok(None, "createwallet", json!(["w2", null, null, null, null, null, true]));
    assert_eq!(e.err(None, "getnewaddress", json!([])).code, -19);
    assert_eq!(e.err(Some("zz"), "getnewaddress", json!([])).code, -18);
    assert_eq!(e.ok(None, "listwallets", json!([])), json!(["w1", "w2"]));

    // Persistence: unload/load keeps the address chain; settings.json lists w2.
    e.ok(Some("w1"), "unloadwallet", json!([]));
    e.ok(None, "loadwallet", json!(["w1"]));
    let a3 = e.ok(Some("w1"), "getnewaddress", json!([])).as_str().unwrap().to_string();
    assert!(a3 != a1 && a3 != a2);
    let settings = std::fs::read_to_string(e.root.join("settings.json")).unwrap();
    assert!(settings.contains("w2") && !settings.contains("w1"));
    let dir = e.ok(None, "listwalletdir", json!([]));
    assert_eq!(dir["wallets"], json!([{ "name": "w1" }, { "name": "w2" }]));

    // backupwallet + restorewallet.
    let backup = e.root.join("w1.backup.json");
    e.ok(Some("w1"), "backupwallet", json!([backup.to_str().unwrap()]));
    e.ok(None, "restorewallet", json!(["w1copy", backup.to_str().unwrap()]));
    assert_eq!(e.err(None, "restorewallet", json!(["w1copy", backup.to_str().unwrap()])).code, -36);
    assert_eq!(e.err(None, "restorewallet", json!(["x", "/nonexistent"])).message, "Backup file does not exist");
    let copy = e.ok(Some("w1copy"), "getnewaddress", json!([])).as_str().unwrap().to_string();
    let orig = e.ok(Some("w1"), "getnewaddress", json!([])).as_str().unwrap().to_string();
    assert_eq!(copy, orig, "same seed and next index");
    e.ok(None, "unloadwallet", json!(["w1copy"]));

    // A restart loads w2 from settings.json and creates -wallet=w3.
    let mgr = WalletManager::open(config(&e.root, None), &["w3".to_string()]).unwrap();
    assert_eq!(mgr.wallet_names(), vec!["w2", "w3"]);
}

#[test]
fn import_tr_and_rawtr_wif() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["imp", false, true]));
    assert_eq!(e.err(None, "getnewaddress", json!([])).message, "Error: This wallet has no available keys");
    let sk = PrivateKey::generate(NetworkKind::Test);
    let x = sk.public_key(secp()).inner.x_only_public_key().0;

    let missing =
        e.ok(None, "importdescriptors", json!([[{ "desc": format!("rawtr({})", sk.to_wif()), "timestamp": "now" }]]));
    assert_eq!(missing, json!([{ "success": false, "error": { "code": -5, "message": "Missing checksum" } }]));
    let wrong = e.ok(
        None,
        "importdescriptors",
        json!([[{ "desc": format!("rawtr({})#aaaaaaaa", sk.to_wif()), "timestamp": "now" }]]),
    );
    assert!(wrong[0]["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Provided checksum 'aaaaaaaa' does not match computed checksum '"));
    assert_eq!(
        e.err(None, "importdescriptors", json!([[{ "desc": "x" }]])).message,
        "Missing required timestamp field for key"
    );

    let rawtr = add_checksum(&format!("rawtr({})", sk.to_wif()));
    let tr = add_checksum(&format!("tr({})", sk.to_wif()));
    let r = e.ok(
        None,
        "importdescriptors",
        json!([[{ "desc": rawtr, "timestamp": "now" }, { "desc": tr, "timestamp": 1, "label": "t" }]]),
    );
    assert_eq!(r, json!([{ "success": true }, { "success": true }]));
    let _: Vec<bitcoincore_rpc::json::ImportMultiResult> = typed(&r);

    // rawtr: the output key is the key itself; tr: tweaked.
    let raw_spk = ScriptBuf::new_p2tr_tweaked(bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(x));
    let tr_spk = ScriptBuf::new_p2tr(secp(), x, None);
    e.chain.fund(raw_spk.clone(), 50_000, 3);
    e.chain.fund(tr_spk.clone(), 60_000, 1);
    let list = e.ok(None, "listunspent", json!([]));
    let entries: Vec<bitcoincore_rpc::json::ListUnspentResultEntry> = typed(&list);
    assert_eq!(entries.len(), 2);
    let raw_entry = list.as_array().unwrap().iter().find(|v| v["amount"] == json!(0.0005)).unwrap();
    assert!(raw_entry["desc"].as_str().unwrap().starts_with("rawtr(["));
    assert!(raw_entry["desc"].as_str().unwrap().contains(&x.to_string()));
    assert_eq!(raw_entry["parent_descs"], json!([add_checksum(&format!("rawtr({x})"))]));
    assert_eq!(raw_entry["label"], json!(""));
    let tr_entry = list.as_array().unwrap().iter().find(|v| v["amount"] == json!(0.0006)).unwrap();
    assert_eq!(tr_entry["label"], json!("t"));
    assert_eq!(btc(&e.ok(None, "getbalance", json!([]))), 110_000);

    let descs = e.ok(None, "listdescriptors", json!([]));
    let texts: Vec<&str> =
        descs["descriptors"].as_array().unwrap().iter().map(|d| d["desc"].as_str().unwrap()).collect();
    assert!(texts.contains(&add_checksum(&format!("tr({x})")).as_str()));
    let private = e.ok(None, "listdescriptors", json!([true]));
    assert!(private.to_string().contains(&sk.to_wif()));

    // Watch-only rules.
    e.ok(None, "createwallet", json!(["watch", true]));
    let r = e.ok(
        Some("watch"),
        "importdescriptors",
        json!([[{ "desc": add_checksum(&format!("rawtr({})", sk.to_wif())), "timestamp": "now" }]]),
    );
    assert_eq!(r[0]["error"]["message"], json!("Cannot import private keys to a wallet with private keys disabled"));
    let r = e.ok(
        Some("watch"),
        "importdescriptors",
        json!([[{ "desc": add_checksum(&format!("rawtr({x})")), "timestamp": "now" }]]),
    );
    assert_eq!(r, json!([{ "success": true }]));
    let r = e.ok(
        Some("imp"),
        "importdescriptors",
        json!([[{ "desc": add_checksum(&format!("rawtr({x})")), "timestamp": "now" }]]),
    );
    assert_eq!(r[0]["error"]["code"], json!(-4));
}

#[test]
fn fund_sign_and_send_all_address_types() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["w"]));
    for (ty, sat) in [("bech32m", 40_000u64), ("bech32", 50_000), ("legacy", 60_000), ("p2sh-segwit", 70_000)] {
        let spk = e.new_spk("w", ty);
        e.chain.fund(spk, sat, 6);
    }
    let bal = e.ok(None, "getbalances", json!([]));
    let parsed: bitcoincore_rpc::json::GetBalancesResult = typed(&bal);
    assert_eq!(parsed.mine.trusted.to_sat(), 220_000);

    // Spend everything but a little to an external address: needs all four inputs.
    let dest = external_spk();
    let raw = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![],
        output: vec![TxOut { value: Amount::from_sat(200_000), script_pubkey: dest.clone() }],
    };
    let funded = e.ok(None, "fundrawtransaction", json!([serialize_hex(&raw), { "fee_rate": 5 }]));
    let fr: bitcoincore_rpc::json::FundRawTransactionResult = typed(&funded);
    let tx: Transaction = deserialize(&fr.hex).unwrap();
    assert_eq!(tx.input.len(), 4);
    assert!(tx.input.iter().all(|i| i.sequence == Sequence::ENABLE_RBF_NO_LOCKTIME));

    let signed = e.ok(
        None,
        "signrawtransactionwithwallet",
        json!([fr.hex.iter().map(|b| format!("{b:02x}")).collect::<String>()]),
    );
    let sr: bitcoincore_rpc::json::SignRawTransactionResult = typed(&signed);
    assert!(sr.complete, "{signed}");
    assert!(signed.get("errors").is_none());
    let stx: Transaction = deserialize(&sr.hex).unwrap();
    let prevouts: Vec<TxOut> = stx.input.iter().map(|i| e.chain.get_unspent(&i.previous_output).unwrap()).collect();
    verify_tx(&stx, &prevouts);

    // Explicit secp256k1 checks against rust-bitcoin's sighash for the P2TR and P2WPKH inputs.
    let mut cache = SighashCache::new(&stx);
    for (i, prev) in prevouts.iter().enumerate() {
        if prev.script_pubkey.is_p2tr() {
            let sig = bitcoin::taproot::Signature::from_slice(&stx.input[i].witness[0]).unwrap();
            assert_eq!(stx.input[i].witness[0].len(), 64);
            let h =
                cache.taproot_key_spend_signature_hash(i, &Prevouts::All(&prevouts), TapSighashType::Default).unwrap();
            let key = XOnlyPublicKey::from_slice(&prev.script_pubkey.as_bytes()[2..]).unwrap();
            secp().verify_schnorr(&sig.signature, &Message::from_digest(h.to_byte_array()), &key).unwrap();
        } else if prev.script_pubkey.is_p2wpkh() {
            let sig = bitcoin::ecdsa::Signature::from_slice(&stx.input[i].witness[0]).unwrap();
            let pk = bitcoin::PublicKey::from_slice(&stx.input[i].witness[1]).unwrap();
            let h = cache.p2wpkh_signature_hash(i, &prev.script_pubkey, prev.value, EcdsaSighashType::All).unwrap();
            secp().verify_ecdsa(&Message::from_digest(h.to_byte_array()), &sig.signature, &pk.inner).unwrap();
        }
    }
    // The fee meets 5 sat/vB for the signed size (estimates are upper bounds) without overpaying much.
    let fee = btc(&funded["fee"]);
    let vsize = stx.vsize() as u64;
    assert!(fee >= 5 * vsize, "fee {fee} vsize {vsize}");
    assert!(fee <= 5 * vsize + 5 * 8, "fee {fee} vsize {vsize}");

    // Insufficient funds.
    let big = Transaction {
        output: vec![TxOut { value: Amount::from_sat(10_000_000), script_pubkey: dest.clone() }],
        ..raw.clone()
    };
    let err = e.err(None, "fundrawtransaction", json!([serialize_hex(&big)]));
    assert_eq!((err.code, err.message.as_str()), (-4, "Insufficient funds"));

    // sendtoaddress: funds, signs, broadcasts (the fake chain verifies the scripts).
    let addr = bitcoin::Address::from_script(&dest, bitcoin::Network::Regtest).unwrap().to_string();
    let txid = e.ok(None, "sendtoaddress", json!([addr, 0.001]));
    let txid = Txid::from_str(txid.as_str().unwrap()).unwrap();
    let sent = e.chain.mempool.iter().find(|t| t.compute_txid() == txid).unwrap().clone();
    assert!(sent.output.iter().any(|o| o.script_pubkey == dest && o.value == Amount::from_sat(100_000)));
    assert_eq!(sent.lock_time, absolute::LockTime::from_height(200).unwrap());
    // Change comes back as trusted unconfirmed balance.
    let b = e.ok(None, "getbalances", json!([]));
    assert!(btc(&b["mine"]["trusted"]) > 0 && btc(&b["mine"]["trusted"]) < 220_000 - 100_000);
    assert_eq!(
        e.err(None, "sendtoaddress", json!(["bcrt1qinvalid", 1])).message,
        "Invalid Bitcoin address: bcrt1qinvalid"
    );
    assert_eq!(e.err(None, "sendtoaddress", json!([addr, 100])).code, -6);
    let err = e.err(None, "sendtoaddress", json!([addr, 0.001, null, null, null, null, null, null, null, 0.5]));
    assert_eq!(err.message, "Fee rate (0.500 sat/vB) is lower than the minimum fee rate setting (1.000 sat/vB)");
}

#[test]
fn fallback_fee_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mut mgr = WalletManager::open(config(dir.path(), None), &[]).unwrap();
    let mut chain = FakeChain::default();
    let call = |mgr: &mut WalletManager, chain: &mut FakeChain, m: &str, p: Value| {
        handle(mgr, chain, None, m, &Params(p.as_array().cloned().unwrap())).unwrap()
    };
    call(&mut mgr, &mut chain, "createwallet", json!(["w"])).unwrap();
    let spk = mgr.new_address(None).unwrap().script_pubkey();
    chain.fund(spk, 100_000, 1);
    let raw = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![],
        output: vec![TxOut { value: Amount::from_sat(10_000), script_pubkey: external_spk() }],
    };
    let err = call(&mut mgr, &mut chain, "fundrawtransaction", json!([serialize_hex(&raw)])).unwrap_err();
    assert_eq!(err.code, -4);
    assert_eq!(
        err.message,
        "Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or enable -fallbackfee."
    );
    let ok =
        call(&mut mgr, &mut chain, "fundrawtransaction", json!([serialize_hex(&raw), { "feeRate": 0.0001 }])).unwrap();
    assert!(ok["changepos"].as_i64().unwrap() >= 0);
}

/// Babylon's covenant signer: a staking output with two leaves, a PSBT carrying the unbonding
/// leaf in tap_scripts and only a bip32_derivation entry for the covenant key.
struct Covenant {
    psbt: Psbt,
    cov1: PrivateKey,
    cov2: PrivateKey,
    leaf1: ScriptBuf,
    staking_out: TxOut,
}

fn covenant_psbt() -> Covenant {
    let key = || PrivateKey::generate(NetworkKind::Test);
    let (staker, cov1, cov2, internal) = (key(), key(), key(), key());
    let x = |k: &PrivateKey| k.public_key(secp()).inner.x_only_public_key().0;
    let leaf1 = script::Builder::new()
        .push_x_only_key(&x(&staker))
        .push_opcode(opcodes::all::OP_CHECKSIGVERIFY)
        .push_x_only_key(&x(&cov1))
        .push_opcode(opcodes::all::OP_CHECKSIG)
        .push_x_only_key(&x(&cov2))
        .push_opcode(opcodes::all::OP_CHECKSIGADD)
        .push_int(2)
        .push_opcode(opcodes::all::OP_NUMEQUAL)
        .into_script();
    let leaf2 = script::Builder::new()
        .push_x_only_key(&x(&staker))
        .push_opcode(opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(10)
        .push_opcode(opcodes::all::OP_CSV)
        .into_script();
    let info = TaprootBuilder::new()
        .add_leaf(1, leaf1.clone())
        .unwrap()
        .add_leaf(1, leaf2)
        .unwrap()
        .finalize(secp(), x(&internal))
        .unwrap();
    let staking_out =
        TxOut { value: Amount::from_sat(1_000_000), script_pubkey: ScriptBuf::new_p2tr_tweaked(info.output_key()) };
    let cb = info.control_block(&(leaf1.clone(), LeafVersion::TapScript)).unwrap();
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([7; 32]), vout: 0 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: Amount::from_sat(990_000), script_pubkey: external_spk() }],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
    let input = &mut psbt.inputs[0];
    input.witness_utxo = Some(staking_out.clone());
    input.sighash_type = Some(PsbtSighashType::from_u32(0));
    input.tap_scripts.insert(cb, (leaf1.clone(), LeafVersion::TapScript));
    input.bip32_derivation.insert(cov1.public_key(secp()).inner, (Default::default(), Default::default()));
    Covenant { psbt, cov1, cov2, leaf1, staking_out }
}

fn b64(p: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(p.serialize())
}

fn check_covenant_result(c: &Covenant, result: &Value) {
    let _: bitcoincore_rpc::json::WalletProcessPsbtResult = typed(result);
    assert_eq!(result["complete"], json!(false));
    assert!(result.get("hex").is_none());
    let bytes = base64::engine::general_purpose::STANDARD.decode(result["psbt"].as_str().unwrap()).unwrap();
    let out = Psbt::deserialize(&bytes).unwrap();
    let input = &out.inputs[0];
    assert!(input.final_script_witness.is_none());
    assert_eq!(input.tap_script_sigs.len(), 1);
    let cov_x = c.cov1.public_key(secp()).inner.x_only_public_key().0;
    let leaf_hash = TapLeafHash::from_script(&c.leaf1, LeafVersion::TapScript);
    let sig = input.tap_script_sigs.get(&(cov_x, leaf_hash)).expect("signature for (cov1, leaf1)");
    assert_eq!(sig.sighash_type, TapSighashType::Default);
    assert_eq!(sig.to_vec().len(), 64);
    let h = SighashCache::new(&out.unsigned_tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(std::slice::from_ref(&c.staking_out)),
            leaf_hash,
            TapSighashType::Default,
        )
        .unwrap();
    secp().verify_schnorr(&sig.signature, &Message::from_digest(h.to_byte_array()), &cov_x).unwrap();
}

#[test]
fn covenant_psbt_signed_by_rawtr_and_tr_keys() {
    let mut e = env();
    let c = covenant_psbt();
    for (wallet, desc) in [("raw", format!("rawtr({})", c.cov1.to_wif())), ("tr", format!("tr({})", c.cov1.to_wif()))] {
        e.ok(None, "createwallet", json!([wallet, false, true]));
        let r = e.ok(Some(wallet), "importdescriptors", json!([[{ "desc": add_checksum(&desc), "timestamp": "now" }]]));
        assert_eq!(r, json!([{ "success": true }]));
        let result = e.ok(Some(wallet), "walletprocesspsbt", json!([b64(&c.psbt), true, "DEFAULT"]));
        check_covenant_result(&c, &result);
        // Defaults (sighash from the PSBT's DEFAULT) give the same.
        let result = e.ok(Some(wallet), "walletprocesspsbt", json!([b64(&c.psbt)]));
        check_covenant_result(&c, &result);
        let err = e.err(Some(wallet), "walletprocesspsbt", json!([b64(&c.psbt), true, "ALL"]));
        assert_eq!(
            (err.code, err.message.as_str()),
            (-22, "Specified sighash value does not match value stored in PSBT")
        );
    }
    // A wallet without the key adds nothing.
    e.ok(None, "createwallet", json!(["other"]));
    let r = e.ok(Some("other"), "walletprocesspsbt", json!([b64(&c.psbt), true, "DEFAULT"]));
    let bytes = base64::engine::general_purpose::STANDARD.decode(r["psbt"].as_str().unwrap()).unwrap();
    assert!(Psbt::deserialize(&bytes).unwrap().inputs[0].tap_script_sigs.is_empty());
    let err = e.err(Some("other"), "walletprocesspsbt", json!(["not base64!"]));
    assert_eq!((err.code, err.message.as_str()), (-22, "TX decode failed invalid base64"));
    assert_eq!(e.err(Some("other"), "walletprocesspsbt", json!(["AAAA"])).code, -22);
}

/// Core's FillPSBT signs someone else's output only with the keys the PSBT names: a wallet holding
/// every covenant key of the leaf signs with exactly the one in `bip32_derivation` (Babylon's
/// signer takes the first `tap_script_sigs` entry), and with none when no key is named.
#[test]
fn covenant_psbt_signed_only_with_the_named_key() {
    let mut e = env();
    let c = covenant_psbt();
    e.ok(None, "createwallet", json!(["both", false, true]));
    for k in [&c.cov1, &c.cov2] {
        let desc = add_checksum(&format!("rawtr({})", k.to_wif()));
        e.ok(None, "importdescriptors", json!([[{ "desc": desc, "timestamp": "now" }]]));
    }
    let leaf_hash = TapLeafHash::from_script(&c.leaf1, LeafVersion::TapScript);
    let x = |k: &PrivateKey| k.public_key(secp()).inner.x_only_public_key().0;
    let signed_keys = |e: &mut Env, psbt: &Psbt| {
        let r = e.ok(None, "walletprocesspsbt", json!([b64(psbt), true, "DEFAULT"]));
        let bytes = base64::engine::general_purpose::STANDARD.decode(r["psbt"].as_str().unwrap()).unwrap();
        let out = Psbt::deserialize(&bytes).unwrap();
        out.inputs[0].tap_script_sigs.keys().map(|(k, h)| (*k, *h)).collect::<Vec<_>>()
    };
    assert_eq!(signed_keys(&mut e, &c.psbt), vec![(x(&c.cov1), leaf_hash)]);
    let mut only_cov2 = c.psbt.clone();
    only_cov2.inputs[0].bip32_derivation.clear();
    only_cov2.inputs[0].bip32_derivation.insert(c.cov2.public_key(secp()).inner, Default::default());
    assert_eq!(signed_keys(&mut e, &only_cov2), vec![(x(&c.cov2), leaf_hash)]);
    let mut unnamed = c.psbt.clone();
    unnamed.inputs[0].bip32_derivation.clear();
    assert!(signed_keys(&mut e, &unnamed).is_empty());
}

#[test]
fn covenant_with_encrypted_wallet() {
    let mut e = env();
    let c = covenant_psbt();
    e.ok(None, "createwallet", json!(["enc", false, true, "pw"]));
    let info = e.ok(None, "getwalletinfo", json!([]));
    assert_eq!(info["unlocked_until"], json!(0));
    let desc = add_checksum(&format!("rawtr({})", c.cov1.to_wif()));
    let err = e.err(None, "importdescriptors", json!([[{ "desc": desc, "timestamp": "now" }]]));
    assert_eq!(
        (err.code, err.message.as_str()),
        (-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
    );
    let err = e.err(None, "walletpassphrase", json!(["bad", 60]));
    assert_eq!((err.code, err.message.as_str()), (-14, "Error: The wallet passphrase entered was incorrect."));
    e.ok(None, "walletpassphrase", json!(["pw", 60]));
    assert!(e.ok(None, "getwalletinfo", json!([]))["unlocked_until"].as_u64().unwrap() > 0);
    e.ok(None, "importdescriptors", json!([[{ "desc": desc, "timestamp": "now" }]]));
    e.ok(None, "walletlock", json!([]));
    let err = e.err(None, "walletprocesspsbt", json!([b64(&c.psbt), true, "DEFAULT"]));
    assert_eq!(
        (err.code, err.message.as_str()),
        (-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
    );
    // sign=false works while locked and adds no signature.
    let r = e.ok(None, "walletprocesspsbt", json!([b64(&c.psbt), false]));
    assert_eq!(r["complete"], json!(false));

    // The key is at rest only encrypted; reload from disk and unlock.
    let file = std::fs::read_to_string(e.root.join("wallets/enc/wallet.json")).unwrap();
    assert!(!file.contains(&c.cov1.to_wif()));
    e.ok(None, "unloadwallet", json!(["enc"]));
    e.ok(None, "loadwallet", json!(["enc"]));
    e.ok(None, "walletpassphrase", json!(["pw", 60]));
    let result = e.ok(None, "walletprocesspsbt", json!([b64(&c.psbt), true, "DEFAULT"]));
    check_covenant_result(&c, &result);
    // timeout 0 relocks at once.
    e.ok(None, "walletpassphrase", json!(["pw", 0]));
    assert_eq!(e.err(None, "walletprocesspsbt", json!([b64(&c.psbt)])).code, -13);
    e.ok(None, "walletpassphrasechange", json!(["pw", "pw2"]));
    assert_eq!(e.err(None, "walletpassphrase", json!(["pw", 10])).code, -14);
    e.ok(None, "walletpassphrase", json!(["pw2", 10]));
}

#[test]
fn encryptwallet_and_send() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["w"]));
    let spk = e.new_spk("w", "bech32m");
    e.chain.fund(spk, 5_000_000, 10);
    assert_eq!(
        e.err(None, "walletlock", json!([])).message,
        "Error: running with an unencrypted wallet, but walletlock was called."
    );
    assert_eq!(e.err(None, "walletpassphrase", json!(["x", 1])).code, -15);
    let msg = e.ok(None, "encryptwallet", json!(["secret"]));
    assert!(msg
        .as_str()
        .unwrap()
        .starts_with("wallet encrypted; The keypool has been flushed and a new HD seed was generated"));
    assert_eq!(
        e.err(None, "encryptwallet", json!(["secret"])).message,
        "Error: running with an encrypted wallet, but encryptwallet was called."
    );
    let file = std::fs::read_to_string(e.root.join("wallets/w/wallet.json")).unwrap();
    assert!(!file.contains("tprv"));
    let dest = bitcoin::Address::from_script(&external_spk(), bitcoin::Network::Regtest).unwrap().to_string();
    assert_eq!(e.err(None, "sendtoaddress", json!([dest, 0.01])).code, -13);
    // The old coin is still ours (old descriptors stay, inactive).
    assert_eq!(btc(&e.ok(None, "getbalance", json!([]))), 5_000_000);
    e.ok(None, "walletpassphrase", json!(["secret", 30]));
    let txid = e.ok(None, "sendtoaddress", json!([dest, 0.01, "", "", true]));
    assert_eq!(txid.as_str().unwrap().len(), 64);
    let tx = e.chain.mempool.last().unwrap();
    assert!(tx.output.iter().any(|o| o.value < Amount::from_sat(1_000_000) && o.value > Amount::from_sat(990_000)));
}

#[test]
fn walletprocesspsbt_finalizes_own_inputs_and_createfundedpsbt() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["w"]));
    for ty in ["bech32m", "bech32", "p2sh-segwit", "legacy"] {
        let spk = e.new_spk("w", ty);
        e.chain.fund(spk, 30_000, 2);
    }
    let dest = bitcoin::Address::from_script(&external_spk(), bitcoin::Network::Regtest).unwrap().to_string();
    let r = e.ok(
        None,
        "walletcreatefundedpsbt",
        json!([[], [{ dest.clone(): 0.001 }], 0, { "fee_rate": 3, "subtractFeeFromOutputs": [0] }]),
    );
    let _: bitcoincore_rpc::json::WalletCreateFundedPsbtResult = typed(&r);
    let p = r["psbt"].as_str().unwrap().to_string();
    let psbt = Psbt::deserialize(&base64::engine::general_purpose::STANDARD.decode(&p).unwrap()).unwrap();
    assert!(psbt.inputs.iter().all(|i| i.witness_utxo.is_some()));
    let out = e.ok(None, "walletprocesspsbt", json!([p]));
    assert_eq!(out["complete"], json!(true));
    let tx: Transaction = deserialize(&hex::decode(out["hex"].as_str().unwrap()).unwrap()).unwrap();
    let prevouts: Vec<TxOut> = tx.input.iter().map(|i| e.chain.get_unspent(&i.previous_output).unwrap()).collect();
    verify_tx(&tx, &prevouts);
    // finalize=false: signed but not finalized, still complete.
    let out = e.ok(None, "walletprocesspsbt", json!([p, true, null, true, false]));
    assert_eq!(out["complete"], json!(true));
    let unfinal =
        Psbt::deserialize(&base64::engine::general_purpose::STANDARD.decode(out["psbt"].as_str().unwrap()).unwrap())
            .unwrap();
    assert!(unfinal.inputs.iter().all(|i| i.final_script_witness.is_none() && i.final_script_sig.is_none()));

    // lockunspent / listlockunspent and listunspent filtering.
    let list = e.ok(None, "listunspent", json!([]));
    let first = list[0].clone();
    let op = json!([{ "txid": first["txid"], "vout": first["vout"] }]);
    assert_eq!(e.ok(None, "lockunspent", json!([false, op])), json!(true));
    assert_eq!(e.ok(None, "listlockunspent", json!([])).as_array().unwrap().len(), 1);
    assert_eq!(e.ok(None, "listunspent", json!([])).as_array().unwrap().len(), 3);
    assert_eq!(e.err(None, "lockunspent", json!([false, op])).message, "Invalid parameter, output already locked");
    e.ok(None, "lockunspent", json!([true]));
    assert_eq!(e.ok(None, "listunspent", json!([])).as_array().unwrap().len(), 4);

    // getaddressinfo on our address.
    let addr = e.ok(None, "getnewaddress", json!(["x", "bech32"])).as_str().unwrap().to_string();
    let info = e.ok(None, "getaddressinfo", json!([addr]));
    let _: bitcoincore_rpc::json::GetAddressInfoResult = typed(&info);
    assert_eq!(info["ismine"], json!(true));
    assert_eq!(info["labels"], json!(["x"]));
    assert!(info["hdkeypath"].as_str().unwrap().starts_with("m/84h/1h/0h/0/"));
}

#[test]
fn signrawtransaction_reports_foreign_inputs() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["w"]));
    let spk = e.new_spk("w", "bech32");
    let mine = e.chain.fund(spk, 30_000, 2);
    let foreign = e.chain.fund(external_spk(), 30_000, 2);
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: [mine, foreign]
            .iter()
            .map(|op| TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![TxOut { value: Amount::from_sat(50_000), script_pubkey: external_spk() }],
    };
    let r = e.ok(None, "signrawtransactionwithwallet", json!([serialize_hex(&tx)]));
    assert_eq!(r["complete"], json!(false));
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["vout"], json!(foreign.vout));
    assert_eq!(errors[0]["error"], json!("Witness program was passed an empty witness"));
    let signed: Transaction = deserialize(&hex::decode(r["hex"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(signed.input[0].witness.len(), 2);
    let sk = SecretKey::from_slice(&[3u8; 32]).unwrap();
    let _ = Keypair::from_secret_key(secp(), &sk).tap_tweak(secp(), None);
}

#[test]
fn manager_is_send_and_creation_is_fast_enough() {
    fn assert_send<T: Send + Sync>() {}
    assert_send::<WalletManager>();
    let mut e = env();
    let t = std::time::Instant::now();
    e.ok(None, "createwallet", json!(["speed"]));
    let created = t.elapsed();
    let t = std::time::Instant::now();
    e.ok(None, "unloadwallet", json!(["speed"]));
    e.ok(None, "loadwallet", json!(["speed"]));
    eprintln!("createwallet {created:?}, reload {:?}", t.elapsed());
}

/// Garbage of every shape never panics any wallet RPC.
#[test]
fn garbage_params_never_panic() {
    let mut e = env();
    e.ok(None, "createwallet", json!(["w"]));
    let spk = e.new_spk("w", "bech32m");
    e.chain.fund(spk, 1_000_000, 3);
    let values: Vec<Value> = [
        "null",
        "true",
        "-1",
        "0",
        "1e308",
        "99999999999999999999",
        "\"\"",
        "\"zz\"",
        "\"00\"",
        "[]",
        "{}",
        "[[[]]]",
        "\"0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206\"",
        r#"{"fee_rate": 1e308, "changePosition": 99}"#,
        r#"{"feeRate": -1}"#,
        r#"[{"txid": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", "vout": 4294967296}]"#,
        r#"[{"desc": "rawtr()", "timestamp": "now", "range": [5, 1]}]"#,
        r#"[{"desc": "tr(cV)#aaaaaaaa", "timestamp": -5, "active": 1}]"#,
        r#""0200000000010000000000000000000000""#,
        r#""cHNidP8BAAoCAAAAAAAAAAAAAA==""#,
        r#""ALL|ANYONECANPAY""#,
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect();
    let methods: Vec<&str> = crate::rpc::wallet::WALLET_METHODS
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| !["createwallet", "backupwallet", "encryptwallet", "unloadwallet"].contains(m))
        .collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..3000 {
        let m = methods[next(methods.len())];
        let n = next(5);
        let params: Vec<Value> = (0..n).map(|_| values[next(values.len())].clone()).collect();
        let _ = e.call(Some("w"), m, Value::Array(params));
    }
    // Still a working wallet.
    assert!(e.ok(Some("w"), "getnewaddress", json!([])).as_str().unwrap().starts_with("bcrt1p"));
}
