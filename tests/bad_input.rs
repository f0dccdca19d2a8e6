//! Bad input over raw sockets: every malformed request gets the Kafka error where the
//! protocol has one or a closed connection, and the broker keeps serving everyone else.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::{connect, frame, read_response, request};
use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;

fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
}

fn api_versions_ok(b: &EmbeddedBroker) {
    let mut s = connect(b);
    s.write_all(&request(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default())).unwrap();
    let mut resp = read_response(&mut s).expect("still serving");
    let header = ResponseHeader::decode(&mut resp, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let body = ApiVersionsResponse::decode(&mut resp, 3).unwrap();
    assert_eq!(body.error_code, 0);
    assert!(body.api_keys.iter().any(|k| k.api_key == ApiKey::Fetch as i16));
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let b = EmbeddedBroker::start_with(&[("socket.request.max.bytes", "1048576")]);
    let bystander = {
        let mut s = connect(&b);
        s.write_all(&request(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default())).unwrap();
        read_response(&mut s).unwrap();
        s
    };
    // Larger than socket.request.max.bytes: closed before any buffer of that size exists.
    let mut s = connect(&b);
    s.write_all(&(2_000_000i32).to_be_bytes()).unwrap();
    assert_closed(&mut s);
    // Negative size.
    let mut s = connect(&b);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert_closed(&mut s);
    // Unknown API key.
    let mut s = connect(&b);
    s.write_all(&frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff])).unwrap();
    assert_closed(&mut s);
    // Shorter than a request header.
    let mut s = connect(&b);
    s.write_all(&frame(&[0, 3, 0])).unwrap();
    assert_closed(&mut s);
    // A request cut off mid-frame, then the client goes away.
    let mut s = connect(&b);
    let full = request(ApiKey::Metadata, 12, 2, &MetadataRequest::default());
    s.write_all(&full[..full.len() / 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s);
    // A valid header followed by a body that does not decode.
    let mut s = connect(&b);
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(3)
        .encode(&mut buf, ApiKey::Metadata.request_header_version(12))
        .unwrap();
    buf.put_slice(&[0x05, 0x99]);
    s.write_all(&frame(&buf)).unwrap();
    assert_closed(&mut s);
    // An array claiming 4 billion elements in a small frame: no allocation of that size.
    for (version, count) in [(12i16, &[0xff, 0xff, 0xff, 0xff, 0x0f][..]), (1, &[0x7f, 0xff, 0xff, 0xff][..])] {
        let mut s = connect(&b);
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(version)
            .with_correlation_id(4)
            .encode(&mut buf, ApiKey::Metadata.request_header_version(version))
            .unwrap();
        buf.put_slice(count);
        buf.put_slice(&[0u8; 16]);
        s.write_all(&frame(&buf)).unwrap();
        assert_closed(&mut s);
    }
    // The bystander connection and new ones are unaffected.
    let mut bystander = bystander;
    bystander.write_all(&request(ApiKey::ApiVersions, 0, 9, &ApiVersionsRequest::default())).unwrap();
    assert!(read_response(&mut bystander).is_some());
    api_versions_ok(&b);
}

#[test]
fn newer_api_versions_request_gets_a_v0_answer() {
    let b = EmbeddedBroker::start();
    let mut s = connect(&b);
    // A version from the future: the body is unknown, so send an empty one.
    let mut buf = BytesMut::new();
    buf.put_i16(ApiKey::ApiVersions as i16);
    buf.put_i16(99);
    buf.put_i32(11);
    buf.put_i16(-1);
    buf.put_u8(0);
    s.write_all(&frame(&buf)).unwrap();
    let mut resp = read_response(&mut s).unwrap();
    assert_eq!(ResponseHeader::decode(&mut resp, 0).unwrap().correlation_id, 11);
    let body = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, kafka_protocol::ResponseError::UnsupportedVersion.code());
    assert!(body.api_keys.iter().any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version >= 3));
}

#[test]
fn api_not_served_gets_an_error_response() {
    let b = EmbeddedBroker::start();
    let mut s = connect(&b);
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    s.write_all(&request(ApiKey::SaslHandshake, 1, 5, &req)).unwrap();
    let mut resp = read_response(&mut s).expect("an answer, not a closed connection");
    assert_eq!(ResponseHeader::decode(&mut resp, 0).unwrap().correlation_id, 5);
    let body = SaslHandshakeResponse::decode(&mut resp, 1).unwrap();
    assert_eq!(body.error_code, kafka_protocol::ResponseError::UnsupportedVersion.code());
}

#[test]
fn heartbeat_for_an_unknown_group_names_the_error() {
    let b = EmbeddedBroker::start();
    let mut s = connect(&b);
    let req = HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g")));
    s.write_all(&request(ApiKey::Heartbeat, 4, 6, &req)).unwrap();
    let mut resp = read_response(&mut s).expect("an answer");
    assert_eq!(ResponseHeader::decode(&mut resp, 1).unwrap().correlation_id, 6);
    let body = HeartbeatResponse::decode(&mut resp, 4).unwrap();
    assert_eq!(body.error_code, kafka_protocol::ResponseError::UnknownMemberId.code());
    // An empty group id is INVALID_GROUP_ID.
    let req = HeartbeatRequest::default();
    s.write_all(&request(ApiKey::Heartbeat, 4, 7, &req)).unwrap();
    let mut resp = read_response(&mut s).expect("an answer");
    let _ = ResponseHeader::decode(&mut resp, 1).unwrap();
    let body = HeartbeatResponse::decode(&mut resp, 4).unwrap();
    assert_eq!(body.error_code, kafka_protocol::ResponseError::InvalidGroupId.code());
}

#[test]
fn corrupt_batch_fails_only_its_partition() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let b = EmbeddedBroker::start_with(&[("num.partitions", "2")]);
    let mut s = connect(&b);
    // Auto-create the topic through Metadata.
    let md = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("bad"))))]))
        .with_allow_auto_topic_creation(true);
    s.write_all(&request(ApiKey::Metadata, 12, 1, &md)).unwrap();
    read_response(&mut s).unwrap();
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut good = BytesMut::new();
    RecordBatchEncoder::encode(&mut good, [&record], &RecordEncodeOptions { version: 2, compression: Compression::None }).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut oversized_magic = good.clone();
    oversized_magic[16] = 1;
    let part = |i: i32, records: &BytesMut| PartitionProduceData::default().with_index(i).with_records(Some(records.clone().freeze()));
    let req = ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bad")))
        .with_partition_data(vec![part(0, &good), part(1, &bad), part(7, &good)])]);
    s.write_all(&request(ApiKey::Produce, 9, 2, &req)).unwrap();
    let mut resp = read_response(&mut s).unwrap();
    ResponseHeader::decode(&mut resp, 1).unwrap();
    let body = ProduceResponse::decode(&mut resp, 9).unwrap();
    let codes: Vec<(i32, i16, i64)> =
        body.responses[0].partition_responses.iter().map(|p| (p.index, p.error_code, p.base_offset)).collect();
    use kafka_protocol::ResponseError as E;
    assert_eq!(codes, vec![(0, 0, 0), (1, E::CorruptMessage.code(), -1), (7, E::UnknownTopicOrPartition.code(), -1)]);
    // Wrong magic (the CRC no longer matters: the magic is checked first).
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bad")))
        .with_partition_data(vec![part(0, &oversized_magic)])]);
    s.write_all(&request(ApiKey::Produce, 9, 3, &req)).unwrap();
    let mut resp = read_response(&mut s).unwrap();
    ResponseHeader::decode(&mut resp, 1).unwrap();
    let body = ProduceResponse::decode(&mut resp, 9).unwrap();
    assert_eq!(body.responses[0].partition_responses[0].error_code, E::InvalidRecord.code());
}
