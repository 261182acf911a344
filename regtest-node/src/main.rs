//! `regtest-node`: a Bitcoin regtest node whose consensus is Bitcoin Core's own
//! (libbitcoinkernel), speaking bitcoind's RPC, REST and wallet interfaces.

use anyhow::{Context, Result};
use regtest_node::config::Config;
use regtest_node::node::Node;
use regtest_node::rpc::{self, Backend};
use regtest_node::walletonly::WalletOnly;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

const USAGE: &str = "Usage: regtest-node [options]

Options (bitcoind syntax: -name=value, -name, -noname; also read from <datadir>/bitcoin.conf):
  -regtest                 accepted for compatibility (this node only runs regtest)
  -datadir=<dir>           data directory (default ~/.bitcoin); chain data lives in <dir>/regtest
  -rpcport=<port>          JSON-RPC and REST port (default 18443)
  -rpcbind=<addr>[:port]   address to listen on (default 127.0.0.1)
  -rpcuser=<user>          RPC user; with -rpcpassword. Without both, cookie auth via <dir>/regtest/.cookie
  -rpcpassword=<pw>        RPC password
  -blockinterval=<secs>    mine a block every <secs> seconds (0 = only on request; default 0)
  -miningaddress=<addr>    where -blockinterval blocks pay (default: a new address of the first loaded wallet)
  -wallet=<name>           load (or create) this wallet at startup; may repeat
  -nowallet, -disablewallet  no wallet RPCs (the offline signer runs *with* a wallet and without -blockinterval)
  -fallbackfee=<btc/kvB>   fee rate for wallet transactions when none is given (default: disabled, as Core)
  -minrelaytxfee=<btc/kvB> mempool minimum fee rate (default 0.00001)
  -txindex                 index all transactions for getrawtransaction (default on)
  -walletonly              offline signing wallet: wallets only, no chain, mining, peers or REST;
                           loopback RPC only; private keys never leave it (see help over RPC)
  -allowprivatekeyexport   with -walletonly: allow listdescriptors true, dumpprivkey, dumpwallet
                           and backupwallet of an unencrypted wallet
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| matches!(a.as_str(), "-h" | "-help" | "--help" | "-?")) {
        print!("{USAGE}");
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REGTEST_NODE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let config = Config::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<()> {
    let net_dir = config.network_dir();
    let (user, password, cookie) = match &config.rpc_credentials {
        Some((u, p)) => (u.clone(), p.clone(), None),
        None => {
            let password = hex::encode(rand::random::<[u8; 32]>());
            (String::from("__cookie__"), password, Some(net_dir.join(".cookie")))
        }
    };
    let listener = tokio::net::TcpListener::bind(config.rpc_addr).await.with_context(|| {
        format!("Unable to bind to {} (is another node running? choose another -rpcport)", config.rpc_addr)
    })?;
    let block_interval = config.block_interval;
    let mining_address = config.mining_address.clone();
    let started = std::time::Instant::now();
    let backend = if config.wallet_only {
        let host = tokio::task::spawn_blocking(move || WalletOnly::open(config)).await??;
        tracing::info!(
            "-walletonly: {} wallet(s) loaded after {:?}; no chain, mining, peers or REST",
            host.wallets.wallet_names().len(),
            started.elapsed()
        );
        Backend::WalletOnly(Arc::new(Mutex::new(host)))
    } else {
        let node = tokio::task::spawn_blocking(move || Node::open(config)).await??;
        tracing::info!("chain at height {} ({}) after {:?}", node.chain.height(), node.chain.tip(), started.elapsed());
        Backend::Node(Arc::new(Mutex::new(node)))
    };
    if let Some(path) = &cookie {
        regtest_node::atomic_file::write(path, format!("{user}:{password}").as_bytes())?;
    }
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let server = rpc::Server::new(backend.clone(), &user, &password, shutdown_tx.clone());
    if let Backend::Node(node) = &backend {
        if block_interval > 0 {
            start_miner(node.clone(), block_interval, mining_address.as_deref(), shutdown_rx.clone())?;
        }
    }

    match &backend {
        Backend::Node(_) => tracing::info!("RPC and REST listening on {}", listener.local_addr()?),
        Backend::WalletOnly(_) => tracing::info!("RPC listening on {} (wallet only)", listener.local_addr()?),
    }
    let app = server.router();
    let shutdown_signal = async move {
        tokio::select! {
            _ = shutdown_rx.changed() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal).await?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    match &backend {
        Backend::Node(node) => node.lock().unwrap_or_else(|p| p.into_inner()).shutdown()?,
        Backend::WalletOnly(host) => host.lock().unwrap_or_else(|p| p.into_inner()).shutdown()?,
    }
    if let Some(path) = cookie {
        let _ = std::fs::remove_file(path);
    }
    drop(backend);
    Ok(())
}

/// `-blockinterval`: mines a block every `interval` seconds until shutdown.
fn start_miner(
    node: Arc<Mutex<Node>>,
    interval: u64,
    mining_address: Option<&str>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let payout = {
        let mut n = node.lock().unwrap();
        match mining_address {
            Some(a) => rpc::mining::parse_address(a)
                .map_err(|e| anyhow::anyhow!("-miningaddress={a}: {} (give a regtest address, bcrt1…)", e.message))?,
            None => match n.wallets.as_mut().map(|w| w.new_address(None)) {
                Some(Ok(addr)) => addr.script_pubkey(),
                _ => anyhow::bail!(
                    "-blockinterval needs somewhere to pay: give -miningaddress=<addr> or load a wallet with -wallet=<name>"
                ),
            },
        }
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(interval));
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            let node = node.clone();
            let payout = payout.clone();
            let mined = tokio::task::spawn_blocking(move || {
                node.lock().unwrap_or_else(|p| p.into_inner()).generate(1, &payout)
            })
            .await;
            match mined {
                Ok(Ok(h)) => tracing::info!("mined block {}", h[0]),
                Ok(Err(e)) => tracing::error!("mining failed: {e:?}"),
                Err(e) => tracing::error!("mining task failed: {e}"),
            }
        }
    });
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        s.recv().await;
    } else {
        std::future::pending::<()>().await;
    }
}
