//! The configuration file (TOML), in the legacy covenant signer's layout (spec §8.1):
//!
//! ```toml
//! [btc-config]            # the full node, with -txindex
//! host = "127.0.0.1:8332" # or url = "http://127.0.0.1:8332"
//! user = "user"
//! pass = "pass"
//! network = "mainnet"     # mainnet | testnet3 | testnet4 | signet | regtest | simnet
//!
//! [btc-signer-config]     # the offline wallet (walletprocesspsbt)
//! host = "127.0.0.1:8334/wallet/covenant"
//! user = "user"
//! pass = "pass"
//!
//! [server-config]
//! host = "127.0.0.1"
//! port = 9791
//! read-timeout = 15       # seconds
//! write-timeout = 15
//! idle-timeout = 120
//! max-content-length = 8192
//!
//! [metrics-config]        # the legacy name [metrics] is accepted too
//! enabled = true
//! host = "127.0.0.1"
//! port = 2112
//!
//! [signer-app-config]
//! max-staking-transaction-height = 4294967295
//! covenant-keys = ["03…"] # optional: the keys this process serves (default: all it can sign)
//! ```
//!
//! Unknown fields are errors (a typo must not silently fall back to a default), and every error
//! names the section and field and says how to fix it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use phase1_primitives::bitcoin::secp256k1::PublicKey;
use serde::Deserialize;

/// The example configuration printed by `covenant-signer dump-config`.
pub const EXAMPLE: &str = r#"# covenant-signer configuration (legacy covenant-signer layout).

# The full node the staking transactions are read from. It must run with -txindex=1.
[btc-config]
# RPC address: host:port, or a URL http://host:port
host = "127.0.0.1:8332"
user = "user"
pass = "pass"
# mainnet | testnet3 | testnet4 | signet | regtest | simnet
network = "mainnet"

# The offline wallet that holds the covenant key(s): a bitcoind (or regtest-node -walletonly)
# reachable only from this host. Signing goes through walletprocesspsbt; unlock the wallet with
# walletpassphrase after it starts.
[btc-signer-config]
# host:port, optionally with /wallet/<name> when several wallets are loaded
host = "127.0.0.1:8334/wallet/covenant-signer"
user = "user"
pass = "pass"

[server-config]
host = "127.0.0.1"
port = 9791
# seconds
read-timeout = 15
write-timeout = 15
idle-timeout = 120
# bytes; a larger declared body gets 413
max-content-length = 8192

[metrics-config]
enabled = true
host = "127.0.0.1"
port = 2112

[signer-app-config]
# Stakes included above this height are not signed for (phase-1 → phase-2 cut-over).
max-staking-transaction-height = 4294967295
# The covenant keys (33-byte compressed hex) this process serves. Leave it out to serve every
# key of the params that the wallet can sign.
# covenant-keys = ["03..."]
"#;

/// A configuration problem: the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The Bitcoin network the full node must be on (legacy names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `mainnet`.
    Mainnet,
    /// `testnet3` (or `testnet`).
    Testnet3,
    /// `testnet4`.
    Testnet4,
    /// `signet`.
    Signet,
    /// `regtest`.
    Regtest,
    /// `simnet` (btcd only; not checked against the node).
    Simnet,
}

impl Network {
    fn parse(s: &str) -> Option<Network> {
        Some(match s {
            "mainnet" | "main" | "bitcoin" => Network::Mainnet,
            "testnet3" | "testnet" | "test" => Network::Testnet3,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            "simnet" => Network::Simnet,
            _ => return None,
        })
    }

    /// The `chain` that Bitcoin Core's `getblockchaininfo` reports for this network.
    pub fn core_chain(&self) -> Option<&'static str> {
        match self {
            Network::Mainnet => Some("main"),
            Network::Testnet3 => Some("test"),
            Network::Testnet4 => Some("testnet4"),
            Network::Signet => Some("signet"),
            Network::Regtest => Some("regtest"),
            Network::Simnet => None,
        }
    }

    /// Bitcoin Core's default RPC port.
    pub fn default_rpc_port(&self) -> u16 {
        match self {
            Network::Mainnet => 8332,
            Network::Testnet3 => 18332,
            Network::Testnet4 => 48332,
            Network::Signet => 38332,
            Network::Regtest => 18443,
            Network::Simnet => 18556,
        }
    }
}

/// One bitcoind RPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `http://host:port[/wallet/<name>]`.
    pub url: String,
    /// RPC user.
    pub user: String,
    /// RPC password.
    pub pass: String,
}

/// `[server-config]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listen host (IP or name).
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Time to read a request's headers and body.
    pub read_timeout: Duration,
    /// Time to answer a request once read (checks, node and wallet calls).
    pub write_timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_content_length: usize,
}

/// `[metrics-config]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether `GET /metrics` is served.
    pub enabled: bool,
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[btc-config]`: the full node with `-txindex`.
    pub full_node: NodeConfig,
    /// The network of `[btc-config]`.
    pub network: Network,
    /// `[btc-signer-config]`: the offline wallet.
    pub wallet: NodeConfig,
    /// `[server-config]`.
    pub server: ServerConfig,
    /// `[metrics-config]`.
    pub metrics: MetricsConfig,
    /// `[signer-app-config] max-staking-transaction-height`.
    pub max_staking_tx_height: u32,
    /// `[signer-app-config] covenant-keys`: `None` = every key the wallet can sign.
    pub covenant_keys: Option<Vec<PublicKey>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    btc_config: Option<RawNode>,
    btc_signer_config: Option<RawNode>,
    #[serde(default)]
    server_config: RawServer,
    #[serde(alias = "metrics")]
    metrics_config: Option<RawMetrics>,
    #[serde(default)]
    signer_app_config: RawApp,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    host: Option<String>,
    url: Option<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    pass: String,
    network: Option<String>,
    signer_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct RawServer {
    host: String,
    port: i64,
    read_timeout: i64,
    write_timeout: i64,
    idle_timeout: i64,
    max_content_length: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            host: "127.0.0.1".into(),
            port: 9791,
            read_timeout: 15,
            write_timeout: 15,
            idle_timeout: 120,
            max_content_length: 8192,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct RawMetrics {
    enabled: bool,
    host: String,
    port: i64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { enabled: true, host: "127.0.0.1".into(), port: 2112 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct RawApp {
    max_staking_transaction_height: i64,
    covenant_keys: Option<Vec<String>>,
}

impl Default for RawApp {
    fn default() -> Self {
        RawApp { max_staking_transaction_height: u32::MAX as i64, covenant_keys: None }
    }
}

fn port(section: &str, field: &str, v: i64) -> Result<u16, ConfigError> {
    match u16::try_from(v) {
        Ok(p) if p > 0 => Ok(p),
        _ => err(format!("[{section}] {field} = {v} is not a TCP port: use a number from 1 to 65535")),
    }
}

fn seconds(field: &str, v: i64) -> Result<Duration, ConfigError> {
    if v <= 0 || v > 86_400 {
        return err(format!("[server-config] {field} = {v}: use a number of seconds from 1 to 86400"));
    }
    Ok(Duration::from_secs(v as u64))
}

/// Parses one compressed covenant key (`02…`/`03…`, 66 hex characters).
pub fn parse_compressed_key(s: &str) -> Result<PublicKey, String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("{s:?} is not hex ({e})"))?;
    if bytes.len() != 33 {
        return Err(format!("{s:?} is {} bytes; a covenant key is a 33-byte compressed key (02… or 03…)", bytes.len()));
    }
    PublicKey::from_slice(&bytes).map_err(|e| format!("{s:?} is not a valid secp256k1 point ({e})"))
}

/// `host:port[/wallet/<name>]` or `http://…` → `http://host:port[/wallet/<name>]`.
fn rpc_url(section: &str, raw: &RawNode, network: Network) -> Result<String, ConfigError> {
    let given = match (&raw.host, &raw.url) {
        (Some(_), Some(_)) => return err(format!("[{section}] sets both host and url: keep one of them")),
        (Some(h), None) => h.trim().to_string(),
        (None, Some(u)) => u.trim().to_string(),
        (None, None) => {
            return err(format!(
                "[{section}] host is missing: set host = \"127.0.0.1:{}\" (the node's RPC address, host:port)",
                network.default_rpc_port()
            ))
        }
    };
    if given.is_empty() {
        return err(format!("[{section}] host is empty: set it to the node's RPC address host:port"));
    }
    if given.starts_with("https://") {
        return err(format!(
            "[{section}] host {given:?} uses https, but bitcoind's RPC server speaks plain HTTP: use http:// (and a tunnel or VPN if the link needs encryption)"
        ));
    }
    let rest = given.strip_prefix("http://").unwrap_or(&given);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
        return err(format!("[{section}] host {given:?} is not host:port: write it like \"127.0.0.1:8332\""));
    }
    // host, [v6]:port or host:port
    let (host, port_text) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => return err(format!("[{section}] host {given:?} has an unclosed [ in its IPv6 address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port_text {
        None => network.default_rpc_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 && !host.is_empty() => p,
            _ => {
                return err(format!(
                    "[{section}] host {given:?} is not host:port: write it like \"127.0.0.1:8332\" (port 1 to 65535)"
                ))
            }
        },
    };
    let authority = format!("{host}:{port}");
    let path = path.trim_end_matches('/');
    if !path.is_empty() {
        let name = path.strip_prefix("/wallet/").unwrap_or("");
        if name.is_empty() || name.contains('/') {
            return err(format!(
                "[{section}] host {given:?} has the path {path:?}: only /wallet/<name> is allowed after host:port"
            ));
        }
    }
    Ok(format!("http://{authority}{path}"))
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read the config file {}: {e} (pass --config <file>; `covenant-signer dump-config` prints an example)",
                path.display()
            ))
        })?;
        Config::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            ConfigError(format!("invalid TOML{at}: {msg}"))
        })?;

        let Some(node) = raw.btc_config else {
            return err("[btc-config] is missing: add the full node's host, user, pass and network");
        };
        let network = match node.network.as_deref() {
            None => return err("[btc-config] network is missing: set network = \"mainnet\" (or testnet3, testnet4, signet, regtest)"),
            Some(n) => Network::parse(n).ok_or_else(|| {
                ConfigError(format!(
                    "[btc-config] network = {n:?} is unknown: use mainnet, testnet3, testnet4, signet, regtest or simnet"
                ))
            })?,
        };
        if node.signer_type.is_some() {
            return err(
                "[btc-config] signer-type is not a full-node setting: move it to [btc-signer-config] or remove it",
            );
        }
        let full_node = NodeConfig { url: rpc_url("btc-config", &node, network)?, user: node.user, pass: node.pass };

        let Some(w) = raw.btc_signer_config else {
            return err("[btc-signer-config] is missing: add the offline wallet's host (host:port[/wallet/<name>]), user and pass");
        };
        if let Some(n) = w.network.as_deref() {
            match Network::parse(n) {
                None => {
                    return err(format!(
                        "[btc-signer-config] network = {n:?} is unknown: use mainnet, testnet3, testnet4, signet, regtest or simnet"
                    ))
                }
                Some(wn) if wn != network => {
                    return err(format!(
                        "[btc-signer-config] network = {n:?} differs from [btc-config] network: both must name the same network"
                    ))
                }
                _ => {}
            }
        }
        match w.signer_type.as_deref() {
            None | Some("psbt") => {}
            Some(t) => {
                return err(format!(
                    "[btc-signer-config] signer-type = {t:?} is not supported: this signer only signs through the wallet's walletprocesspsbt (signer-type = \"psbt\"); private keys never leave the wallet"
                ))
            }
        }
        let wallet = NodeConfig { url: rpc_url("btc-signer-config", &w, network)?, user: w.user, pass: w.pass };

        let s = raw.server_config;
        if s.host.trim().is_empty() {
            return err("[server-config] host is empty: set host = \"127.0.0.1\"");
        }
        if s.max_content_length <= 0 || s.max_content_length > 16 * 1024 * 1024 {
            return err(format!(
                "[server-config] max-content-length = {}: use a number of bytes from 1 to 16777216 (legacy default 8192)",
                s.max_content_length
            ));
        }
        let server = ServerConfig {
            host: s.host.trim().to_string(),
            port: port("server-config", "port", s.port)?,
            read_timeout: seconds("read-timeout", s.read_timeout)?,
            write_timeout: seconds("write-timeout", s.write_timeout)?,
            idle_timeout: seconds("idle-timeout", s.idle_timeout)?,
            max_content_length: s.max_content_length as usize,
        };

        let m = raw.metrics_config.unwrap_or_default();
        if m.host.trim().is_empty() {
            return err("[metrics-config] host is empty: set host = \"127.0.0.1\"");
        }
        let metrics = MetricsConfig {
            enabled: m.enabled,
            host: m.host.trim().to_string(),
            port: port("metrics-config", "port", m.port)?,
        };
        if metrics.enabled && metrics.port == server.port && metrics.host == server.host {
            return err(format!(
                "[metrics-config] port {} is also [server-config] port: give the metrics server its own port",
                metrics.port
            ));
        }

        let a = raw.signer_app_config;
        let max_staking_tx_height = u32::try_from(a.max_staking_transaction_height).map_err(|_| {
            ConfigError(format!(
                "[signer-app-config] max-staking-transaction-height = {} is out of range: use 0 to 4294967295",
                a.max_staking_transaction_height
            ))
        })?;
        let covenant_keys = match a.covenant_keys {
            None => None,
            Some(list) if list.is_empty() => {
                return err("[signer-app-config] covenant-keys is an empty list: list the keys to serve, or remove the field to serve every key the wallet can sign")
            }
            Some(list) => {
                let mut keys = Vec::with_capacity(list.len());
                for (i, s) in list.iter().enumerate() {
                    let k = parse_compressed_key(s)
                        .map_err(|e| ConfigError(format!("[signer-app-config] covenant-keys[{i}]: {e}")))?;
                    if keys.contains(&k) {
                        return err(format!("[signer-app-config] covenant-keys[{i}] {s} is listed twice: remove the duplicate"));
                    }
                    keys.push(k);
                }
                Some(keys)
            }
        };
        Ok(Config { full_node, network, wallet, server, metrics, max_staking_tx_height, covenant_keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[btc-config]\nhost = \"127.0.0.1:18443\"\nuser = \"u\"\npass = \"p\"\nnetwork = \"regtest\"\n\
                       [btc-signer-config]\nhost = \"localhost:18444/wallet/cov\"\nuser = \"u\"\npass = \"p\"\n";

    #[test]
    fn example_parses() {
        let c = Config::parse(EXAMPLE).unwrap();
        assert_eq!(c.full_node.url, "http://127.0.0.1:8332");
        assert_eq!(c.wallet.url, "http://127.0.0.1:8334/wallet/covenant-signer");
        assert_eq!(c.server.port, 9791);
        assert_eq!(c.server.max_content_length, 8192);
        assert_eq!(c.max_staking_tx_height, u32::MAX);
        assert!(c.covenant_keys.is_none());
    }

    #[test]
    fn defaults_and_urls() {
        let c = Config::parse(MIN).unwrap();
        assert_eq!(c.full_node.url, "http://127.0.0.1:18443");
        assert_eq!(c.wallet.url, "http://localhost:18444/wallet/cov");
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.server.read_timeout, Duration::from_secs(15));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(120));
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.port, 2112);
        let c = Config::parse(&MIN.replace("127.0.0.1:18443", "http://node")).unwrap();
        assert_eq!(c.full_node.url, "http://node:18443");
    }

    #[test]
    fn legacy_sections() {
        let text = format!(
            "{MIN}signer-type = \"psbt\"\nnetwork = \"regtest\"\n[metrics]\nhost = \"0.0.0.0\"\nport = 2113\n\
             [signer-app-config]\nmax-staking-transaction-height = 900000\n"
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.metrics.port, 2113);
        assert_eq!(c.max_staking_tx_height, 900_000);
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn errors_name_the_field() {
        assert!(error_of("").contains("[btc-config] is missing"));
        assert!(error_of(&MIN.replace("network = \"regtest\"", "network = \"moon\"")).contains("network = \"moon\""));
        assert!(error_of(&MIN.replace("host = \"127.0.0.1:18443\"\n", "")).contains("[btc-config] host is missing"));
        assert!(error_of(&MIN.replace("127.0.0.1:18443", "https://x:1")).contains("https"));
        assert!(error_of(&MIN.replace("/wallet/cov", "/foo")).contains("only /wallet/<name>"));
        assert!(error_of(&format!("{MIN}[server-config]\nport = 70000\n")).contains("[server-config] port = 70000"));
        assert!(error_of(&format!("{MIN}[server-config]\nprot = 1\n")).contains("unknown field `prot`"));
        assert!(error_of(&format!("{MIN}[server-config]\nread-timeout = 0\n")).contains("read-timeout"));
        assert!(error_of(&format!("{MIN}signer-type = \"privkey\"\n")).contains("signer-type"));
        assert!(error_of(&format!("{MIN}[signer-app-config]\nmax-staking-transaction-height = -1\n"))
            .contains("max-staking-transaction-height"));
        assert!(
            error_of(&format!("{MIN}[signer-app-config]\ncovenant-keys = [\"02aa\"]\n")).contains("covenant-keys[0]")
        );
        assert!(error_of(&format!("{MIN}[signer-app-config]\ncovenant-keys = []\n")).contains("empty list"));
        assert!(error_of("[btc-config\n").contains("invalid TOML (line 1)"));
    }
}
