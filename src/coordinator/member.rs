//! One member of a classic group (Kafka's `MemberMetadata`): what it joined with, what it
//! was assigned, when it must heartbeat next, and the parked JoinGroup / SyncGroup
//! requests the coordinator answers when the rebalance moves on.

use super::Error;
use bytes::Bytes;
use tokio::sync::oneshot;

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub error: Option<Error>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Every member with its metadata: only for the leader.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: Error) -> Self {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub error: Option<Error>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: Error) -> Self {
        SyncResult { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// What a JoinGroup carries about the member.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id is first given one (KIP-394).
    pub require_known_member_id: bool,
}

/// What a SyncGroup carries.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+: checked against the group's when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment).
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub heartbeat_deadline: i64,
    /// Joined but not yet through a completed join: its deadline is the new-member timeout.
    pub is_new: bool,
    pub(super) awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub(super) awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl MemberMetadata {
    pub fn new(member_id: String, req: &JoinRequest) -> Self {
        MemberMetadata {
            member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            heartbeat_deadline: 0,
            is_new: false,
            awaiting_join: None,
            awaiting_sync: None,
        }
    }

    /// The member's metadata for `protocol` (empty if it does not speak it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Whether a rejoin carries exactly the protocols the member already has.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub(super) fn complete_join(&mut self, result: JoinResult) {
        if let Some(tx) = self.awaiting_join.take() {
            // The requester may have gone away; its answer is then simply dropped.
            let _ = tx.send(result);
        }
    }

    pub(super) fn complete_sync(&mut self, result: SyncResult) {
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(result);
        }
    }

    /// Whether an expired heartbeat deadline is forgiven: a member parked in a JoinGroup or
    /// SyncGroup cannot heartbeat (Kafka's `shouldKeepAlive`).
    pub fn keep_alive(&self) -> bool {
        if self.is_awaiting_join() {
            !self.is_new
        } else {
            self.is_awaiting_sync()
        }
    }
}
