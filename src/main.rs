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
    Ok(BrokerConfig::from_map(keys)?)
}

fn main() -> std::process::ExitCode {
    let filter = std::env::var("FERRITE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn,ferrite=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let broker = Broker::start(config).await?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    broker.shutdown().await
}
