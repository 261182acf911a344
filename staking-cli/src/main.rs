//! `staking-cli`: the staker's side of Phase-1 — the unfunded staking tx, the `POST /v1/unbonding`
//! request and both withdrawal transactions. Exit codes: 0 ok, 1 bitcoind RPC failure, 2 usage
//! errors (bad arguments, wrong key, unknown params height, ...).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use staking_cli::bitcoin::Network;
use staking_cli::input::{load_params, parse_address, parse_network, parse_public_key, parse_secret_key, parse_tx};
use staking_cli::rpc::RpcClient;
use staking_cli::{
    staking_tx, staking_tx_unchecked, to_legacy_json, tx_hex, unbonding_request_for, unsigned_withdrawal_from_staking,
    unsigned_withdrawal_from_unbonding, Error, Stake,
};

#[derive(Parser)]
#[command(
    name = "staking-cli",
    version,
    about = "Babylon Phase-1 staker tools: staking tx, unbonding request, withdrawals"
)]
struct Cli {
    /// Bitcoin network of keys and addresses: mainnet, testnet, signet or regtest.
    #[arg(long, global = true, default_value = "regtest")]
    network: String,

    #[command(subcommand)]
    command: Command,
}

// The variant names are the command names (`create-...`), as in Babylon's cli-tools.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum Command {
    /// The unfunded staking tx (staking output + OP_RETURN); prints {"staking_tx_hex": ...}.
    /// Fund it with a wallet (`fundrawtransaction`, `signrawtransactionwithwallet`).
    #[command(alias = "create-phase1-staking-tx")]
    CreateStakingTx(StakingTxArgs),
    /// The POST /v1/unbonding request body, signed with the staker key.
    #[command(alias = "create-phase1-unbonding-request")]
    CreateUnbondingRequest(UnbondingArgs),
    /// The signed withdrawal tx from the staking output (after staking_time blocks) or the
    /// unbonding output (after unbonding_time blocks); prints {"withdraw_tx_hex": ..., "signed": true}.
    #[command(alias = "create-phase1-withdaw-request", alias = "create-phase1-withdraw-request")]
    CreateWithdrawTx(WithdrawArgs),
}

#[derive(Args)]
struct StakingTxArgs {
    /// Staker public key: 32-byte x-only or 33-byte compressed hex (or @FILE).
    #[arg(long, required_unless_present = "staker_key", conflicts_with = "staker_key")]
    staker_pk: Option<String>,
    /// Staker secret key instead of --staker-pk: 64 hex digits or WIF (or @FILE).
    #[arg(long)]
    staker_key: Option<String>,
    /// Finality provider public key: 32-byte x-only or 33-byte compressed hex.
    #[arg(long, alias = "finality-provider-pk")]
    fp_pk: String,
    /// Staking time in blocks.
    #[arg(long)]
    staking_time: u16,
    /// Staking amount in satoshis.
    #[arg(long, alias = "staking-amount")]
    amount: u64,
    /// The global-params.json file.
    #[arg(long)]
    params: PathBuf,
    /// Params version to stake under (default: the latest).
    #[arg(long, conflicts_with = "height")]
    params_version: Option<u64>,
    /// Height the tx is expected to be mined at (selects the params version).
    #[arg(long)]
    height: Option<u64>,
    /// Build even if amount or staking time are outside the version's bounds (an invalid stake).
    #[arg(long)]
    no_param_checks: bool,
}

/// Where the staking tx's inclusion height comes from.
#[derive(Args)]
#[group(required = true, multiple = false, id = "height_source")]
struct HeightSource {
    /// Inclusion height of the staking tx (selects the params version).
    #[arg(long)]
    height: Option<u64>,
    /// bitcoind RPC URL to look the height up (getrawtransaction needs -txindex).
    #[arg(long)]
    rpc_url: Option<String>,
}

#[derive(Args)]
struct RpcAuth {
    /// bitcoind RPC user.
    #[arg(long, requires = "rpc_url")]
    rpc_user: Option<String>,
    /// bitcoind RPC password.
    #[arg(long, requires = "rpc_url")]
    rpc_password: Option<String>,
}

#[derive(Args)]
struct UnbondingArgs {
    /// Staker secret key: 64 hex digits or WIF, or @FILE holding one.
    #[arg(long)]
    staker_key: String,
    /// The funded staking tx hex (or @FILE).
    #[arg(long, alias = "staking-tx-hex")]
    staking_tx: String,
    /// The global-params.json file.
    #[arg(long)]
    params: PathBuf,
    #[command(flatten)]
    height: HeightSource,
    #[command(flatten)]
    auth: RpcAuth,
}

#[derive(Clone, Copy, ValueEnum)]
enum From {
    /// The staking output (timelock leaf, sequence = staking_time).
    Staking,
    /// The unbonding output (timelock' leaf, sequence = unbonding_time).
    Unbonding,
}

#[derive(Args)]
struct WithdrawArgs {
    /// Which output to spend.
    #[arg(long, value_enum)]
    from: From,
    /// Staker secret key: 64 hex digits or WIF, or @FILE holding one.
    #[arg(long)]
    staker_key: String,
    /// The funded staking tx hex (or @FILE).
    #[arg(long, alias = "staking-tx-hex")]
    staking_tx: String,
    /// The mined unbonding tx hex (or @FILE); default: the canonical unbonding tx (same txid).
    #[arg(long, alias = "unbonding-tx-hex")]
    unbonding_tx: Option<String>,
    /// The global-params.json file.
    #[arg(long)]
    params: PathBuf,
    #[command(flatten)]
    height: HeightSource,
    #[command(flatten)]
    auth: RpcAuth,
    /// Destination address (of --network).
    #[arg(long, alias = "withdraw-tx-destination")]
    to: String,
    /// Fee in satoshis (the output is the spent value minus this).
    #[arg(long, alias = "withdraw-tx-fee")]
    fee: u64,
    /// Print only the transaction hex instead of the JSON.
    #[arg(long)]
    raw: bool,
}

#[derive(Serialize)]
struct StakingTxResponse {
    staking_tx_hex: String,
}

#[derive(Serialize)]
struct WithdrawResponse {
    withdraw_tx_hex: String,
    signed: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn run(cli: Cli) -> Result<String, Error> {
    let network = parse_network(&cli.network)?;
    match cli.command {
        Command::CreateStakingTx(a) => create_staking_tx(a, network),
        Command::CreateUnbondingRequest(a) => {
            let staker = parse_secret_key("--staker-key", &a.staker_key, network)?;
            let stake = load_stake(&a.staking_tx, &a.params, &a.height, &a.auth)?;
            Ok(to_legacy_json(&unbonding_request_for(&stake, &staker)?))
        }
        Command::CreateWithdrawTx(a) => create_withdraw_tx(a, network),
    }
}

fn create_staking_tx(a: StakingTxArgs, network: Network) -> Result<String, Error> {
    let staker = match (&a.staker_pk, &a.staker_key) {
        (Some(pk), _) => parse_public_key("--staker-pk", pk)?,
        (None, Some(k)) => parse_secret_key("--staker-key", k, network)?.x_only_public_key().0,
        (None, None) => return Err(Error::invalid("--staker-pk", "pass --staker-pk (or --staker-key)")),
    };
    let fp = parse_public_key("--fp-pk", &a.fp_pk)?;
    let params = load_params(&a.params)?;
    let version = match (a.params_version, a.height) {
        (Some(v), _) => params.versions.iter().find(|p| p.version == v).ok_or_else(|| {
            let known: Vec<String> = params.versions.iter().map(|p| p.version.to_string()).collect();
            Error::invalid(
                "--params-version",
                format!("no version {v} in {} (it has {})", a.params.display(), known.join(", ")),
            )
        })?,
        (None, Some(h)) => params.for_height(h).map(|(_, v)| v).ok_or_else(|| Error::NoParamsVersion {
            height: h,
            first_activation: params.versions.first().map(|v| v.activation_height).unwrap_or_default(),
        })?,
        (None, None) => params.versions.last().ok_or_else(|| Error::invalid("--params", "no versions"))?,
    };
    let tx = if a.no_param_checks {
        staking_tx_unchecked(&staker, &fp, a.staking_time, a.amount, version)?
    } else {
        staking_tx(&staker, &fp, a.staking_time, a.amount, version)?
    };
    Ok(to_legacy_json(&StakingTxResponse { staking_tx_hex: tx_hex(&tx) }))
}

fn load_stake(staking_tx: &str, params: &std::path::Path, h: &HeightSource, auth: &RpcAuth) -> Result<Stake, Error> {
    let tx = parse_tx("--staking-tx", staking_tx)?;
    let params = load_params(params)?;
    let height = match (h.height, &h.rpc_url) {
        (Some(height), _) => height,
        (None, Some(url)) => {
            let client = RpcClient::new(url, auth.rpc_user.as_deref(), auth.rpc_password.as_deref());
            client.inclusion_height(&tx.compute_txid())?
        }
        (None, None) => return Err(Error::invalid("--height", "pass --height or --rpc-url")),
    };
    Stake::new(tx, &params, height)
}

fn create_withdraw_tx(a: WithdrawArgs, network: Network) -> Result<String, Error> {
    let staker = parse_secret_key("--staker-key", &a.staker_key, network)?;
    let to = parse_address("--to", &a.to, network)?.script_pubkey();
    let unbonding_tx = match (&a.unbonding_tx, a.from) {
        (Some(hex), From::Unbonding) => Some(parse_tx("--unbonding-tx", hex)?),
        (Some(_), From::Staking) => {
            return Err(Error::invalid(
                "--unbonding-tx",
                "only used with --from unbonding; drop it or pass --from unbonding",
            ))
        }
        (None, _) => None,
    };
    let stake = load_stake(&a.staking_tx, &a.params, &a.height, &a.auth)?;
    stake.check_staker(&staker)?;
    let unsigned = match a.from {
        From::Staking => unsigned_withdrawal_from_staking(&stake, &to, a.fee)?,
        From::Unbonding => unsigned_withdrawal_from_unbonding(&stake, unbonding_tx.as_ref(), &to, a.fee)?,
    };
    let tx = unsigned.sign(&staker)?;
    Ok(if a.raw {
        tx_hex(&tx)
    } else {
        to_legacy_json(&WithdrawResponse { withdraw_tx_hex: tx_hex(&tx), signed: true })
    })
}
