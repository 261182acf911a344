//! Devnet signing for the dashboard (`[devnet]` in the runtime file, regtest only): the node's
//! wallet is the staker's wallet. Transactions are built with the project's Phase-1 primitives
//! (`staking-cli`'s [`NodeWallet`]); the wallet funds and signs them and keeps its keys.
//!
//! | method | path | body | answer (`data`) |
//! |---|---|---|---|
//! | GET | `/devnet/wallet` | | `wallet`, `staker_pk_hex`, `address`, `balance_sat` |
//! | POST | `/devnet/stake` | `finality_provider_pk_hex`, `staking_value`, `staking_time` | `staking_tx_hash_hex` |
//! | POST | `/devnet/unbonding-request` | `staking_tx_hash_hex` | the `POST /v1/unbonding` body, signed |
//! | POST | `/devnet/withdraw` | `staking_tx_hash_hex` | `withdraw_tx_hash_hex`, `from`, `address` |
//!
//! Errors are the API's `{"errorCode", "message"}`: 400 for a request that cannot be signed
//! (with why and what to do), 403 when the node is not on regtest, 503 when the node or the
//! wallet cannot be asked. The stake is built under the params version of the next block; the
//! page posts the unbonding request to `/v1/unbonding` itself, as it would with a browser wallet.
//! One request is signed at a time, so two stakes never pick the same coins.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use staking_cli::bitcoin::{Txid, XOnlyPublicKey};
use staking_cli::node_wallet::NodeWallet;
use staking_cli::phase1_primitives::GlobalParams;
use staking_cli::WithdrawFrom;

use crate::bitcoind::{Connection, Credentials};

/// `[devnet]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetSection {
    /// The node wallet that holds the staker key (loaded, or created, on first use).
    pub wallet: String,
    /// The global parameters the stakes are built with (the phase1-staking plugin's file).
    pub global_params_file: PathBuf,
    /// Fee of the withdrawal transactions, in satoshis.
    #[serde(default = "default_withdraw_fee")]
    pub withdraw_fee: u64,
}

fn default_withdraw_fee() -> u64 {
    2_000
}

/// What the routes share.
pub struct Devnet {
    conn: Connection,
    wallet: String,
    params: GlobalParams,
    withdraw_fee: u64,
    /// One signing request at a time.
    lock: Mutex<()>,
}

impl Devnet {
    /// Reads the params file (`params_path` resolved by the caller).
    pub fn new(section: &DevnetSection, params_path: &std::path::Path, conn: Connection) -> Result<Devnet> {
        let text = std::fs::read_to_string(params_path).with_context(|| {
            format!(
                "[devnet] global_params_file: cannot read {} (give the plugin's params file)",
                params_path.display()
            )
        })?;
        let params = GlobalParams::parse(&text).map_err(|e| {
            anyhow::anyhow!("[devnet] global_params_file {}: not valid global parameters: {e}", params_path.display())
        })?;
        if section.wallet.is_empty() || section.wallet.contains('/') {
            anyhow::bail!("[devnet] wallet = {:?}: give a wallet name such as \"staker\"", section.wallet);
        }
        Ok(Devnet {
            conn,
            wallet: section.wallet.clone(),
            params,
            withdraw_fee: section.withdraw_fee,
            lock: Mutex::new(()),
        })
    }

    /// The wallet, with the node's current credentials (a cookie changes when the node restarts).
    fn node_wallet(&self) -> Result<NodeWallet, Failure> {
        let (user, pass) = match &self.conn.auth {
            Credentials::UserPass(u, p) => (u.clone(), p.clone()),
            Credentials::CookieFile(path) => {
                let cookie = std::fs::read_to_string(path).map_err(|e| {
                    Failure::unavailable(format!("cannot read the node's cookie file {}: {e}", path.display()))
                })?;
                let (u, p) = cookie.trim().split_once(':').unwrap_or((cookie.trim(), ""));
                (u.to_string(), p.to_string())
            }
        };
        let w = NodeWallet::new(&self.conn.url, Some(&user), Some(&pass), &self.wallet);
        let chain = w.chain().map_err(Failure::from)?;
        if chain != "regtest" {
            return Err(Failure {
                status: StatusCode::FORBIDDEN,
                code: "FORBIDDEN",
                message: format!(
                    "devnet signing runs on regtest only, and the node at {} is on {chain:?}: remove [devnet] from the runtime file",
                    self.conn.url
                ),
            });
        }
        w.ensure_loaded().map_err(Failure::from)?;
        Ok(w)
    }

    fn run<T>(&self, f: impl FnOnce(&NodeWallet) -> Result<T, Failure>) -> Result<T, Failure> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let w = self.node_wallet()?;
        f(&w)
    }
}

/// The devnet routes.
pub fn router<S: Clone + Send + Sync + 'static>(devnet: Arc<Devnet>) -> Router<S> {
    Router::new()
        .route("/devnet/wallet", get(wallet))
        .route("/devnet/stake", post(stake))
        .route("/devnet/unbonding-request", post(unbonding_request))
        .route("/devnet/withdraw", post(withdraw))
        .with_state(devnet)
}

/// An error answer.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Failure {
    fn bad_request(message: impl Into<String>) -> Failure {
        Failure { status: StatusCode::BAD_REQUEST, code: "BAD_REQUEST", message: message.into() }
    }
    fn unavailable(message: impl Into<String>) -> Failure {
        Failure { status: StatusCode::SERVICE_UNAVAILABLE, code: "SERVICE_UNAVAILABLE", message: message.into() }
    }
}

impl From<staking_cli::Error> for Failure {
    fn from(e: staking_cli::Error) -> Failure {
        match e {
            staking_cli::Error::Rpc(_) => Failure::unavailable(e.to_string()),
            _ => Failure::bad_request(e.to_string()),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"errorCode": self.code, "message": self.message}))).into_response()
    }
}

/// Runs `f` on a blocking thread (the wallet calls are blocking RPCs).
async fn blocking<T: Send + 'static>(
    devnet: Arc<Devnet>,
    f: impl FnOnce(&Devnet, &NodeWallet) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(move || devnet.run(|w| f(&devnet, w)))
        .await
        .unwrap_or_else(|e| Err(Failure::unavailable(format!("the signing task failed: {e}"))))
}

fn body<T: DeserializeOwned>(bytes: &Bytes, example: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("the body is not the expected JSON ({e}): send {example}")))
}

fn txid(hex: &str) -> Result<Txid, Failure> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::bad_request(format!(
            "staking_tx_hash_hex {hex:?} is not a transaction hash: give the 64 hex characters of the staking txid"
        )));
    }
    hex.parse().map_err(|_| Failure::bad_request(format!("staking_tx_hash_hex {hex:?} is not a transaction hash")))
}

fn ok(data: Value) -> Response {
    Json(json!({ "data": data })).into_response()
}

async fn wallet(State(d): State<Arc<Devnet>>) -> Result<Response, Failure> {
    blocking(d, |_, w| {
        let key = w.staker_key()?;
        Ok(ok(json!({
            "wallet": w.name(),
            "staker_pk_hex": key.x_only().to_string(),
            "address": key.address,
            "balance_sat": w.balance_sat()?,
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StakeBody {
    finality_provider_pk_hex: String,
    staking_value: u64,
    staking_time: u16,
}

async fn stake(State(d): State<Arc<Devnet>>, bytes: Bytes) -> Result<Response, Failure> {
    let b: StakeBody = body(
        &bytes,
        r#"{"finality_provider_pk_hex": "<64 hex>", "staking_value": <sat>, "staking_time": <blocks, 1 to 65535>}"#,
    )?;
    let fp: XOnlyPublicKey = b.finality_provider_pk_hex.parse().map_err(|_| {
        Failure::bad_request(format!(
            "finality_provider_pk_hex {:?} is not an x-only public key: give the provider's 64-hex btc_pk",
            b.finality_provider_pk_hex
        ))
    })?;
    blocking(d, move |d, w| {
        let next = w.height()? + 1;
        let (_, version) = d.params.for_height(next).ok_or_else(|| {
            Failure::bad_request(format!(
                "no parameters version is active at the next block {next}: staking opens at height {}",
                d.params.versions.first().map(|v| v.activation_height).unwrap_or_default()
            ))
        })?;
        let txid = w.stake(version, &fp, b.staking_value, b.staking_time)?;
        tracing::info!("devnet: staked {} sat for {} blocks: {txid}", b.staking_value, b.staking_time);
        Ok(ok(json!({ "staking_tx_hash_hex": txid.to_string(), "params_version": version.version })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxBody {
    staking_tx_hash_hex: String,
}

async fn unbonding_request(State(d): State<Arc<Devnet>>, bytes: Bytes) -> Result<Response, Failure> {
    let b: TxBody = body(&bytes, r#"{"staking_tx_hash_hex": "<64 hex>"}"#)?;
    let id = txid(&b.staking_tx_hash_hex)?;
    blocking(d, move |d, w| {
        let stake = w.find_stake(&id, &d.params)?;
        let request = w.unbonding_request(&stake)?;
        Ok(ok(serde_json::to_value(request).unwrap_or_default()))
    })
    .await
}

async fn withdraw(State(d): State<Arc<Devnet>>, bytes: Bytes) -> Result<Response, Failure> {
    let b: TxBody = body(&bytes, r#"{"staking_tx_hash_hex": "<64 hex>"}"#)?;
    let id = txid(&b.staking_tx_hash_hex)?;
    blocking(d, move |d, w| {
        let stake = w.find_stake(&id, &d.params)?;
        let sent = w.withdraw(&stake, d.withdraw_fee)?;
        let from = match sent.from {
            WithdrawFrom::Staking => "staking",
            WithdrawFrom::Unbonding => "unbonding",
        };
        tracing::info!("devnet: withdrew {id} from its {from} output: {}", sent.txid);
        Ok(ok(json!({ "withdraw_tx_hash_hex": sent.txid.to_string(), "from": from, "address": sent.address })))
    })
    .await
}
