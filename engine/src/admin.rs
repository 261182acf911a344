//! The engine's HTTP endpoint (`[engine] listen`): plugin status for anyone, and the
//! authenticated admin operations (upgrade, rewind) that `engine plugin …` uses.
//!
//! Authentication: at start the engine writes a fresh random token to
//! `<data_dir>/admin.token` (mode 0600, like bitcoind's cookie); admin requests carry
//! `Authorization: Bearer <token>`. Whoever can read the data dir can administer the engine.
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/status` | every plugin's [`PluginStatus`] (JSON array) |
//! | GET | `/status/{plugin}` | one plugin |
//! | POST | `/admin/plugins/{plugin}/upgrade?mode=keep\|rebuild` | body: the Wasm component |
//! | POST | `/admin/plugins/{plugin}/rewind?height=H` | |
//! | GET | `/metrics` | Prometheus text format |
//! | GET | `/health` | 200 while the process serves requests |
//! | GET | `/ready` | 200 when every plugin is at the chain tip, else 503 with the ones that are not |
//! | GET | `/`, `/dashboard/{file}` | the staking dashboard ([`crate::dashboard`]) |
//! | GET, POST | `/devnet/…` | with `[devnet]` only: signing with the node's wallet ([`crate::devnet`]) |
//! | any | anything else | the plugins' HTTP routes ([`crate::routes`]) |

use crate::supervisor::{Mode, PluginStatus, Supervisor};
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

pub const TOKEN_FILE: &str = "admin.token";

/// Largest Wasm upload accepted.
const MAX_WASM: usize = 64 << 20;

struct AppState {
    supervisor: Arc<Supervisor>,
    token: String,
    sinks: Vec<Arc<crate::outbox::SinkStats>>,
    store: crate::store::Store,
}

/// Writes a fresh admin token (0600) into `data_dir` and returns it.
pub fn write_token(data_dir: &FsPath) -> Result<String> {
    let mut bytes = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the admin token")?;
    let token = hex::encode(bytes);
    let path = data_dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write;
    let mut f = opts.open(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(token.as_bytes()).and_then(|_| f.sync_all()).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

pub fn token_path(data_dir: &FsPath) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The running HTTP server; stops when dropped or on [`Server::stop`].
pub struct Server {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `listen` (errors here stop the engine's start) and serves in the background.
pub fn serve(
    listen: &str,
    supervisor: Arc<Supervisor>,
    token: String,
    store: crate::store::Store,
    sinks: Vec<Arc<crate::outbox::SinkStats>>,
    devnet: Option<crate::devnet::Devnet>,
) -> Result<Server> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(listen)).with_context(|| {
        format!("[engine] listen = {listen:?}: cannot bind (in use by another engine? pick a free address)")
    })?;
    let addr = listener.local_addr()?;
    let table = Arc::new(crate::routes::RouteTable { lives: supervisor.lives(), metrics: supervisor.metrics.clone() });
    let state = Arc::new(AppState { supervisor, token, sinks, store });
    let plugin_routes = Router::new().fallback(crate::routes::serve).with_state(table);
    let app = Router::new()
        .route("/status", get(status_all))
        .route("/status/{plugin}", get(status_one))
        .route("/admin/plugins/{plugin}/upgrade", post(upgrade))
        .route("/admin/plugins/{plugin}/rewind", post(rewind))
        .layer(DefaultBodyLimit::max(MAX_WASM))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
        .merge(crate::dashboard::router());
    let app = match devnet {
        Some(d) => app.merge(crate::devnet::router(Arc::new(d))),
        None => app,
    };
    let app = app.fallback_service(plugin_routes);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("HTTP server stopped: {e}");
        }
    });
    Ok(Server { addr, runtime: Some(runtime), stop: Some(stop) })
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.supervisor.metrics;
    let (floor, next) = st.store.outbox_bounds();
    m.outbox_depth.set((next - floor) as i64);
    for s in &st.sinks {
        use std::sync::atomic::Ordering::Relaxed;
        let l = [s.name.as_str()];
        m.sink_in_flight.with_label_values(&l).set(s.in_flight.load(Relaxed) as i64);
        m.sink_delivered.with_label_values(&l).set(s.delivered.load(Relaxed) as i64);
        m.sink_up.with_label_values(&l).set(s.up.load(Relaxed) as i64);
        m.sink_reconnects.with_label_values(&l).set(s.reconnects.load(Relaxed) as i64);
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render()).into_response()
}

async fn health() -> Response {
    Json(serde_json::json!({ "status": "alive" })).into_response()
}

async fn ready(State(st): State<Arc<AppState>>) -> Response {
    let behind = st.supervisor.not_ready();
    if behind.is_empty() {
        Json(serde_json::json!({ "ready": true })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "ready": false, "not_at_tip": behind })))
            .into_response()
    }
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn internal(e: anyhow::Error) -> ApiError {
    let msg = format!("{e:#}");
    let code = if msg.contains("no plugin named") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
    ApiError(code, msg)
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        g.len() == state.token.len() && g.bytes().zip(state.token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            format!("admin requests need `Authorization: Bearer <token>` with the token in <data_dir>/{TOKEN_FILE}"),
        ))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(internal)
}

async fn status_all(State(s): State<Arc<AppState>>) -> Result<Json<Vec<PluginStatus>>, ApiError> {
    let sup = s.supervisor.clone();
    Ok(Json(blocking(move || sup.status()).await?))
}

async fn status_one(
    State(s): State<Arc<AppState>>,
    Path(plugin): Path<String>,
) -> Result<Json<PluginStatus>, ApiError> {
    let sup = s.supervisor.clone();
    Ok(Json(blocking(move || sup.plugin_status(&plugin)).await?))
}

#[derive(Deserialize)]
struct UpgradeQuery {
    mode: Option<String>,
}

async fn upgrade(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(plugin): Path<String>,
    Query(q): Query<UpgradeQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let mode: Mode = q.mode.as_deref().unwrap_or("keep").parse().map_err(internal)?;
    if body.is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "the request body must be the plugin's Wasm component".into()));
    }
    let sup = s.supervisor.clone();
    let out = blocking(move || sup.upgrade(&plugin, body.to_vec(), mode)).await?;
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
struct RewindQuery {
    height: Option<u32>,
}

async fn rewind(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(plugin): Path<String>,
    Query(q): Query<RewindQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let Some(height) = q.height else {
        return Err(ApiError(StatusCode::BAD_REQUEST, "rewind needs ?height=H (the height to go back to)".into()));
    };
    let sup = s.supervisor.clone();
    let out = blocking(move || sup.rewind(&plugin, height)).await?;
    Ok(Json(out).into_response())
}
