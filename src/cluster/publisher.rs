//! Kafka's `BrokerMetadataPublisher` and `ReplicaManager.applyDelta`: makes this node's
//! logs match the metadata image. Topics the image gains get their local partitions (with
//! the image's topic id and configs), partitions and config changes follow, topics the
//! image loses are deleted.
//!
//! Topics on disk that the image does not know are recorded in the metadata log when they
//! are older than it (the first start after an upgrade: `MetadataMigrationRecord`) or are
//! internal topics a coordinator made (`__consumer_offsets`, `__transaction_state`);
//! any other is a leftover of a deletion a crash interrupted and is removed.
//!
//! Dynamic broker configs (the cluster-wide default and this node's) follow the log the
//! same way, once the node's own have been recorded in it.
//!
//! The image the request handlers see (`MetadataCache`) is the one the local logs were last
//! made to match: a broker that lists a topic in Metadata has its partitions, so a client
//! that learns of a topic from it never finds them missing here.
//!
//! Every broker keeps every topic's partitions on disk, as the lone node always has: the
//! handlers answer existence, configs and offsets questions from its logs, and only the
//! partitions a broker leads (the image says which) take records. Followers become real
//! in the replication part; until then the other replicas' logs stay empty.

use super::controller_rpc::{ControllerChannel, ControllerRequest};
use super::controller_topics::AdoptedTopic;
use super::image::MetadataImage;
use super::quorum::MetadataQuorum;
use super::records::CONFIG_BROKER;
use crate::storage::LogManager;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct MetadataPublisher {
    logs: Arc<LogManager>,
    node_id: i32,
    /// The offset of the last image the local logs were made to match.
    applied: watch::Sender<u64>,
    /// That image, for the handlers.
    published: watch::Sender<Arc<MetadataImage>>,
    last_error: Mutex<Option<String>>,
}

impl MetadataPublisher {
    /// `initial`: the image the handlers see until the first pass (the quorum's at start,
    /// which the logs on disk already match but for a creation a crash interrupted).
    pub fn new(logs: Arc<LogManager>, node_id: i32, initial: Arc<MetadataImage>) -> Arc<Self> {
        Arc::new(MetadataPublisher {
            logs,
            node_id,
            applied: watch::channel(0).0,
            published: watch::channel(initial).0,
            last_error: Mutex::new(None),
        })
    }

    /// The image the local logs match, as it changes.
    pub fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    /// Waits until the local logs match an image at `offset` or later; the last local
    /// failure, if any, comes back for the caller to report.
    pub async fn wait_applied(&self, offset: u64, timeout: Duration) -> Result<(), String> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|a| *a >= offset)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.last_error.lock().unwrap().clone().unwrap_or_else(|| format!("the local logs did not catch up with metadata offset {offset} in {timeout:?}"))),
        }
    }

    fn failed(&self, what: String) {
        tracing::error!(error = %what, "could not apply the metadata image to the local logs; retrying");
        *self.last_error.lock().unwrap() = Some(what);
    }

    /// One pass; returns the local topics to record in the metadata log.
    fn reconcile(&self, prev: &MetadataImage, img: &MetadataImage) -> Vec<AdoptedTopic> {
        *self.last_error.lock().unwrap() = None;
        for (id, t) in &prev.topics {
            if !img.topics.contains_key(id) && self.logs.topic(&t.name).is_some_and(|l| l.id == *id) {
                if let Err(e) = self.logs.delete_topic(&t.name) {
                    self.failed(format!("deleting {}: {e}", t.name));
                }
            }
        }
        for t in img.topics.values() {
            let hosted = t.partitions.keys().map(|i| i + 1).max().unwrap_or(0);
            if hosted == 0 {
                continue;
            }
            let overrides = img.topic_configs(&t.name).cloned().unwrap_or_default();
            let result = match self.logs.topic(&t.name) {
                None => self.logs.create_topic_with_id(&t.name, Some(t.id), hosted, overrides, false).map(|_| ()),
                Some(local) if local.id != t.id => {
                    self.failed(format!("topic {} on disk has id {}, the metadata log {}; left alone", t.name, local.id, t.id));
                    Ok(())
                }
                Some(local) => {
                    let grown = if (local.partitions.len() as i32) < hosted { self.logs.create_partitions(&t.name, hosted, false) } else { Ok(()) };
                    grown.and_then(|()| if local.overrides != overrides { self.logs.alter_topic_config(&t.name, overrides, false) } else { Ok(()) })
                }
            };
            if let Err(e) = result {
                self.failed(format!("topic {}: {e}", t.name));
            }
        }
        // Dynamic broker configs follow the log once the node's own are recorded in it.
        if img.migrated {
            let cfg = self.logs.broker_config();
            let wanted = |name: String| img.configs.get(&(CONFIG_BROKER, name)).cloned().unwrap_or_default();
            for (for_default, name, current) in [(true, String::new(), &cfg.dynamic_default), (false, self.node_id.to_string(), &cfg.dynamic_broker)] {
                let want = wanted(name);
                if &want != current {
                    if let Err(e) = self.logs.alter_broker_config(for_default, want, false) {
                        self.failed(format!("dynamic broker configs: {e}"));
                    }
                }
            }
        }
        let mut adopt = Vec::new();
        for local in self.logs.topics() {
            if img.topic(&local.name).is_some() || img.topics.contains_key(&local.id) {
                continue;
            }
            if !img.migrated || local.is_internal() {
                adopt.push(AdoptedTopic {
                    name: local.name.clone(),
                    id: local.id,
                    partitions: local.partitions.len() as i32,
                    configs: local.overrides.clone(),
                });
            } else {
                tracing::warn!(topic = %local.name, "removing a topic the metadata log deleted (its local deletion was interrupted)");
                if let Err(e) = self.logs.delete_topic(&local.name) {
                    self.failed(format!("removing leftover topic {}: {e}", local.name));
                }
            }
        }
        adopt
    }

    /// Follows the image until `cancel`: a pass at every change, and every second while a
    /// pass left something undone.
    pub async fn run(self: Arc<Self>, quorum: Arc<dyn MetadataQuorum>, controller: Arc<ControllerChannel>, cancel: CancellationToken) {
        let mut rx = quorum.image();
        let mut prev = Arc::new(MetadataImage::default());
        loop {
            let img = rx.borrow_and_update().clone();
            let (this, before, now) = (self.clone(), prev.clone(), img.clone());
            let adopt = match tokio::task::spawn_blocking(move || this.reconcile(&before, &now)).await {
                Ok(a) => a,
                Err(e) => {
                    self.failed(format!("the metadata publisher failed: {e}"));
                    Vec::new()
                }
            };
            prev = img.clone();
            self.published.send_replace(img.clone());
            self.applied.send_replace(img.offset);
            if !adopt.is_empty() || !img.migrated {
                let cfg = self.logs.broker_config();
                let broker_configs = vec![(String::new(), cfg.dynamic_default.clone()), (self.node_id.to_string(), cfg.dynamic_broker.clone())];
                let req = ControllerRequest::AdoptTopics { broker: self.node_id, topics: adopt, migration: true, broker_configs };
                if let Err(e) = controller.write(req).await {
                    tracing::debug!(error = %e, "recording local topics in the metadata log did not happen yet");
                }
            }
            let retry = self.last_error.lock().unwrap().is_some();
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)), if retry => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::records::MetadataRecord;
    use crate::config::BrokerConfig;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn logs(dir: &std::path::Path) -> Arc<LogManager> {
        let cfg = BrokerConfig::from_map(BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())])).unwrap();
        Arc::new(LogManager::open(Arc::new(cfg)).unwrap())
    }

    fn with_topic(img: &MetadataImage, name: &str, id: Uuid, partitions: i32) -> MetadataImage {
        let mut next = img.clone();
        let mut records = vec![MetadataRecord::TopicRecord { name: name.into(), topic_id: id }];
        for p in 0..partitions {
            records.push(MetadataRecord::PartitionRecord { partition_id: p, topic_id: id, replicas: vec![0], isr: vec![0], leader: 0, leader_epoch: 0, partition_epoch: 0 });
        }
        next.apply_batch(img.offset + 1, &records).unwrap();
        next
    }

    #[test]
    fn local_logs_follow_the_image_and_leftovers_are_told_from_topics_to_record() {
        let dir = tempfile::tempdir().unwrap();
        let logs = logs(dir.path());
        let p = MetadataPublisher::new(logs.clone(), 0, Arc::new(MetadataImage::default()));
        logs.create_topic("legacy", 1, BTreeMap::new(), false).unwrap();

        // Before the migration every local topic is to be recorded, none removed.
        let empty = MetadataImage::default();
        let adopt = p.reconcile(&empty, &empty);
        assert_eq!(adopt.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["legacy"]);
        assert!(logs.topic("legacy").is_some());

        let mut migrated = empty.clone();
        migrated.apply_batch(1, &[MetadataRecord::MetadataMigrationRecord { node_id: 0 }]).unwrap();
        let a = Uuid::new_v4();
        let img = with_topic(&migrated, "a", a, 2);
        logs.create_topic("__internal", 1, BTreeMap::new(), false).unwrap();
        let adopt = p.reconcile(&migrated, &img);
        let t = logs.topic("a").expect("the image's topic is made here");
        assert_eq!((t.id, t.partitions.len()), (a, 2));
        assert_eq!(adopt.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["__internal"], "internal topics are recorded");
        assert!(logs.topic("legacy").is_none(), "after the migration an unknown non-internal topic is a leftover");

        let gone = {
            let mut next = img.clone();
            next.apply_batch(img.offset + 1, &[MetadataRecord::RemoveTopicRecord { topic_id: a }]).unwrap();
            next
        };
        p.reconcile(&img, &gone);
        assert!(logs.topic("a").is_none(), "a topic the image lost is deleted");

        // A topic of the same name but another id on disk is left alone, and reported.
        logs.create_topic("clash", 1, BTreeMap::new(), false).unwrap();
        let clash = with_topic(&gone, "clash", Uuid::new_v4(), 1);
        p.reconcile(&gone, &clash);
        assert!(logs.topic("clash").is_some());
        assert!(p.last_error.lock().unwrap().as_deref().is_some_and(|e| e.contains("left alone")));
    }
}
