//! The GroupCoordinator: every group of this broker, their committed offsets, and the
//! writes to `__consumer_offsets` that make both survive a restart.
//!
//! Operations take the coordinator lock, run the group's state machine, append what
//! changed to the offsets store (a page-cache write), release the lock, then wait for
//! the fsync the flush settings ask for and for the parked JoinGroup/SyncGroup answer.

use super::classic_group::{ClassicGroup, GroupState, Reply};
use super::clock::Clock;
use super::consumer_group::{ConsumerGroup, Heartbeat, HeartbeatResult};
use super::topic_metadata::TopicMetadata;
use super::member::{JoinRequest, JoinResult, SyncRequest, SyncResult};
use super::offsets_store::{partition_for, Durable, KeyValue, Loaded, OffsetsStore, TxnProducer};
use super::records::{self, CommittedOffset, OffsetsRecord};
use super::Error;
use crate::config::GroupConfig;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

pub type TopicPartition = (String, i32);

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// An offset committed inside a transaction: (group, partition, offset).
type PendingOffset = (String, TopicPartition, CommittedOffset);

#[derive(Default)]
struct Inner {
    groups: HashMap<String, ClassicGroup>,
    consumer: HashMap<String, ConsumerGroup>,
    offsets: HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
    /// Offsets committed inside a transaction, by (producer id, partition of
    /// `__consumer_offsets`), until the transaction's marker lands in that partition.
    pending_txn: HashMap<(i64, i32), Vec<PendingOffset>>,
    last_expiry_check: i64,
}

pub struct GroupCoordinator {
    cfg: GroupConfig,
    clock: Arc<dyn Clock>,
    store: Arc<dyn OffsetsStore>,
    topics: Arc<dyn TopicMetadata>,
    inner: Mutex<Inner>,
}

impl GroupCoordinator {
    pub fn new(cfg: GroupConfig, clock: Arc<dyn Clock>, store: Arc<dyn OffsetsStore>, topics: Arc<dyn TopicMetadata>) -> Self {
        let now = clock.now_ms();
        GroupCoordinator { cfg, clock, store, topics, inner: Mutex::new(Inner { last_expiry_check: now, ..Default::default() }) }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn partition_of(&self, group: &str) -> i32 {
        partition_for(group, self.cfg.offsets_topic_partitions)
    }

    /// Replays what loading `__consumer_offsets` found (broker start).
    pub fn load(&self, entry: Loaded) {
        match entry {
            Loaded::Record { rec: OffsetsRecord::Offset { group, topic, partition, value: Some(v) }, txn: Some(pid) } => {
                let slot = (pid, self.partition_of(&group));
                self.lock().pending_txn.entry(slot).or_default().push((group, (topic, partition), v));
            }
            Loaded::Record { rec, .. } => self.replay(rec),
            Loaded::Marker { partition, producer_id, commit } => self.complete_txn(partition, producer_id, commit),
        }
    }

    /// Replays one stored record outside any transaction.
    pub fn replay(&self, rec: OffsetsRecord) {
        let now = self.now();
        let mut inner = self.lock();
        match rec {
            OffsetsRecord::Offset { group, topic, partition, value } => {
                let offsets = inner.offsets.entry(group.clone()).or_default();
                match value {
                    Some(v) => {
                        offsets.insert((topic, partition), v);
                    }
                    None => {
                        offsets.remove(&(topic, partition));
                    }
                }
                if inner.offsets.get(&group).is_some_and(|o| o.is_empty()) {
                    inner.offsets.remove(&group);
                }
            }
            OffsetsRecord::Group { group, value: Some(stored) } => {
                inner.groups.insert(group.clone(), ClassicGroup::from_stored(&group, stored, now));
            }
            OffsetsRecord::Group { group, value: None } => {
                inner.groups.remove(&group);
            }
            OffsetsRecord::Other(_) => {}
        }
    }

    /// After replay: groups known only by their offsets become Empty offset-only groups.
    pub fn finish_loading(&self) {
        let now = self.now();
        let mut inner = self.lock();
        let orphans: Vec<String> = inner.offsets.keys().filter(|g| !inner.groups.contains_key(*g)).cloned().collect();
        for g in orphans {
            inner.groups.insert(g.clone(), ClassicGroup::new(&g, now));
        }
    }

    /// Writes the records of one group; logs and reports a failure as a retriable error.
    fn write(&self, group: &str, records: &[KeyValue], now: i64) -> Result<Durable, Error> {
        self.write_txn(group, records, None, now)
    }

    fn write_txn(&self, group: &str, records: &[KeyValue], txn: Option<TxnProducer>, now: i64) -> Result<Durable, Error> {
        self.store.append(self.partition_of(group), records, txn, now).map_err(|e| {
            tracing::error!(group, error = %e, "writing to __consumer_offsets failed; check the log directory");
            Error::CoordinatorNotAvailable
        })
    }

    /// The group's stored record, when its stored form changed.
    fn group_record(g: &mut ClassicGroup) -> Option<KeyValue> {
        g.take_dirty().then(|| (records::group_key(&g.id), Some(records::group_value(&g.to_stored()))))
    }

    async fn settle(durable: Result<Durable, Error>) -> Option<Error> {
        match durable {
            Ok(d) => match d.wait().await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %e, "fsync of __consumer_offsets failed; check the disk");
                    Some(Error::KafkaStorageError)
                }
            },
            Err(e) => Some(e),
        }
    }

    pub fn validate_group_id(group: &str) -> Option<Error> {
        group.is_empty().then_some(Error::InvalidGroupId)
    }

    // ---- classic protocol ----

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResult {
        if let Some(e) = Self::validate_group_id(group_id) {
            return JoinResult::error(&req.member_id, e);
        }
        let session = req.session_timeout_ms as i64;
        if session < self.cfg.min_session_timeout_ms || session > self.cfg.max_session_timeout_ms {
            return JoinResult::error(&req.member_id, Error::InvalidSessionTimeout);
        }
        let member_id = req.member_id.clone();
        let (reply, durable) = {
            let now = self.now();
            let mut inner = self.lock();
            match inner.consumer.get(group_id).map(|g| g.is_empty()) {
                Some(false) => return JoinResult::error(&req.member_id, Error::InconsistentGroupProtocol),
                Some(true) => {
                    inner.consumer.remove(group_id);
                }
                None => {}
            }
            if !inner.groups.contains_key(group_id) {
                if !req.member_id.is_empty() {
                    return JoinResult::error(&req.member_id, Error::UnknownMemberId);
                }
                inner.groups.insert(group_id.to_string(), ClassicGroup::new(group_id, now));
            }
            let g = inner.groups.get_mut(group_id).expect("inserted above");
            let reply = g.join(req, now, &self.cfg);
            let rec = Self::group_record(g);
            (reply, rec.map(|r| self.write(group_id, &[r], now)))
        };
        if let Some(d) = durable {
            if let Some(e) = Self::settle(d).await {
                return JoinResult::error(&member_id, e);
            }
        }
        match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| JoinResult::error(&member_id, Error::CoordinatorNotAvailable)),
        }
    }

    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResult {
        if let Some(e) = Self::validate_group_id(group_id) {
            return SyncResult::error(e);
        }
        let (reply, durable, generation) = {
            let now = self.now();
            let mut inner = self.lock();
            let Some(g) = inner.groups.get_mut(group_id) else {
                return SyncResult::error(Error::UnknownMemberId);
            };
            let generation = g.generation_id;
            let reply = g.sync(req, now);
            let rec = Self::group_record(g);
            (reply, rec.map(|r| self.write(group_id, &[r], now)), generation)
        };
        // The assignment is stored before anyone is told about it (as Kafka's storeGroup);
        // a failed write reaches every member and the group rebalances.
        if let Some(d) = durable {
            let stored = match Self::settle(d).await {
                None => Ok(()),
                // Kafka's mapping: a storage failure sends the members to find the
                // coordinator again.
                Some(Error::KafkaStorageError) => Err(Error::NotCoordinator),
                Some(e) => Err(e),
            };
            let now = self.now();
            let mut inner = self.lock();
            if let Some(g) = inner.groups.get_mut(group_id) {
                g.assignment_stored(generation, stored, now, &self.cfg);
            }
        }
        match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| SyncResult::error(Error::CoordinatorNotAvailable)),
        }
    }

    pub fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation_id: i32) -> Option<Error> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Some(e);
        }
        let now = self.now();
        let mut inner = self.lock();
        match inner.groups.get_mut(group_id) {
            Some(g) => g.heartbeat(member_id, instance_id, generation_id, now),
            None => Some(Error::UnknownMemberId),
        }
    }

    /// LeaveGroup: one result per (member id, instance id) named.
    pub async fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Result<Vec<Result<String, Error>>, Error> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Err(e);
        }
        let (results, durable) = {
            let now = self.now();
            let mut inner = self.lock();
            let Some(g) = inner.groups.get_mut(group_id) else {
                return Err(Error::UnknownMemberId);
            };
            let results: Vec<_> = members.iter().map(|(m, i)| g.leave(m, i.as_deref(), now, &self.cfg)).collect();
            let rec = Self::group_record(g);
            (results, rec.map(|r| self.write(group_id, &[r], now)))
        };
        if let Some(d) = durable {
            if let Some(e) = Self::settle(d).await {
                return Err(e);
            }
        }
        Ok(results)
    }

    // ---- offsets ----

    /// Commits offsets for a classic-protocol (or offset-only) group after checking the
    /// member and generation; the offsets are durable per the flush settings on return.
    /// `stale` is the error for a KIP-848 member's outdated epoch (STALE_MEMBER_EPOCH
    /// from OffsetCommit v9, ILLEGAL_GENERATION before).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        stale: Error,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<(), Error> {
        self.commit(group_id, member_id, instance_id, generation_id, stale, offsets, None).await
    }

    /// TxnOffsetCommit: the offsets are written into `__consumer_offsets` as part of the
    /// producer's transaction and take effect when its commit marker lands there (an
    /// abort drops them). The caller has checked the producer with the transaction
    /// coordinator.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_txn_offsets(
        &self,
        group_id: &str,
        producer: TxnProducer,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<(), Error> {
        self.commit(group_id, member_id, instance_id, generation_id, Error::IllegalGeneration, offsets, Some(producer)).await
    }

    /// Checks the committer, writes the offsets (inside the producer's transaction when
    /// `txn` is given) and records them: in effect at once, or pending until the
    /// transaction's marker.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        stale: Error,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        txn: Option<TxnProducer>,
    ) -> Result<(), Error> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Err(e);
        }
        let durable = {
            let now = self.now();
            let partitions: Vec<(Option<uuid::Uuid>, i32)> = offsets.iter().map(|(tp, _)| (self.topics.topic(&tp.0).map(|(id, _)| id), tp.1)).collect();
            let mut inner = self.lock();
            Self::check_committer(&mut inner, group_id, member_id, instance_id, generation_id, stale, &partitions, now)?;
            if offsets.is_empty() {
                return Ok(());
            }
            let durable = self.write_txn(group_id, &Self::offset_records(group_id, &offsets), txn, now)?;
            match txn {
                None => inner.offsets.entry(group_id.to_string()).or_default().extend(offsets),
                Some((producer_id, _)) => {
                    let pending = inner.pending_txn.entry((producer_id, self.partition_of(group_id))).or_default();
                    pending.extend(offsets.into_iter().map(|(tp, v)| (group_id.to_string(), tp, v)));
                }
            }
            durable
        };
        match Self::settle(Ok(durable)).await {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The marker of `producer_id`'s transaction landed in `partition` of
    /// `__consumer_offsets`: its offsets there take effect (commit) or are dropped.
    pub fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let mut inner = self.lock();
        let Some(pending) = inner.pending_txn.remove(&(producer_id, partition)) else { return };
        if !commit {
            return;
        }
        let now = self.now();
        for (group, tp, v) in pending {
            if !inner.groups.contains_key(&group) && !inner.consumer.contains_key(&group) {
                inner.groups.insert(group.clone(), ClassicGroup::new(&group, now));
            }
            inner.offsets.entry(group).or_default().insert(tp, v);
        }
    }

    /// Creates `__consumer_offsets` (and so the partition) if this is its first use.
    pub fn ensure_offsets_partition(&self, partition: i32) -> Result<(), Error> {
        self.store.ensure_partition(partition).map_err(|e| {
            tracing::error!(error = %e, "cannot create __consumer_offsets; check the log directory");
            Error::CoordinatorNotAvailable
        })
    }

    /// Partitions of the group with offsets waiting for a transaction to end (OffsetFetch
    /// with require_stable answers UNSTABLE_OFFSET_COMMIT for them).
    pub fn unstable_partitions(&self, group_id: &str) -> Vec<TopicPartition> {
        let inner = self.lock();
        let slot_partition = self.partition_of(group_id);
        inner
            .pending_txn
            .iter()
            .filter(|((_, p), _)| *p == slot_partition)
            .flat_map(|(_, list)| list.iter().filter(|(g, _, _)| g == group_id).map(|(_, tp, _)| tp.clone()))
            .collect()
    }

    /// Who may commit: a member of the current generation (or epoch), or anyone with
    /// generation -1 when the group has no members (an offset-only group is created).
    #[allow(clippy::too_many_arguments)]
    fn check_committer(
        inner: &mut Inner,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        stale: Error,
        partitions: &[(Option<uuid::Uuid>, i32)],
        now: i64,
    ) -> Result<(), Error> {
        if let Some(g) = inner.consumer.get(group_id) {
            return match g.validate_commit(member_id, generation_id, partitions, stale) {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        match inner.groups.get_mut(group_id) {
            Some(g) => match g.validate_commit(member_id, instance_id, generation_id, now) {
                Some(e) => Err(e),
                None => Ok(()),
            },
            None if generation_id < 0 => {
                inner.groups.insert(group_id.to_string(), ClassicGroup::new(group_id, now));
                Ok(())
            }
            None => Err(Error::IllegalGeneration),
        }
    }

    fn offset_records(group_id: &str, offsets: &[(TopicPartition, CommittedOffset)]) -> Vec<KeyValue> {
        offsets.iter().map(|((t, p), v)| (records::offset_key(group_id, t, *p), Some(records::offset_value(v)))).collect()
    }

    /// Committed offsets of a group: of the partitions asked for, or all of them.
    pub fn fetch_offsets(&self, group_id: &str, partitions: Option<&[TopicPartition]>) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let inner = self.lock();
        let stored = inner.offsets.get(group_id);
        match partitions {
            Some(list) => list.iter().map(|tp| (tp.clone(), stored.and_then(|s| s.get(tp).cloned()))).collect(),
            None => stored.map(|s| s.iter().map(|(tp, v)| (tp.clone(), Some(v.clone()))).collect()).unwrap_or_default(),
        }
    }

    /// OffsetDelete: removes offsets of partitions the group no longer consumes.
    pub async fn delete_offsets(&self, group_id: &str, partitions: &[TopicPartition]) -> Result<Vec<(TopicPartition, Option<Error>)>, Error> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Err(e);
        }
        let (results, durable) = {
            let now = self.now();
            let mut inner = self.lock();
            let subscribed = if let Some(cg) = inner.consumer.get(group_id) {
                (!cg.is_empty()).then(|| cg.subscribed_topic_names(self.topics.as_ref()).into_iter().collect())
            } else {
                let Some(g) = inner.groups.get(group_id) else { return Err(Error::GroupIdNotFound) };
                match g.state() {
                GroupState::Dead => return Err(Error::GroupIdNotFound),
                GroupState::Empty => None,
                _ => match g.subscribed_topics() {
                    Some(t) => Some(t),
                    None => return Err(Error::NonEmptyGroup),
                },
                }
            };
            let mut results = Vec::new();
            let mut recs = Vec::new();
            let stored = inner.offsets.entry(group_id.to_string()).or_default();
            for tp in partitions {
                if subscribed.as_ref().is_some_and(|s| s.contains(&tp.0)) {
                    results.push((tp.clone(), Some(Error::GroupSubscribedToTopic)));
                    continue;
                }
                if stored.remove(tp).is_some() {
                    recs.push((records::offset_key(group_id, &tp.0, tp.1), None));
                }
                results.push((tp.clone(), None));
            }
            if stored.is_empty() {
                inner.offsets.remove(group_id);
            }
            (results, self.write(group_id, &recs, now))
        };
        match Self::settle(durable).await {
            None => Ok(results),
            Some(e) => Err(e),
        }
    }

    // ---- admin ----

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let inner = self.lock();
        let g = inner.groups.get(group_id)?;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let stable = g.state() == GroupState::Stable;
        Some(GroupDescription {
            state: g.state(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol.clone() } else { String::new() },
            members: g
                .members()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    // As Kafka: metadata and assignment only once the group is Stable.
                    metadata: if stable { m.metadata(&protocol) } else { Bytes::new() },
                    assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
        })
    }

    pub fn list(&self) -> Vec<GroupListing> {
        let inner = self.lock();
        let mut out: Vec<GroupListing> = inner
            .groups
            .values()
            .filter(|g| g.state() != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state().name(),
                group_type: "classic",
            })
            .chain(inner.consumer.values().map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: "consumer".into(),
                state: g.state_name(),
                group_type: "consumer",
            }))
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups: only groups without members; their offsets go with them.
    pub async fn delete_group(&self, group_id: &str) -> Option<Error> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Some(e);
        }
        let durable = {
            let now = self.now();
            let mut inner = self.lock();
            if let Some(cg) = inner.consumer.get(group_id) {
                if !cg.is_empty() {
                    return Some(Error::NonEmptyGroup);
                }
                inner.consumer.remove(group_id);
                inner.groups.remove(group_id);
            } else {
                match inner.groups.get(group_id).map(|g| g.state()) {
                    None | Some(GroupState::Dead) => return Some(Error::GroupIdNotFound),
                    Some(GroupState::Empty) => {}
                    Some(_) => return Some(Error::NonEmptyGroup),
                }
                let mut g = inner.groups.remove(group_id).expect("checked above");
                g.mark_dead(now);
            }
            let recs = Self::tombstones(group_id, inner.offsets.remove(group_id));
            self.write(group_id, &recs, now)
        };
        Self::settle(durable).await
    }

    fn tombstones(group_id: &str, offsets: Option<BTreeMap<TopicPartition, CommittedOffset>>) -> Vec<KeyValue> {
        let mut recs: Vec<KeyValue> =
            offsets.into_iter().flatten().map(|((t, p), _)| (records::offset_key(group_id, &t, p), None)).collect();
        recs.push((records::group_key(group_id), None));
        recs
    }

    // ---- KIP-848 consumer groups ----

    pub fn consumer_heartbeat(&self, group_id: &str, hb: Heartbeat) -> Result<HeartbeatResult, (Error, String)> {
        if let Some(e) = Self::validate_group_id(group_id) {
            return Err((e, "the group id is empty".into()));
        }
        if let Some(a) = &hb.server_assignor {
            if !self.cfg.consumer_assignors.contains(a) {
                let known = self.cfg.consumer_assignors.join(", ");
                return Err((Error::UnsupportedAssignor, format!("assignor {a} is not one of {known} (group.consumer.assignors)")));
            }
        }
        let now = self.now();
        let mut inner = self.lock();
        if let Some(classic) = inner.groups.get(group_id) {
            if classic.state() != GroupState::Empty && classic.state() != GroupState::Dead {
                return Err((Error::GroupIdNotFound, format!("group {group_id} is a classic group with members")));
            }
            // An empty classic group (maybe only offsets) becomes a consumer group.
            inner.groups.remove(group_id);
        }
        if !inner.consumer.contains_key(group_id) {
            if hb.member_epoch != 0 {
                return Err((Error::UnknownMemberId, format!("group {group_id} does not exist")));
            }
            inner.consumer.insert(group_id.to_string(), ConsumerGroup::new(group_id, &self.cfg));
        }
        let g = inner.consumer.get_mut(group_id).expect("inserted above");
        g.heartbeat(hb, now, &self.cfg, self.topics.as_ref())
    }

    /// Runs `f` on a KIP-848 group (ConsumerGroupDescribe).
    pub fn with_consumer_group<T>(&self, group_id: &str, f: impl FnOnce(&ConsumerGroup) -> T) -> Option<T> {
        self.lock().consumer.get(group_id).map(f)
    }

    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.lock().consumer.contains_key(group_id)
    }

    /// OffsetFetch v9 with a member epoch: only a current member may read.
    pub fn validate_offset_fetch(&self, group_id: &str, member_id: &str, epoch: i32) -> Option<Error> {
        let inner = self.lock();
        inner.consumer.get(group_id).and_then(|g| g.validate_member(member_id, epoch, Error::StaleMemberEpoch))
    }

    // ---- timers ----

    /// Fires due timers of every group and, every `offsets.retention.check.interval.ms`,
    /// expires offsets (Kafka's `cleanupGroupMetadata`).
    pub fn tick(&self) {
        let now = self.now();
        let mut inner = self.lock();
        let mut writes: Vec<(String, Vec<KeyValue>)> = Vec::new();
        for g in inner.consumer.values_mut() {
            g.tick(now);
        }
        for g in inner.groups.values_mut() {
            g.tick(now, &self.cfg);
            if let Some(r) = Self::group_record(g) {
                writes.push((g.id.clone(), vec![r]));
            }
        }
        if now - inner.last_expiry_check >= self.cfg.offsets_retention_check_interval_ms {
            inner.last_expiry_check = now;
            writes.extend(self.expire_offsets(&mut inner, now));
        }
        // Written under the lock, so a group's records land in the order its state changed;
        // their durability follows the background flusher.
        for (group, recs) in writes {
            let _ = self.write(&group, &recs, now);
        }
        drop(inner);
    }

    fn expire_offsets(&self, inner: &mut Inner, now: i64) -> Vec<(String, Vec<KeyValue>)> {
        let retention = self.cfg.offsets_retention_ms;
        let mut writes = Vec::new();
        let Inner { groups, offsets, .. } = inner;
        let mut dead = Vec::new();
        for g in groups.values() {
            let stored = offsets.get_mut(&g.id);
            let mut recs = Vec::new();
            if let Some(stored) = stored {
                let expired: Vec<TopicPartition> = match g.state() {
                    // Offset-only groups expire offset by offset; an Empty group all at once
                    // when it has been empty for the retention period (KIP-211).
                    GroupState::Empty if g.protocol_type.is_none() => {
                        stored.iter().filter(|(_, v)| v.commit_timestamp + retention <= now).map(|(tp, _)| tp.clone()).collect()
                    }
                    GroupState::Empty if g.state_timestamp + retention <= now => stored.keys().cloned().collect(),
                    GroupState::Empty | GroupState::Dead => Vec::new(),
                    // KIP-496: a consumer group's offsets of topics nobody subscribes to.
                    _ => match g.subscribed_topics() {
                        Some(subscribed) => stored
                            .iter()
                            .filter(|((t, _), v)| !subscribed.contains(t) && v.commit_timestamp + retention <= now)
                            .map(|(tp, _)| tp.clone())
                            .collect(),
                        None => Vec::new(),
                    },
                };
                for tp in expired {
                    stored.remove(&tp);
                    recs.push((records::offset_key(&g.id, &tp.0, tp.1), None));
                }
                if stored.is_empty() {
                    offsets.remove(&g.id);
                }
            }
            if g.state() == GroupState::Empty && !offsets.contains_key(&g.id) {
                dead.push(g.id.clone());
                recs.push((records::group_key(&g.id), None));
            }
            if !recs.is_empty() {
                tracing::info!(group = %g.id, records = recs.len(), "expired committed offsets");
                writes.push((g.id.clone(), recs));
            }
        }
        for id in dead {
            if let Some(mut g) = groups.remove(&id) {
                g.mark_dead(now);
            }
        }
        writes
    }

    /// Answers every parked JoinGroup/SyncGroup: the broker is stopping.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        for g in inner.groups.values_mut() {
            g.shutdown();
        }
    }
}

#[cfg(test)]
#[path = "group_coordinator_tests.rs"]
mod tests;
