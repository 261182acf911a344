//! `covenant-signer`: the Phase-1 covenant signer service.
//!
//! ```text
//! covenant-signer start --config <config.toml> --params <global-params.json>
//! covenant-signer check --config <config.toml> --params <global-params.json> [--offline]
//! covenant-signer dump-config
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use covenant_signer::chain::BitcoindChain;
use covenant_signer::checks::Policy;
use covenant_signer::config::{self, Config};
use covenant_signer::metrics::Metrics;
use covenant_signer::params;
use covenant_signer::rpc::RpcClient;
use covenant_signer::server::{self, AppState, Signer};
use covenant_signer::wallet::{OfflineWallet, WalletError};
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::GlobalParams;

#[derive(Parser)]
#[command(name = "covenant-signer", version, about = "Phase-1 covenant signer (legacy POST /v1/sign-unbonding-tx API)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Files {
    /// The configuration file (TOML; `covenant-signer dump-config` prints an example).
    #[arg(long, default_value_os_t = default_path("config.toml"))]
    config: PathBuf,
    /// The global params file (global-params.json).
    #[arg(long, default_value_os_t = default_path("global-params.json"))]
    params: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the signer.
    Start(Files),
    /// Validates the config and params and, unless --offline, asks the full node and the wallet
    /// whether they are usable; reports every problem and exits non-zero if there is one.
    Check {
        #[command(flatten)]
        files: Files,
        /// Only validate the files; do not contact the node or the wallet.
        #[arg(long)]
        offline: bool,
    },
    /// Prints an example configuration.
    DumpConfig,
}

fn default_path(file: &str) -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".signer").join(file)
}

/// Config, params and served keys, validated together.
struct Loaded {
    config: Config,
    params: GlobalParams,
}

fn load(files: &Files) -> Result<Loaded, String> {
    let config = Config::load(&files.config).map_err(|e| e.to_string())?;
    let params = params::load(&files.params)?;
    if let Some(keys) = &config.covenant_keys {
        params::check_served_keys(&params, keys)?;
    }
    Ok(Loaded { config, params })
}

fn clients(c: &Config) -> (BitcoindChain, OfflineWallet) {
    let timeout = c.server.write_timeout;
    let chain = BitcoindChain::new(RpcClient::new(&c.full_node.url, &c.full_node.user, &c.full_node.pass, timeout));
    let wallet = OfflineWallet::new(RpcClient::new(&c.wallet.url, &c.wallet.user, &c.wallet.pass, timeout));
    (chain, wallet)
}

fn served_keys(l: &Loaded) -> Vec<PublicKey> {
    l.config.covenant_keys.clone().unwrap_or_else(|| params::all_covenant_keys(&l.params))
}

/// What the wallet says about the keys; `Err` for problems that must stop `check`.
fn wallet_report(wallet: &OfflineWallet, keys: &[PublicKey], explicit: bool) -> (Vec<String>, Vec<String>) {
    let (mut notes, mut problems) = (Vec::new(), Vec::new());
    match wallet.info() {
        Err(e) => {
            problems.push(format!("[btc-signer-config] {e}"));
            return (notes, problems);
        }
        Ok(info) if !info.private_keys_enabled => {
            problems.push(format!(
                "[btc-signer-config] wallet {:?} at {} has private keys disabled: it cannot sign",
                info.name,
                wallet.url()
            ));
            return (notes, problems);
        }
        Ok(info) if info.is_locked() => {
            notes.push(format!(
                "wallet {:?} at {} is locked: signing requests fail until you run walletpassphrase (which keys it holds cannot be checked while locked)",
                info.name,
                wallet.url()
            ));
            return (notes, problems);
        }
        Ok(info) => notes.push(format!("wallet {:?} at {} is unlocked", info.name, wallet.url())),
    }
    match wallet.signable_keys(keys) {
        Err(WalletError::Locked { .. }) => notes.push("the wallet locked itself during the check".into()),
        Err(e) => problems.push(format!("[btc-signer-config] {e}")),
        Ok(signable) => {
            for k in keys {
                if signable.contains(k) {
                    notes.push(format!("the wallet signs for covenant key {k}"));
                } else if explicit {
                    problems.push(format!(
                        "[signer-app-config] covenant-keys lists {k} but the wallet at {} cannot sign for it: import the key or remove it from covenant-keys",
                        wallet.url()
                    ));
                } else {
                    notes.push(format!("the wallet does not hold covenant key {k} (requests for it get 400)"));
                }
            }
            if signable.is_empty() && !explicit {
                problems.push(format!(
                    "the wallet at {} holds none of the params' covenant keys: this signer could sign nothing",
                    wallet.url()
                ));
            }
        }
    }
    (notes, problems)
}

fn check(files: &Files, offline: bool) -> ExitCode {
    let l = match load(files) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("config {}: ok", files.config.display());
    println!(
        "params {}: ok, {} version(s) ({})",
        files.params.display(),
        l.params.versions.len(),
        l.params
            .versions
            .iter()
            .map(|v| format!("v{} from height {}", v.version, v.activation_height))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let keys = served_keys(&l);
    for k in &keys {
        println!("covenant key {k}: params version(s) {:?}", params::versions_of(&l.params, k));
    }
    if offline {
        return ExitCode::SUCCESS;
    }
    let (chain, wallet) = clients(&l.config);
    let mut problems = Vec::new();
    match chain.probe(l.config.network.core_chain()) {
        Ok(d) => println!("full node {}: {d}", chain.rpc().url()),
        Err(e) => problems.push(e),
    }
    let (notes, wp) = wallet_report(&wallet, &keys, l.config.covenant_keys.is_some());
    for n in notes {
        println!("{n}");
    }
    problems.extend(wp);
    for p in &problems {
        eprintln!("error: {p}");
    }
    if problems.is_empty() {
        println!("check passed");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn start(files: &Files) -> Result<(), String> {
    let l = load(files)?;
    let (chain, wallet) = clients(&l.config);
    let keys = served_keys(&l);
    let explicit = l.config.covenant_keys.is_some();
    // The node and the wallet may come up after the signer: only a node that answers wrongly stops it.
    let probe_chain = chain.clone();
    let expected = l.config.network.core_chain();
    match tokio::task::spawn_blocking(move || probe_chain.probe(expected)).await.map_err(|e| e.to_string())? {
        Ok(d) => tracing::info!("full node {}: {d}", chain.rpc().url()),
        Err(e) if e.contains("does not answer") => tracing::warn!("{e}; requests fail with 500 until it answers"),
        Err(e) => return Err(e),
    }
    let probe_wallet = wallet.clone();
    let probe_keys = keys.clone();
    let (notes, problems) = tokio::task::spawn_blocking(move || wallet_report(&probe_wallet, &probe_keys, explicit))
        .await
        .map_err(|e| e.to_string())?;
    for n in notes {
        tracing::info!("{n}");
    }
    for p in problems {
        tracing::warn!("{p}");
    }

    let metrics = Arc::new(Metrics::new());
    let signer = Arc::new(Signer {
        params: l.params,
        policy: Policy {
            max_staking_tx_height: l.config.max_staking_tx_height,
            served_keys: l.config.covenant_keys.clone(),
        },
        chain: Box::new(chain),
        wallet,
        metrics: metrics.clone(),
    });
    let sc = &l.config.server;
    let state = Arc::new(AppState {
        signer,
        metrics: metrics.clone(),
        max_content_length: sc.max_content_length,
        read_timeout: sc.read_timeout,
        write_timeout: sc.write_timeout,
    });
    let (api, api_addr) = server::bind("server-config", &sc.host, sc.port).await?;
    let header_timeout = sc.read_timeout.min(sc.idle_timeout);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(server::serve(api, server::api_router(state), header_timeout));
    let mc = &l.config.metrics;
    if mc.enabled {
        let (m, maddr) = server::bind("metrics-config", &mc.host, mc.port).await?;
        tasks.spawn(server::serve(m, server::metrics_router(metrics), Duration::from_secs(30)));
        tracing::info!("metrics on http://{maddr}/metrics");
    }
    tracing::info!(
        "covenant signer listening on http://{api_addr}{} (serving {})",
        server::SIGN_PATH,
        if explicit {
            keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
        } else {
            "every covenant key the wallet can sign".to_string()
        }
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    tasks.abort_all();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::DumpConfig => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Check { files, offline } => check(&files, offline),
        Command::Start(files) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(start(&files)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
