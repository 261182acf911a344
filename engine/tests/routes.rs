//! Acceptance for plugin HTTP routes, jobs and the operations endpoints, against a real regtest
//! node and a real `engine run` process with the `api` test plugin.

mod testing;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use testing::*;

/// (status, JSON body) of an HTTP call to the engine.
fn call(e: &Engine, method: &str, path: &str, body: &str) -> (i32, Value) {
    let url = format!("http://127.0.0.1:{}{path}", e.port);
    let req = match method {
        "GET" => minreq::get(url),
        "POST" => minreq::post(url).with_body(body),
        m => panic!("method {m}"),
    };
    let resp = req.with_timeout(30).send().unwrap_or_else(|err| panic!("{method} {path}: {err}\n{}", e.log_tail()));
    let v = serde_json::from_slice(resp.as_bytes()).unwrap_or_else(|_| json!(resp.as_str().unwrap_or("")));
    (resp.status_code, v)
}

fn api(extra: &str) -> PluginDef {
    let mut p = PluginDef::test("api");
    p.extra = format!("{extra}\n");
    p
}

#[test]
fn routes_read_consistent_snapshots_write_serially_and_survive_faulty_handlers() {
    let node = Node::start();
    node.generate(5);
    let mut e = Engine::start(
        &node,
        &[api("limits = { request_timeout_ms = 500, request_fuel = 2_000_000_000, max_concurrent_requests = 8 }")],
    );
    e.wait_synced(&node, "api");

    // The dashboard page is served at / with its files under /dashboard/, beside plugin routes.
    for (path, status, content_type) in [
        ("/", 200, "text/html"),
        ("/dashboard/app.js", 200, "text/javascript"),
        ("/dashboard/style.css", 200, "text/css"),
        ("/dashboard/../Cargo.toml", 404, ""),
        ("/dashboard/nope.js", 404, ""),
    ] {
        let r = minreq::get(format!("http://127.0.0.1:{}{path}", e.port)).with_timeout(10).send().unwrap();
        assert_eq!(r.status_code, status, "GET {path}");
        assert!(r.headers["content-type"].starts_with(content_type), "GET {path}: {:?}", r.headers);
    }
    let page = minreq::get(format!("http://127.0.0.1:{}/", e.port)).send().unwrap();
    assert!(page.as_str().unwrap().contains("/dashboard/app.js"), "the page loads its module");

    // Concurrent readers while blocks arrive one by one: every answer is one block's state.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let bad = Arc::new(AtomicUsize::new(0));
    let port = e.port;
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, seen, bad) = (stop.clone(), seen.clone(), bad.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = minreq::get(format!("http://127.0.0.1:{port}/plugins/api/state")).with_timeout(10).send();
                    let Ok(r) = r else { continue };
                    let v: Value = serde_json::from_slice(r.as_bytes()).unwrap();
                    if r.status_code != 200 || v["a"] != v["b"] {
                        eprintln!("inconsistent answer {}: {v}", r.status_code);
                        bad.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let a: u64 = v["a"].as_str().unwrap().parse().unwrap();
                    seen.lock().unwrap().push((a, v["hash"].as_str().unwrap().to_string()));
                }
            })
        })
        .collect();
    for _ in 0..30 {
        node.generate(1);
        std::thread::sleep(Duration::from_millis(30));
    }
    e.wait_synced(&node, "api");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(bad.load(Ordering::Relaxed), 0, "a reader saw a half-applied block\n{}", e.log_tail());
    let heights: std::collections::BTreeSet<u64> = seen.iter().map(|(h, _)| *h).collect();
    assert!(seen.len() > 100 && heights.len() > 10, "too few reads ({}, {} heights)", seen.len(), heights.len());
    for (h, hash) in &seen {
        assert_eq!(hash, &node.hash_at(*h as u32), "height {h} answered with a hash that is not the block's");
    }
    eprintln!("{} consistent reads over {} heights while 30 blocks arrived", seen.len(), heights.len());

    // A trap answers 500, a loop 503, a store write from a read route 500; the engine goes on.
    let (s, v) = call(&e, "GET", "/plugins/api/trap", "");
    assert_eq!(s, 500, "{v}");
    assert!(v["error"].as_str().unwrap().contains("failed"), "{v}");
    let (s, v) = call(&e, "GET", "/plugins/api/loop", "");
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("budget"), "{v}");
    let (s, v) = call(&e, "GET", "/plugins/api/store-write", "");
    assert_eq!(s, 500, "{v}");
    assert!(v["error"].as_str().unwrap().contains("failed"), "{v}");
    let (s, v) = call(&e, "GET", "/plugins/api/state", "");
    assert_eq!((s, &v["a"]), (200, &json!(node.height().to_string())), "{v}");

    // Legacy paths, params, query, unknown routes.
    assert_eq!(call(&e, "GET", "/v1/legacy-ping", ""), (200, json!({"pong": true})));
    assert_eq!(call(&e, "GET", "/plugins/api/items/ab%20c?q=x+y%26z", ""), (200, json!({"id": "ab c", "q": "x y&z"})));
    let (s, v) = call(&e, "GET", "/plugins/api/nope", "");
    assert_eq!(s, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no route"), "{v}");

    // Write route: 201 commits, 400 commits nothing, concurrent writes are serial (no lost
    // update of the counter).
    assert_eq!(call(&e, "POST", "/plugins/api/notes", "first"), (201, json!({"n": 0})));
    let (s, _) = call(&e, "POST", "/plugins/api/notes", "");
    assert_eq!(s, 400);
    let writers: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..5 {
                    let r = minreq::post(format!("http://127.0.0.1:{port}/plugins/api/notes"))
                        .with_body(format!("note {t}.{i}"))
                        .with_timeout(30)
                        .send()
                        .unwrap();
                    assert_eq!(r.status_code, 201, "{}", r.as_str().unwrap());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (s, v) = call(&e, "GET", "/plugins/api/notes", "");
    assert_eq!(s, 200);
    assert_eq!(v["count"], json!(41), "{v}");
    let notes: std::collections::BTreeSet<&str> =
        v["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(notes.len(), 41, "every note stored once under its own number: {v}");

    // Operations endpoints (after a reorg of depth 2).
    let digest_before = e.status("api")["digest"].clone();
    node.reorg(2, 3);
    e.wait_synced(&node, "api");
    assert_eq!(call(&e, "GET", "/health", "").0, 200);
    let (s, v) = call(&e, "GET", "/ready", "");
    assert_eq!((s, &v["ready"]), (200, &json!(true)), "{v}");
    let metrics = minreq::get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap();
    let text = metrics.as_str().unwrap();
    for needle in [
        format!("engine_plugin_height{{plugin=\"api\"}} {}", node.height()),
        "engine_plugin_at_tip{plugin=\"api\"} 1".to_string(),
        "engine_outbox_depth 0".to_string(),
        "engine_plugin_reorgs_total{plugin=\"api\"} 1".to_string(),
        "engine_plugin_last_undo_depth{plugin=\"api\"} 2".to_string(),
    ] {
        assert!(text.contains(&needle), "/metrics lacks {needle:?}:\n{text}");
    }
    // Local state survived the reorg and survives a restart.
    e.stop();
    e.spawn();
    e.wait_synced(&node, "api");
    assert_eq!(call(&e, "GET", "/plugins/api/notes", "").1["count"], json!(41));
    assert_ne!(e.status("api")["digest"], digest_before, "the chain moved (reorg)");

    e.stop();
}

#[test]
fn jobs_call_out_only_within_their_capabilities() {
    let node = Node::start();
    node.generate(3);
    // The job calls the engine's own /health (allowed) and bitcoind getblockcount (allowed).
    let allowed =
        "config = { job_interval_ms = 100, job_url = \"http://127.0.0.1:PORT/health\", job_bitcoind = true }\n\
                   capabilities = { http = [\"http://127.0.0.1:PORT/\"], bitcoind = [\"getblockcount\"] }";
    let mut e = Engine::configure(&node, &[api(allowed)]);
    let text = std::fs::read_to_string(&e.runtime).unwrap();
    std::fs::write(&e.runtime, text.replace("PORT", &e.port.to_string())).unwrap();
    e.spawn();
    e.wait_synced(&node, "api");
    let v = wait_until(
        "two job runs with both calls answered",
        Duration::from_secs(30),
        || e.log_tail(),
        || {
            let (_, v) = call(&e, "GET", "/plugins/api/job", "");
            (v["runs"].as_u64().unwrap_or(0) >= 2
                && v["last_http"]["status"] == json!(200)
                && v["blockcount"].is_number())
            .then_some(v)
        },
    );
    assert_eq!(v["blockcount"], json!(3), "{v}");
    assert!(v["last_http"]["body"].as_str().unwrap().contains("alive"), "{v}");
    e.stop();

    // Without the capabilities the same calls fail inside the job (the job still runs).
    let denied = "config = { job_interval_ms = 100, job_url = \"http://127.0.0.1:9/\", job_bitcoind = true }\n\
                  capabilities = { http = [\"http://127.0.0.1:1/only-this\"] }";
    let mut e = Engine::start(&node, &[api(denied)]);
    e.wait_synced(&node, "api");
    let v = wait_until(
        "a job run",
        Duration::from_secs(30),
        || e.log_tail(),
        || {
            let (_, v) = call(&e, "GET", "/plugins/api/job", "");
            (v["runs"].as_u64().unwrap_or(0) >= 1).then_some(v)
        },
    );
    assert!(v["last_http"]["error"].as_str().unwrap().contains("not allowed"), "{v}");
    assert!(v["blockcount"]["error"].as_str().unwrap().contains("not allowed"), "{v}");
    e.stop();

    // Two plugins claiming the same legacy route: the engine refuses to start, naming both.
    let mut twin = api("");
    twin.name = "api2".into();
    let e = Engine::configure(&node, &[api(""), twin]);
    let mut child = std::process::Command::new(engine_binary())
        .args(["run", e.runtime.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status =
        wait_until("the engine to refuse the conflicting routes", Duration::from_secs(30), String::new, || {
            child.try_wait().unwrap()
        });
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("both claim the legacy route GET /v1/legacy-ping"), "{err}");
}
