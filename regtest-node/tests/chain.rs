//! Chain, mempool and reorg behaviour of a real `regtest-node` process over RPC.

mod testing;

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CSV};
use bitcoin::script::Builder;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::taproot::{LeafVersion, TaprootBuilder};
use bitcoin::{Address, Network, OutPoint, Sequence, Witness};
use bitcoincore_rpc::RpcApi;
use testing::*;

#[test]
fn mines_101_blocks_and_spends_a_coinbase() {
    let node = TestNode::start();
    let key = Key::new(1);
    let coinbases = mine_to(&node, &key, 101);
    let info = node.rpc.get_blockchain_info().unwrap();
    assert_eq!(info.blocks, 101);
    assert_eq!(info.chain, Network::Regtest);
    assert_eq!(info.best_block_hash, node.rpc.get_best_block_hash().unwrap());

    // The newest coinbase is immature: Core's reason.
    let (young, young_out) = coinbases[100].clone();
    let mut premature = tx(&[(young, Sequence::MAX)], vec![out(49_0000_0000, key.script())]);
    key.sign_key_path(&mut premature, 0, &[young_out]);
    assert_eq!(test_accept(&node, &premature).as_deref(), Some("bad-txns-premature-spend-of-coinbase"));

    // The first one has 101 confirmations: spendable.
    let (cb, cb_out) = coinbases[0].clone();
    let mut spend = tx(&[(cb, Sequence::MAX)], vec![out(49_9999_0000, key.script())]);
    key.sign_key_path(&mut spend, 0, &[cb_out.clone()]);
    assert_eq!(test_accept(&node, &spend), None);
    let txid = node.rpc.send_raw_transaction(&spend).unwrap();
    assert_eq!(txid, spend.compute_txid());
    assert!(node.rpc.get_raw_mempool().unwrap().contains(&txid));
    let entry = node.rpc.get_mempool_entry(&txid).unwrap();
    assert_eq!(entry.fees.base.to_sat(), 10_000);

    // A double spend of the same coin conflicts in the mempool.
    let mut double = tx(&[(cb, Sequence::MAX)], vec![out(49_9998_0000, key.script())]);
    key.sign_key_path(&mut double, 0, &[cb_out]);
    assert_eq!(test_accept(&node, &double).as_deref(), Some("txn-mempool-conflict"));

    let block = node.rpc.generate_to_address(1, &key.address()).unwrap()[0];
    assert!(node.rpc.get_raw_mempool().unwrap().is_empty());
    let verbose = node.rpc.get_raw_transaction_info(&txid, None).unwrap();
    assert_eq!(verbose.blockhash, Some(block));
    assert_eq!(verbose.confirmations, Some(1));
    let in_block = node.rpc.get_raw_transaction(&txid, Some(&block)).unwrap();
    assert_eq!(in_block, spend);
    // Spent coin is gone from the UTXO set; the new output is there.
    assert!(node.rpc.get_tx_out(&cb.txid, 0, Some(true)).unwrap().is_none());
    let utxo = node.rpc.get_tx_out(&txid, 0, Some(true)).unwrap().unwrap();
    assert_eq!(utxo.confirmations, 1);
    assert_eq!(utxo.value.to_sat(), 49_9999_0000);
    // The coinbase paid subsidy plus the fee.
    let mined = node.rpc.get_block(&block).unwrap();
    assert_eq!(mined.txdata[0].output[0].value.to_sat(), 50_0000_0000 + 10_000);

    // Block and header shapes parse with bitcoincore-rpc.
    let header = node.rpc.get_block_header_info(&block).unwrap();
    assert_eq!(header.height, 102);
    assert_eq!(header.n_tx, 2);
    let info = node.rpc.get_block_info(&block).unwrap();
    assert_eq!(info.tx.len(), 2);
    let v2: serde_json::Value = node.call("getblock", &[block.to_string().into(), 2.into()]);
    assert_eq!(v2["tx"][1]["fee"].as_f64(), Some(0.0001));
    let raw: String = node.call("getblock", &[block.to_string().into(), 0.into()]).as_str().unwrap().into();
    assert_eq!(raw, bitcoin::consensus::encode::serialize_hex(&mined));
}

/// A 2-leaf taproot tree spent through its script paths: valid and invalid signatures, and
/// a CSV-locked leaf rejected one block early and accepted on time.
#[test]
fn taproot_script_paths_and_csv() {
    let node = TestNode::start();
    let miner = Key::new(2);
    let (a, b) = (Key::new(3), Key::new(4));
    let secp = Secp256k1::new();
    const CSV: i64 = 5;
    let leaf_multi = Builder::new()
        .push_x_only_key(&a.xonly())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_x_only_key(&b.xonly())
        .push_opcode(OP_CHECKSIG)
        .into_script();
    let leaf_csv = Builder::new()
        .push_x_only_key(&a.xonly())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(CSV)
        .push_opcode(OP_CSV)
        .into_script();
    let internal = Key::new(5).xonly();
    let info = TaprootBuilder::new()
        .add_leaf(1, leaf_multi.clone())
        .unwrap()
        .add_leaf(1, leaf_csv.clone())
        .unwrap()
        .finalize(&secp, internal)
        .unwrap();
    let tree = Address::p2tr_tweaked(info.output_key(), Network::Regtest);

    let coinbases = mine_to(&node, &miner, 101);
    let (cb, cb_out) = coinbases[0].clone();
    let mut fund =
        tx(&[(cb, Sequence::MAX)], vec![out(10_0000_0000, tree.script_pubkey()), out(39_9990_0000, miner.script())]);
    miner.sign_key_path(&mut fund, 0, &[cb_out]);
    node.rpc.send_raw_transaction(&fund).unwrap();
    node.rpc.generate_to_address(1, &miner.address()).unwrap();
    let funded = OutPoint::new(fund.compute_txid(), 0);
    let prevout = fund.output[0].clone();

    // Leaf 1 (2-of-2): valid signatures are accepted.
    let cb_multi = info.control_block(&(leaf_multi.clone(), LeafVersion::TapScript)).unwrap();
    let mut spend = tx(&[(funded, Sequence::MAX)], vec![out(9_9999_0000, miner.script())]);
    let sig_a = a.sign_script_path(&spend, 0, &[prevout.clone()], &leaf_multi);
    let sig_b = b.sign_script_path(&spend, 0, &[prevout.clone()], &leaf_multi);
    spend.input[0].witness =
        Witness::from_slice(&[sig_b.clone(), sig_a.clone(), leaf_multi.to_bytes(), cb_multi.serialize()]);
    assert_eq!(test_accept(&node, &spend), None);

    // One bad signature: rejected with Bitcoin Core's reason.
    let mut bad_sig = sig_b.clone();
    bad_sig[10] ^= 1;
    let mut forged = spend.clone();
    forged.input[0].witness =
        Witness::from_slice(&[bad_sig, sig_a.clone(), leaf_multi.to_bytes(), cb_multi.serialize()]);
    assert_eq!(
        test_accept(&node, &forged).as_deref(),
        Some("mandatory-script-verify-flag-failed (Invalid Schnorr signature)")
    );
    let (code, message) = rpc_error(node.rpc.send_raw_transaction(&forged).unwrap_err());
    assert_eq!(code, -26);
    assert!(message.starts_with("mandatory-script-verify-flag-failed (Invalid Schnorr signature)"), "{message}");

    // A missing co-signature (empty) fails the final CHECKSIG.
    let mut unsigned = spend.clone();
    unsigned.input[0].witness = Witness::from_slice(&[vec![], sig_a, leaf_multi.to_bytes(), cb_multi.serialize()]);
    assert_eq!(
        test_accept(&node, &unsigned).as_deref(),
        Some("mandatory-script-verify-flag-failed (Script evaluated without error but finished with a false/empty top stack element)")
    );

    // Leaf 2 (CSV 5): the output has 1 confirmation; the next block would give it 2..
    let cb_csv = info.control_block(&(leaf_csv.clone(), LeafVersion::TapScript)).unwrap();
    let mut timed = tx(&[(funded, Sequence::from_height(CSV as u16))], vec![out(9_9999_0000, miner.script())]);
    let sig = a.sign_script_path(&timed, 0, &[prevout.clone()], &leaf_csv);
    timed.input[0].witness = Witness::from_slice(&[sig, leaf_csv.to_bytes(), cb_csv.serialize()]);
    // Funded at height 102; BIP68 allows inclusion at height 102 + 5 = 107, i.e. when the tip is 106.
    node.rpc.generate_to_address(3, &miner.address()).unwrap();
    assert_eq!(node.rpc.get_block_count().unwrap(), 105);
    assert_eq!(test_accept(&node, &timed).as_deref(), Some("non-BIP68-final"));
    let (code, message) = rpc_error(node.rpc.send_raw_transaction(&timed).unwrap_err());
    assert_eq!((code, message.as_str()), (-26, "non-BIP68-final"));
    node.rpc.generate_to_address(1, &miner.address()).unwrap();
    assert_eq!(test_accept(&node, &timed), None);
    let txid = node.rpc.send_raw_transaction(&timed).unwrap();
    let block = node.rpc.generate_to_address(1, &miner.address()).unwrap()[0];
    assert_eq!(node.rpc.get_raw_transaction_info(&txid, None).unwrap().blockhash, Some(block));
}

/// invalidateblock: the tip moves back, disconnected transactions return to the mempool, and
/// new blocks build on the new tip. 1-block and 3-block reorgs.
#[test]
fn reorgs_via_invalidateblock_refill_the_mempool() {
    let node = TestNode::start();
    let key = Key::new(6);
    let coinbases = mine_to(&node, &key, 104);
    let spend = |i: usize| {
        let (op, o) = coinbases[i].clone();
        let mut t = tx(&[(op, Sequence::MAX)], vec![out(49_9990_0000, key.script())]);
        key.sign_key_path(&mut t, 0, &[o]);
        t
    };

    // 1-block reorg.
    let t1 = spend(0);
    node.rpc.send_raw_transaction(&t1).unwrap();
    let b105 = node.rpc.generate_to_address(1, &key.address()).unwrap()[0];
    assert!(node.rpc.get_raw_mempool().unwrap().is_empty());
    node.rpc.invalidate_block(&b105).unwrap();
    assert_eq!(node.rpc.get_block_count().unwrap(), 104);
    assert_eq!(node.rpc.get_raw_mempool().unwrap(), vec![t1.compute_txid()]);
    let tips: serde_json::Value = node.call("getchaintips", &[]);
    assert!(
        tips.as_array().unwrap().iter().any(|t| t["hash"] == b105.to_string() && t["status"] == "invalid"),
        "{tips}"
    );
    let new105 = node.rpc.generate_to_address(1, &key.address()).unwrap()[0];
    assert_ne!(new105, b105);
    assert_eq!(node.rpc.get_block_header(&new105).unwrap().prev_blockhash, block_hash_at(&node, 104));
    assert_eq!(node.rpc.get_raw_transaction_info(&t1.compute_txid(), None).unwrap().blockhash, Some(new105));

    // 3-block reorg: three blocks each confirming one transaction.
    let mut txs = Vec::new();
    let mut old = Vec::new();
    for i in 1..=3 {
        let t = spend(i);
        node.rpc.send_raw_transaction(&t).unwrap();
        old.push(node.rpc.generate_to_address(1, &key.address()).unwrap()[0]);
        txs.push(t.compute_txid());
    }
    assert_eq!(node.rpc.get_block_count().unwrap(), 108);
    node.rpc.invalidate_block(&old[0]).unwrap();
    assert_eq!(node.rpc.get_block_count().unwrap(), 105);
    assert_eq!(node.rpc.get_best_block_hash().unwrap(), new105);
    let mut pool = node.rpc.get_raw_mempool().unwrap();
    pool.sort();
    let mut expected = txs.clone();
    expected.sort();
    assert_eq!(pool, expected);
    // Confirmed outputs of the disconnected blocks are gone from the UTXO set.
    assert!(node.rpc.get_tx_out(&txs[0], 0, Some(false)).unwrap().is_none());
    let new_chain = node.rpc.generate_to_address(4, &key.address()).unwrap();
    assert_eq!(node.rpc.get_block_count().unwrap(), 109);
    assert!(node.rpc.get_raw_mempool().unwrap().is_empty());
    for t in &txs {
        assert_eq!(node.rpc.get_raw_transaction_info(t, None).unwrap().blockhash, Some(new_chain[0]));
    }
    // Reconsidering the old branch does not win: the new chain has more work.
    node.rpc.reconsider_block(&old[0]).unwrap();
    assert_eq!(node.rpc.get_best_block_hash().unwrap(), new_chain[3]);
    let tips: serde_json::Value = node.call("getchaintips", &[]);
    assert!(
        tips.as_array().unwrap().iter().any(|t| t["hash"] == old[2].to_string() && t["status"] == "valid-fork"),
        "{tips}"
    );
    // Unknown blocks get Core's error.
    let (code, msg) = rpc_error(node.rpc.invalidate_block(&dummy_hash()).unwrap_err());
    assert_eq!((code, msg.as_str()), (-5, "Block not found"));
}

/// Chain, invalidations and mempool survive a restart with the datadir kept.
#[test]
fn restart_resumes_chain_and_mempool() {
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start_in(tmp.path(), &[]);
    let key = Key::new(7);
    let coinbases = mine_to(&node, &key, 110);
    let bad = block_hash_at(&node, 110);
    node.rpc.invalidate_block(&bad).unwrap();
    let (op, o) = coinbases[0].clone();
    let mut t = tx(&[(op, Sequence::MAX)], vec![out(49_9990_0000, key.script())]);
    key.sign_key_path(&mut t, 0, &[o]);
    node.rpc.send_raw_transaction(&t).unwrap();
    let tip = node.rpc.get_best_block_hash().unwrap();
    node.stop();

    let node = TestNode::start_in(tmp.path(), &[]);
    assert_eq!(node.rpc.get_block_count().unwrap(), 109);
    assert_eq!(node.rpc.get_best_block_hash().unwrap(), tip);
    assert_eq!(node.rpc.get_raw_mempool().unwrap(), vec![t.compute_txid()]);
    let next = node.rpc.generate_to_address(1, &key.address()).unwrap()[0];
    assert_ne!(next, bad);
    assert_eq!(node.rpc.get_block_count().unwrap(), 110);
    // A killed node (no clean shutdown) also comes back with its blocks.
    drop(node);
    let node = TestNode::start_in(tmp.path(), &[]);
    assert_eq!(node.rpc.get_best_block_hash().unwrap(), next);
}

/// Bitcoin Core's REST endpoint for fast block fetch returns the exact block bytes.
#[test]
fn rest_block_bin_matches_getblock() {
    let node = TestNode::start();
    let key = Key::new(8);
    mine_to(&node, &key, 3);
    let hash = block_hash_at(&node, 2);
    let url = format!("{}/rest/block/{hash}.bin", node.url());
    let (status, body) = http_get(node.port, &format!("/rest/block/{hash}.bin"));
    assert_eq!(status, 200, "{url}");
    let block = node.rpc.get_block(&hash).unwrap();
    assert_eq!(body, bitcoin::consensus::serialize(&block));
    let (status, _) = http_get(node.port, "/rest/block/00.bin");
    assert_eq!(status, 400);
    let (status, body) = http_get(node.port, &format!("/rest/blockhashbyheight/2.hex"));
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap().trim(), hex::encode(bitcoin::consensus::serialize(&hash)));
}

fn http_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = buf[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `-blockinterval` mines on its own, like the seed's bitcoindsim: to `-miningaddress`, or to a
/// fresh address of the loaded wallet.
#[test]
fn blockinterval_mines_by_itself() {
    let key = Key::new(9);
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("-miningaddress={}", key.address());
    let node = TestNode::start_in(tmp.path(), &["-blockinterval=1", &addr]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while node.rpc.get_block_count().unwrap() < 3 {
        assert!(std::time::Instant::now() < deadline, "no blocks mined by -blockinterval=1");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let block = node.rpc.get_block(&block_hash_at(&node, 1)).unwrap();
    assert_eq!(block.txdata[0].output[0].script_pubkey, key.script());
    drop(node);

    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start_in(tmp.path(), &["-blockinterval=1", "-wallet=miner"]);
    while node.rpc.get_block_count().unwrap() < 1 {
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(10),
            "wallet-paid mining stalled"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let balances: serde_json::Value = node.wallet("miner").call("getbalances", &[]).unwrap();
    assert!(balances["mine"]["immature"].as_f64().unwrap() >= 50.0, "{balances}");

    // Without anywhere to pay, the node refuses to start and says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regtest-node"))
        .args([
            format!("-datadir={}", tmp.path().join("x").display()),
            "-blockinterval=1".into(),
            "-nowallet".into(),
            format!("-rpcport={}", free_port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-miningaddress"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
