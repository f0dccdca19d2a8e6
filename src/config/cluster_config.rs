//! The cluster keys of a node, validated as Kafka's KRaft mode validates them:
//! `process.roles`, `controller.quorum.voters` (`id@host:port,…`),
//! `controller.quorum.bootstrap.servers`, `controller.listener.names`, `metadata.log.dir`,
//! the election and broker-session timeouts, `broker.rack`.
//!
//! With none of them set, a node is a lone combined broker and controller: its own
//! one-voter quorum, reached by nobody over the network.

use super::{BrokerConfig, ConfigError};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub roles: Roles,
    /// Voter id → `host:port` of its controller listener.
    pub voters: BTreeMap<i32, String>,
    pub bootstrap_controllers: Vec<String>,
    pub controller_listener_names: Vec<String>,
    pub metadata_log_dir: PathBuf,
    pub election_timeout_ms: u64,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub rack: Option<String>,
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

fn list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `controller.quorum.voters`: `id@host:port` entries.
pub fn parse_voters(raw: &str) -> Result<BTreeMap<i32, String>, String> {
    let mut out = BTreeMap::new();
    for entry in list(raw) {
        let (id, addr) = entry.split_once('@').ok_or_else(|| format!("{entry:?} is not of the form id@host:port"))?;
        let id: i32 = id.trim().parse().ok().filter(|i| *i >= 0).ok_or_else(|| format!("{entry:?}: the node id must be a non-negative integer"))?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{entry:?}: missing :port"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{entry:?}: expected host:port with a port from 1 to 65535"));
        }
        if out.insert(id, addr.to_string()).is_some() {
            return Err(format!("node id {id} is listed twice"));
        }
    }
    Ok(out)
}

impl ClusterConfig {
    /// Replaced by `from_broker` while `BrokerConfig` is built.
    pub(super) fn placeholder() -> Self {
        ClusterConfig {
            roles: Roles { broker: true, controller: true },
            voters: BTreeMap::new(),
            bootstrap_controllers: Vec::new(),
            controller_listener_names: Vec::new(),
            metadata_log_dir: PathBuf::new(),
            election_timeout_ms: 0,
            session_timeout_ms: 0,
            heartbeat_interval_ms: 0,
            rack: None,
        }
    }

    pub fn from_broker(cfg: &BrokerConfig) -> Result<Self, ConfigError> {
        let roles_raw = cfg.get("process.roles").unwrap_or_default();
        let mut roles = Roles { broker: false, controller: false };
        for r in list(&roles_raw) {
            let slot = match r {
                "broker" => &mut roles.broker,
                "controller" => &mut roles.controller,
                other => return Err(invalid("process.roles", format!("unknown role {other:?}: use broker, controller or both"))),
            };
            if std::mem::replace(slot, true) {
                return Err(invalid("process.roles", format!("{r} is listed twice")));
            }
        }
        if !roles.broker && !roles.controller {
            return Err(invalid("process.roles", "give at least one of broker, controller"));
        }
        let voters = parse_voters(&cfg.get("controller.quorum.voters").unwrap_or_default()).map_err(|e| invalid("controller.quorum.voters", e))?;
        let bootstrap_controllers: Vec<String> = list(&cfg.get("controller.quorum.bootstrap.servers").unwrap_or_default()).map(String::from).collect();
        let controller_listener_names: Vec<String> = list(&cfg.get("controller.listener.names").unwrap_or_default()).map(String::from).collect();
        let node = cfg.node_id;
        let lone = roles.broker && roles.controller && voters.is_empty() && bootstrap_controllers.is_empty();
        if roles.controller && !voters.is_empty() && !voters.contains_key(&node) {
            return Err(invalid(
                "controller.quorum.voters",
                format!("process.roles includes controller, so node.id {node} must be one of the voters {:?}", voters.keys().collect::<Vec<_>>()),
            ));
        }
        if roles.controller && voters.is_empty() && bootstrap_controllers.is_empty() && !lone {
            return Err(invalid("controller.quorum.voters", "a controller of a cluster needs the voters (id@host:port,…) or controller.quorum.bootstrap.servers"));
        }
        if !roles.controller {
            if voters.contains_key(&node) {
                return Err(invalid("controller.quorum.voters", format!("node.id {node} is a voter, so process.roles must include controller")));
            }
            if voters.is_empty() && bootstrap_controllers.is_empty() {
                return Err(invalid("controller.quorum.voters", "a broker-only node needs controller.quorum.voters or controller.quorum.bootstrap.servers"));
            }
        }
        if !lone {
            let Some(first) = controller_listener_names.first() else {
                return Err(invalid("controller.listener.names", "a node of a cluster needs the name of the controller listener (e.g. CONTROLLER)"));
            };
            if roles.controller && !cfg.listeners.0.iter().any(|l| &l.name == first) {
                return Err(invalid("listeners", format!("a controller needs a {first} listener (controller.listener.names), e.g. {first}://0.0.0.0:9093")));
            }
        }
        if !roles.broker {
            if let Some(l) = cfg.listeners.0.iter().find(|l| !controller_listener_names.contains(&l.name)) {
                return Err(invalid("listeners", format!("a controller-only node serves no clients: listener {} is not in controller.listener.names", l.name)));
            }
        }
        let metadata_log_dir = cfg.get("metadata.log.dir").map(PathBuf::from).unwrap_or_else(|| cfg.log_dir.clone());
        let election_timeout_ms = cfg.positive("controller.quorum.election.timeout.ms")? as u64;
        let session_timeout_ms = cfg.positive("broker.session.timeout.ms")? as u64;
        let heartbeat_interval_ms = cfg.positive("broker.heartbeat.interval.ms")? as u64;
        if heartbeat_interval_ms >= session_timeout_ms {
            return Err(invalid("broker.heartbeat.interval.ms", format!("{heartbeat_interval_ms} must be below broker.session.timeout.ms ({session_timeout_ms})")));
        }
        Ok(ClusterConfig {
            roles,
            voters,
            bootstrap_controllers,
            controller_listener_names,
            metadata_log_dir,
            election_timeout_ms,
            session_timeout_ms,
            heartbeat_interval_ms,
            rack: cfg.get("broker.rack").filter(|r| !r.trim().is_empty()),
        })
    }

    /// A lone combined node: its own one-voter quorum, with no controller listener.
    pub fn is_lone(&self) -> bool {
        self.roles.broker && self.roles.controller && self.voters.is_empty() && self.bootstrap_controllers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(keys: &[(&str, &str)]) -> Result<ClusterConfig, String> {
        let map = keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BrokerConfig::from_map(map).map(|c| c.cluster).map_err(|e| e.to_string())
    }

    const THREE: &str = "1@127.0.0.1:19093,2@127.0.0.2:19093,3@127.0.0.3:19093";

    #[test]
    fn no_keys_make_a_lone_combined_node() {
        let c = cluster(&[]).unwrap();
        assert!(c.is_lone() && c.roles.broker && c.roles.controller);
        assert_eq!((c.election_timeout_ms, c.session_timeout_ms, c.heartbeat_interval_ms), (1000, 9000, 2000));
        assert_eq!(c.metadata_log_dir, PathBuf::from("./data"));
    }

    #[test]
    fn a_three_node_combined_cluster_as_kafka_configures_one() {
        let c = cluster(&[
            ("node.id", "2"),
            ("controller.quorum.voters", THREE),
            ("listeners", "PLAINTEXT://127.0.0.2:9092,CONTROLLER://127.0.0.2:19093"),
            ("advertised.listeners", "PLAINTEXT://127.0.0.2:9092"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
            ("metadata.log.dir", "/var/meta"),
            ("broker.rack", "r1"),
        ])
        .unwrap();
        assert!(!c.is_lone());
        assert_eq!(c.voters[&3], "127.0.0.3:19093");
        assert_eq!((c.metadata_log_dir, c.rack.as_deref()), (PathBuf::from("/var/meta"), Some("r1")));
    }

    #[test]
    fn kafka_refusals() {
        let bad = |keys: &[(&str, &str)], needle: &str| {
            let e = cluster(keys).unwrap_err();
            assert!(e.contains(needle), "{keys:?}: {e}");
        };
        bad(&[("process.roles", "broker,zookeeper")], "unknown role");
        bad(&[("process.roles", "")], "at least one");
        bad(&[("controller.quorum.voters", "1@h")], "missing :port");
        bad(&[("controller.quorum.voters", "x@h:1")], "non-negative");
        bad(&[("controller.quorum.voters", "1@h:1,1@g:2")], "twice");
        bad(&[("node.id", "4"), ("controller.quorum.voters", THREE), ("controller.listener.names", "CONTROLLER")], "must be one of the voters");
        bad(&[("node.id", "1"), ("controller.quorum.voters", THREE)], "controller.listener.names");
        bad(&[("node.id", "1"), ("controller.quorum.voters", THREE), ("controller.listener.names", "CONTROLLER")], "needs a CONTROLLER listener");
        bad(&[("process.roles", "broker"), ("node.id", "1"), ("controller.quorum.voters", THREE), ("controller.listener.names", "CONTROLLER")], "must include controller");
        bad(&[("process.roles", "broker"), ("node.id", "4")], "needs controller.quorum.voters");
        bad(
            &[
                ("process.roles", "controller"),
                ("node.id", "1"),
                ("controller.quorum.voters", THREE),
                ("controller.listener.names", "CONTROLLER"),
                ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093"),
                ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ],
            "serves no clients",
        );
        bad(&[("broker.heartbeat.interval.ms", "9000")], "must be below");
    }

    #[test]
    fn a_broker_only_node_may_find_the_quorum_through_bootstrap_servers() {
        let c = cluster(&[
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.quorum.bootstrap.servers", "127.0.0.1:19093"),
            ("controller.listener.names", "CONTROLLER"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_controllers, vec!["127.0.0.1:19093".to_string()]);
        assert!(!c.roles.controller);
    }
}
