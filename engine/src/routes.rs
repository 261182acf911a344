//! Plugin HTTP routes, served by the engine's axum server. A plugin declares routes in its
//! manifest; each is served under `/plugins/<name><path>` or, for a legacy route, at `<path>`
//! itself (Phase-1's `/v1/...`). The table is read per request from the plugins' current code,
//! so a hot swap changes the routes with the code.
//!
//! - Read routes run concurrently, each in a fresh instance on a blocking thread, on a store
//!   snapshot (never a half-applied block), with the plugin's request fuel and time budget and at
//!   most `max_concurrent_requests` instances at once.
//! - Write routes run one at a time per plugin (the plugin's write lock), on a snapshot taken
//!   under the lock; their `local` writes commit in one batch when the status is below 400.
//! - A trap answers 500, fuel or time exhaustion 503, both with a JSON error; the engine and the
//!   plugin's blocks go on.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::call_context::SnapshotContext;
use crate::live::{Live, Serving};
use crate::metrics::Metrics;
use crate::wasm::{FaultKind, HttpRequest, HttpResponse, Route};

pub struct RouteTable {
    pub lives: Vec<Arc<Live>>,
    pub metrics: Arc<Metrics>,
}

/// Where a route is served.
pub fn full_path(plugin: &str, r: &Route) -> String {
    if r.legacy {
        r.path.clone()
    } else {
        format!("/plugins/{plugin}{}", r.path)
    }
}

/// Matches `path` against a route pattern; returns the `{name}` captures.
pub fn match_path(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut ps = pattern.split('/');
    let mut xs = path.split('/');
    loop {
        match (ps.next(), xs.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(x)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if x.is_empty() {
                        return None;
                    }
                    params.push((name.to_string(), percent_decode(x)));
                } else if p != x {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

fn percent_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={}", s.replace('+', "%2B")))
        .ok()
        .and_then(|mut v| v.pop())
        .map_or_else(|| s.to_string(), |(_, v)| v)
}

/// Refuses two plugins claiming the same legacy method and path.
pub fn check_conflicts(lives: &[Arc<Live>]) -> anyhow::Result<()> {
    let mut seen: std::collections::BTreeMap<(String, String), String> = Default::default();
    for live in lives {
        for r in live.serving().manifest.routes.iter().filter(|r| r.legacy) {
            let key = (r.method.clone(), r.path.clone());
            if let Some(other) = seen.insert(key, live.name.clone()) {
                anyhow::bail!(
                    "plugins {other} and {} both claim the legacy route {} {}; remove it from one of them",
                    live.name,
                    r.method,
                    r.path
                );
            }
        }
    }
    Ok(())
}

/// A matched route: the plugin, the code serving it now, the route and its path parameters.
type Found = (Arc<Live>, Arc<Serving>, Route, Vec<(String, String)>);

impl RouteTable {
    fn find(&self, method: &str, path: &str) -> Option<Found> {
        for live in &self.lives {
            let serving = live.serving();
            for r in serving.manifest.routes.iter().filter(|r| r.method == method) {
                if let Some(params) = match_path(&full_path(&live.name, r), path) {
                    let r = r.clone();
                    return Some((live.clone(), serving, r, params));
                }
            }
        }
        None
    }
}

fn json_error(status: StatusCode, msg: String) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

/// The axum fallback: finds the plugin route and runs it.
pub async fn serve(State(table): State<Arc<RouteTable>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let Some((live, serving, route, params)) = table.find(method.as_str(), &path) else {
        return json_error(StatusCode::NOT_FOUND, format!("no route for {method} {path}"));
    };
    let query: Vec<(String, String)> = match uri.query() {
        None => Vec::new(),
        Some(q) => match serde_urlencoded::from_str(q) {
            Ok(q) => q,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("bad query string: {e}")),
        },
    };
    let req =
        HttpRequest { method: method.to_string(), route: route.path.clone(), path, params, query, body: body.to_vec() };
    let t0 = Instant::now();
    let Ok(permit) = live.request_slots.clone().acquire_owned().await else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "the engine is stopping".into());
    };
    let (l, label) = (live.clone(), route.path.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        run(&l, &serving, &route, &req)
    })
    .await;
    let (status, response) = match result {
        Ok(Ok(r)) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (status, r.body).into_response();
            if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
                resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
            }
            (status, resp)
        }
        Ok(Err((status, msg))) => (status, json_error(status, msg)),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}"))),
    };
    table.metrics.observe_http(&live.name, &label, status.as_u16(), t0.elapsed().as_secs_f64());
    response
}

/// Runs one request on the calling (blocking) thread.
pub fn run(
    live: &Live,
    serving: &Serving,
    route: &Route,
    req: &HttpRequest,
) -> Result<HttpResponse, (StatusCode, String)> {
    let store = serving.store.store().clone();
    let _guard = route.write.then(|| live.write_lock.lock().unwrap_or_else(|p| p.into_inner()));
    let snap = store.snapshot();
    let mut ctx = if route.write {
        SnapshotContext::writer(&snap, &serving.store)
    } else {
        SnapshotContext::read_only(&snap, &serving.store)
    };
    let outcome = serving.plugin.handle_request(&mut ctx, req, live.request_budget);
    if let Some(e) = ctx.error.take() {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, format!("reading plugin state: {e}")));
    }
    match outcome {
        Ok((resp, _stats)) => {
            if route.write && resp.status < 400 {
                let writes = ctx.take_writes();
                if let Err(e) = serving.store.commit_local(&writes) {
                    return Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")));
                }
            }
            Ok(resp)
        }
        Err(f) => {
            let first = f.message.lines().next().unwrap_or_default().to_string();
            match f.kind {
                FaultKind::OutOfFuel | FaultKind::Timeout => Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "plugin {}: the handler ran out of its {} budget ({first})",
                        live.name,
                        match f.kind {
                            FaultKind::OutOfFuel => "fuel",
                            _ => "time",
                        }
                    ),
                )),
                FaultKind::Host => Err((StatusCode::SERVICE_UNAVAILABLE, format!("plugin {}: {first}", live.name))),
                _ => Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("plugin {}: the handler failed: {first}", live.name),
                )),
            }
        }
    }
}
