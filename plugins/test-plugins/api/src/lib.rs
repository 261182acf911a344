//! Test plugin `api`: exercises HTTP routes, off-chain `local` state and the periodic job.
//!
//! Blocks: store `a` and `b` = the height (decimal string) and `hash` = the block hash (hex as
//! explorers show it); a consistent snapshot always has `a == b`. No transactions are delivered
//! (an OP_RETURN prefix nothing carries).
//!
//! Routes (under `/plugins/api` unless legacy):
//! - `GET /state` → `{"a":..,"b":..,"hash":..}` (the stored strings, `null` when absent)
//! - `GET /v1/legacy-ping` (legacy) → `{"pong":true}`
//! - `GET /items/{id}` → `{"id":<id>,"q":<query q or null>}`
//! - `GET /trap` → panics (a trap); `GET /loop` → never returns
//! - `POST /notes` (write) → stores the body under local `note/<n>` (n = local `note-count`, a
//!   big-endian u64, then incremented) and answers 201 `{"n":n}`; an empty body answers 400
//!   `{"error":"empty note"}` and writes nothing
//! - `GET /notes` → `{"count":..,"notes":[..bodies as strings..]}`
//! - `GET /store-write` → calls `store.put` (which the host must trap in a read route)
//! - `GET /job` → `{"runs":..,"last_http":..,"blockcount":..}` from local
//!
//! Config (JSON object, all optional): `job_interval_ms` (default 0: no job); `job_url`: the job
//! GETs it and stores `{"status":..,"body":".."}` (or `{"error":".."}`) under local
//! `job/last-http`; `job_bitcoind`: the job calls `getblockcount` and stores the result (or
//! `{"error":".."}`) under local `job/blockcount`; each run increments local `job/runs` (a
//! big-endian u64); `job_fail`: the job then returns an error (so none of its writes commit).

use guest_sdk::{local, outbound, store, BlockInfo, HttpRequest, HttpResponse, Manifest, Plugin, Tx};
use serde::Deserialize;
use serde_json::{json, Value};

pub struct Api;

/// An OP_RETURN prefix no real transaction carries.
pub const NEVER_MATCHES: &[u8] = b"\xff\xfe-none";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub job_interval_ms: u32,
    pub job_url: Option<String>,
    pub job_bitcoind: bool,
    pub job_fail: bool,
}

impl Config {
    pub fn parse(config: &str) -> Result<Config, String> {
        let c = config.trim();
        if c.is_empty() {
            return Ok(Config::default());
        }
        serde_json::from_str(c).map_err(|e| format!("config: {e}"))
    }
}

fn config() -> Result<Config, String> {
    Config::parse(&guest_sdk::config())
}

fn store_string(key: &str) -> Value {
    store::get(key).map(|v| Value::String(String::from_utf8_lossy(&v).into_owned())).unwrap_or(Value::Null)
}

fn local_json(key: &str) -> Result<Value, String> {
    Ok(local::get_json::<Value>(key)?.unwrap_or(Value::Null))
}

fn note_key(n: u64) -> String {
    format!("note/{n}")
}

fn respond(r: Result<HttpResponse, String>) -> HttpResponse {
    r.unwrap_or_else(|e| HttpResponse::error(500, &e))
}

impl Plugin for Api {
    fn init(config: &str) -> Result<Manifest, String> {
        let c = Config::parse(config)?;
        let mut m = guest_sdk::manifest("api", env!("CARGO_PKG_VERSION"));
        m.op_return_prefixes = vec![NEVER_MATCHES.to_vec()];
        m.routes = vec![
            guest_sdk::route_get("/state"),
            guest_sdk::legacy_get("/v1/legacy-ping"),
            guest_sdk::route_get("/items/{id}"),
            guest_sdk::route_get("/trap"),
            guest_sdk::route_get("/loop"),
            guest_sdk::route_post("/notes", true),
            guest_sdk::route_get("/notes"),
            guest_sdk::route_get("/store-write"),
            guest_sdk::route_get("/job"),
        ];
        m.job_interval_ms = c.job_interval_ms;
        Ok(m)
    }

    fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
        let height = block.height.to_string();
        store::put("a", &height);
        store::put("b", &height);
        store::put("hash", guest_sdk::hash_hex(&block.hash));
        Ok(())
    }

    fn handle_request(req: &HttpRequest) -> HttpResponse {
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/state") => HttpResponse::json(
                200,
                &json!({ "a": store_string("a"), "b": store_string("b"), "hash": store_string("hash") }),
            ),
            ("GET", "/v1/legacy-ping") => HttpResponse::json(200, &json!({ "pong": true })),
            ("GET", "/items/{id}") => {
                HttpResponse::json(200, &json!({ "id": req.param("id"), "q": req.query_param("q") }))
            }
            ("GET", "/trap") => panic!("api plugin: /trap"),
            ("GET", "/loop") => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            ("POST", "/notes") => {
                if req.body.is_empty() {
                    return HttpResponse::error(400, "empty note");
                }
                let n = local::get_u64("note-count");
                local::put(note_key(n), &req.body);
                local::put_u64("note-count", n + 1);
                HttpResponse::json(201, &json!({ "n": n }))
            }
            ("GET", "/notes") => {
                let count = local::get_u64("note-count");
                let notes: Vec<String> = (0..count)
                    .map(|n| {
                        local::get(note_key(n)).map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
                    })
                    .collect();
                HttpResponse::json(200, &json!({ "count": count, "notes": notes }))
            }
            ("GET", "/store-write") => {
                store::put("store-write", "from a read route");
                HttpResponse::json(200, &json!({ "wrote": true }))
            }
            ("GET", "/job") => respond((|| {
                Ok(HttpResponse::json(
                    200,
                    &json!({
                        "runs": local::get_u64("job/runs"),
                        "last_http": local_json("job/last-http")?,
                        "blockcount": local_json("job/blockcount")?,
                    }),
                ))
            })()),
            _ => HttpResponse::not_found(),
        }
    }

    fn run_job() -> Result<(), String> {
        let c = config()?;
        if let Some(url) = &c.job_url {
            let last = match outbound::http_get(url) {
                Ok(reply) => json!({ "status": reply.status, "body": reply.text() }),
                Err(e) => json!({ "error": e }),
            };
            local::put_json("job/last-http", &last)?;
        }
        if c.job_bitcoind {
            let count = outbound::bitcoind("getblockcount", json!([])).unwrap_or_else(|e| json!({ "error": e }));
            local::put_json("job/blockcount", &count)?;
        }
        local::put_u64("job/runs", local::get_u64("job/runs") + 1);
        if c.job_fail {
            return Err("api plugin: job_fail is set".into());
        }
        Ok(())
    }
}

guest_sdk::export_plugin!(Api);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_sdk::testing::{block_info, TestHost};
    use guest_sdk::HttpReply;

    fn body(r: &HttpResponse) -> Value {
        assert_eq!(r.content_type, "application/json");
        r.json_body().unwrap()
    }

    #[test]
    fn manifest_declares_routes_and_the_job() {
        let m = TestHost::new("").init::<Api>().unwrap();
        assert!(!m.all_transactions);
        assert_eq!(m.op_return_prefixes, vec![NEVER_MATCHES.to_vec()]);
        assert_eq!(m.job_interval_ms, 0);
        assert_eq!(m.routes.len(), 9);
        let ping = m.routes.iter().find(|r| r.path == "/v1/legacy-ping").unwrap();
        assert!(ping.legacy && !ping.write);
        let notes: Vec<_> = m.routes.iter().filter(|r| r.path == "/notes").collect();
        assert_eq!(notes.len(), 2);
        assert!(notes.iter().all(|r| r.write == (r.method == "POST") && !r.legacy));
        let m = TestHost::new(r#"{"job_interval_ms":250}"#).init::<Api>().unwrap();
        assert_eq!(m.job_interval_ms, 250);
        assert!(TestHost::new("not json").init::<Api>().is_err());
    }

    #[test]
    fn state_follows_blocks() {
        let mut h = TestHost::new("");
        assert_eq!(body(&h.get::<Api>("/state")), json!({ "a": null, "b": null, "hash": null }));
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        h.apply_block::<Api>(&block_info(7, hash, [0; 32], 0), &[]).unwrap();
        let r = h.get::<Api>("/state");
        assert_eq!(r.status, 200);
        assert_eq!(body(&r), json!({ "a": "7", "b": "7", "hash": format!("{}ab", "00".repeat(31)) }));
        assert!(h.local.is_empty() && h.published.is_empty());
    }

    #[test]
    fn params_query_and_legacy_route() {
        let mut h = TestHost::new("");
        assert_eq!(body(&h.get::<Api>("/items/42?q=hello%20there")), json!({ "id": "42", "q": "hello there" }));
        assert_eq!(body(&h.get::<Api>("/items/x")), json!({ "id": "x", "q": null }));
        assert_eq!(body(&h.get::<Api>("/v1/legacy-ping")), json!({ "pong": true }));
        assert_eq!(h.get::<Api>("/nothing").status, 404);
    }

    #[test]
    fn notes_post_then_get() {
        let mut h = TestHost::new("");
        assert_eq!(body(&h.get::<Api>("/notes")), json!({ "count": 0, "notes": [] }));
        let r = h.post::<Api>("/notes", "first");
        assert_eq!((r.status, body(&r)), (201, json!({ "n": 0 })));
        let r = h.post::<Api>("/notes", "second");
        assert_eq!((r.status, body(&r)), (201, json!({ "n": 1 })));
        let r = h.post::<Api>("/notes", "");
        assert_eq!((r.status, r.text_body()), (400, r#"{"error":"empty note"}"#.to_string()));
        assert_eq!(body(&h.get::<Api>("/notes")), json!({ "count": 2, "notes": ["first", "second"] }));
        assert_eq!(h.local[b"note/1".as_slice()], b"second");
        assert_eq!(h.local.len(), 3, "note/0, note/1, note-count");
        assert!(h.store.is_empty());
    }

    #[test]
    fn store_write_and_trap_routes_trap() {
        let mut h = TestHost::new("");
        let trap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.get::<Api>("/store-write")));
        assert!(trap.is_err());
        assert!(h.store.is_empty());
        let trap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.get::<Api>("/trap")));
        assert!(trap.is_err());
    }

    #[test]
    fn job_records_outbound_replies() {
        let mut h = TestHost::new(r#"{"job_interval_ms":100,"job_url":"http://127.0.0.1:9/x","job_bitcoind":true}"#);
        h.init::<Api>().unwrap();
        assert_eq!(body(&h.get::<Api>("/job")), json!({ "runs": 0, "last_http": null, "blockcount": null }));
        h.stub_http(|call| {
            assert_eq!((call.method.as_str(), call.url.as_str()), ("GET", "http://127.0.0.1:9/x"));
            Ok(HttpReply { status: 202, body: b"accepted".to_vec() })
        });
        h.stub_bitcoind(|method, params| {
            assert_eq!((method, params), ("getblockcount", &json!([])));
            Ok(json!(812))
        });
        h.run_job::<Api>().unwrap();
        h.run_job::<Api>().unwrap();
        assert_eq!(
            body(&h.get::<Api>("/job")),
            json!({ "runs": 2, "last_http": { "status": 202, "body": "accepted" }, "blockcount": 812 })
        );
        // Outbound errors are recorded, the run still counts.
        h.stub_http(|_| Err("not allowed".into()));
        h.stub_bitcoind(|_, _| Err("rpc down".into()));
        h.run_job::<Api>().unwrap();
        assert_eq!(
            body(&h.get::<Api>("/job")),
            json!({ "runs": 3, "last_http": { "error": "not allowed" }, "blockcount": { "error": "rpc down" } })
        );
    }

    #[test]
    fn a_failing_job_commits_nothing() {
        let mut h = TestHost::new(r#"{"job_bitcoind":true,"job_fail":true}"#);
        h.stub_bitcoind(|_, _| Ok(json!(1)));
        assert!(h.run_job::<Api>().is_err());
        assert!(h.local.is_empty());
        assert_eq!(h.bitcoind_calls.len(), 1);
        // Without a configured job the run only counts.
        let mut h = TestHost::new("");
        h.run_job::<Api>().unwrap();
        assert_eq!(body(&h.get::<Api>("/job")), json!({ "runs": 1, "last_http": null, "blockcount": null }));
        assert!(h.http_calls.is_empty() && h.bitcoind_calls.is_empty());
    }
}
