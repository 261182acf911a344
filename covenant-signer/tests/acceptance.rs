//! The signer as a real process between a real full node and a real offline wallet (both
//! `regtest-node`; the wallet with `-walletonly` when the binary has it): every refusal of §8.2 is
//! a 400 that names the check and signs nothing, a locked wallet is a clear 500 until
//! `walletpassphrase`, and two members' signatures make an unbonding tx the node accepts.

mod testing;

use phase1_primitives::bitcoin::consensus::encode::serialize_hex;
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{Amount, OutPoint, Sequence, TxOut, Txid, XOnlyPublicKey};
use phase1_primitives::sighash::{unbonding_sighash, unbonding_witness, verify_schnorr};
use phase1_primitives::{GlobalParams, ParamsVersion};
use serde_json::{json, Value};
use testing::*;

const STAKER_WALLET: &str = "staker";
const COV_WALLET: &str = "covenant";

/// A full node with a funded staker wallet, an offline wallet node with the covenant keys, and
/// params: v0 = {cov1, cov2 (in the wallet), cov3 (in another wallet)}, quorum 2, depth 2;
/// v1 (activation 100000) = three keys of yet another wallet.
struct Env {
    node: Node,
    wallet_node: Node,
    params_json: String,
    params: GlobalParams,
    cov: [PublicKey; 3],
    v1_keys: Vec<PublicKey>,
}

impl Env {
    fn new(passphrase: Option<&str>) -> Env {
        let node = Node::start();
        node.call("createwallet", json!([STAKER_WALLET]));
        let addr = node.wallet_call(STAKER_WALLET, "getnewaddress", json!([]));
        node.call("generatetoaddress", json!([110, addr]));

        let wallet_node = Node::start_offline_wallet();
        match passphrase {
            None => wallet_node.call("createwallet", json!([COV_WALLET])),
            Some(pw) => {
                let r = wallet_node.call("createwallet", json!([COV_WALLET, false, false, pw]));
                // getnewaddress may need the keys; unlock briefly, then lock again
                wallet_node.wallet_call(COV_WALLET, "walletpassphrase", json!([pw, 60]));
                r
            }
        };
        wallet_node.call("createwallet", json!(["absent"]));
        wallet_node.call("createwallet", json!(["v1"]));
        let cov = [
            wallet_node.new_wallet_key(COV_WALLET),
            wallet_node.new_wallet_key(COV_WALLET),
            wallet_node.new_wallet_key("absent"),
        ];
        if passphrase.is_some() {
            wallet_node.wallet_call(COV_WALLET, "walletlock", json!([]));
        }
        let v1_keys: Vec<PublicKey> = (0..3).map(|_| wallet_node.new_wallet_key("v1")).collect();
        let params_json = json!({"versions": [
            version_json(0, 1, &cov, 2, 2),
            version_json(1, 100_000, &v1_keys, 2, 2),
        ]})
        .to_string();
        let params = GlobalParams::parse(&params_json).unwrap();
        eprintln!(
            "offline wallet: {} ({})",
            wallet_node.url(),
            if wallet_node.wallet_only { "-walletonly" } else { "normal node" }
        );
        Env { node, wallet_node, params_json, params, cov, v1_keys }
    }

    fn v0(&self) -> &ParamsVersion {
        &self.params.versions[0]
    }

    fn signer(&self, extra_app: &str) -> SignerProcess {
        let wallet_url = self.wallet_node.wallet_url(COV_WALLET);
        SignerProcess::start(
            |port, mport| signer_config(&self.node, &wallet_url, port, mport, extra_app),
            &self.params_json,
        )
    }

    /// A 2 BTC stake, 100 blocks, broadcast (not mined).
    fn stake(&self) -> Stake {
        Stake::send(&self.node, STAKER_WALLET, self.v0(), 200_000_000, 100)
    }
}

#[track_caller]
fn assert_refused(answer: (u16, Value), needle: &str) {
    let (status, body) = answer;
    assert_eq!(status, 400, "expected 400 containing {needle:?}, got {status} {body}");
    assert_eq!(body["errorCode"], "BAD_REQUEST", "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

#[track_caller]
fn signature(answer: (u16, Value)) -> [u8; 64] {
    let (status, body) = answer;
    assert_eq!(status, 200, "expected a signature, got {status} {body}");
    hex::decode(body["data"]["signature_hex"].as_str().unwrap()).unwrap().try_into().unwrap()
}

#[test]
fn refusals_sign_nothing_and_two_signatures_unbond() {
    let env = Env::new(None);
    let signer = env.signer("");
    let v0 = env.v0();
    let [cov1, cov2, cov3] = env.cov;

    // unconfirmed (mempool only)
    let stake = env.stake();
    let ub = stake.unbonding_tx(v0);
    assert_refused(signer.post(&stake.request(&ub, &cov1)), "check 3 (staking tx on chain) failed: staking tx");
    assert_refused(signer.post(&stake.request(&ub, &cov1)), "is only in the mempool");
    // one confirmation, depth 2
    env.node.generate(1);
    assert_refused(signer.post(&stake.request(&ub, &cov1)), "check 6 (confirmation depth) failed");
    assert_refused(signer.post(&stake.request(&ub, &cov1)), "has 1 confirmation(s)");
    env.node.generate(1);

    // unknown staking tx
    let ghost = spend(OutPoint { txid: Txid::from_byte_array([0x42; 32]), vout: 0 }, ub.output.clone());
    assert_refused(signer.post(&stake.request(&ghost, &cov1)), "is not known to the full node");
    // staking output that does not match: another stake's pkScript in the request
    let other = env.stake();
    env.node.generate(2);
    let mut req = stake.request(&ub, &cov1);
    req["staking_output_pk_script_hex"] = json!(hex::encode(other.staking_output().script_pubkey.as_bytes()));
    assert_refused(signer.post(&req), "not to the requested staking_output_pk_script_hex");
    // wrong fee
    let mut tx = ub.clone();
    tx.output[0].value = Amount::from_sat(tx.output[0].value.to_sat() - 1000);
    assert_refused(signer.post(&stake.request(&tx, &cov1)), "check 10 (unbonding output) failed");
    // a second output
    let mut tx = ub.clone();
    tx.output.push(TxOut { value: Amount::from_sat(1000), script_pubkey: stake.staking_output().script_pubkey });
    assert_refused(signer.post(&stake.request(&tx, &cov1)), "it has 2 outputs");
    // a different input: another output of the staking tx
    let other_vout = (0..stake.tx.output.len() as u32).find(|v| *v != stake.vout).unwrap();
    let mut tx = ub.clone();
    tx.input[0].previous_output.vout = other_vout;
    assert_refused(signer.post(&stake.request(&tx, &cov1)), &format!("output {other_vout} of staking tx"));
    // version 1
    let mut tx = ub.clone();
    tx.version = Version::ONE;
    assert_refused(
        signer.post(&stake.request(&tx, &cov1)),
        "version is 1; an unbonding tx must have version exactly 2",
    );
    // RBF
    let mut tx = ub.clone();
    tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
    assert_refused(signer.post(&stake.request(&tx, &cov1)), "must not be replaceable");
    // a covenant key of another params version
    assert_refused(signer.post(&stake.request(&ub, &env.v1_keys[0])), "is not in covenant_pks of params version 0");
    // a bad staker signature
    let mut req = stake.request(&ub, &cov1);
    req["staker_unbonding_sig_hex"] = json!(hex::encode(stake.sign_with(&ub, &random_key())));
    assert_refused(signer.post(&req), "check 11 (staker signature) failed");
    // malformed bodies
    assert_refused(signer.post_raw("{\"staking_output_pk_script_hex\": "), "invalid request payload");
    let mut req = stake.request(&ub, &cov1);
    req["covenant_public_key"] = json!("03zz");
    assert_refused(signer.post(&req), "invalid covenant public key");
    req["covenant_public_key"] = json!(cov1.x_only_public_key().0.to_string());
    assert_refused(signer.post(&req), "send the 33-byte compressed key");
    // a body over the limit: declared → 413; streamed (chunked) → 400
    let mut big = stake.request(&ub, &cov1);
    big["padding"] = json!("x".repeat(9000));
    let (status, body) = signer.post(&big);
    assert_eq!(status, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("max-content-length 8192"), "{body}");
    let chunk = "x".repeat(9000);
    let raw = format!(
        "POST /v1/sign-unbonding-tx HTTP/1.1\r\nHost: s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = raw_http(signer.port, raw.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("longer than max-content-length 8192"), "{answer}");
    // a wrong route and method
    let r = minreq::get(signer.url()).send().unwrap();
    assert_eq!(r.status_code, 405);
    let r = minreq::post(format!("http://127.0.0.1:{}/v1/other", signer.port)).send().unwrap();
    assert_eq!(r.status_code, 404);
    assert!(r.as_str().unwrap().contains("NOT_FOUND"));

    // Nothing above reached the wallet.
    let m = signer.metrics();
    assert_eq!(
        metric_value(&m, "signer_wallet_duration_seconds_count"),
        0.0,
        "a refused request reached the wallet\n{m}"
    );
    // Decoded requests count as received (the malformed bodies and the 413/chunked ones do not).
    let refused_decoded = 13.0;
    assert_eq!(metric_value(&m, "signer_received_signing_requests"), refused_decoded, "{m}");
    assert_eq!(metric_value(&m, "signer_failed_signing_requests"), refused_decoded, "{m}");
    assert_eq!(metric_value(&m, "signer_succeeded_signing_requests"), 0.0, "{m}");

    // A key of the version that the wallet does not hold (no covenant-keys configured: 400).
    assert_refused(signer.post(&stake.request(&ub, &cov3)), "wallet does not maintain covenant public key");

    // Happy path: two members sign, the witness makes a transaction the node accepts.
    let staker_sig = stake.staker_sig(&ub);
    let sighash = unbonding_sighash(&ub, &stake.staking_output(), &stake.info.unbonding_script()).unwrap();
    let mut sigs: Vec<(XOnlyPublicKey, [u8; 64])> = Vec::new();
    for key in [cov1, cov2] {
        let sig = signature(signer.post(&stake.request(&ub, &key)));
        let x = key.x_only_public_key().0;
        assert!(verify_schnorr(&sighash, &sig, &x), "signature of {key} verifies");
        sigs.push((x, sig));
    }
    let mut signed = ub.clone();
    signed.input[0].witness = unbonding_witness(&sigs, &staker_sig, &stake.info, v0.committee()).unwrap();
    let accept = env.node.call("testmempoolaccept", json!([[serialize_hex(&signed)]]));
    assert_eq!(accept[0]["allowed"], true, "{accept}");
    let txid = env.node.call("sendrawtransaction", json!([serialize_hex(&signed)]));
    assert_eq!(txid.as_str().unwrap(), signed.compute_txid().to_string());
    env.node.generate(1);
    let mined = env.node.call("getrawtransaction", json!([txid, true]));
    assert!(mined["blockhash"].is_string(), "{mined}");

    let m = signer.metrics();
    assert_eq!(metric_value(&m, "signer_succeeded_signing_requests"), 2.0, "{m}");
    assert_eq!(metric_value(&m, "signer_received_signing_requests"), refused_decoded + 3.0, "{m}");
    assert_eq!(metric_value(&m, "signer_failed_signing_requests"), refused_decoded + 1.0, "{m}");

    // A process serving only cov1 and cov3: cov2 is not its business (400); cov3 is configured but
    // missing from the wallet (an operator problem: 500); cov1 signs.
    let other_stake = other;
    let other_ub = other_stake.unbonding_tx(v0);
    let narrow = env.signer(&format!("covenant-keys = [\"{cov1}\", \"{cov3}\"]"));
    assert_refused(narrow.post(&other_stake.request(&other_ub, &cov2)), "this signer does not serve it");
    let (status, body) = narrow.post(&other_stake.request(&other_ub, &cov3));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errorCode"], "INTERNAL_SERVICE_ERROR");
    assert!(body["message"].as_str().unwrap().contains("wallet does not maintain covenant public key"), "{body}");
    signature(narrow.post(&other_stake.request(&other_ub, &cov1)));

    // The node going away is an internal error, not a refusal.
    drop(env.node);
    let (status, body) = signer.post(&other_stake.request(&other_ub, &cov1));
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cannot reach the full node"), "{body}");
}

#[test]
fn a_locked_wallet_is_a_clear_error_until_walletpassphrase() {
    let env = Env::new(Some("pw"));
    let signer = env.signer("");
    let stake = env.stake();
    env.node.generate(2);
    let ub = stake.unbonding_tx(env.v0());
    let (status, body) = signer.post(&stake.request(&ub, &env.cov[0]));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errorCode"], "INTERNAL_SERVICE_ERROR");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("is locked") && msg.contains("walletpassphrase"), "{msg}");
    // the process is still there and signs once the wallet is unlocked
    env.wallet_node.wallet_call(COV_WALLET, "walletpassphrase", json!(["pw", 60]));
    let sig = signature(signer.post(&stake.request(&ub, &env.cov[0])));
    let h = unbonding_sighash(&ub, &stake.staking_output(), &stake.info.unbonding_script()).unwrap();
    assert!(verify_schnorr(&h, &sig, &env.cov[0].x_only_public_key().0));
    env.wallet_node.wallet_call(COV_WALLET, "walletlock", json!([]));
    let (status, _) = signer.post(&stake.request(&ub, &env.cov[1]));
    assert_eq!(status, 500);
}

fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(signer_binary()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn check_and_start_report_bad_files_and_exit_non_zero() {
    let env = Env::new(None);
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("global-params.json");
    std::fs::write(&params, &env.params_json).unwrap();
    let config = dir.path().join("config.toml");
    let wallet_url = env.wallet_node.wallet_url(COV_WALLET);
    let good = signer_config(&env.node, &wallet_url, free_port(), free_port(), "");
    std::fs::write(&config, &good).unwrap();
    let (c, p) = (config.to_str().unwrap(), params.to_str().unwrap());

    let (ok, out, err) = run_cli(&["check", "--config", c, "--params", p]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("check passed"), "{out}");
    assert!(out.contains(&format!("the wallet signs for covenant key {}", env.cov[0])), "{out}");
    assert!(out.contains(&format!("the wallet does not hold covenant key {}", env.cov[2])), "{out}");

    // a configured key the wallet cannot sign
    std::fs::write(
        &config,
        signer_config(
            &env.node,
            &wallet_url,
            free_port(),
            free_port(),
            &format!("covenant-keys = [\"{}\"]", env.cov[2]),
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(&["check", "--config", c, "--params", p]);
    assert!(!ok);
    assert!(err.contains("covenant-keys lists") && err.contains("cannot sign for it"), "{err}");

    // a configured key in no params version
    let stranger = random_key().public_key(secp());
    std::fs::write(
        &config,
        signer_config(&env.node, &wallet_url, free_port(), free_port(), &format!("covenant-keys = [\"{stranger}\"]")),
    )
    .unwrap();
    for cmd in ["check", "start"] {
        let (ok, _, err) = run_cli(&[cmd, "--config", c, "--params", p]);
        assert!(!ok);
        assert!(err.contains("covenant-keys[0]") && err.contains("not a covenant key of any params version"), "{err}");
    }

    // a typo in the config, a wrong network, a bad params file
    std::fs::write(&config, good.replace("[server-config]\n", "[server-config]\nprot = 1\n")).unwrap();
    let (ok, _, err) = run_cli(&["start", "--config", c, "--params", p]);
    assert!(!ok && err.contains("unknown field `prot`"), "{err}");
    std::fs::write(&config, good.replace("network = \"regtest\"", "network = \"signet\"")).unwrap();
    let (ok, _, err) = run_cli(&["check", "--config", c, "--params", p]);
    assert!(!ok && err.contains("is on chain \"regtest\" but network expects \"signet\""), "{err}");
    std::fs::write(&config, &good).unwrap();
    std::fs::write(&params, env.params_json.replace("\"covenant_quorum\":2", "\"covenant_quorum\":4")).unwrap();
    let (ok, _, err) = run_cli(&["start", "--config", c, "--params", p]);
    assert!(!ok && err.contains("covenant_quorum"), "{err}");
    let (ok, _, err) = run_cli(&["check", "--config", c, "--params", "/nonexistent/params.json"]);
    assert!(!ok && err.contains("cannot read the params file"), "{err}");

    // the wallet unreachable
    std::fs::write(&params, &env.params_json).unwrap();
    std::fs::write(&config, good.replace(&wallet_url, &format!("127.0.0.1:{}/wallet/x", free_port()))).unwrap();
    let (ok, _, err) = run_cli(&["check", "--config", c, "--params", p]);
    assert!(!ok && err.contains("does not answer"), "{err}");

    // dump-config prints a config that parses
    let (ok, out, _) = run_cli(&["dump-config"]);
    assert!(ok);
    covenant_signer::Config::parse(&out).unwrap();
}
