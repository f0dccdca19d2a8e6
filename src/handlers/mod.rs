//! The API handlers: one module per Kafka API (or family), and the dispatch that decodes
//! a request frame and routes it. Handlers reach storage only through `LogManager` and
//! `Partition`.

mod add_offsets_to_txn;
#[cfg(all(test, feature = "alloc-guard"))]
mod alloc_tests;
mod add_partitions_to_txn;
mod alter_configs;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_quorum;
mod live_brokers;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod empty_admin;
mod end_txn;
mod fetch;
mod fetch_response;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod not_leader;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod single_node_admin;
mod sync_group;
mod transactions_admin;
mod txn_offset_commit;
mod unsupported;
mod write_txn_markers;
pub mod versions;

use crate::broker_state::ConnectionInfo;
use crate::response_frame::{encode_response, ResponseFrame};
use crate::broker_state::BrokerState;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::sync::Arc;

pub use kafka_protocol::ResponseError as Error;

/// What the connection does after a request.
pub enum Outcome {
    Respond(ResponseFrame),
    /// acks=0 produce: the protocol sends nothing back.
    NoResponse,
    /// The request cannot be answered: close this connection (logged by the caller).
    Close(&'static str),
}

/// Everything a handler knows about the request it serves.
pub struct Ctx<'a> {
    pub state: &'a Arc<BrokerState>,
    pub conn: &'a ConnectionInfo,
    pub api_key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
}

impl Ctx<'_> {
    pub fn respond<T: Encodable>(&self, body: &T) -> Outcome {
        match encode_response(self.api_key, self.version, self.header.correlation_id, body) {
            Ok(frame) => Outcome::Respond(frame),
            Err(e) => {
                tracing::error!(api = ?self.api_key, version = self.version, error = %e, "could not encode a response");
                Outcome::Close("response encoding failed")
            }
        }
    }

    pub fn node_id(&self) -> i32 {
        self.state.config.node_id
    }

    /// The client id from the request header ("" when absent).
    pub fn client_id(&self) -> String {
        self.header.client_id.as_deref().unwrap_or("").to_string()
    }

    /// The client's address as Kafka prints it (`/127.0.0.1`).
    pub fn client_host(&self) -> String {
        format!("/{}", self.conn.peer.ip())
    }
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn decode<T: Decodable>(buf: &mut Bytes, version: i16, api_key: ApiKey) -> Option<T> {
    match T::decode(buf, version) {
        Ok(req) => Some(req),
        Err(e) => {
            tracing::info!(api = ?api_key, version, error = %e, "undecodable request body");
            None
        }
    }
}

/// Decodes one request frame and serves it.
pub async fn handle(state: &Arc<BrokerState>, conn: &ConnectionInfo, frame: BytesMut) -> Outcome {
    let mut buf = frame.freeze();
    if buf.len() < 8 {
        return Outcome::Close("request shorter than a request header");
    }
    let key = i16::from_be_bytes([buf[0], buf[1]]);
    let version = i16::from_be_bytes([buf[2], buf[3]]);
    let correlation_id = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Outcome::Close("unknown API key");
    };
    if api_key == ApiKey::ApiVersions && !versions::is_served(api_key, version) {
        // KIP-511: answer in v0 with UNSUPPORTED_VERSION and our ranges, so the client retries.
        return api_versions::unsupported_version(correlation_id, state.groups.config().consumer_protocol);
    }
    let header_version = api_key.request_header_version(version);
    let header = match RequestHeader::decode(&mut buf, header_version) {
        Ok(h) => h,
        Err(_) => return Outcome::Close("undecodable request header"),
    };
    let disabled = api_key == ApiKey::ConsumerGroupHeartbeat && !state.groups.config().consumer_protocol;
    if versions::served(api_key).is_none() || disabled {
        return unsupported::respond(api_key, version, &header);
    }
    if !versions::is_served(api_key, version) {
        return Outcome::Close("unsupported version of a served API");
    }
    let ctx = Ctx { state, conn, api_key, version, header };
    macro_rules! serve {
        ($module:ident) => {
            serve!($module::handle)
        };
        ($module:ident :: $f:ident) => {
            match decode(&mut buf, version, api_key) {
                Some(req) => $module::$f(&ctx, req).await,
                None => Outcome::Close("undecodable request body"),
            }
        };
    }
    match api_key {
        ApiKey::ApiVersions => serve!(api_versions),
        ApiKey::Metadata => serve!(metadata),
        ApiKey::Produce => serve!(produce),
        ApiKey::Fetch => serve!(fetch),
        ApiKey::ListOffsets => serve!(list_offsets),
        ApiKey::OffsetForLeaderEpoch => serve!(offset_for_leader_epoch),
        ApiKey::CreateTopics => serve!(create_topics),
        ApiKey::DeleteTopics => serve!(delete_topics),
        ApiKey::CreatePartitions => serve!(create_partitions),
        ApiKey::DescribeConfigs => serve!(describe_configs),
        ApiKey::DescribeCluster => serve!(describe_cluster),
        ApiKey::DescribeQuorum => serve!(describe_quorum),
        ApiKey::FindCoordinator => serve!(find_coordinator),
        ApiKey::JoinGroup => serve!(join_group),
        ApiKey::SyncGroup => serve!(sync_group),
        ApiKey::Heartbeat => serve!(heartbeat),
        ApiKey::LeaveGroup => serve!(leave_group),
        ApiKey::OffsetCommit => serve!(offset_commit),
        ApiKey::OffsetFetch => serve!(offset_fetch),
        ApiKey::OffsetDelete => serve!(offset_delete),
        ApiKey::DescribeGroups => serve!(describe_groups),
        ApiKey::ListGroups => serve!(list_groups),
        ApiKey::DeleteGroups => serve!(delete_groups),
        ApiKey::ConsumerGroupHeartbeat => serve!(consumer_group_heartbeat),
        ApiKey::ConsumerGroupDescribe => serve!(consumer_group_describe),
        ApiKey::AlterConfigs => serve!(alter_configs::handle_alter),
        ApiKey::IncrementalAlterConfigs => serve!(alter_configs::handle_incremental),
        ApiKey::DeleteRecords => serve!(delete_records),
        ApiKey::InitProducerId => serve!(init_producer_id),
        ApiKey::AddPartitionsToTxn => serve!(add_partitions_to_txn),
        ApiKey::AddOffsetsToTxn => serve!(add_offsets_to_txn),
        ApiKey::TxnOffsetCommit => serve!(txn_offset_commit),
        ApiKey::EndTxn => serve!(end_txn),
        ApiKey::WriteTxnMarkers => serve!(write_txn_markers),
        ApiKey::DescribeTransactions => serve!(transactions_admin::describe),
        ApiKey::ListTransactions => serve!(transactions_admin::list),
        ApiKey::DescribeProducers => serve!(describe_producers),
        ApiKey::DescribeLogDirs => serve!(describe_log_dirs),
        ApiKey::ElectLeaders => serve!(single_node_admin::elect_leaders),
        ApiKey::ListPartitionReassignments => serve!(single_node_admin::list_reassignments),
        ApiKey::AlterPartitionReassignments => serve!(single_node_admin::alter_reassignments),
        ApiKey::DescribeClientQuotas => serve!(empty_admin::client_quotas),
        ApiKey::DescribeUserScramCredentials => serve!(empty_admin::scram_credentials),
        _ => unsupported::respond(api_key, version, &ctx.header),
    }
}

/// Leader-epoch fencing for a single node whose leader epoch is always 0: a client that
/// knows a newer epoch is ahead of us, an older one is fenced, -1 means "not known".
/// A request's `current_leader_epoch` against the partition's (`leader_epoch`): none
/// given (-1) or equal passes; newer is UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH.
pub fn check_leader_epoch(current_leader_epoch: i32, leader_epoch: i32) -> Option<Error> {
    match current_leader_epoch {
        e if e < 0 || e == leader_epoch => None,
        e if e > leader_epoch => Some(Error::UnknownLeaderEpoch),
        _ => Some(Error::FencedLeaderEpoch),
    }
}

/// PRODUCER_FENCED (KIP-588) is answered as INVALID_PRODUCER_EPOCH to request versions
/// older than `since`, which predate it.
pub fn fenced_as(e: Error, version: i16, since: i16) -> Error {
    if e == Error::ProducerFenced && version < since {
        Error::InvalidProducerEpoch
    } else {
        e
    }
}

pub fn code(e: Option<Error>) -> i16 {
    e.map(|e| e.code()).unwrap_or(0)
}
