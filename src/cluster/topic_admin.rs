//! What the admin handlers call to create, grow, delete and reconfigure topics: the
//! metadata log decides, the local logs follow.
//!
//! Each call is first checked against the local logs exactly as before there was a
//! metadata log (names, partition counts, configs, the open-file budget — the same errors),
//! then sent to the active controller (this node's own, or another's over the controller
//! listener, as Kafka's brokers forward admin requests), then waited for until this node's
//! logs match (`MetadataPublisher`). A creation whose local partitions cannot be made is
//! removed from the metadata log again, so it stays all-or-nothing. New partitions are
//! answered once every live broker lists them (`propagation`).

use super::controller::ControllerError;
use super::controller_rpc::{ControllerChannel, ControllerRequest};
use super::metadata_cache::MetadataCache;
use super::publisher::MetadataPublisher;
use crate::storage::{LogManager, Topic, TopicError};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const APPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long new partitions wait for the other brokers to list them (`propagation`).
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(5);

pub struct TopicAdmin {
    logs: Arc<LogManager>,
    controller: Arc<ControllerChannel>,
    publisher: Arc<MetadataPublisher>,
    metadata: Arc<MetadataCache>,
    /// Where other brokers are asked whether they list new partitions.
    inter_broker_listener: String,
}

fn controller_error(e: ControllerError) -> TopicError {
    match e {
        ControllerError::TopicExists(name) => TopicError::AlreadyExists(name),
        ControllerError::UnknownTopic(name) => TopicError::Unknown(name),
        ControllerError::Placement(why) => TopicError::InvalidReplicationFactor(why),
        ControllerError::InvalidAssignment(why) => TopicError::InvalidReplicaAssignment(why),
        ControllerError::InvalidTopic(why) => TopicError::InvalidName(why),
        ControllerError::NotController { leader } => TopicError::NotController(format!("no active controller reachable now (last known: {leader:?}); retry")),
        ControllerError::Timeout(why) => TopicError::TimedOut(why),
        ControllerError::InvalidPartitions(why) => TopicError::InvalidPartitions(why),
        other => TopicError::Io(io::Error::other(other.to_string())),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, TopicError> + Send + 'static) -> Result<T, TopicError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| TopicError::Io(io::Error::other(e.to_string())))?
}

impl TopicAdmin {
    pub fn new(
        logs: Arc<LogManager>,
        controller: Arc<ControllerChannel>,
        publisher: Arc<MetadataPublisher>,
        metadata: Arc<MetadataCache>,
        inter_broker_listener: String,
    ) -> Self {
        TopicAdmin { logs, controller, publisher, metadata, inter_broker_listener }
    }

    async fn propagated(&self, name: &str, partitions: i32) {
        let want = [(name.to_string(), partitions)];
        super::propagation::wait_listed(&self.metadata, &self.inter_broker_listener, &want, PROPAGATION_TIMEOUT).await;
    }

    /// Runs the local operation as a check only; false when the caller asked for no more.
    async fn checked(&self, validate_only: bool, local: impl FnOnce() -> Result<(), TopicError> + Send + 'static) -> Result<bool, TopicError> {
        blocking(local).await?;
        Ok(!validate_only)
    }

    /// Writes `req` through the active controller and waits until this node's logs match.
    async fn write(&self, req: ControllerRequest) -> Result<(), TopicError> {
        let offset = self.controller.write(req).await.map_err(controller_error)?;
        self.applied(offset).await
    }

    async fn applied(&self, offset: u64) -> Result<(), TopicError> {
        self.publisher.wait_applied(offset, APPLY_TIMEOUT).await.map_err(|e| TopicError::Io(io::Error::other(e)))
    }

    /// `assignments`: one replica list per partition, or none to let the controller place them.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: Vec<Vec<i32>>,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        let (logs, n, o) = (self.logs.clone(), name.to_string(), overrides.clone());
        let checked = blocking(move || logs.create_topic(&n, partitions, o, true)).await?;
        if validate_only {
            return Ok(checked);
        }
        let id = Uuid::new_v4();
        let req = ControllerRequest::CreateTopic { name: name.to_string(), id, partitions, replication_factor, assignments, configs: overrides };
        let offset = self.controller.write(req).await.map_err(controller_error)?;
        let applied = self.applied(offset).await;
        match self.logs.topic(name) {
            Some(t) if t.id == id => {
                self.propagated(name, partitions).await;
                Ok(t)
            }
            _ => {
                // Not made here: take it out of the metadata log again.
                if let Err(e) = self.controller.write(ControllerRequest::DeleteTopic { name: name.to_string(), id: Some(id) }).await {
                    tracing::error!(topic = name, error = %e, "could not remove a topic whose partitions could not be made");
                }
                Err(applied.err().unwrap_or_else(|| TopicError::Io(io::Error::other(format!("the partitions of {name} could not be made")))))
            }
        }
    }

    pub async fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let (logs, n) = (self.logs.clone(), name.to_string());
        if !self.checked(validate_only, move || logs.create_partitions(&n, count, true)).await? {
            return Ok(());
        }
        let id = self.logs.topic(name).map(|t| t.id);
        self.write(ControllerRequest::CreatePartitions { name: name.to_string(), count }).await?;
        match self.logs.topic(name) {
            Some(t) if Some(t.id) == id && t.partitions.len() as i32 >= count => {
                self.propagated(name, count).await;
                Ok(())
            }
            // Deleted (and perhaps made anew) by another call right after it grew.
            Some(t) if Some(t.id) != id => Err(TopicError::Unknown(name.to_string())),
            None => Err(TopicError::Unknown(name.to_string())),
            _ => Err(TopicError::Io(io::Error::other(format!("the new partitions of {name} could not be made; the broker retries")))),
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let id = self.logs.topic(name).map(|t| t.id).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.write(ControllerRequest::DeleteTopic { name: name.to_string(), id: Some(id) }).await?;
        if self.logs.topic(name).is_some_and(|t| t.id == id) {
            return Err(TopicError::Io(io::Error::other(format!("{name} is deleted from the metadata log but its partitions are not removed yet; the broker retries"))));
        }
        Ok(())
    }

    /// Dynamic broker configs: the cluster-wide default (`for_default`) or this node's.
    pub async fn alter_broker_config(&self, node_id: i32, for_default: bool, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        let (logs, o) = (self.logs.clone(), overrides.clone());
        if !self.checked(validate_only, move || logs.alter_broker_config(for_default, o, true)).await? {
            return Ok(());
        }
        let name = if for_default { String::new() } else { node_id.to_string() };
        self.write(ControllerRequest::SetBrokerConfigs { name, configs: overrides }).await
    }

    pub async fn alter_topic_config(&self, name: &str, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        let (logs, n, o) = (self.logs.clone(), name.to_string(), overrides.clone());
        if !self.checked(validate_only, move || logs.alter_topic_config(&n, o, true)).await? {
            return Ok(());
        }
        self.write(ControllerRequest::SetTopicConfigs { name: name.to_string(), configs: overrides }).await
    }
}
