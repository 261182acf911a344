//! The HTTP side: `POST /v1/sign-unbonding-tx` (legacy API, spec §8.1) and `GET /metrics`.
//!
//! * A declared `Content-Length` above `max-content-length` is answered 413 before the body is
//!   read (the legacy `ContentLengthMiddleware`); a body that streams past the limit without
//!   declaring it is a 400 `invalid request payload` (the legacy `MaxBytesReader` makes the JSON
//!   decoder fail).
//! * `read-timeout` bounds reading a request (hyper's header timer, which also closes idle
//!   keep-alive connections after `min(read-timeout, idle-timeout)`, and the body read);
//!   `write-timeout` bounds answering it (checks, node and wallet calls).
//! * The checks and the wallet call are blocking RPC work and run on tokio's blocking pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use phase1_primitives::GlobalParams;
use tokio::net::TcpListener;

use crate::checks::{check_signing_request, Chain, CheckError, Policy};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::request::{parse_request, SignRequest, SignResponseData};
use crate::wallet::{OfflineWallet, WalletError};

/// The legacy route.
pub const SIGN_PATH: &str = "/v1/sign-unbonding-tx";

/// Checks and signs: everything a request needs, without HTTP.
pub struct Signer {
    /// The global params.
    pub params: GlobalParams,
    /// Cut-over height and served keys.
    pub policy: Policy,
    /// The full node.
    pub chain: Box<dyn Chain + Send + Sync>,
    /// The offline wallet.
    pub wallet: OfflineWallet,
    /// Metrics (the wallet's time is recorded here).
    pub metrics: Arc<Metrics>,
}

impl Signer {
    /// Runs the §8.2 checks, then signs through the wallet. Blocking.
    pub fn sign(&self, req: &SignRequest) -> Result<[u8; 64], ApiError> {
        let approved =
            check_signing_request(req, &self.params, &self.policy, self.chain.as_ref()).map_err(|e| match &e {
                CheckError::Invalid { .. } => ApiError::bad_request(e.to_string()),
                CheckError::Chain(_) => ApiError::internal(e.to_string()),
            })?;
        let started = Instant::now();
        let signed = self.wallet.sign(&approved);
        self.metrics.observe_wallet(started.elapsed());
        signed.map_err(|e| match e {
            // With no covenant-keys configured the process serves what the wallet can sign, so a
            // key the wallet lacks is a key it does not serve: the request's fault. A key the
            // operator listed but the wallet lacks is a deployment fault.
            WalletError::MissingKey { .. } if self.policy.served_keys.is_none() => {
                ApiError::bad_request(format!("invalid signing request: {e}"))
            }
            e => ApiError::internal(e.to_string()),
        })
    }
}

/// What the handlers share.
pub struct AppState {
    /// The signer.
    pub signer: Arc<Signer>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest body.
    pub max_content_length: usize,
    /// Time to read the body.
    pub read_timeout: Duration,
    /// Time to answer.
    pub write_timeout: Duration,
}

fn too_large(declared: u64, limit: usize) -> Response {
    let e = ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: ErrorCode::BadRequest,
        message: format!(
            "Request Entity Too Large: the body declares {declared} bytes, more than max-content-length {limit}"
        ),
    };
    e.into_response()
}

async fn sign_handler(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let limit = st.max_content_length;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limit as u64 {
            return too_large(n, limit);
        }
    }
    let body = match tokio::time::timeout(st.read_timeout, Limited::new(req.into_body(), limit).collect()).await {
        Err(_) => {
            let e = ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                code: ErrorCode::BadRequest,
                message: format!("the request body was not received within read-timeout {:?}", st.read_timeout),
            };
            return e.into_response();
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::bad_request(format!(
                "invalid request payload: the body is longer than max-content-length {limit} bytes"
            ))
            .into_response();
        }
        Ok(Err(e)) => {
            return ApiError::bad_request(format!("invalid request payload: cannot read the body: {e}")).into_response()
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    let sreq = match parse_request(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(status = 400, "malformed request: {}", e.message);
            return e.into_response();
        }
    };
    st.metrics.received.inc();
    let started = Instant::now();
    let key = sreq.covenant_public_key;
    let staking_txid = sreq.unbonding_tx.input.first().map(|i| i.previous_output.txid);
    let signer = st.signer.clone();
    let task = tokio::task::spawn_blocking(move || signer.sign(&sreq));
    let outcome = match tokio::time::timeout(st.write_timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(ApiError::internal(format!("the signing task failed: {e}"))),
        Err(_) => Err(ApiError::internal(format!(
            "the request was not answered within write-timeout {:?} (full node or wallet too slow); nothing was returned",
            st.write_timeout
        ))),
    };
    st.metrics.request_seconds.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(sig) => {
            st.metrics.succeeded.inc();
            tracing::info!(%key, staking_txid = ?staking_txid, ms = started.elapsed().as_millis() as u64, "signed");
            Json(serde_json::json!({ "data": SignResponseData { signature_hex: hex::encode(sig) } })).into_response()
        }
        Err(e) => {
            st.metrics.failed.inc();
            if e.status.is_server_error() {
                tracing::error!(%key, staking_txid = ?staking_txid, "{e}");
            } else {
                tracing::info!(%key, staking_txid = ?staking_txid, "refused: {e}");
            }
            e.into_response()
        }
    }
}

async fn not_found(req: Request) -> Response {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::NotFound,
        message: format!("no route {} {}: this service answers POST {SIGN_PATH}", req.method(), req.uri().path()),
    }
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: ErrorCode::BadRequest,
        message: format!("{} is not allowed on {SIGN_PATH}: use POST", req.method()),
    }
    .into_response()
}

/// The API router.
pub fn api_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(SIGN_PATH, post(sign_handler).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(state)
}

/// The metrics router (`GET /metrics`).
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render()) }
            }),
        )
        .fallback(not_found)
}

/// Serves `router` on `listener` forever: HTTP/1.1 with keep-alive, hyper's header-read timer set
/// to `header_timeout` (it also runs while a keep-alive connection waits for its next request).
pub async fn serve(listener: TcpListener, router: Router, header_timeout: Duration) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // e.g. too many open files: back off instead of spinning
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
}

/// Binds `host:port`, naming the config field on failure.
pub async fn bind(section: &str, host: &str, port: u16) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| format!("[{section}] cannot listen on {host}:{port}: {e} (choose a free port or another host)"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}
