//! A consumer group of the KIP-848 protocol (ConsumerGroupHeartbeat): the broker owns the
//! assignment. Every change of membership, subscriptions or subscribed topics' partition
//! counts bumps the group epoch; the target assignment is then recomputed by the group's
//! server-side assignor, and each member is moved towards its target as Kafka's
//! `CurrentAssignmentBuilder` does it: first it revokes what it must give up (keeping its
//! epoch), then it receives the new epoch and the partitions nobody else still holds.
//!
//! Synchronous and clock-free like the classic group: the coordinator passes `now`.

use super::assignor::{self, Assignment, AssignorMember, TopicCounts};
use super::topic_metadata::TopicMetadata;
use super::Error;
use crate::config::GroupConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must first give up `pending_revocation`.
    UnrevokedPartitions,
    /// At the target epoch, but some target partitions are still held by others.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    previous_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub subscribed_topics: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline: i64,
    revocation_deadline: Option<i64>,
    /// The assignment last sent, to send it again only when it changes.
    last_sent: Option<Assignment>,
    /// A static member that left with epoch -2: its place is kept until its session ends.
    left_static: bool,
}

/// What a heartbeat carries (already decoded by the handler).
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topics: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed since the last response.
    pub assignment: Option<Assignment>,
}

pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    members: BTreeMap<String, ConsumerMember>,
    static_members: HashMap<String, String>,
    target: HashMap<String, Assignment>,
    /// Subscribed topics' (id, partitions) the target was computed from.
    topics_seen: BTreeMap<String, (Uuid, i32)>,
    pub assignor: String,
}

type Refusal = (Error, String);

fn refuse<T>(e: Error, msg: impl Into<String>) -> Result<T, Refusal> {
    Err((e, msg.into()))
}

impl ConsumerGroup {
    pub fn new(id: &str, cfg: &GroupConfig) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: HashMap::new(),
            topics_seen: BTreeMap::new(),
            assignor: cfg.consumer_assignors.first().cloned().unwrap_or_else(|| "uniform".into()),
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }

    pub fn member(&self, id: &str) -> Option<&ConsumerMember> {
        self.members.get(id)
    }

    pub fn target_of(&self, id: &str) -> Assignment {
        self.target.get(id).cloned().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's ConsumerGroupState names: Empty, Assigning, Reconciling, Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch != self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Topic names every member subscribes to (by name or pattern), resolved now.
    pub fn subscribed_topic_names(&self, topics: &dyn TopicMetadata) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(Self::member_topics(m, topics));
        }
        out
    }

    fn member_topics(m: &ConsumerMember, topics: &dyn TopicMetadata) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed_topics.iter().cloned().collect();
        if let Some(re) = m.subscribed_regex.as_deref().and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok()) {
            out.extend(topics.names().into_iter().filter(|n| re.is_match(n)));
        }
        out
    }

    // ---- the heartbeat ----

    pub fn heartbeat(&mut self, hb: Heartbeat, now: i64, cfg: &GroupConfig, topics: &dyn TopicMetadata) -> Result<HeartbeatResult, Refusal> {
        if hb.member_epoch == LEAVE_EPOCH || hb.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&hb);
        }
        let joined = hb.member_epoch == 0 && !self.is_returning_static(&hb);
        let id = if hb.member_epoch == 0 { self.join(&hb, cfg)? } else { self.check_member(&hb)? };
        let mut changed = joined;
        {
            let m = self.members.get_mut(&id).expect("member just checked");
            m.session_deadline = now + cfg.consumer_session_timeout_ms;
            m.client_id = hb.client_id.clone();
            m.client_host = hb.client_host.clone();
            if hb.rack_id.is_some() {
                m.rack_id = hb.rack_id.clone();
            }
            if hb.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
            }
            if let Some(t) = &hb.subscribed_topics {
                let mut t = t.clone();
                t.sort();
                t.dedup();
                changed |= t != m.subscribed_topics;
                m.subscribed_topics = t;
            }
            // Null means "unchanged"; an empty string clears the pattern or the assignor.
            if let Some(re) = &hb.subscribed_regex {
                let re = Some(re.clone()).filter(|r| !r.is_empty());
                changed |= re != m.subscribed_regex;
                m.subscribed_regex = re;
            }
            if let Some(a) = &hb.server_assignor {
                let a = Some(a.clone()).filter(|a| !a.is_empty());
                changed |= a != m.server_assignor;
                m.server_assignor = a;
            }
        }
        self.refresh_target(topics, changed);
        self.reconcile(&id, hb.owned.as_ref(), now);
        let interval = cfg.consumer_heartbeat_interval_ms as i32;
        let m = self.members.get_mut(&id).expect("member");
        // Sent when it changed, and (as Kafka does) whenever the member reports owning
        // something else: a response it missed is repeated.
        let owned_differs = hb.owned.as_ref().is_some_and(|o| !same_assignment(o, &m.assigned));
        let assignment = (m.last_sent.as_ref() != Some(&m.assigned) || owned_differs).then(|| m.assigned.clone());
        tracing::debug!(group = %self.id, member = %id, epoch = m.member_epoch, state = ?m.state, owned = ?hb.owned, assigned = ?m.assigned, pending = ?m.pending_revocation, sent = assignment.is_some(), "consumer heartbeat");
        if assignment.is_some() {
            m.last_sent = Some(m.assigned.clone());
        }
        Ok(HeartbeatResult { member_id: id, member_epoch: m.member_epoch, heartbeat_interval_ms: interval, assignment })
    }

    fn join(&mut self, hb: &Heartbeat, cfg: &GroupConfig) -> Result<String, Refusal> {
        if hb.subscribed_topics.is_none() && hb.subscribed_regex.is_none() {
            return refuse(Error::InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set when joining");
        }
        if hb.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return refuse(Error::InvalidRequest, "TopicPartitions must be empty when joining");
        }
        if hb.rebalance_timeout_ms <= 0 {
            return refuse(Error::InvalidRequest, "RebalanceTimeoutMs must be set when joining");
        }
        let new_id = if hb.member_id.is_empty() { Uuid::new_v4().simple().to_string() } else { hb.member_id.clone() };
        if let Some(instance) = &hb.instance_id {
            if let Some(old) = self.static_members.get(instance).cloned() {
                let prior = self.members.get(&old).expect("static member is a member");
                if !prior.left_static && old != new_id {
                    return refuse(Error::UnreleasedInstanceId, format!("static member {instance} is still active as {old}"));
                }
                // The instance comes back: it takes its old place, assignment and epoch.
                let mut m = self.members.remove(&old).expect("checked");
                m.member_id = new_id.clone();
                m.left_static = false;
                m.last_sent = None;
                if let Some(t) = self.target.remove(&old) {
                    self.target.insert(new_id.clone(), t);
                }
                self.members.insert(new_id.clone(), m);
                self.static_members.insert(instance.clone(), new_id.clone());
                return Ok(new_id);
            }
        }
        if self.members.contains_key(&new_id) {
            // Epoch 0 from a known member: it lost its state; start it over.
            self.remove_member(&new_id);
        }
        if self.members.len() >= cfg.consumer_max_size {
            return refuse(Error::GroupMaxSizeReached, format!("group {} has reached group.consumer.max.size", self.id));
        }
        let m = ConsumerMember {
            member_id: new_id.clone(),
            instance_id: hb.instance_id.clone(),
            rack_id: hb.rack_id.clone(),
            client_id: hb.client_id.clone(),
            client_host: hb.client_host.clone(),
            member_epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout_ms: hb.rebalance_timeout_ms,
            server_assignor: None,
            subscribed_topics: Vec::new(),
            subscribed_regex: None,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: 0,
            revocation_deadline: None,
            last_sent: None,
            left_static: false,
        };
        if let Some(instance) = &hb.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        Ok(new_id)
    }

    fn is_returning_static(&self, hb: &Heartbeat) -> bool {
        hb.instance_id.as_ref().and_then(|i| self.static_members.get(i)).is_some_and(|id| self.members[id].left_static)
    }

    fn check_member(&self, hb: &Heartbeat) -> Result<String, Refusal> {
        let Some(m) = self.members.get(&hb.member_id) else {
            return refuse(Error::UnknownMemberId, format!("member {} is not in group {}", hb.member_id, self.id));
        };
        if m.left_static {
            return refuse(Error::UnknownMemberId, "the static member left");
        }
        if hb.member_epoch == m.member_epoch {
            return Ok(hb.member_id.clone());
        }
        // A response was lost: the previous epoch is accepted while it owns nothing extra.
        let owned_ok = hb.owned.as_ref().is_some_and(|o| is_subset(o, &m.assigned));
        if hb.member_epoch == m.previous_epoch && owned_ok {
            return Ok(hb.member_id.clone());
        }
        refuse(Error::FencedMemberEpoch, format!("epoch {} is not the member's epoch {}", hb.member_epoch, m.member_epoch))
    }

    fn leave(&mut self, hb: &Heartbeat) -> Result<HeartbeatResult, Refusal> {
        let id = match (&hb.instance_id, self.members.contains_key(&hb.member_id)) {
            (_, true) => hb.member_id.clone(),
            (Some(i), false) => match self.static_members.get(i) {
                Some(id) => id.clone(),
                None => return refuse(Error::UnknownMemberId, "unknown member"),
            },
            (None, false) => return refuse(Error::UnknownMemberId, "unknown member"),
        };
        if hb.member_epoch == STATIC_LEAVE_EPOCH && hb.instance_id.is_some() {
            self.members.get_mut(&id).expect("member").left_static = true;
        } else {
            self.remove_member(&id);
        }
        Ok(HeartbeatResult { member_id: id, member_epoch: hb.member_epoch, heartbeat_interval_ms: 0, assignment: None })
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(i) = &m.instance_id {
                if self.static_members.get(i).map(String::as_str) == Some(id) {
                    self.static_members.remove(i);
                }
            }
            self.target.remove(id);
            self.group_epoch += 1;
        }
    }

    // ---- assignment ----

    /// Recomputes the target assignment when the group epoch moved or a subscribed
    /// topic changed its partition count.
    fn refresh_target(&mut self, topics: &dyn TopicMetadata, mut changed: bool) {
        let names = self.subscribed_topic_names(topics);
        let seen: BTreeMap<String, (Uuid, i32)> = names.iter().filter_map(|n| topics.topic(n).map(|t| (n.clone(), t))).collect();
        if seen != self.topics_seen {
            self.topics_seen = seen;
            changed = true;
        }
        if changed {
            self.group_epoch += 1;
        }
        if self.group_epoch == self.assignment_epoch {
            return;
        }
        let counts: TopicCounts = self.topics_seen.values().copied().collect();
        let per_member: Vec<(String, BTreeSet<Uuid>)> = self
            .members
            .values()
            .map(|m| {
                let ids = Self::member_topics(m, topics).iter().filter_map(|n| self.topics_seen.get(n).map(|t| t.0)).collect();
                (m.member_id.clone(), ids)
            })
            .collect();
        let empty = Assignment::new();
        let input: Vec<AssignorMember<'_>> = per_member
            .iter()
            .map(|(id, t)| AssignorMember { member_id: id, topics: t.clone(), current: self.target.get(id).unwrap_or(&empty) })
            .collect();
        let preferred = self.members.values().find_map(|m| m.server_assignor.clone()).unwrap_or_else(|| self.assignor.clone());
        self.assignor = preferred;
        self.target = assignor::assign(&self.assignor, &input, &counts).into_iter().collect();
        self.assignment_epoch = self.group_epoch;
    }

    /// Whether another member still holds (or has yet to revoke) a partition.
    fn held_by_other(&self, me: &str, topic: &Uuid, p: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != me
                && (m.assigned.get(topic).is_some_and(|s| s.contains(&p)) || m.pending_revocation.get(topic).is_some_and(|s| s.contains(&p)))
        })
    }

    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: i64) {
        let m = &self.members[id];
        let proceed = match m.state {
            MemberState::Stable => m.member_epoch != self.assignment_epoch,
            MemberState::UnreleasedPartitions => true,
            MemberState::UnrevokedPartitions => owned.is_some_and(|o| !intersects(o, &m.pending_revocation)),
        };
        if !proceed {
            return;
        }
        let target = self.target_of(id);
        let assigned = m.assigned.clone();
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        let mut add_free = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = assigned.keys().chain(target.keys()).copied().collect();
        for t in topics {
            let cur = assigned.get(&t).cloned().unwrap_or_default();
            let tgt = target.get(&t).cloned().unwrap_or_default();
            for &p in &cur {
                if tgt.contains(&p) { keep.entry(t).or_default().insert(p); } else { revoke.entry(t).or_default().insert(p); }
            }
            for &p in tgt.difference(&cur) {
                if self.held_by_other(id, &t, p) { unreleased = true; } else { add_free.entry(t).or_default().insert(p); }
            }
        }
        let epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member");
        m.pending_revocation = Assignment::new();
        if !revoke.is_empty() {
            m.assigned = keep;
            m.pending_revocation = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revocation_deadline = Some(now + m.rebalance_timeout_ms as i64);
            return;
        }
        for (t, ps) in add_free {
            keep.entry(t).or_default().extend(ps);
        }
        m.assigned = keep;
        m.revocation_deadline = None;
        if m.member_epoch != epoch {
            m.previous_epoch = m.member_epoch;
            m.member_epoch = epoch;
        }
        m.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
    }

    /// Session expiry and revocation timeouts. Returns whether anyone was removed.
    pub fn tick(&mut self, now: i64) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now))
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "consumer group member removed: session or rebalance timeout expired");
            self.remove_member(id);
        }
        !expired.is_empty()
    }

    /// Checks an OffsetCommit (OffsetFetch with an epoch) of this group.
    /// OffsetCommit from a member: at its current epoch, or at the epoch just before it
    /// when every committed partition (by topic id) is still assigned to it — a commit
    /// sent just before the member learned of its new epoch, for partitions it never lost
    /// (Kafka 4.x, KIP-1251, accepts such commits; the Java client fails commitSync on
    /// the error instead of retrying).
    pub fn validate_commit(&self, member_id: &str, epoch: i32, partitions: &[(Option<Uuid>, i32)], stale: Error) -> Option<Error> {
        match self.members.get(member_id) {
            Some(m) if epoch >= 0 && epoch != m.member_epoch && epoch == m.previous_epoch => {
                let kept = partitions.iter().all(|(t, p)| t.is_some_and(|t| m.assigned.get(&t).is_some_and(|ps| ps.contains(p))));
                if kept {
                    None
                } else {
                    Some(stale)
                }
            }
            _ => self.validate_member(member_id, epoch, stale),
        }
    }

    pub fn validate_member(&self, member_id: &str, epoch: i32, stale: Error) -> Option<Error> {
        if epoch < 0 && member_id.is_empty() {
            return (!self.members.is_empty()).then_some(Error::UnknownMemberId);
        }
        match self.members.get(member_id) {
            None => Some(Error::UnknownMemberId),
            Some(m) if m.member_epoch != epoch => Some(stale),
            Some(_) => None,
        }
    }
}

/// Equal but for topics listed with no partitions.
fn same_assignment(a: &Assignment, b: &Assignment) -> bool {
    is_subset(a, b) && is_subset(b, a)
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter().all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|bs| ps.is_subset(bs)))
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter().any(|(t, ps)| b.get(t).is_some_and(|bs| !ps.is_disjoint(bs)))
}

#[cfg(test)]
#[path = "consumer_group_tests.rs"]
mod tests;
