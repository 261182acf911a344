//! `regtest-node -walletonly`, the offline wallet Babylon's covenant signer signs with, as a real
//! process over RPC: keys made by the wallet (`getnewaddress "" bech32` → `getaddressinfo` →
//! `pubkey`) sign the unbonding leaf of a staking output built with phase1-primitives when asked
//! exactly as the covenant signer asks (`walletprocesspsbt`, SIGHASH_DEFAULT, a bip32 hint with
//! only the compressed key); a locked wallet refuses with Core's -13, an unlock expires, the
//! encrypted wallet survives a restart, private keys never leave, chain RPCs and non-loopback
//! binds are refused.

mod testing;

use bitcoin::bip32::{DerivationPath, Fingerprint};
use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::PublicKey;
use bitcoin::sighash::TapSighashType;
use bitcoin::taproot::LeafVersion;
use bitcoin::{OutPoint, Transaction, TxOut, Txid, XOnlyPublicKey};
use bitcoincore_rpc::{Client, RpcApi};
use phase1_primitives::sighash::{unbonding_sighash, unbonding_witness, verify_schnorr};
use phase1_primitives::{CovenantCommittee, Leaf, StakingInfo};
use serde_json::{json, Value};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};
use testing::*;

const PASSPHRASE: &str = "covenant passphrase";
const LOCKED: &str = "Error: Please enter the wallet passphrase with walletpassphrase first.";

fn start(datadir: &Path, extra: &[&str]) -> TestNode {
    TestNode::start_in(datadir, &[&["-walletonly"][..], extra].concat())
}

/// What `offline-wallet/create-covenant-keys.sh` does: an encrypted descriptor wallet
/// `covenant`, loaded on startup, and `n` keys as compressed public keys.
fn create_covenant_wallet(node: &TestNode, n: usize) -> Vec<PublicKey> {
    let created = node.call(
        "createwallet",
        &[json!("covenant"), json!(false), json!(false), json!(PASSPHRASE), json!(false), json!(true), json!(true)],
    );
    assert_eq!(created["name"], "covenant", "{created}");
    let w = node.wallet("covenant");
    (0..n).map(|_| new_key(&w)).collect()
}

fn new_key(w: &Client) -> PublicKey {
    let addr: String = w.call("getnewaddress", &[json!(""), json!("bech32")]).unwrap();
    let info: Value = w.call("getaddressinfo", &[json!(addr)]).unwrap();
    let pk = info["pubkey"].as_str().unwrap_or_else(|| panic!("no pubkey in {info}"));
    assert_eq!(pk.len(), 66, "33-byte compressed key: {pk}");
    PublicKey::from_str(pk).unwrap()
}

fn xonly(pk: &PublicKey) -> XOnlyPublicKey {
    pk.x_only_public_key().0
}

/// A stake whose committee holds `covenant` keys (quorum 2), and its unbonding transaction.
struct Stake {
    staker: Key,
    info: StakingInfo,
    committee: CovenantCommittee,
    output: TxOut,
    unbonding: Transaction,
}

fn stake(covenant: Vec<PublicKey>) -> Stake {
    let staker = Key::new(60);
    let fp = Key::new(61);
    let committee = CovenantCommittee::new(covenant, 2).unwrap();
    let info = StakingInfo::new(&staker.xonly(), &[fp.xonly()], &committee, 1000).unwrap();
    let output = info.staking_output(1_000_000);
    let outpoint = OutPoint::new(Txid::from_byte_array([9; 32]), 0);
    let unbonding = phase1_primitives::unbonding::unbonding_tx(outpoint, 990_000, &info.unbonding_info(100));
    Stake { staker, info, committee, output, unbonding }
}

/// The PSBT Babylon's covenant signer hands its wallet for `covenant_pk`.
fn covenant_psbt(s: &Stake, covenant_pk: &PublicKey) -> Psbt {
    let mut psbt = Psbt::from_unsigned_tx(s.unbonding.clone()).unwrap();
    let input = &mut psbt.inputs[0];
    input.witness_utxo = Some(s.output.clone());
    input.sighash_type = Some(TapSighashType::Default.into());
    input.bip32_derivation.insert(*covenant_pk, (Fingerprint::default(), DerivationPath::master()));
    input
        .tap_scripts
        .insert(s.info.control_block(Leaf::Unbonding), (s.info.unbonding_script(), LeafVersion::TapScript));
    psbt
}

fn process(w: &Client, psbt: &Psbt) -> Result<Value, (i32, String)> {
    w.call::<Value>("walletprocesspsbt", &[json!(psbt.to_string()), json!(true), json!("DEFAULT")]).map_err(rpc_error)
}

/// Asks the wallet as the covenant signer does and checks the one signature it returns.
fn covenant_signature(w: &Client, s: &Stake, covenant_pk: &PublicKey) -> [u8; 64] {
    let result = process(w, &covenant_psbt(s, covenant_pk)).unwrap_or_else(|e| panic!("walletprocesspsbt: {e:?}"));
    assert_eq!(result["complete"], false, "the staker's and other members' signatures are missing");
    let signed = Psbt::from_str(result["psbt"].as_str().unwrap()).unwrap();
    let sigs = &signed.inputs[0].tap_script_sigs;
    assert_eq!(sigs.len(), 1, "only the requested key signs: {sigs:?}");
    let leaf_hash = s.info.leaf_hash(Leaf::Unbonding);
    let sig = sigs.get(&(xonly(covenant_pk), leaf_hash)).expect("signature for (covenant key, unbonding leaf)");
    assert_eq!(sig.sighash_type, TapSighashType::Default);
    let bytes: [u8; 64] = sig.to_vec().try_into().expect("64 bytes: SIGHASH_DEFAULT adds no sighash byte");
    let sighash = unbonding_sighash(&s.unbonding, &s.output, &s.info.unbonding_script()).unwrap();
    assert!(verify_schnorr(&sighash, &bytes, &xonly(covenant_pk)), "BIP-340 signature over the BIP-341 sighash");
    bytes
}

fn stop_and_wait(node: TestNode) {
    let _ = node.stop();
}

#[test]
fn wallet_keys_sign_the_unbonding_leaf_as_the_covenant_signer_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let node = start(tmp.path(), &[]);
    assert!(started.elapsed() < Duration::from_secs(20), "wallet-only start took {:?}", started.elapsed());
    for chain_file in ["blocks.log", "mempool.dat"] {
        assert!(!tmp.path().join("regtest").join(chain_file).exists(), "{chain_file} created with -walletonly");
    }

    // Keys of both parities (03… keys are signed for through their x-only form too).
    let mut keys = create_covenant_wallet(&node, 1);
    let w = node.wallet("covenant");
    while !(keys.iter().any(|k| k.serialize()[0] == 2) && keys.iter().any(|k| k.serialize()[0] == 3)) {
        assert!(keys.len() < 64, "64 keys of one parity");
        keys.push(new_key(&w));
    }
    let even = *keys.iter().find(|k| k.serialize()[0] == 2).unwrap();
    let odd = *keys.iter().find(|k| k.serialize()[0] == 3).unwrap();
    let outsider = Key::new(62).keypair.public_key();
    let s = stake(vec![even, odd, outsider]);

    // Locked: Core's error, not an unsigned PSBT.
    assert_eq!(process(&w, &covenant_psbt(&s, &even)).unwrap_err(), (-13, LOCKED.to_string()));
    let e = rpc_error(w.call::<Value>("walletpassphrase", &[json!("wrong"), json!(60)]).unwrap_err());
    assert_eq!(e.0, -14, "{}", e.1);

    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(600)]).unwrap();
    let sig_even = covenant_signature(&w, &s, &even);
    let sig_odd = covenant_signature(&w, &s, &odd);
    // A key the wallet does not hold gets no signature (the signer reports "does not maintain").
    let r = process(&w, &covenant_psbt(&s, &outsider)).unwrap();
    assert!(Psbt::from_str(r["psbt"].as_str().unwrap()).unwrap().inputs[0].tap_script_sigs.is_empty());

    // The two covenant signatures and the staker's make a witness Core's interpreter accepts.
    let staker_sig: [u8; 64] = s
        .staker
        .sign_script_path(&s.unbonding, 0, std::slice::from_ref(&s.output), &s.info.unbonding_script())
        .try_into()
        .unwrap();
    let witness =
        unbonding_witness(&[(xonly(&even), sig_even), (xonly(&odd), sig_odd)], &staker_sig, &s.info, &s.committee)
            .unwrap();
    let mut spend = s.unbonding.clone();
    spend.input[0].witness = witness;
    regtest_node::mempool::verify_scripts(&spend, std::slice::from_ref(&s.output)).unwrap();
    stop_and_wait(node);
}

#[test]
fn unlock_expires_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(tmp.path(), &[]);
    let keys = create_covenant_wallet(&node, 2);
    let w = node.wallet("covenant");
    let s = stake(keys.clone());
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(2)]).unwrap();
    let info: Value = w.call("getwalletinfo", &[]).unwrap();
    assert!(info["unlocked_until"].as_u64().unwrap() > 0, "{info}");
    covenant_signature(&w, &s, &keys[0]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(process(&w, &covenant_psbt(&s, &keys[0])).unwrap_err(), (-13, LOCKED.to_string()));
    let info: Value = w.call("getwalletinfo", &[]).unwrap();
    assert_eq!(info["unlocked_until"], 0, "{info}");
    // walletlock relocks at once.
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(600)]).unwrap();
    let _: Value = w.call("walletlock", &[]).unwrap();
    assert_eq!(process(&w, &covenant_psbt(&s, &keys[0])).unwrap_err().0, -13);
}

#[test]
fn encrypted_wallet_survives_a_restart_and_starts_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(tmp.path(), &[]);
    let keys = create_covenant_wallet(&node, 2);
    stop_and_wait(node);
    let file = std::fs::read_to_string(tmp.path().join("regtest/wallets/covenant/wallet.json")).unwrap();
    assert!(!file.contains("tprv"), "private keys are stored encrypted");

    let node = start(tmp.path(), &[]);
    let wallets: Vec<String> = node.rpc.call("listwallets", &[]).unwrap();
    assert_eq!(wallets, ["covenant"], "load_on_startup brings the wallet back");
    let w = node.wallet("covenant");
    let info: Value = w.call("getwalletinfo", &[]).unwrap();
    assert_eq!(info["unlocked_until"], 0, "locked after a restart: {info}");
    let s = stake(keys.clone());
    assert_eq!(process(&w, &covenant_psbt(&s, &keys[1])).unwrap_err(), (-13, LOCKED.to_string()));
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(60)]).unwrap();
    covenant_signature(&w, &s, &keys[1]);
    stop_and_wait(node);
}

#[test]
fn private_keys_never_leave_without_allowprivatekeyexport() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(tmp.path(), &[]);
    create_covenant_wallet(&node, 1);
    let w = node.wallet("covenant");
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(60)]).unwrap();

    let public: Value = w.call("listdescriptors", &[]).unwrap();
    assert!(!public.to_string().contains("tprv") && public.to_string().contains("tpub"), "{public}");
    let refusals = [
        ("listdescriptors", vec![json!(true)]),
        ("dumpprivkey", vec![json!("bcrt1qwm9nuttvwrajqcw9h2t6t9kn3x78cqkleyzaun")]),
        ("dumpwallet", vec![json!(tmp.path().join("dump.txt").display().to_string())]),
    ];
    for (method, params) in &refusals {
        let (code, message) = rpc_error(w.call::<Value>(method, params).unwrap_err());
        assert_eq!(code, -4, "{method}: {message}");
        assert!(message.contains("-allowprivatekeyexport") && message.contains("-walletonly"), "{method}: {message}");
    }
    // Named parameters are checked too.
    let (status, body) = raw_post(
        node.port,
        "/wallet/covenant",
        r#"{"jsonrpc":"2.0","id":1,"method":"listdescriptors","params":{"private":true}}"#,
        Some((USER, PASS)),
    );
    assert_eq!(status, 200);
    assert!(body.contains("-allowprivatekeyexport") && !body.contains("tprv"), "{body}");

    // A backup of the encrypted wallet holds sealed keys only: allowed. An unencrypted one: refused.
    let _: Value = w.call("backupwallet", &[json!(tmp.path().join("covenant.bak").display().to_string())]).unwrap();
    node.call("createwallet", &[json!("plain")]);
    let (code, message) = rpc_error(
        node.wallet("plain")
            .call::<Value>("backupwallet", &[json!(tmp.path().join("plain.bak").display().to_string())])
            .unwrap_err(),
    );
    assert_eq!(code, -4);
    assert!(message.contains("encryptwallet") && message.contains("-allowprivatekeyexport"), "{message}");
    assert!(!tmp.path().join("plain.bak").exists());
    stop_and_wait(node);

    // The operator's explicit choice lets them out.
    let node = start(tmp.path(), &["-allowprivatekeyexport"]);
    let w = node.wallet("covenant");
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(60)]).unwrap();
    let private: Value = w.call("listdescriptors", &[json!(true)]).unwrap();
    assert!(private.to_string().contains("tprv"), "{private}");
    stop_and_wait(node);
}

#[test]
fn chain_rpcs_and_rest_are_refused_and_auth_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(tmp.path(), &[]);
    for (method, params) in [
        ("getblockcount", vec![]),
        ("getblockchaininfo", vec![]),
        ("generatetoaddress", vec![json!(1), json!("bcrt1qwm9nuttvwrajqcw9h2t6t9kn3x78cqkleyzaun")]),
        ("sendrawtransaction", vec![json!("00")]),
        ("getbalance", vec![]),
        ("sendtoaddress", vec![json!("bcrt1qwm9nuttvwrajqcw9h2t6t9kn3x78cqkleyzaun"), json!(1)]),
    ] {
        let (code, message) = rpc_error(node.rpc.call::<Value>(method, &params).unwrap_err());
        assert_eq!(code, -32601, "{method}: {message}");
        assert!(message.contains(method) && message.contains("-walletonly"), "{method}: {message}");
    }
    let help: String = node.rpc.call("help", &[]).unwrap();
    assert!(help.contains("walletprocesspsbt") && !help.contains("getblockcount"), "{help}");
    let uptime: u64 = node.rpc.call("uptime", &[]).unwrap();
    assert!(uptime < 600);

    let (status, _) = raw_post(node.port, "/", r#"{"id":1,"method":"listwallets","params":[]}"#, None);
    assert_eq!(status, 401, "no unauthenticated access");
    let (status, _) = raw_post(node.port, "/", r#"{"id":1,"method":"listwallets","params":[]}"#, Some((USER, "x")));
    assert_eq!(status, 401);
    let rest = std::net::TcpStream::connect(("127.0.0.1", node.port)).map(|mut s| {
        use std::io::{Read, Write};
        write!(s, "GET /rest/chaininfo.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let rest = rest.unwrap();
    assert!(rest.starts_with("HTTP/1.1 404"), "{rest}");
    stop_and_wait(node);
}

#[test]
fn cookie_auth_without_rpcuser() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = ["-walletonly".to_string(), format!("-datadir={}", tmp.path().display()), format!("-rpcport={port}")];
    let mut child = spawn(&args, tmp.path());
    let cookie_path = tmp.path().join("regtest/.cookie");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cookie_path.exists() {
        assert!(Instant::now() < deadline, "no cookie file");
        std::thread::sleep(Duration::from_millis(50));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cookie_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "cookie readable by its owner only");
    }
    let cookie = std::fs::read_to_string(&cookie_path).unwrap();
    let (user, pass) = cookie.split_once(':').unwrap();
    let (status, _) = raw_post(port, "/", r#"{"id":1,"method":"listwallets","params":[]}"#, None);
    assert_eq!(status, 401);
    let (status, body) = raw_post(port, "/", r#"{"id":1,"method":"stop","params":[]}"#, Some((user, pass)));
    assert_eq!(status, 200, "{body}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn startup_refuses_non_loopback_binds_and_chain_options() {
    let tmp = tempfile::tempdir().unwrap();
    let datadir = format!("-datadir={}", tmp.path().display());
    let refused = |extra: &[&str], expect: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_regtest-node"))
            .args(["-walletonly", &datadir, "-rpcuser=u", "-rpcpassword=p"])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        for e in expect {
            assert!(err.contains(e), "{extra:?}: {err}");
        }
    };
    refused(&["-rpcbind=0.0.0.0"], &["-walletonly", "loopback", "-rpcbind=0.0.0.0", "-rpcbind=127.0.0.1"]);
    refused(&["-rpcbind=192.168.1.10:18443"], &["loopback", "-rpcbind=127.0.0.1"]);
    refused(&["-rpcbind=[::]"], &["loopback"]);
    refused(&["-rpcallowip=0.0.0.0/0"], &["-rpcallowip=0.0.0.0/0"]);
    refused(&["-blockinterval=5"], &["-blockinterval"]);
    refused(&["-disablewallet"], &["-disablewallet"]);
    refused(&["-rest"], &["REST"]);
    assert!(!tmp.path().join("regtest/blocks.log").exists());

    // Loopback in either family is fine.
    let node = start(tmp.path(), &["-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1"]);
    stop_and_wait(node);
}

/// When a test fails, stops the node `offline-wallet/start.sh --background` left running, by the
/// pid it wrote (a passing test stops it over RPC).
struct Background {
    pid_file: std::path::PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn offline_wallet_scripts_start_it_and_make_covenant_keys() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../offline-wallet");
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let script = |name: &str, args: &[&str]| {
        std::process::Command::new("bash")
            .arg(scripts.join(name))
            .args(args)
            .env("OFFLINE_WALLET_DATADIR", tmp.path())
            .env("OFFLINE_WALLET_PORT", &port)
            .env("OFFLINE_WALLET_RPCUSER", "signer")
            .env("OFFLINE_WALLET_RPCPASSWORD", "rpc \"pass\\word")
            .env("COVENANT_WALLET_PASSPHRASE", PASSPHRASE)
            .env("REGTEST_NODE_BIN", env!("CARGO_BIN_EXE_regtest-node"))
            .output()
            .unwrap()
    };
    let bad = script("start.sh", &["--port", "notaport"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a number from 1 to 65535"));

    let started = script("start.sh", &["--background"]);
    let _guard = Background { pid_file: tmp.path().join("offline-wallet.pid") };
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let bad = script("create-covenant-keys.sh", &["zero"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("whole number from 1 to 100"));

    let made = script("create-covenant-keys.sh", &["3"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let keys: Vec<String> = serde_json::from_slice(&made.stdout).unwrap();
    let keys: Vec<PublicKey> = keys.iter().map(|k| PublicKey::from_str(k).unwrap()).collect();
    assert_eq!(keys.len(), 3);
    let again = script("create-covenant-keys.sh", &["3"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // The covenant signer's view: the wallet URL, the credentials, the passphrase.
    let auth = bitcoincore_rpc::Auth::UserPass("signer".into(), "rpc \"pass\\word".into());
    let w = Client::new(&format!("http://127.0.0.1:{port}/wallet/covenant"), auth).unwrap();
    let s = stake(keys.clone());
    assert_eq!(process(&w, &covenant_psbt(&s, &keys[2])).unwrap_err().0, -13);
    let _: Value = w.call("walletpassphrase", &[json!(PASSPHRASE), json!(60)]).unwrap();
    covenant_signature(&w, &s, &keys[2]);
    let _: Value = w.call("stop", &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok() {
        assert!(Instant::now() < deadline, "the offline wallet did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn signrawtransactionwithwallet_takes_prevouts_from_prevtxs() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(tmp.path(), &[]);
    node.call("createwallet", &[json!("hot")]);
    let w = node.wallet("hot");
    let addr: String = w.call("getnewaddress", &[json!(""), json!("bech32")]).unwrap();
    let info: Value = w.call("getaddressinfo", &[json!(addr)]).unwrap();
    let spk = bitcoin::ScriptBuf::from_hex(info["scriptPubKey"].as_str().unwrap()).unwrap();
    let prevout = OutPoint::new(Txid::from_byte_array([5; 32]), 1);
    let spend = tx(&[(prevout, bitcoin::Sequence::MAX)], vec![out(40_000, Key::new(63).script())]);
    let hex = bitcoin::consensus::encode::serialize_hex(&spend);

    // No chain: without prevtxs the input is unknown.
    let r: Value = w.call("signrawtransactionwithwallet", &[json!(hex)]).unwrap();
    assert_eq!(r["complete"], false);
    assert_eq!(r["errors"][0]["error"], "Input not found or already spent", "{r}");

    let prevtxs =
        json!([{ "txid": prevout.txid.to_string(), "vout": 1, "scriptPubKey": spk.to_hex_string(), "amount": 0.0005 }]);
    let r: Value = w.call("signrawtransactionwithwallet", &[json!(hex), prevtxs]).unwrap();
    assert_eq!(r["complete"], true, "{r}");
    let signed: Transaction = bitcoin::consensus::encode::deserialize_hex(r["hex"].as_str().unwrap()).unwrap();
    regtest_node::mempool::verify_scripts(&signed, &[out(50_000, spk)]).unwrap();
    stop_and_wait(node);
}
