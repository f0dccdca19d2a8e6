//! What the admin handlers call to create, grow, delete and reconfigure topics: the
//! metadata log decides, the local logs follow.
//!
//! Each call is first checked against the local logs exactly as before there was a
//! metadata log (names, partition counts, configs, the open-file budget — the same errors),
//! then written by the active controller, then waited for until this node's logs match
//! (`MetadataPublisher`). A creation whose local partitions cannot be made is removed from
//! the metadata log again, so it stays all-or-nothing.
//!
//! On a node of an experimental several-node cluster (topics still each node's own) the
//! calls go straight to the local logs.

use super::controller::{ControllerError, QuorumController};
use super::publisher::MetadataPublisher;
use crate::storage::{LogManager, Topic, TopicError};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct TopicAdmin {
    logs: Arc<LogManager>,
    /// `None`: topics are this node's own (no metadata log behind them).
    through_log: Option<(Arc<QuorumController>, Arc<MetadataPublisher>)>,
}

fn controller_error(e: ControllerError) -> TopicError {
    match e {
        ControllerError::TopicExists(name) => TopicError::AlreadyExists(name),
        ControllerError::UnknownTopic(name) => TopicError::Unknown(name),
        ControllerError::Placement(why) => TopicError::InvalidReplicationFactor(why),
        other => TopicError::Io(io::Error::other(other.to_string())),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, TopicError> + Send + 'static) -> Result<T, TopicError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| TopicError::Io(io::Error::other(e.to_string())))?
}

impl TopicAdmin {
    pub fn new(logs: Arc<LogManager>, through_log: Option<(Arc<QuorumController>, Arc<MetadataPublisher>)>) -> Self {
        TopicAdmin { logs, through_log }
    }

    /// Runs the local operation — only as a check when the change goes through the
    /// metadata log (or is `validate_only`), for real otherwise — and hands back the
    /// controller and publisher when the change is still to be written.
    async fn local_first(
        &self,
        validate_only: bool,
        local: impl FnOnce(bool) -> Result<(), TopicError> + Send + 'static,
    ) -> Result<Option<(&Arc<QuorumController>, &Arc<MetadataPublisher>)>, TopicError> {
        let check_only = self.through_log.is_some() || validate_only;
        blocking(move || local(check_only)).await?;
        if validate_only {
            return Ok(None);
        }
        Ok(self.through_log.as_ref().map(|(c, p)| (c, p)))
    }

    async fn applied(&self, publisher: &MetadataPublisher, offset: u64) -> Result<(), TopicError> {
        publisher.wait_applied(offset, APPLY_TIMEOUT).await.map_err(|e| TopicError::Io(io::Error::other(e)))
    }

    pub async fn create_topic(&self, name: &str, partitions: i32, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<Arc<Topic>, TopicError> {
        let (logs, n, o) = (self.logs.clone(), name.to_string(), overrides.clone());
        let checked = blocking(move || logs.create_topic(&n, partitions, o, true)).await;
        let Some((controller, publisher)) = &self.through_log else {
            if validate_only {
                return checked;
            }
            let (logs, n) = (self.logs.clone(), name.to_string());
            return blocking(move || logs.create_topic(&n, partitions, overrides, false)).await;
        };
        let checked = checked?;
        if validate_only {
            return Ok(checked);
        }
        let id = Uuid::new_v4();
        let offset = controller.create_topic(name, id, partitions, 1, overrides).await.map_err(controller_error)?;
        let applied = self.applied(publisher, offset).await;
        match self.logs.topic(name) {
            Some(t) if t.id == id => Ok(t),
            _ => {
                // Not made here: take it out of the metadata log again.
                if let Err(e) = controller.delete_topic(name, Some(id)).await {
                    tracing::error!(topic = name, error = %e, "could not remove a topic whose partitions could not be made");
                }
                Err(applied.err().unwrap_or_else(|| TopicError::Io(io::Error::other(format!("the partitions of {name} could not be made")))))
            }
        }
    }

    pub async fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let (logs, n) = (self.logs.clone(), name.to_string());
        let Some((controller, publisher)) = self.local_first(validate_only, move |check| logs.create_partitions(&n, count, check)).await? else {
            return Ok(());
        };
        let offset = controller.create_partitions(name, count).await.map_err(controller_error)?;
        self.applied(publisher, offset).await?;
        match self.logs.topic(name) {
            Some(t) if t.partitions.len() as i32 >= count => Ok(()),
            _ => Err(TopicError::Io(io::Error::other(format!("the new partitions of {name} could not be made; the broker retries")))),
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let Some((controller, publisher)) = &self.through_log else {
            let (logs, n) = (self.logs.clone(), name.to_string());
            return blocking(move || logs.delete_topic(&n)).await;
        };
        let id = self.logs.topic(name).map(|t| t.id).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let offset = controller.delete_topic(name, Some(id)).await.map_err(controller_error)?;
        self.applied(publisher, offset).await?;
        if self.logs.topic(name).is_some_and(|t| t.id == id) {
            return Err(TopicError::Io(io::Error::other(format!("{name} is deleted from the metadata log but its partitions are not removed yet; the broker retries"))));
        }
        Ok(())
    }

    /// Dynamic broker configs: the cluster-wide default (`for_default`) or this node's.
    pub async fn alter_broker_config(&self, node_id: i32, for_default: bool, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        let (logs, o) = (self.logs.clone(), overrides.clone());
        let Some((controller, publisher)) = self.local_first(validate_only, move |check| logs.alter_broker_config(for_default, o, check)).await? else {
            return Ok(());
        };
        let name = if for_default { String::new() } else { node_id.to_string() };
        let offset = controller.set_broker_configs(&name, overrides).await.map_err(controller_error)?;
        self.applied(publisher, offset).await
    }

    pub async fn alter_topic_config(&self, name: &str, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        let (logs, n, o) = (self.logs.clone(), name.to_string(), overrides.clone());
        let Some((controller, publisher)) = self.local_first(validate_only, move |check| logs.alter_topic_config(&n, o, check)).await? else {
            return Ok(());
        };
        let offset = controller.set_topic_configs(name, overrides).await.map_err(controller_error)?;
        self.applied(publisher, offset).await
    }
}
