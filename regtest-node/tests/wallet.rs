//! Wallet RPCs of a real node over RPC: funding, spending, raw-transaction funding and signing,
//! encryption, persistence, and the covenant signer's flow: an offline wallet node holding a
//! covenant key (imported as `rawtr(WIF)`) signs a taproot script-path input through
//! `walletprocesspsbt`, and the signature completes a spend the mining node accepts.

mod testing;

use bitcoin::bip32::{DerivationPath, Fingerprint};
use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CHECKSIGVERIFY};
use bitcoin::psbt::Psbt;
use bitcoin::script::Builder;
use bitcoin::secp256k1::{schnorr, Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash, TaprootBuilder};
use bitcoin::{Address, Amount, Network, OutPoint, PrivateKey, Sequence, Witness};
use bitcoincore_rpc::RpcApi;
use serde_json::json;
use std::str::FromStr;
use testing::*;

fn with_checksum(desc: &str) -> String {
    format!("{desc}#{}", miniscript::descriptor::checksum::desc_checksum(desc).unwrap())
}

#[test]
fn wallet_funds_spends_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start_in(tmp.path(), &[]);
    let created = node.call("createwallet", &[json!("alice")]);
    assert_eq!(created["name"], "alice");
    let alice = node.wallet("alice");
    let addr = alice.get_new_address(None, None).unwrap().require_network(Network::Regtest).unwrap();
    assert!(addr.to_string().starts_with("bcrt1p"), "bech32m by default: {addr}");
    node.rpc.generate_to_address(101, &addr).unwrap();
    assert_eq!(alice.get_balance(None, None).unwrap(), Amount::from_btc(50.0).unwrap());
    assert_eq!(alice.list_unspent(None, None, None, None, None).unwrap().len(), 1, "only the mature coinbase");

    // sendtoaddress to an outside key.
    let outside = Key::new(40);
    let txid = alice
        .send_to_address(&outside.address(), Amount::from_btc(1.5).unwrap(), None, None, None, None, None, None)
        .unwrap();
    assert!(node.rpc.get_raw_mempool().unwrap().contains(&txid));

    // fundrawtransaction + signrawtransactionwithwallet.
    let raw = tx(&[], vec![out(2_0000_0000, outside.script())]);
    let funded = alice.fund_raw_transaction(&raw, None, None).unwrap();
    assert!(funded.fee.to_sat() > 0);
    let signed = alice.sign_raw_transaction_with_wallet(&funded.hex, None, None).unwrap();
    assert!(signed.complete, "{:?}", signed.errors);
    let spend: bitcoin::Transaction = bitcoin::consensus::deserialize(&signed.hex).unwrap();
    node.rpc.send_raw_transaction(&spend).unwrap();

    node.rpc.generate_to_address(1, &addr).unwrap();
    assert!(node.rpc.get_raw_mempool().unwrap().is_empty());
    let paid_out = node.rpc.get_tx_out(&txid, 0, Some(false)).unwrap().map(|o| o.value);
    let paid_out2 = node.rpc.get_tx_out(&txid, 1, Some(false)).unwrap().map(|o| o.value);
    assert!([paid_out, paid_out2].contains(&Some(Amount::from_btc(1.5).unwrap())));
    let balance = alice.get_balance(None, None).unwrap();
    // 100 BTC matured (two coinbases) minus 3.5 BTC sent minus fees.
    assert!(balance < Amount::from_btc(96.5).unwrap() && balance > Amount::from_btc(96.49).unwrap(), "{balance}");

    node.stop();
    let node = TestNode::start_in(tmp.path(), &[]);
    let loaded = node.call("loadwallet", &[json!("alice")]);
    assert_eq!(loaded["name"], "alice");
    assert_eq!(node.wallet("alice").get_balance(None, None).unwrap(), balance);
    let e = rpc_error(node.rpc.call::<serde_json::Value>("loadwallet", &[json!("alice")]).unwrap_err());
    assert_eq!(e.0, -35);
    let e = rpc_error(node.wallet("nobody").get_balance(None, None).unwrap_err());
    assert_eq!(e.0, -18);
}

#[test]
fn offline_wallet_signs_a_covenant_script_path_like_the_covenant_signer() {
    let secp = Secp256k1::new();
    let chain = TestNode::start();
    let signer = TestNode::start(); // the "offline wallet": its own node, never mines

    // The covenant key lives only in the signer's encrypted wallet.
    let covenant = Key::new(50);
    let staker = Key::new(51);
    let wif = PrivateKey::new(covenant.keypair.secret_key(), Network::Regtest).to_wif();
    signer.call("createwallet", &[json!("covenant-signer"), json!(false), json!(true), json!("pass")]);
    let w = signer.wallet("covenant-signer");
    signer.call("walletpassphrase", &[json!("pass"), json!(60)]);
    let imported: serde_json::Value = w
        .call("importdescriptors", &[json!([{"desc": with_checksum(&format!("rawtr({wif})")), "timestamp": "now"}])])
        .unwrap();
    assert_eq!(imported[0]["success"], true, "{imported}");
    let _: serde_json::Value = w.call("walletlock", &[]).unwrap();

    // A Babylon-like output: leaf 1 = staker + covenant signatures; leaf 2 = staker only.
    let leaf = Builder::new()
        .push_x_only_key(&staker.xonly())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_x_only_key(&covenant.xonly())
        .push_opcode(OP_CHECKSIG)
        .into_script();
    let other = Builder::new().push_x_only_key(&staker.xonly()).push_opcode(OP_CHECKSIG).into_script();
    let info = TaprootBuilder::new()
        .add_leaf(1, leaf.clone())
        .unwrap()
        .add_leaf(1, other)
        .unwrap()
        .finalize(&secp, Key::new(52).xonly())
        .unwrap();
    let staking_addr = Address::p2tr_tweaked(info.output_key(), Network::Regtest);
    let miner = Key::new(53);
    let coinbases = mine_to(&chain, &miner, 101);
    let (cb, cb_out) = coinbases[0].clone();
    let mut staking = tx(
        &[(cb, Sequence::MAX)],
        vec![out(10_0000_0000, staking_addr.script_pubkey()), out(39_9999_0000, miner.script())],
    );
    miner.sign_key_path(&mut staking, 0, &[cb_out]);
    chain.rpc.send_raw_transaction(&staking).unwrap();
    chain.rpc.generate_to_address(1, &miner.address()).unwrap();

    // The "unbonding" spend, and the PSBT the covenant signer sends to its wallet.
    let prevout = staking.output[0].clone();
    let mut unbonding =
        tx(&[(OutPoint::new(staking.compute_txid(), 0), Sequence::MAX)], vec![out(9_9999_0000, miner.script())]);
    let control = info.control_block(&(leaf.clone(), LeafVersion::TapScript)).unwrap();
    let mut psbt = Psbt::from_unsigned_tx(unbonding.clone()).unwrap();
    psbt.inputs[0].witness_utxo = Some(prevout.clone());
    psbt.inputs[0].sighash_type = Some(TapSighashType::Default.into());
    psbt.inputs[0].tap_scripts.insert(control.clone(), (leaf.clone(), LeafVersion::TapScript));
    psbt.inputs[0]
        .bip32_derivation
        .insert(covenant.keypair.public_key(), (Fingerprint::default(), DerivationPath::master()));

    // Locked wallet: Core's error.
    let e = rpc_error(
        w.call::<serde_json::Value>("walletprocesspsbt", &[json!(psbt.to_string()), json!(true), json!("DEFAULT")])
            .unwrap_err(),
    );
    assert_eq!(e.0, -13, "{}", e.1);
    let e =
        rpc_error(signer.rpc.call::<serde_json::Value>("walletpassphrase", &[json!("wrong"), json!(60)]).unwrap_err());
    assert_eq!(e.0, -14);
    signer.call("walletpassphrase", &[json!("pass"), json!(60)]);
    let res: serde_json::Value =
        w.call("walletprocesspsbt", &[json!(psbt.to_string()), json!(true), json!("DEFAULT")]).unwrap();
    assert_eq!(res["complete"], false, "the staker's signature is still missing");
    let signed = Psbt::from_str(res["psbt"].as_str().unwrap()).unwrap();
    let leaf_hash = TapLeafHash::from_script(&leaf, LeafVersion::TapScript);
    let sig = signed.inputs[0].tap_script_sigs.get(&(covenant.xonly(), leaf_hash)).expect("covenant signature present");
    assert_eq!(signed.inputs[0].tap_script_sigs.len(), 1);
    assert_eq!(sig.sighash_type, TapSighashType::Default);
    assert_eq!(sig.to_vec().len(), 64);
    let sighash = SighashCache::new(&unbonding)
        .taproot_script_spend_signature_hash(0, &Prevouts::All(&[prevout.clone()]), leaf_hash, TapSighashType::Default)
        .unwrap();
    let msg = Message::from_digest(bitcoin::hashes::Hash::to_byte_array(sighash));
    secp.verify_schnorr(&schnorr::Signature::from_slice(&sig.signature.serialize()).unwrap(), &msg, &covenant.xonly())
        .unwrap();

    // The covenant signature plus the staker's completes the spend on the real chain.
    let staker_sig = staker.sign_script_path(&unbonding, 0, &[prevout], &leaf);
    unbonding.input[0].witness = Witness::from_slice(&[sig.to_vec(), staker_sig, leaf.to_bytes(), control.serialize()]);
    assert_eq!(test_accept(&chain, &unbonding), None);
    chain.rpc.send_raw_transaction(&unbonding).unwrap();
}
