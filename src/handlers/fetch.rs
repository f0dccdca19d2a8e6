//! Fetch: file ranges of whole batches per partition, within `max_bytes` and
//! `partition_max_bytes` but always at least one batch (KIP-74), long-polled until
//! `min_bytes` arrive or `max_wait_ms` passes — woken by appends, never by polling.
//!
//! A partition another broker leads is answered NOT_LEADER_OR_FOLLOWER with that leader
//! and its address (KIP-951).
//!
//! Fetch sessions (KIP-227) are answered sessionless: session id 0 and a full response
//! every time, which the protocol allows and every client handles.

use super::fetch_response::{self, FetchOut, TopicOut};
use super::not_leader::{node_endpoints, Leadership};
use super::{check_leader_epoch, code, Ctx, Error, Outcome};
use crate::cluster::metadata_cache::NotLeader;
use crate::storage::{FileSlice, Partition, ReadError, Topic};
use futures::future::select_all;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, LeaderIdAndEpoch, NodeEndpoint, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProducerId, TopicName};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const FINAL_EPOCH: i32 = -1;
const INITIAL_EPOCH: i32 = 0;

/// One requested partition, resolved against the topic map once per request.
struct Wanted {
    topic_index: usize,
    req: FetchPartition,
    partition: Result<Arc<Partition>, Error>,
    /// The partition's leader epoch (this broker leads it), or who leads instead.
    leader: Result<i32, NotLeader>,
}

fn empty_partition(index: i32, err: Option<Error>) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code(err))
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
}

/// Reads every partition once. Returns the partition answers and the record bytes found.
async fn read_all(wanted: &[Wanted], max_bytes: i32, read_committed: bool) -> (Vec<(PartitionData, Option<FileSlice>)>, u64, bool) {
    let mut out = Vec::with_capacity(wanted.len());
    let mut remaining = max_bytes.max(0) as u64;
    let mut total = 0u64;
    let mut any_error = false;
    for w in wanted {
        let index = w.req.partition;
        let partition = match &w.partition {
            Ok(p) => p,
            Err(e) => {
                any_error = true;
                out.push((empty_partition(index, Some(*e)), None));
                continue;
            }
        };
        let leader_epoch = match w.leader {
            Ok(epoch) => epoch,
            Err(nl) => {
                any_error = true;
                let leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(nl.leader)).with_leader_epoch(nl.epoch);
                out.push((empty_partition(index, Some(Error::NotLeaderOrFollower)).with_current_leader(leader), None));
                continue;
            }
        };
        if let Some(e) = check_leader_epoch(w.req.current_leader_epoch, leader_epoch) {
            any_error = true;
            out.push((empty_partition(index, Some(e)), None));
            continue;
        }
        let limit = (w.req.partition_max_bytes.max(0) as u64).min(remaining);
        let min_one = total == 0;
        let read = if read_committed {
            partition.read_committed(w.req.fetch_offset, limit, min_one).await
        } else {
            partition.read_async(w.req.fetch_offset, limit, min_one).await.map(|(s, o)| (s, o, Vec::new()))
        };
        match read {
            Ok((slice, offsets, aborted)) => {
                let mut pd = PartitionData::default()
                    .with_partition_index(index)
                    .with_high_watermark(offsets.high_watermark)
                    .with_last_stable_offset(offsets.last_stable)
                    .with_log_start_offset(offsets.log_start)
                    .with_preferred_read_replica(BrokerId(-1));
                if read_committed {
                    pd.aborted_transactions = Some(
                        aborted
                            .into_iter()
                            .map(|a| AbortedTransaction::default().with_producer_id(ProducerId(a.producer_id)).with_first_offset(a.first_offset))
                            .collect(),
                    );
                }
                if let Some(s) = &slice {
                    total += s.len;
                    remaining = remaining.saturating_sub(s.len);
                }
                out.push((pd, slice));
            }
            Err(ReadError::OffsetOutOfRange { log_start, log_end, .. }) => {
                any_error = true;
                let pd = empty_partition(index, Some(Error::OffsetOutOfRange))
                    .with_high_watermark(log_end)
                    .with_last_stable_offset(log_end)
                    .with_log_start_offset(log_start);
                out.push((pd, None));
            }
            Err(ReadError::Corrupt(e)) => {
                any_error = true;
                tracing::error!(topic = %partition.topic, partition = index, offset = w.req.fetch_offset, error = %e, "fetch found a corrupt segment");
                out.push((empty_partition(index, Some(Error::CorruptMessage)), None));
            }
            Err(ReadError::Io(e)) => {
                any_error = true;
                tracing::error!(topic = %partition.topic, partition = index, error = %e, "read failed; check the log directory");
                out.push((empty_partition(index, Some(Error::KafkaStorageError)), None));
            }
        }
    }
    (out, total, any_error)
}

pub async fn handle(ctx: &Ctx<'_>, req: FetchRequest) -> Outcome {
    let version = ctx.version;
    let by_id = version >= 13;
    // Sessionless answers: any id we never handed out is unknown, and a session epoch
    // only makes sense inside a session.
    let session_error = if req.session_id != 0 {
        Some(Error::FetchSessionIdNotFound)
    } else if req.session_epoch != INITIAL_EPOCH && req.session_epoch != FINAL_EPOCH {
        Some(Error::InvalidFetchSessionEpoch)
    } else {
        None
    };
    if let Some(e) = session_error {
        let out = FetchOut { error_code: e.code(), session_id: 0, topics: Vec::new(), node_endpoints: Vec::new() };
        return encode(ctx, out);
    }

    let logs = &ctx.state.logs;
    let mut topics: Vec<(TopicName, Uuid)> = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    let mut leadership = Leadership::new(ctx);
    for t in req.topics {
        let topic: Option<Arc<Topic>> = if by_id { logs.topic_by_id(t.topic_id) } else { logs.topic(&t.topic) };
        let unknown = if by_id { Error::UnknownTopicId } else { Error::UnknownTopicOrPartition };
        for p in t.partitions {
            let partition = match &topic {
                Some(topic) => topic.partition(p.partition).cloned().ok_or(Error::UnknownTopicOrPartition),
                None => Err(unknown),
            };
            let leader = leadership.check(topic.as_ref().map_or(Uuid::nil(), |t| t.id), p.partition);
            wanted.push(Wanted { topic_index: topics.len(), req: p, partition, leader });
        }
        topics.push((t.topic, t.topic_id));
    }

    let read_committed = req.isolation_level == 1;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as u64;
    // Subscribe before the first read so an append between the read and the wait still wakes us.
    let mut watchers: Vec<watch::Receiver<i64>> =
        wanted.iter().filter(|w| w.leader.is_ok()).filter_map(|w| w.partition.as_ref().ok().map(|p| p.subscribe())).collect();
    let node_endpoints = node_endpoints!(leadership, &ctx.conn.listener, NodeEndpoint);
    let results = loop {
        for w in watchers.iter_mut() {
            w.borrow_and_update();
        }
        let (results, total, any_error) = read_all(&wanted, req.max_bytes, read_committed).await;
        if total >= min_bytes || any_error || watchers.is_empty() || tokio::time::Instant::now() >= deadline {
            break results;
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break read_all(&wanted, req.max_bytes, read_committed).await.0;
        }
    };

    let mut out_topics: Vec<TopicOut> = topics
        .into_iter()
        .map(|(name, id)| TopicOut { name, id, partitions: Vec::new() })
        .collect();
    for (w, r) in wanted.iter().zip(results) {
        out_topics[w.topic_index].partitions.push(r);
    }
    encode(ctx, FetchOut { error_code: 0, session_id: 0, topics: out_topics, node_endpoints })
}

fn encode(ctx: &Ctx<'_>, out: FetchOut) -> Outcome {
    match fetch_response::encode(ctx.version, ctx.header.correlation_id, out) {
        Ok(frame) => Outcome::Respond(frame),
        Err(e) => {
            tracing::error!(version = ctx.version, error = %e, "could not encode a fetch response");
            Outcome::Close("response encoding failed")
        }
    }
}
