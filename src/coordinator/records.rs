//! The records of `__consumer_offsets`, in Kafka's own key/value layout so Kafka tooling
//! (kafka-console-consumer's offsets formatter, kafka-dump-log) can read them:
//!
//! - key version 0/1 `OffsetCommitKey` (group, topic, partition) → `OffsetCommitValue` v3
//!   (offset, leader epoch, metadata, commit timestamp); a null value deletes the offset.
//! - key version 2 `GroupMetadataKey` (group) → `GroupMetadataValue` v3 (protocol type,
//!   generation, protocol, leader, state timestamp, members); a null value deletes the group.
//!
//! Also the reader of a consumer-protocol subscription's topic list.

use super::wire::{put_bytes, put_nullable_str, put_str, Reader};
use bytes::{BufMut, Bytes, BytesMut};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// A decoded record of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Offset { group: String, topic: String, partition: i32, value: Option<CommittedOffset> },
    Group { group: String, value: Option<StoredGroup> },
    /// A record type this broker does not read (KIP-848 and share-group records of other
    /// brokers): skipped.
    Other(i16),
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_KEY_VERSION);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

pub fn offset_value(v: &CommittedOffset) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_VALUE_VERSION);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_str(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp);
    b.freeze()
}

pub fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_KEY_VERSION);
    put_str(&mut b, group);
    b.freeze()
}

pub fn group_value(g: &StoredGroup) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable_str(&mut b, g.protocol.as_deref());
    put_nullable_str(&mut b, g.leader.as_deref());
    b.put_i64(g.current_state_timestamp);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout);
        b.put_i32(m.session_timeout);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Decodes one record; `None` if it is malformed (the caller logs and skips it).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetsRecord> {
    let mut k = Reader::classic(key);
    let version = k.i16()?;
    match version {
        0 | 1 => {
            let (group, topic, partition) = (k.str()?, k.str()?, k.i32()?);
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset_value(v)?),
            };
            Some(OffsetsRecord::Offset { group, topic, partition, value })
        }
        2 => {
            let group = k.str()?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_group_value(v)?),
            };
            Some(OffsetsRecord::Group { group, value })
        }
        other => Some(OffsetsRecord::Other(other)),
    }
}

fn decode_offset_value(v: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader::classic(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp })
}

fn decode_group_value(v: &[u8]) -> Option<StoredGroup> {
    let mut r = Reader::classic(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?.max(0) as usize;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.str()?;
        let group_instance_id = if version >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { 0 };
        let session_timeout = r.i32()?;
        let rebalance_timeout = if version >= 1 { rebalance_timeout } else { session_timeout };
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        });
    }
    Some(StoredGroup { protocol_type, generation, protocol, leader, current_state_timestamp, members })
}

/// The topics of a `ConsumerProtocolSubscription` (any version: they come first).
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::classic(metadata);
    let _version = r.i16()?;
    let count = r.i32()?.max(0) as usize;
    let mut topics = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        topics.push(r.str()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let v = CommittedOffset { offset: 42, leader_epoch: 0, metadata: "m".into(), commit_timestamp: 7 };
        let got = decode(&offset_key("g", "t", 3), Some(&offset_value(&v))).unwrap();
        assert_eq!(got, OffsetsRecord::Offset { group: "g".into(), topic: "t".into(), partition: 3, value: Some(v) });
        let gone = decode(&offset_key("g", "t", 3), None).unwrap();
        assert_eq!(gone, OffsetsRecord::Offset { group: "g".into(), topic: "t".into(), partition: 3, value: None });
    }

    #[test]
    fn groups_round_trip() {
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("a-1".into()),
            current_state_timestamp: 99,
            members: vec![StoredMember {
                member_id: "a-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "a".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300000,
                session_timeout: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let got = decode(&group_key("g"), Some(&group_value(&g))).unwrap();
        assert_eq!(got, OffsetsRecord::Group { group: "g".into(), value: Some(g) });
    }

    #[test]
    fn truncated_records_are_refused_not_panicking() {
        let v = offset_value(&CommittedOffset { offset: 1, leader_epoch: 0, metadata: "x".into(), commit_timestamp: 2 });
        for cut in 0..v.len() {
            assert!(decode(&offset_key("g", "t", 0), Some(&v[..cut])).is_none());
        }
        assert!(decode(&[0], None).is_none());
        assert_eq!(decode(&[0, 9], None), Some(OffsetsRecord::Other(9)));
    }

    #[test]
    fn subscription_topics_are_read() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i32(2);
        put_str(&mut b, "a");
        put_str(&mut b, "b");
        b.put_i32(-1);
        assert_eq!(subscription_topics(&b).unwrap(), vec!["a", "b"]);
    }
}
