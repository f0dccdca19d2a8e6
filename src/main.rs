//! The `ferrite` binary: reads the configuration, starts the broker, stops it cleanly on
//! SIGINT/SIGTERM.

use clap::Parser;
use ferrite::{Broker, BrokerConfig};
use std::path::PathBuf;

/// A Kafka-protocol broker. With no flags: node 0, listening on 0.0.0.0:9092, advertising
/// localhost:9092, data in ./data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A server.properties-style file of Kafka configuration keys.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one key (repeatable), e.g. --override log.segment.bytes=1048576. Wins over the
    /// file and the environment (KAFKA_* / FERRITE_* variables).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The data directory (same as --override log.dirs=DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Do not start a broker: ask the one configured like this for its API versions on its
    /// first listener and exit 0 if it answers (a container health check).
    #[arg(long)]
    healthcheck: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What `kafka-storage` does, for a node of a cluster.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Write meta.properties with the cluster id into the log directories (as
    /// `kafka-storage format`); every node of a cluster gets the same id.
    Format {
        #[arg(long, value_name = "ID")]
        cluster_id: String,
        /// Leave a directory formatted for another cluster as it is instead of failing.
        #[arg(long)]
        ignore_formatted: bool,
        /// With controller.quorum.bootstrap.servers: this controller is the quorum's only voter.
        #[arg(long, conflicts_with = "initial_controllers")]
        standalone: bool,
        /// With controller.quorum.bootstrap.servers: the quorum's voters,
        /// `id@host:port[:directory-id],…` (as `kafka-storage format --initial-controllers`).
        #[arg(long, value_name = "VOTERS")]
        initial_controllers: Option<String>,
    },
    /// Print a new cluster id (as `kafka-storage random-uuid`).
    RandomUuid,
}

fn load(args: &Args) -> anyhow::Result<BrokerConfig> {
    let mut keys = match &args.config {
        Some(path) => BrokerConfig::read_properties(path)?,
        None => Default::default(),
    };
    keys.extend(BrokerConfig::from_env(std::env::vars()));
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--override {o:?}: expected KEY=VALUE"))?;
        keys.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(dir) = &args.data_dir {
        keys.insert("log.dirs".into(), dir.display().to_string());
    }
    // Kafka's image formats its storage with CLUSTER_ID.
    if let Ok(id) = std::env::var("CLUSTER_ID") {
        keys.entry("cluster.id".into()).or_insert(id);
    }
    Ok(BrokerConfig::from_map(keys)?)
}

fn main() -> std::process::ExitCode {
    let filter = std::env::var("FERRITE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn,ferrite=info,openraft=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if args.healthcheck {
        return healthcheck(&config);
    }
    match &args.command {
        Some(Command::RandomUuid) => {
            println!("{}", ferrite::storage::log_manager::uuid_to_kafka_string(uuid::Uuid::new_v4()));
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Format { cluster_id, ignore_formatted, standalone, initial_controllers }) => {
            if let Err(e) = format_voters(&config, *standalone, initial_controllers.as_deref()) {
                tracing::error!("{e}");
                return std::process::ExitCode::FAILURE;
            }
            return match ferrite::storage::LogManager::format(&config, cluster_id, *ignore_formatted) {
                Ok(true) => {
                    println!("Formatted {} for cluster {cluster_id}", config.log_dir.display());
                    std::process::ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!("{} is already formatted for cluster {cluster_id}", config.log_dir.display());
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("{e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `format --standalone` / `--initial-controllers`: the voters of a quorum configured by
/// controller.quorum.bootstrap.servers, as `kafka-storage format` takes them.
fn format_voters(config: &BrokerConfig, standalone: bool, initial: Option<&str>) -> anyhow::Result<()> {
    use ferrite::cluster::voters;
    if !standalone && initial.is_none() {
        return Ok(());
    }
    if !config.cluster.voters.is_empty() {
        anyhow::bail!("--standalone and --initial-controllers are for controller.quorum.bootstrap.servers; controller.quorum.voters already lists the voters");
    }
    if config.cluster.bootstrap_controllers.is_empty() {
        anyhow::bail!("--standalone and --initial-controllers need controller.quorum.bootstrap.servers");
    }
    if !config.cluster.roles.controller {
        anyhow::bail!("--standalone and --initial-controllers format controllers; a broker-only node learns the voters from them");
    }
    let set = match initial {
        Some(raw) => voters::parse_initial_controllers(raw).map_err(|e| anyhow::anyhow!("--initial-controllers: {e}"))?,
        None => voters::standalone(config).map_err(|e| anyhow::anyhow!(e))?,
    };
    voters::write(config, &set)?;
    Ok(())
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        }
    };
    if !config.cluster.roles.broker {
        let controller = ferrite::server::controller_server::ControllerServer::start(config).await?;
        stop.await;
        return controller.shutdown().await;
    }
    let broker = Broker::start(config).await?;
    stop.await;
    broker.shutdown().await
}

/// One ApiVersions v0 round trip to the first listener (0.0.0.0 is asked on loopback).
fn healthcheck(config: &BrokerConfig) -> std::process::ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    // A broker is asked on a client listener; a controller-only node (which speaks only the
    // quorum's protocol) is healthy when its controller listener accepts.
    let names = &config.cluster.controller_listener_names;
    let broker = config.cluster.roles.broker;
    let Some(listener) = config.listeners.0.iter().find(|l| !broker || !names.contains(&l.name)) else { return std::process::ExitCode::FAILURE };
    let mut addr = listener.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let ask = || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        if !broker {
            return Ok(());
        }
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        // size, api key 18 (ApiVersions), version 0, correlation id 1, null client id
        s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])?;
        let mut head = [0u8; 10];
        s.read_exact(&mut head)?;
        let (correlation, error) = (i32::from_be_bytes(head[4..8].try_into().unwrap()), i16::from_be_bytes([head[8], head[9]]));
        if correlation == 1 && error == 0 {
            Ok(())
        } else {
            Err(std::io::Error::other("unexpected ApiVersions answer"))
        }
    };
    match ask() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrite at {addr} is not healthy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
