//! Where a node learns the voters of the metadata quorum (id → controller listener).
//!
//! Kafka has two ways and so do we. `controller.quorum.voters` lists them (a static
//! quorum). With `controller.quorum.bootstrap.servers` alone (KIP-853's key, which Kafka
//! 4's own `server.properties` uses) the voters are fixed when the controllers are
//! formatted — `format --standalone` (this node is the only voter) or
//! `--initial-controllers id@host:port[:directory-id],…` — and written to
//! `quorum-voters` in the metadata log directory; a broker-only node asks the bootstrap
//! controllers for them when it starts. Adding or removing voters later (KIP-853's
//! AddRaftVoter/RemoveRaftVoter) is not served: the set stays as formatted.

use super::controller_rpc::{ControllerRequest, ControllerResponse};
use super::rpc::{read_frame, write_frame};
use crate::config::BrokerConfig;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub const VOTERS_FILE: &str = "quorum-voters";

fn file(cfg: &BrokerConfig) -> PathBuf {
    cfg.cluster.metadata_log_dir.join(VOTERS_FILE)
}

/// `--initial-controllers`: `id@host:port` entries, each optionally followed by `:` and the
/// controller's directory id (accepted as Kafka writes it, not needed here).
pub fn parse_initial_controllers(raw: &str) -> Result<BTreeMap<i32, String>, String> {
    let mut out = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, rest) = entry.split_once('@').ok_or_else(|| format!("{entry:?}: expected id@host:port[:directory-id]"))?;
        let id: i32 = id.parse().map_err(|_| format!("{entry:?}: {id:?} is not a node id"))?;
        let (host, port) = match rest.split(':').collect::<Vec<_>>().as_slice() {
            [host, port] | [host, port, _] if !host.is_empty() => (*host, *port),
            _ => return Err(format!("{entry:?}: expected id@host:port[:directory-id]")),
        };
        let port: u16 = port.parse().map_err(|_| format!("{entry:?}: {port:?} is not a port"))?;
        if out.insert(id, format!("{host}:{port}")).is_some() {
            return Err(format!("node id {id} is listed twice"));
        }
    }
    if out.is_empty() {
        return Err("no controllers given".into());
    }
    Ok(out)
}

/// `--standalone`: this node alone, at its controller listener's advertised address.
pub fn standalone(cfg: &BrokerConfig) -> Result<BTreeMap<i32, String>, String> {
    if !cfg.cluster.roles.controller {
        return Err("--standalone formats a controller: process.roles must include controller".into());
    }
    let name = cfg.cluster.controller_listener_names.first().ok_or("--standalone needs controller.listener.names and its listener")?;
    let l = cfg.listeners.0.iter().find(|l| &l.name == name).ok_or_else(|| format!("no {name} listener in listeners"))?;
    let port = if l.advertised_port == 0 { l.bind.port() } else { l.advertised_port };
    Ok(BTreeMap::from([(cfg.node_id, format!("{}:{port}", l.advertised_host))]))
}

/// Writes the voters `format` fixed, for a controller formatted with bootstrap servers.
pub fn write(cfg: &BrokerConfig, voters: &BTreeMap<i32, String>) -> io::Result<()> {
    if cfg.cluster.roles.controller && !voters.contains_key(&cfg.node_id) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("node.id {} is not one of the controllers {:?}", cfg.node_id, voters.keys().collect::<Vec<_>>())));
    }
    std::fs::create_dir_all(&cfg.cluster.metadata_log_dir)?;
    let text: String = voters.iter().map(|(id, addr)| format!("{id}@{addr}\n")).collect();
    crate::storage::checkpoint::write_atomically(&file(cfg), text.as_bytes())
}

fn read(cfg: &BrokerConfig) -> io::Result<Option<BTreeMap<i32, String>>> {
    match std::fs::read_to_string(file(cfg)) {
        Ok(text) => crate::config::cluster_config::parse_voters(&text.lines().collect::<Vec<_>>().join(","))
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", file(cfg).display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The configuration with `cluster.voters` filled in: as given, from the formatted
/// directory (a controller), or from the bootstrap controllers (a broker-only node,
/// which waits for one to answer as a Kafka broker waits for its controllers).
pub async fn resolve(mut cfg: BrokerConfig) -> anyhow::Result<BrokerConfig> {
    let c = &cfg.cluster;
    if !c.voters.is_empty() || c.is_lone() || c.bootstrap_controllers.is_empty() {
        return Ok(cfg);
    }
    if c.roles.controller {
        let voters = read(&cfg)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no voter set: with controller.quorum.bootstrap.servers, format the controllers with \
                 `ferrite format --cluster-id ID --standalone` (one controller) or `--initial-controllers \
                 1@host:port,2@host:port,3@host:port`, or list them in controller.quorum.voters",
                cfg.cluster.metadata_log_dir.display()
            )
        })?;
        cfg.cluster.voters = voters;
        return Ok(cfg);
    }
    let mut attempts = 0u32;
    loop {
        for addr in &cfg.cluster.bootstrap_controllers {
            match ask(addr).await {
                Ok(voters) if !voters.is_empty() => {
                    tracing::info!(%addr, voters = ?voters, "learned the controller quorum's voters");
                    cfg.cluster.voters = voters;
                    return Ok(cfg);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(%addr, error = %e, "no voters from this bootstrap controller yet"),
            }
        }
        attempts += 1;
        if attempts.is_multiple_of(50) {
            tracing::warn!(servers = ?cfg.cluster.bootstrap_controllers, "no controller of controller.quorum.bootstrap.servers answers yet; still trying");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One DescribeVoters call; a voter listed at an unspecified host (0.0.0.0, or none) is
/// taken to be at the host that answered.
async fn ask(addr: &str) -> io::Result<BTreeMap<i32, String>> {
    let call = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        write_frame(&mut s, &ControllerRequest::DescribeVoters).await?;
        read_frame::<_, ControllerResponse>(&mut s).await
    };
    let resp = tokio::time::timeout(Duration::from_secs(5), call).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
    let Some(ControllerResponse::Voters(voters)) = resp else {
        return Err(io::Error::other("not a controller's answer"));
    };
    let asked_host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    Ok(voters
        .into_iter()
        .map(|(id, a)| match a.rsplit_once(':') {
            Some((h, p)) if h.is_empty() || h == "0.0.0.0" || h == "[::]" => (id, format!("{asked_host}:{p}")),
            _ => (id, a),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_controllers_as_kafka_storage_takes_them() {
        let v = parse_initial_controllers("1@c1:9093:MvDxzVmcRsaTz33bUuRU6A,2@c2:9093,3@10.0.0.3:19093:AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(v, BTreeMap::from([(1, "c1:9093".to_string()), (2, "c2:9093".to_string()), (3, "10.0.0.3:19093".to_string())]));
        assert!(parse_initial_controllers("").is_err());
        assert!(parse_initial_controllers("1@c1").is_err());
        assert!(parse_initial_controllers("x@c1:9093").is_err());
        assert!(parse_initial_controllers("1@c1:9093,1@c2:9093").is_err(), "an id twice");
        assert!(parse_initial_controllers("1@c1:port").is_err());
    }
}
