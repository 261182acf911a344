//! Command-line options in bitcoind's syntax (`-name=value`, `-name`, `-noname`), plus an
//! optional `bitcoin.conf` in the datadir with `name=value` lines.

use anyhow::{bail, Context, Result};
use bitcoin::FeeRate;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Options this node understands; anything else is rejected with a clear error.
const KNOWN: &[&str] = &[
    "regtest",
    "datadir",
    "conf",
    "rpcport",
    "rpcbind",
    "rpcallowip",
    "rpcuser",
    "rpcpassword",
    "blockinterval",
    "miningaddress",
    "wallet",
    "disablewallet",
    "txindex",
    "fallbackfee",
    "minrelaytxfee",
    "listen",
    "server",
    "printtoconsole",
    "debug",
    "daemon",
    "connect",
    "dnsseed",
    "upnp",
    "rest",
    "acceptnonstdtxn",
    "port",
    "bind",
    "zmqpubrawblock",
    "zmqpubrawtx",
    "zmqpubhashblock",
    "zmqpubsequence",
    "fixedseeds",
    "maxtxfee",
    "walletonly",
    "allowprivatekeyexport",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub datadir: PathBuf,
    pub rpc_addr: SocketAddr,
    /// `Some((user, password))` for -rpcuser/-rpcpassword; `None` means cookie auth.
    pub rpc_credentials: Option<(String, String)>,
    /// Seconds between automatically mined blocks; 0 mines only on request.
    pub block_interval: u64,
    pub mining_address: Option<String>,
    pub wallets: Vec<String>,
    pub wallet_enabled: bool,
    pub txindex: bool,
    pub fallback_fee: Option<FeeRate>,
    pub min_relay_fee: FeeRate,
    /// `-walletonly`: an offline signing wallet (no chain, mining, peers or REST; loopback only).
    pub wallet_only: bool,
    /// `-allowprivatekeyexport`: with `-walletonly`, let RPCs hand out private keys.
    pub allow_private_key_export: bool,
}

pub const DEFAULT_RPC_PORT: u16 = 18443;

impl Config {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config> {
        let mut opts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arg in args {
            let (name, value) = parse_arg(&arg)?;
            opts.entry(name).or_default().push(value);
        }
        // The config file (if any) fills in options not given on the command line.
        let datadir = Self::datadir_from(&opts)?;
        let conf_path = match opts.get("conf").and_then(|v| v.last()) {
            Some(p) => datadir.join(p),
            None => datadir.join("bitcoin.conf"),
        };
        if conf_path.exists() {
            let text = std::fs::read_to_string(&conf_path)
                .with_context(|| format!("reading config file {}", conf_path.display()))?;
            for (lineno, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() || line.starts_with('[') {
                    continue;
                }
                let (name, value) = parse_arg(&format!("-{line}"))
                    .with_context(|| format!("{}:{}: bad line {line:?}", conf_path.display(), lineno + 1))?;
                opts.entry(name).or_insert_with(|| vec![value]);
            }
        }
        Self::from_options(datadir, &opts)
    }

    fn datadir_from(opts: &BTreeMap<String, Vec<String>>) -> Result<PathBuf> {
        match opts.get("datadir").and_then(|v| v.last()) {
            Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
            _ => {
                let home = std::env::var_os("HOME").context("no -datadir given and $HOME is not set")?;
                Ok(PathBuf::from(home).join(".bitcoin"))
            }
        }
    }

    fn from_options(datadir: PathBuf, opts: &BTreeMap<String, Vec<String>>) -> Result<Config> {
        let last = |n: &str| opts.get(n).and_then(|v| v.last()).map(String::as_str);
        let flag = |n: &str| last(n).map(|v| v != "0").unwrap_or(false);

        if let Some(v) = last("regtest") {
            if v == "0" {
                bail!("this node only runs regtest: drop -regtest=0");
            }
        }
        let rpc_port = match last("rpcport") {
            Some(p) => p.parse::<u16>().map_err(|_| {
                anyhow::anyhow!("Invalid port specified in -rpcport: '{p}' (use a number from 1 to 65535)")
            })?,
            None => DEFAULT_RPC_PORT,
        };
        let rpc_ip: IpAddr = match last("rpcbind") {
            Some(b) => parse_bind(b, rpc_port)?.ip(),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let rpc_addr = match last("rpcbind") {
            Some(b) if b.contains(':') && !b.starts_with('[') && b.parse::<IpAddr>().is_err() => {
                parse_bind(b, rpc_port)?
            }
            Some(b) if b.starts_with('[') && b.contains("]:") => parse_bind(b, rpc_port)?,
            _ => SocketAddr::new(rpc_ip, rpc_port),
        };
        let rpc_credentials = match (last("rpcuser"), last("rpcpassword")) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u.to_string(), p.to_string())),
            (Some(u), _) if !u.is_empty() => {
                bail!("-rpcuser={u} given without -rpcpassword: set both, or neither to use cookie authentication")
            }
            (_, Some(p)) if !p.is_empty() => {
                bail!("-rpcpassword given without -rpcuser: set both, or neither to use cookie authentication")
            }
            _ => None,
        };
        let block_interval = match last("blockinterval") {
            Some(s) => s.parse::<u64>().map_err(|_| {
                anyhow::anyhow!("Invalid -blockinterval '{s}': give whole seconds (0 mines only on request)")
            })?,
            None => 0,
        };
        let wallet_enabled =
            !(flag("disablewallet") || last("wallet") == Some("0") && opts.get("wallet").map(|v| v.len()) == Some(1));
        let wallets = opts
            .get("wallet")
            .map(|v| v.iter().filter(|w| w.as_str() != "0" && w.as_str() != "1").cloned().collect())
            .unwrap_or_default();
        let fallback_fee = last("fallbackfee").map(|v| parse_fee_rate("fallbackfee", v)).transpose()?;
        let min_relay_fee = match last("minrelaytxfee") {
            Some(v) => parse_fee_rate("minrelaytxfee", v)?,
            None => FeeRate::from_sat_per_kwu(250),
        };
        let wallet_only = flag("walletonly");
        if wallet_only {
            check_wallet_only(opts, rpc_addr, wallet_enabled, block_interval)?;
        }
        Ok(Config {
            datadir,
            rpc_addr,
            rpc_credentials,
            block_interval,
            mining_address: last("miningaddress").map(str::to_string),
            wallets,
            wallet_enabled,
            txindex: last("txindex").map(|v| v != "0").unwrap_or(true),
            fallback_fee: fallback_fee.filter(|f| *f > FeeRate::ZERO),
            min_relay_fee,
            wallet_only,
            allow_private_key_export: flag("allowprivatekeyexport"),
        })
    }

    /// `<datadir>/regtest`, where everything of this chain lives (as bitcoind does).
    pub fn network_dir(&self) -> PathBuf {
        self.datadir.join("regtest")
    }
}

/// What `-walletonly` refuses: anything that listens beyond loopback or needs a chain.
fn check_wallet_only(
    opts: &BTreeMap<String, Vec<String>>,
    rpc_addr: SocketAddr,
    wallet_enabled: bool,
    block_interval: u64,
) -> Result<()> {
    let last = |n: &str| opts.get(n).and_then(|v| v.last()).map(String::as_str);
    if !rpc_addr.ip().is_loopback() {
        bail!(
            "-walletonly listens on loopback only, but -rpcbind={} is not a loopback address: use -rpcbind=127.0.0.1 \
             (or ::1), or drop -rpcbind; reach the wallet from another host through a tunnel, never directly",
            last("rpcbind").unwrap_or_default()
        );
    }
    for allow in opts.get("rpcallowip").into_iter().flatten() {
        let host = allow.split('/').next().unwrap_or_default();
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!("-walletonly accepts RPC from loopback only: drop -rpcallowip={allow}");
        }
    }
    if !wallet_enabled {
        bail!("-walletonly runs the wallet and nothing else: drop -disablewallet / -nowallet");
    }
    if block_interval > 0 || last("miningaddress").is_some() {
        bail!("-walletonly has no chain to mine on: drop -blockinterval and -miningaddress");
    }
    if last("rest").is_some_and(|v| v != "0") {
        bail!("-walletonly serves no REST interface: drop -rest");
    }
    Ok(())
}

/// `-name=value`, `-name` (= "1"), `-noname` (= "0"); one or two leading dashes.
fn parse_arg(arg: &str) -> Result<(String, String)> {
    let body = arg
        .strip_prefix("--")
        .or_else(|| arg.strip_prefix('-'))
        .with_context(|| format!("unexpected argument {arg:?}: options look like -name=value (see -help)"))?;
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n.to_string(), v.to_string()),
        None => (body.to_string(), "1".to_string()),
    };
    let (name, value) = match name.strip_prefix("no") {
        Some(rest) if KNOWN.contains(&rest) && !KNOWN.contains(&name.as_str()) => {
            (rest.to_string(), if value == "0" { "1".into() } else { "0".into() })
        }
        _ => (name, value),
    };
    if !KNOWN.contains(&name.as_str()) {
        bail!("Invalid parameter -{name} (this regtest node accepts: -{})", KNOWN.join(", -"));
    }
    Ok((name, value))
}

fn parse_bind(s: &str, default_port: u16) -> Result<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if s == "localhost" {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), default_port));
    }
    bail!("Invalid -rpcbind address '{s}': give an IP address, optionally with :port")
}

/// Fee rates are given in BTC/kvB, as bitcoind's -fallbackfee and -minrelaytxfee.
fn parse_fee_rate(name: &str, v: &str) -> Result<FeeRate> {
    let amount = bitcoin::Amount::from_str_in(v, bitcoin::Denomination::Bitcoin).map_err(|e| {
        anyhow::anyhow!("Invalid amount for -{name}=<amount>: '{v}' ({e}); give BTC per kvB, e.g. 0.0002")
    })?;
    Ok(FeeRate::from_sat_per_kwu(amount.to_sat() / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<Config> {
        Config::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_bitcoind_syntax() {
        let dir = std::env::temp_dir().join("regtest-node-config-test-none");
        let c = cfg(&[
            "-regtest",
            &format!("-datadir={}", dir.display()),
            "-rpcport=19000",
            "-rpcbind=127.0.0.1",
            "-rpcuser=u",
            "-rpcpassword=p",
            "-blockinterval=10",
            "-nowallet",
            "-fallbackfee=0.0002",
        ])
        .unwrap();
        assert_eq!(c.rpc_addr, "127.0.0.1:19000".parse().unwrap());
        assert_eq!(c.rpc_credentials, Some(("u".into(), "p".into())));
        assert_eq!(c.block_interval, 10);
        assert!(!c.wallet_enabled);
        assert_eq!(c.fallback_fee, Some(FeeRate::from_sat_per_kwu(5000)));
    }

    #[test]
    fn cookie_auth_when_no_user() {
        let c = cfg(&["-regtest", "-datadir=/nonexistent-regtest-node"]).unwrap();
        assert!(c.rpc_credentials.is_none());
        assert_eq!(c.rpc_addr.port(), DEFAULT_RPC_PORT);
    }

    #[test]
    fn bad_options_are_named() {
        let e = cfg(&["-datadir=/x", "-bogus=1"]).unwrap_err().to_string();
        assert!(e.contains("Invalid parameter -bogus"), "{e}");
        let e = cfg(&["-datadir=/x", "-rpcport=abc"]).unwrap_err().to_string();
        assert!(e.contains("-rpcport"), "{e}");
        let e = cfg(&["-datadir=/x", "-blockinterval=soon"]).unwrap_err().to_string();
        assert!(e.contains("-blockinterval"), "{e}");
        let e = cfg(&["-datadir=/x", "-rpcuser=a"]).unwrap_err().to_string();
        assert!(e.contains("without -rpcpassword"), "{e}");
    }

    #[test]
    fn walletonly_is_loopback_only_and_chainless() {
        let c = cfg(&["-datadir=/x", "-walletonly", "-rpcbind=::1", "-allowprivatekeyexport"]).unwrap();
        assert!(c.wallet_only && c.allow_private_key_export && c.wallet_enabled);
        let c = cfg(&["-datadir=/x", "-walletonly", "-rpcbind=localhost", "-rpcallowip=127.0.0.0/8"]).unwrap();
        assert!(c.rpc_addr.ip().is_loopback());
        assert!(!cfg(&["-datadir=/x"]).unwrap().wallet_only);
        let e = cfg(&["-datadir=/x", "-walletonly", "-rpcbind=10.0.0.1"]).unwrap_err().to_string();
        assert!(e.contains("loopback only") && e.contains("-rpcbind=127.0.0.1"), "{e}");
        let e = cfg(&["-datadir=/x", "-walletonly", "-rpcallowip=10.0.0.0/8"]).unwrap_err().to_string();
        assert!(e.contains("drop -rpcallowip=10.0.0.0/8"), "{e}");
        let e = cfg(&["-datadir=/x", "-walletonly", "-miningaddress=bcrt1q"]).unwrap_err().to_string();
        assert!(e.contains("-miningaddress"), "{e}");
        let e = cfg(&["-datadir=/x", "-walletonly", "-nowallet"]).unwrap_err().to_string();
        assert!(e.contains("-disablewallet"), "{e}");
        // A full node may still listen anywhere (unchanged).
        assert!(cfg(&["-datadir=/x", "-rpcbind=0.0.0.0"]).is_ok());
    }
}
