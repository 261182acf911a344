//! The Phase-1 covenant signer: Babylon's legacy `POST /v1/sign-unbonding-tx` API (spec §8.1),
//! every check of spec §8.2 in order, and signing only through an offline wallet's
//! `walletprocesspsbt` (a Bitcoin Core descriptor wallet, or `regtest-node` in wallet mode).
//!
//! One concept per file:
//!
//! * [`config`] — the TOML file (`[btc-config]`, `[btc-signer-config]`, `[server-config]`,
//!   `[metrics-config]`, `[signer-app-config]`), validated with errors naming the field;
//! * [`params`] — the global params file and which covenant keys this process serves;
//! * [`rpc`] — a minimal JSON-RPC 1.0 client (basic auth, optional `/wallet/<name>` path);
//! * [`request`] — decoding the legacy JSON body (malformed fields → 400);
//! * [`chain`] — the [`checks::Chain`] a full node with `-txindex` provides;
//! * [`checks`] — the §8.2 pipeline as a pure function over a [`checks::Chain`];
//! * [`wallet`] — the PSBT, `walletprocesspsbt`, and the returned signature's verification;
//! * [`error`] — the legacy error body (`{"errorCode", "message"}`) and status codes;
//! * [`metrics`] — the legacy Prometheus counters;
//! * [`server`] — the HTTP servers (API and metrics), body limit and timeouts.

pub mod chain;
pub mod checks;
pub mod config;
pub mod error;
pub mod metrics;
pub mod params;
pub mod request;
pub mod rpc;
pub mod server;
pub mod wallet;

pub use checks::{check_signing_request, Approved, Chain, Policy, TxStatus};
pub use config::Config;
pub use request::SignRequest;
