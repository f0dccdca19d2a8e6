//! A group of the classic protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) as
//! Kafka's `GroupMetadata` and `GroupCoordinator` run it: the state machine
//! Empty → PreparingRebalance → CompletingRebalance → Stable (→ Dead), generations,
//! KIP-394 pending members, KIP-345 static members, and the timers (initial rebalance
//! delay, rebalance timeout, session timeouts, pending-sync timeout).
//!
//! Everything here is synchronous and takes the time as an argument: the coordinator
//! calls it under its lock, and the unit tests drive it with a manual clock. Parked
//! requests are oneshot senders held by the members; they are answered when the state
//! machine moves on.

use super::member::{JoinRequest, JoinResult, JoinedMember, MemberMetadata, SyncRequest, SyncResult};
use super::Error;
use crate::config::GroupConfig;
use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// How long a member that has never completed a join may stay parked (Kafka's
/// `NewMemberJoinTimeoutMs`).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// An answer now, or a parked request answered later.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    deadline: i64,
    delay: i64,
    remaining: i64,
}

pub struct ClassicGroup {
    pub id: String,
    state: GroupState,
    pub state_timestamp: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    members: IndexMap<String, MemberMetadata>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pending_members: HashMap<String, i64>,
    /// KIP-345: group.instance.id → current member id.
    static_members: HashMap<String, String>,
    /// Members that have not yet sent SyncGroup for this generation.
    pending_sync: HashSet<String>,
    sync_deadline: Option<i64>,
    join_deadline: Option<i64>,
    initial_delay: Option<InitialDelay>,
    new_member_added: bool,
    /// The leader's assignment is being written; the members hear of it once it is stored
    /// (`assignment_stored`), as in Kafka's `storeGroup` callback.
    storing_assignment: bool,
    /// The stored form changed and must be written to `__consumer_offsets`.
    dirty: bool,
}

impl ClassicGroup {
    pub fn new(id: &str, now: i64) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp: now,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
            join_deadline: None,
            initial_delay: None,
            new_member_added: false,
            storing_assignment: false,
            dirty: false,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberMetadata> {
        self.members.values()
    }

    pub fn member(&self, id: &str) -> Option<&MemberMetadata> {
        self.members.get(id)
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    pub fn has_pending_member(&self, id: &str) -> bool {
        self.pending_members.contains_key(id)
    }

    /// Returns and clears whether the stored form changed.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn transition(&mut self, to: GroupState, now: i64) {
        use GroupState::*;
        let ok = match to {
            Empty => matches!(self.state, PreparingRebalance),
            PreparingRebalance => matches!(self.state, Stable | CompletingRebalance | Empty),
            CompletingRebalance => matches!(self.state, PreparingRebalance),
            Stable => matches!(self.state, CompletingRebalance),
            Dead => true,
        };
        assert!(ok, "group {}: illegal transition {:?} -> {:?}", self.id, self.state, to);
        self.state = to;
        self.state_timestamp = now;
    }

    /// Marks the group deleted: parked requests are told to find the coordinator again.
    pub fn mark_dead(&mut self, now: i64) {
        for m in self.members.values_mut() {
            m.complete_join(JoinResult::error(&m.member_id.clone(), Error::CoordinatorNotAvailable));
            m.complete_sync(SyncResult::error(Error::CoordinatorNotAvailable));
        }
        self.transition(GroupState::Dead, now);
    }

    fn is_static_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    /// Protocols every member speaks.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else { return Vec::new() };
        let mut c: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in it {
            c.retain(|p| m.protocols.iter().any(|(n, _)| n == p));
        }
        c
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self.candidate_protocols().iter().any(|c| protocols.iter().any(|(n, _)| n == c))
    }

    /// Each member votes for its most preferred protocol that everyone speaks.
    fn select_protocol(&self) -> String {
        let candidates = self.candidate_protocols();
        assert!(!candidates.is_empty(), "group {}: members share no protocol", self.id);
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                votes.iter_mut().find(|(c, _)| c == name).expect("candidate").1 += 1;
            }
        }
        let best = votes.iter().map(|(_, v)| *v).max().unwrap_or(0);
        votes.into_iter().find(|(_, v)| *v == best).map(|(c, _)| c).expect("one candidate")
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members.values().map(|m| m.rebalance_timeout_ms as i64).max().unwrap_or(0)
    }

    fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.is_awaiting_join())
    }

    // ---- JoinGroup ----

    pub fn join(&mut self, req: JoinRequest, now: i64, cfg: &GroupConfig) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(JoinResult::error(&req.member_id, Error::CoordinatorNotAvailable));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(&req.member_id, Error::InconsistentGroupProtocol));
        }
        if req.member_id.is_empty() {
            self.join_unknown_member(req, now, cfg)
        } else {
            self.join_known_member(req, now, cfg)
        }
    }

    fn accepts_new_member(&self, cfg: &GroupConfig) -> bool {
        self.members.len() + self.pending_members.len() < cfg.max_size
    }

    fn join_unknown_member(&mut self, req: JoinRequest, now: i64, cfg: &GroupConfig) -> Reply<JoinResult> {
        let prefix = req.group_instance_id.clone().unwrap_or_else(|| req.client_id.clone());
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.rejoin_static_member(&instance, &old_id, new_id, req, now, cfg);
            }
        }
        if !self.accepts_new_member(cfg) {
            return Reply::Now(JoinResult::error("", Error::GroupMaxSizeReached));
        }
        if req.require_known_member_id && req.group_instance_id.is_none() {
            self.pending_members.insert(new_id.clone(), now + req.session_timeout_ms as i64);
            return Reply::Now(JoinResult::error(&new_id, Error::MemberIdRequired));
        }
        Reply::Later(self.add_member_and_rebalance(new_id, &req, now, cfg))
    }

    fn join_known_member(&mut self, req: JoinRequest, now: i64, cfg: &GroupConfig) -> Reply<JoinResult> {
        let id = req.member_id.clone();
        if self.pending_members.remove(&id).is_some() {
            return Reply::Later(self.add_member_and_rebalance(id, &req, now, cfg));
        }
        if self.is_static_fenced(req.group_instance_id.as_deref(), &id) {
            return Reply::Now(JoinResult::error(&id, Error::FencedInstanceId));
        }
        let instance_unknown = req.group_instance_id.as_ref().is_some_and(|i| !self.static_members.contains_key(i));
        if !self.members.contains_key(&id) || instance_unknown {
            return Reply::Now(JoinResult::error(&id, Error::UnknownMemberId));
        }
        match self.state {
            GroupState::PreparingRebalance => Reply::Later(self.update_member_and_rebalance(&id, &req, now, cfg)),
            GroupState::CompletingRebalance => {
                if self.members[&id].matches(&req.protocols) {
                    // A retried join of this generation: answer as the completed join did.
                    Reply::Now(self.join_result_for(&id))
                } else {
                    Reply::Later(self.update_member_and_rebalance(&id, &req, now, cfg))
                }
            }
            GroupState::Stable => {
                let is_leader = self.leader_id.as_deref() == Some(id.as_str());
                if is_leader || !self.members[&id].matches(&req.protocols) {
                    Reply::Later(self.update_member_and_rebalance(&id, &req, now, cfg))
                } else {
                    Reply::Now(self.join_result_for(&id))
                }
            }
            GroupState::Empty | GroupState::Dead => Reply::Now(JoinResult::error(&id, Error::UnknownMemberId)),
        }
    }

    /// KIP-345: a known static member rejoining with a fresh member id takes its old
    /// place. In a Stable group whose protocol does not change, it gets the current
    /// assignment back without a rebalance.
    fn rejoin_static_member(
        &mut self,
        instance: &str,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now: i64,
        cfg: &GroupConfig,
    ) -> Reply<JoinResult> {
        let current_leader = self.leader_id.clone().unwrap_or_default();
        let mut member = self.members.shift_remove(old_id).expect("static member is a member");
        member.complete_join(JoinResult::error(old_id, Error::FencedInstanceId));
        member.complete_sync(SyncResult::error(Error::FencedInstanceId));
        member.member_id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        let protocols_changed = !member.matches(&req.protocols);
        member.protocols = req.protocols.clone();
        member.heartbeat_deadline = now + req.session_timeout_ms as i64;
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(instance.to_string(), new_id.clone());
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        self.dirty = true;
        let (tx, rx) = oneshot::channel();
        self.members[&new_id].awaiting_join = Some(tx);
        match self.state {
            GroupState::Stable if !protocols_changed && self.protocol_name.as_deref() == Some(self.select_protocol().as_str()) => {
                let result = JoinResult {
                    error: None,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    // The old leader id: the rejoined member must not assign for a Stable group.
                    leader_id: current_leader,
                    member_id: new_id.clone(),
                    members: Vec::new(),
                };
                self.members[&new_id].complete_join(result);
            }
            GroupState::Stable => self.prepare_rebalance(now, cfg),
            GroupState::CompletingRebalance => self.prepare_rebalance(now, cfg),
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => unreachable!("a group with a static member is not {:?}", self.state),
        }
        Reply::Later(rx)
    }

    fn add_member_and_rebalance(&mut self, id: String, req: &JoinRequest, now: i64, cfg: &GroupConfig) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let mut m = MemberMetadata::new(id.clone(), req);
        m.awaiting_join = Some(tx);
        m.is_new = true;
        m.heartbeat_deadline = now + NEW_MEMBER_JOIN_TIMEOUT_MS;
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(id.clone());
        }
        self.members.insert(id, m);
        self.maybe_prepare_rebalance(now, cfg);
        self.try_complete_join(now);
        rx
    }

    fn update_member_and_rebalance(&mut self, id: &str, req: &JoinRequest, now: i64, cfg: &GroupConfig) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let m = &mut self.members[id];
        // A duplicate join replaces the parked one, which is told to join again.
        m.complete_join(JoinResult::error(id, Error::RebalanceInProgress));
        m.protocols = req.protocols.clone();
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        m.awaiting_join = Some(tx);
        self.maybe_prepare_rebalance(now, cfg);
        self.try_complete_join(now);
        rx
    }

    fn maybe_prepare_rebalance(&mut self, now: i64, cfg: &GroupConfig) {
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty) {
            self.prepare_rebalance(now, cfg);
        }
    }

    fn prepare_rebalance(&mut self, now: i64, cfg: &GroupConfig) {
        self.storing_assignment = false;
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                m.complete_sync(SyncResult::error(Error::RebalanceInProgress));
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        if self.state == GroupState::Empty {
            let delay = cfg.initial_rebalance_delay_ms;
            let remaining = (self.max_rebalance_timeout() - delay).max(0);
            self.initial_delay = Some(InitialDelay { deadline: now + delay, delay, remaining });
            self.join_deadline = None;
        } else {
            self.join_deadline = Some(now + self.max_rebalance_timeout());
        }
        self.transition(GroupState::PreparingRebalance, now);
        self.try_complete_join(now);
    }

    /// Completes the join phase if it is due: everyone rejoined, or the rebalance (or
    /// initial delay) timed out.
    fn try_complete_join(&mut self, now: i64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(d) = self.initial_delay {
            if now < d.deadline {
                return;
            }
            if self.new_member_added && d.remaining > 0 {
                let delay = d.delay.min(d.remaining);
                self.initial_delay = Some(InitialDelay { deadline: now + delay, delay: d.delay, remaining: d.remaining - delay });
                self.new_member_added = false;
                return;
            }
            self.initial_delay = None;
            self.complete_join(now);
            return;
        }
        if self.has_all_members_joined() || self.join_deadline.is_some_and(|d| now >= d) {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: i64) {
        let not_rejoined: Vec<String> =
            self.members.values().filter(|m| !m.is_awaiting_join() && !m.is_static()).map(|m| m.member_id.clone()).collect();
        for id in not_rejoined {
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.join_deadline = None;
        self.new_member_added = false;
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members that have not rejoined are left: wait for them (or for
            // their session timeouts) another rebalance timeout.
            self.join_deadline = Some(now + self.max_rebalance_timeout());
            return;
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty, now);
            self.dirty = true;
            return;
        }
        self.protocol_name = Some(self.select_protocol());
        self.transition(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            let result = self.join_result_for(id);
            let m = &mut self.members[id.as_str()];
            m.complete_join(result);
            m.is_new = false;
            m.heartbeat_deadline = now + m.session_timeout_ms as i64;
        }
        self.pending_sync = ids.into_iter().collect();
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
    }

    /// Keeps the leader if it rejoined, else picks a member that did.
    fn elect_joined_leader(&mut self) -> bool {
        if let Some(l) = &self.leader_id {
            if self.members.get(l).is_some_and(|m| m.is_awaiting_join()) {
                return true;
            }
        }
        match self.members.values().find(|m| m.is_awaiting_join()) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn join_result_for(&self, id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: leader,
            member_id: id.to_string(),
            members,
        }
    }

    // ---- SyncGroup ----

    pub fn sync(&mut self, req: SyncRequest, now: i64) -> Reply<SyncResult> {
        let SyncRequest { member_id, group_instance_id, generation_id, protocol_type, protocol_name, assignments } = req;
        let (member_id, instance_id) = (member_id.as_str(), group_instance_id.as_deref());
        let (protocol_type, protocol_name) = (protocol_type.as_deref(), protocol_name.as_deref());
        if self.state == GroupState::Dead {
            return Reply::Now(SyncResult::error(Error::CoordinatorNotAvailable));
        }
        if self.is_static_fenced(instance_id, member_id) {
            return Reply::Now(SyncResult::error(Error::FencedInstanceId));
        }
        if !self.members.contains_key(member_id) {
            return Reply::Now(SyncResult::error(Error::UnknownMemberId));
        }
        if generation_id != self.generation_id {
            return Reply::Now(SyncResult::error(Error::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return Reply::Now(SyncResult::error(Error::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Now(SyncResult::error(Error::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(SyncResult::error(Error::RebalanceInProgress)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = &mut self.members[member_id];
                m.complete_sync(SyncResult::error(Error::RebalanceInProgress));
                m.awaiting_sync = Some(tx);
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                self.pending_sync.remove(member_id);
                // The leader's assignment is stored first; every member parked here hears
                // of it (or of the failure) in `assignment_stored`. A leader's retry while
                // it is being stored waits with the others.
                if self.leader_id.as_deref() == Some(member_id) && !self.storing_assignment {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.member_id).unwrap_or_default();
                    }
                    self.storing_assignment = true;
                    self.dirty = true;
                }
                Reply::Later(rx)
            }
            GroupState::Stable => {
                self.pending_sync.remove(member_id);
                let m = &mut self.members[member_id];
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                Reply::Now(SyncResult {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                })
            }
        }
    }

    /// The write of the leader's assignment for `generation` ended. Stored: the group is
    /// Stable and each member parked in SyncGroup gets its share. Failed: nobody gets an
    /// assignment that is not stored — every parked member gets `error` (Kafka's
    /// `resetAndPropagateAssignmentError`) and the group rebalances, so the members rejoin.
    /// A rebalance that began meanwhile has already answered them; nothing is left to do.
    pub fn assignment_stored(&mut self, generation: i32, stored: Result<(), Error>, now: i64, cfg: &GroupConfig) {
        if !self.storing_assignment || self.state != GroupState::CompletingRebalance || self.generation_id != generation {
            return;
        }
        self.storing_assignment = false;
        match stored {
            Ok(()) => {
                self.transition(GroupState::Stable, now);
                let (pt, pn) = (self.protocol_type.clone(), self.protocol_name.clone());
                for m in self.members.values_mut() {
                    let result = SyncResult { error: None, protocol_type: pt.clone(), protocol_name: pn.clone(), assignment: m.assignment.clone() };
                    m.complete_sync(result);
                }
            }
            Err(e) => {
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                    m.complete_sync(SyncResult::error(e));
                }
                self.prepare_rebalance(now, cfg);
            }
        }
    }

    // ---- Heartbeat, LeaveGroup, commits ----

    pub fn heartbeat(&mut self, member_id: &str, instance_id: Option<&str>, generation_id: i32, now: i64) -> Option<Error> {
        if self.state == GroupState::Dead {
            return Some(Error::CoordinatorNotAvailable);
        }
        if self.is_static_fenced(instance_id, member_id) {
            return Some(Error::FencedInstanceId);
        }
        if self.state == GroupState::Empty || !self.members.contains_key(member_id) {
            return Some(Error::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Some(Error::IllegalGeneration);
        }
        let m = &mut self.members[member_id];
        m.heartbeat_deadline = now + m.session_timeout_ms as i64;
        match self.state {
            GroupState::PreparingRebalance => Some(Error::RebalanceInProgress),
            _ => None,
        }
    }

    /// Removes one member (LeaveGroup). A static member may be named by its instance id
    /// alone. Returns the member id that left.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: i64, cfg: &GroupConfig) -> Result<String, Error> {
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable);
        }
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => self.static_members.get(instance).cloned().ok_or(Error::UnknownMemberId)?,
            _ => member_id.to_string(),
        };
        if instance_id.is_none() && self.pending_members.remove(&id).is_some() {
            self.try_complete_join(now);
            return Ok(id);
        }
        if self.is_static_fenced(instance_id, &id) {
            return Err(Error::FencedInstanceId);
        }
        if !self.members.contains_key(&id) {
            return Err(Error::UnknownMemberId);
        }
        self.remove_member_and_update_group(&id, now, cfg);
        Ok(id)
    }

    /// Checks an OffsetCommit of the classic protocol (Kafka's `doCommitOffsets`).
    pub fn validate_commit(&mut self, member_id: &str, instance_id: Option<&str>, generation_id: i32, now: i64) -> Option<Error> {
        if self.state == GroupState::Dead {
            return Some(Error::CoordinatorNotAvailable);
        }
        if self.is_static_fenced(instance_id, member_id) {
            return Some(Error::FencedInstanceId);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return None; // the group only stores offsets
        }
        if !self.members.contains_key(member_id) {
            return Some(Error::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Some(Error::IllegalGeneration);
        }
        match self.state {
            GroupState::CompletingRebalance => Some(Error::RebalanceInProgress),
            _ => {
                let m = &mut self.members[member_id];
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                None
            }
        }
    }

    fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.shift_remove(id) else { return };
        m.complete_join(JoinResult::error(id, Error::UnknownMemberId));
        m.complete_sync(SyncResult::error(Error::UnknownMemberId));
        if let Some(instance) = &m.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader_id.as_deref() == Some(id) {
            self.leader_id = self.members.keys().next().cloned();
        }
    }

    fn remove_member_and_update_group(&mut self, id: &str, now: i64, cfg: &GroupConfig) {
        self.remove_member(id);
        match self.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => self.maybe_prepare_rebalance(now, cfg),
            GroupState::PreparingRebalance => self.try_complete_join(now),
        }
    }

    // ---- timers ----

    /// Fires every timer that is due at `now`.
    pub fn tick(&mut self, now: i64, cfg: &GroupConfig) {
        if self.state == GroupState::Dead {
            return;
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline <= now && !m.keep_alive())
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member removed: session timeout expired");
            self.remove_member_and_update_group(&id, now, cfg);
        }
        let lapsed: Vec<String> = self.pending_members.iter().filter(|(_, d)| **d <= now).map(|(id, _)| id.clone()).collect();
        for id in lapsed {
            self.pending_members.remove(&id);
        }
        if self.sync_deadline.is_some_and(|d| now >= d) {
            self.sync_deadline = None;
            if matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) && !self.pending_sync.is_empty() {
                let late: Vec<String> = self.pending_sync.drain().collect();
                for id in &late {
                    tracing::info!(group = %self.id, member = %id, "member removed: no SyncGroup within the rebalance timeout");
                    self.remove_member(id);
                }
                self.maybe_prepare_rebalance(now, cfg);
            }
        }
        self.try_complete_join(now);
    }

    /// Answers every parked request (the broker is stopping).
    pub fn shutdown(&mut self) {
        for m in self.members.values_mut() {
            let id = m.member_id.clone();
            m.complete_join(JoinResult::error(&id, Error::CoordinatorNotAvailable));
            m.complete_sync(SyncResult::error(Error::CoordinatorNotAvailable));
        }
    }

    // ---- stored form ----

    /// Rebuilds a group from its stored record: Stable with its members (who then must
    /// heartbeat within their session timeout) or Empty.
    pub fn from_stored(id: &str, stored: StoredGroup, now: i64) -> Self {
        let mut g = ClassicGroup::new(id, now);
        g.protocol_type = (!stored.protocol_type.is_empty()).then_some(stored.protocol_type);
        g.generation_id = stored.generation;
        g.protocol_name = stored.protocol;
        g.leader_id = stored.leader;
        g.state_timestamp = if stored.current_state_timestamp > 0 { stored.current_state_timestamp } else { now };
        for sm in stored.members {
            let req = JoinRequest {
                member_id: sm.member_id.clone(),
                group_instance_id: sm.group_instance_id.clone(),
                client_id: sm.client_id,
                client_host: sm.client_host,
                session_timeout_ms: sm.session_timeout,
                rebalance_timeout_ms: sm.rebalance_timeout,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(g.protocol_name.clone().unwrap_or_default(), sm.subscription)],
                require_known_member_id: false,
            };
            let mut m = MemberMetadata::new(sm.member_id.clone(), &req);
            m.assignment = sm.assignment;
            m.heartbeat_deadline = now + sm.session_timeout as i64;
            if let Some(instance) = &sm.group_instance_id {
                g.static_members.insert(instance.clone(), sm.member_id.clone());
            }
            g.members.insert(sm.member_id, m);
        }
        g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        g
    }

    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Topics the members subscribe to, where the group speaks the consumer protocol.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.clone()?;
        let mut topics = HashSet::new();
        for m in self.members.values() {
            topics.extend(super::records::subscription_topics(&m.metadata(&protocol))?);
        }
        Some(topics)
    }
}

pub use super::records::{StoredGroup, StoredMember};

#[cfg(test)]
#[path = "classic_group_tests.rs"]
mod tests;
