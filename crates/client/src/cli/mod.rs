//! The command-line client: `gostream topics ...`, `gostream consumers ...`,
//! `gostream publish ...`, `gostream consume ...` and `gostream broker`,
//! each a thin layer over the generated tonic clients.
//!
//! Every command connects to `--server`, makes its calls, and prints the
//! results: readable text by default, or with `--json` one JSON object per
//! line in the proto3 JSON mapping. A failed call prints
//! `error: <CODE>: <message>` on stderr and exits with status 1; usage
//! errors exit with status 2.
//!
//! # Layout
//! - [`connect`]: the connection (`--server`, `--ca-cert`) and the bearer
//!   token every call carries (`--token`).
//! - [`args`]: the values commands take: positions, durations, limits.
//! - [`queue`]: the flags that create and update consumers (commit mode,
//!   ack timeout, a per-message consumer's settings).
//! - [`output`]: text and JSON printing.
//! - [`failure`]: what can go wrong, and how it is reported.
//! - [`producer`]: `publish` from stdin as an idempotent producer that
//!   resends its unanswered frames after a reconnect.
//! - [`topics`], [`consumers`], [`publish`], [`consume`], [`broker`]: the
//!   commands.

pub mod args;
pub mod broker;
pub mod connect;
pub mod consume;
pub mod consumers;
pub mod failure;
pub mod output;
pub mod producer;
pub mod publish;
pub mod queue;
pub mod topics;

use clap::{Args, Subcommand};

pub use failure::Failure;

use self::{connect::Clients, output::Printer};

/// The options of every client command. They are global: they may come
/// before or after the command's name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client options (topics, consumers, publish, consume, broker)")]
pub struct Client {
    /// The broker's gRPC address: `http://HOST:PORT`, or `https://HOST:PORT`
    /// for TLS (then --ca-cert is required).
    #[arg(
        long,
        global = true,
        env = "GOSTREAM_SERVER",
        default_value = "http://127.0.0.1:9090",
        value_name = "URL",
        value_parser = connect::parse_server
    )]
    pub server: String,

    /// A bearer token, sent as `authorization: Bearer <TOKEN>` with every
    /// call.
    #[arg(
        long,
        global = true,
        env = "GOSTREAM_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// With an https:// server, the PEM file of the certificate authority to
    /// trust (system roots are not loaded).
    #[arg(long, global = true, env = "GOSTREAM_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Print one JSON object per line (the proto3 JSON mapping) instead of
    /// text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, inspect, change and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Create, inspect, move and delete the named consumers of a topic.
    #[command(subcommand)]
    Consumers(consumers::ConsumersCommand),
    /// Publish a message, or each line of stdin as a message.
    Publish(publish::PublishArgs),
    /// Print a topic's messages, from a position or through a consumer.
    Consume(consume::ConsumeArgs),
    /// Show the broker's storage, totals and memory use.
    Broker,
}

/// Runs `command` against the broker `client` names, printing to stdout.
pub async fn run(client: Client, command: Command) -> Result<(), Failure> {
    if let Command::Publish(args) = &command {
        args.source()?;
    }
    let mut printer = Printer::new(client.json);
    let clients = Clients::connect(&client).await?;
    let result = match command {
        Command::Topics(command) => topics::run(clients, command, &mut printer).await,
        Command::Consumers(command) => consumers::run(clients, command, &mut printer).await,
        Command::Publish(args) => publish::run(clients, args, &mut printer).await,
        Command::Consume(args) => consume::run(clients, args, &mut printer).await,
        Command::Broker => broker::run(clients, &mut printer).await,
    };
    // What was printed before a failure is still flushed.
    let flushed = printer.flush();
    result.and(flushed)
}
