//! Encodes a Fetch response whose record data stays in the segment files.
//!
//! The top and topic levels are written here with the crate's primitive types; each
//! partition is encoded by the crate with `records: None`, whose null marker is the last
//! field before the partition's (empty) tagged-field section. That marker is replaced by
//! the real length prefix and the file range follows as a `sendfile` chunk.

use crate::response_frame::{encode_header, Chunk, ResponseFrame};
use crate::storage::FileSlice;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::{NodeEndpoint, PartitionData};
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::Encodable;
use uuid::Uuid;

pub struct TopicOut {
    pub name: TopicName,
    pub id: Uuid,
    pub partitions: Vec<(PartitionData, Option<FileSlice>)>,
}

pub struct FetchOut {
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<TopicOut>,
    /// KIP-951: where the leaders named in partitions' `current_leader` listen (v16+).
    pub node_endpoints: Vec<NodeEndpoint>,
}

enum Piece {
    Mem(BytesMut),
    File(FileSlice),
}

struct Builder {
    pieces: Vec<Piece>,
    buf: BytesMut,
}

impl Builder {
    fn splice(&mut self, file: FileSlice) {
        let done = std::mem::replace(&mut self.buf, BytesMut::with_capacity(256));
        self.pieces.push(Piece::Mem(done));
        self.pieces.push(Piece::File(file));
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn array_len(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(buf, n as u32 + 1)
    } else {
        buf.put_i32(n as i32)
    }
}

pub fn encode(version: i16, correlation_id: i32, out: FetchOut) -> anyhow::Result<ResponseFrame> {
    let flexible = version >= 12;
    let mut b = Builder { pieces: Vec::new(), buf: BytesMut::with_capacity(1024) };
    b.buf.put_i32(0); // size, patched below
    encode_header(&mut b.buf, ApiKey::Fetch, version, correlation_id)?;
    b.buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        b.buf.put_i16(out.error_code);
        b.buf.put_i32(out.session_id);
    }
    array_len(&mut b.buf, out.topics.len(), flexible);
    for topic in out.topics {
        if version <= 12 {
            let name = topic.name.0.as_bytes();
            if flexible {
                put_uvarint(&mut b.buf, name.len() as u32 + 1);
            } else {
                b.buf.put_i16(name.len() as i16);
            }
            b.buf.put_slice(name);
        }
        if version >= 13 {
            b.buf.put_slice(topic.id.as_bytes());
        }
        array_len(&mut b.buf, topic.partitions.len(), flexible);
        for (mut pd, slice) in topic.partitions {
            match slice {
                None => {
                    pd.records = Some(bytes::Bytes::new());
                    pd.encode(&mut b.buf, version)?;
                }
                Some(file) => {
                    pd.records = None;
                    debug_assert!(pd.unknown_tagged_fields.is_empty());
                    pd.encode(&mut b.buf, version)?;
                    let len = file.len;
                    if flexible {
                        // ... records null (0x00), tagged fields count (0x00)
                        let n = b.buf.len();
                        anyhow::ensure!(b.buf[n - 2..] == [0, 0], "unexpected fetch partition layout");
                        b.buf.truncate(n - 2);
                        put_uvarint(&mut b.buf, len as u32 + 1);
                        b.splice(file);
                        b.buf.put_u8(0);
                    } else {
                        // ... records null (int32 -1)
                        let n = b.buf.len();
                        anyhow::ensure!(b.buf[n - 4..] == [0xff; 4], "unexpected fetch partition layout");
                        b.buf.truncate(n - 4);
                        b.buf.put_i32(len as i32);
                        b.splice(file);
                    }
                }
            }
        }
        if flexible {
            b.buf.put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        if version >= 16 && !out.node_endpoints.is_empty() {
            // One tagged field: tag 0, its size, a compact array of endpoints.
            let mut field = BytesMut::new();
            put_uvarint(&mut field, out.node_endpoints.len() as u32 + 1);
            for e in &out.node_endpoints {
                e.encode(&mut field, version)?;
            }
            b.buf.put_u8(1);
            put_uvarint(&mut b.buf, 0);
            put_uvarint(&mut b.buf, field.len() as u32);
            b.buf.put_slice(&field);
        } else {
            b.buf.put_u8(0); // response tagged fields
        }
    }
    let tail = std::mem::take(&mut b.buf);
    b.pieces.push(Piece::Mem(tail));
    let total: u64 = b
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Mem(m) => m.len() as u64,
            Piece::File(f) => f.len,
        })
        .sum();
    let size = i32::try_from(total - 4).map_err(|_| anyhow::anyhow!("fetch response larger than 2 GiB"))?;
    let chunks = b
        .pieces
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Piece::Mem(mut m) => {
                if i == 0 {
                    m[0..4].copy_from_slice(&size.to_be_bytes());
                }
                (!m.is_empty()).then(|| Chunk::Bytes(m.freeze()))
            }
            Piece::File(f) => Some(Chunk::File(f)),
        })
        .collect();
    Ok(ResponseFrame { chunks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response_frame::Chunk;
    use bytes::Buf;
    use kafka_protocol::messages::fetch_response::LeaderIdAndEpoch;
    use kafka_protocol::messages::{BrokerId, FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn decode(version: i16, out: FetchOut) -> FetchResponse {
        let frame = encode(version, 7, out).unwrap();
        let mut bytes = BytesMut::new();
        for c in frame.chunks {
            match c {
                Chunk::Bytes(b) => bytes.put_slice(&b),
                Chunk::File(_) => unreachable!("no records here"),
            }
        }
        let mut buf = bytes.freeze();
        assert_eq!(buf.get_i32() as usize, buf.len());
        let header = ResponseHeader::decode(&mut buf, ApiKey::Fetch.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7);
        let resp = FetchResponse::decode(&mut buf, version).unwrap();
        assert!(buf.is_empty());
        resp
    }

    #[test]
    fn a_not_leader_partition_carries_its_leader_and_the_leader_endpoint_from_v16() {
        let leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(4);
        let pd = PartitionData::default().with_partition_index(3).with_error_code(6).with_current_leader(leader.clone());
        let endpoint = NodeEndpoint::default().with_node_id(BrokerId(2)).with_host(StrBytes::from_static_str("h2")).with_port(9093);
        for version in [12, 15, 16, 17] {
            let out = FetchOut {
                error_code: 0,
                session_id: 0,
                topics: vec![TopicOut { name: TopicName(StrBytes::from_static_str("t")), id: Uuid::from_u128(1), partitions: vec![(pd.clone(), None)] }],
                node_endpoints: vec![endpoint.clone()],
            };
            let resp = decode(version, out);
            let p = &resp.responses[0].partitions[0];
            assert_eq!((p.partition_index, p.error_code, &p.current_leader), (3, 6, &leader), "v{version}");
            let expected = if version >= 16 { vec![endpoint.clone()] } else { Vec::new() };
            assert_eq!(resp.node_endpoints, expected, "v{version}");
        }
    }
}
