//! The RPC surface itself: authentication (user/password and cookie), malformed requests and
//! Core's error codes, batches, and that nothing crashes the node.

mod testing;

use bitcoincore_rpc::{Auth, Client, RpcApi};
use testing::*;

#[test]
fn malformed_requests_get_core_error_codes() {
    let node = TestNode::start();
    let auth = Some((USER, PASS));
    let port = node.port;

    let (status, body) = raw_post(port, "/", "{not json", auth);
    assert_eq!(status, 500);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32700);

    let (status, body) = raw_post(port, "/", r#"{"id":1,"params":[]}"#, auth);
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"], -32600);

    let (status, body) = raw_post(port, "/", r#"{"id":1,"method":"nosuchmethod","params":[]}"#, auth);
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"], -32601);

    // JSON-RPC 2.0: errors come back with HTTP 200.
    let (status, body) = raw_post(port, "/", r#"{"jsonrpc":"2.0","id":7,"method":"getblockhash","params":[5]}"#, auth);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -8);
    assert_eq!(v["error"]["message"], "Block height out of range");
    assert_eq!(v["id"], 7);

    // Batches answer each request.
    let (status, body) = raw_post(
        port,
        "/",
        r#"[{"id":1,"method":"getblockcount"},{"id":2,"method":"getblockhash","params":["x"]}]"#,
        auth,
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["result"], 0);
    assert_eq!(v[1]["error"]["code"], -3);

    // Named parameters.
    let (_, body) = raw_post(port, "/", r#"{"id":1,"method":"getblockhash","params":{"height":0}}"#, auth);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"], "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206");

    // Bad hex, bad hashes, unknown transactions.
    let e = rpc_error(node.rpc.call::<serde_json::Value>("sendrawtransaction", &["zz".into()]).unwrap_err());
    assert_eq!(e.0, -22);
    let e = rpc_error(node.rpc.call::<serde_json::Value>("getblock", &["abc".into()]).unwrap_err());
    assert_eq!(e, (-8, "blockhash must be of length 64 (not 3, for 'abc')".to_string()));
    let e = rpc_error(node.rpc.call::<serde_json::Value>("getrawtransaction", &["00".repeat(32).into()]).unwrap_err());
    assert_eq!(e.0, -5);
    let e = rpc_error(
        node.rpc.call::<serde_json::Value>("generatetoaddress", &[1.into(), "notanaddress".into()]).unwrap_err(),
    );
    assert_eq!(e, (-5, "Error: Invalid address".to_string()));

    // Wrong password: 401, no body.
    let (status, _) = raw_post(port, "/", r#"{"id":1,"method":"getblockcount"}"#, Some((USER, "wrong")));
    assert_eq!(status, 401);

    // After all that, the node still serves.
    assert_eq!(node.rpc.get_block_count().unwrap(), 0);
}

#[test]
fn cookie_auth_when_no_rpcuser_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = vec!["-regtest".to_string(), format!("-datadir={}", tmp.path().display()), format!("-rpcport={port}")];
    let mut child = spawn(&args, tmp.path());
    let cookie = tmp.path().join("regtest").join(".cookie");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let rpc = loop {
        if cookie.exists() {
            let rpc = Client::new(&format!("http://127.0.0.1:{port}"), Auth::CookieFile(cookie.clone())).unwrap();
            if rpc.get_block_count().is_ok() {
                break rpc;
            }
        }
        assert!(std::time::Instant::now() < deadline, "cookie node did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&cookie).unwrap();
    assert!(text.starts_with("__cookie__:"));
    let _: serde_json::Value = rpc.call("stop", &[]).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(!cookie.exists(), "the cookie is removed on shutdown");
}

#[test]
fn bad_command_line_is_refused_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regtest-node"))
        .args(["-regtest", "-datadir=/tmp/unused-regtest-node", "-rpcport=notaport"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-rpcport"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regtest-node")).args(["-frobnicate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid parameter -frobnicate"));
}

/// Garbage of every shape (bodies, methods, parameter types) never takes the node down.
#[test]
fn garbage_never_crashes_the_node() {
    let node = TestNode::start();
    let methods = [
        "getblock",
        "getblockhash",
        "getblockheader",
        "gettxout",
        "getrawtransaction",
        "sendrawtransaction",
        "testmempoolaccept",
        "generatetoaddress",
        "generateblock",
        "submitblock",
        "invalidateblock",
        "reconsiderblock",
        "getmempoolentry",
        "decoderawtransaction",
        "createwallet",
        "importdescriptors",
        "walletprocesspsbt",
        "fundrawtransaction",
        "sendtoaddress",
        "getrawmempool",
    ];
    let values = [
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
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for i in 0..400 {
        let body = if i % 10 == 0 {
            (0..next(64)).map(|_| (next(94) as u8 + 32) as char).collect::<String>()
        } else {
            let params: Vec<&str> = (0..next(4)).map(|_| values[next(values.len())]).collect();
            format!(r#"{{"id":{i},"method":"{}","params":[{}]}}"#, methods[next(methods.len())], params.join(","))
        };
        let (status, _) = raw_post(node.port, "/", &body, Some((USER, PASS)));
        assert!([200, 400, 404, 500].contains(&status), "status {status} for {body}");
    }
    assert_eq!(node.rpc.get_block_count().unwrap(), 0);
}
