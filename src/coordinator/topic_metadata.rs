//! What consumer groups need to know about topics: ids and partition counts by name, to
//! resolve subscriptions (names or a regular expression) and size assignments.

use crate::storage::LogManager;
use std::collections::BTreeMap;
use uuid::Uuid;

pub trait TopicMetadata: Send + Sync + 'static {
    /// (topic id, partition count) of an existing topic.
    fn topic(&self, name: &str) -> Option<(Uuid, i32)>;
    /// Every topic a regular-expression subscription may match (internal ones excluded).
    fn names(&self) -> Vec<String>;
}

impl TopicMetadata for LogManager {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        LogManager::topic(self, name).map(|t| (t.id, t.partitions.len() as i32))
    }

    fn names(&self) -> Vec<String> {
        self.topics().into_iter().filter(|t| !t.is_internal()).map(|t| t.name.clone()).collect()
    }
}

/// A fixed set of topics, for tests.
#[derive(Default)]
pub struct StaticTopics(pub std::sync::Mutex<BTreeMap<String, (Uuid, i32)>>);

impl TopicMetadata for StaticTopics {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.0.lock().unwrap().get(name).copied()
    }

    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}
