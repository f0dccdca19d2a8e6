//! OffsetForLeaderEpoch answered from the partition's `leader-epoch-checkpoint` (Kafka's
//! format, in the partition directory): a client validating its position after a leader
//! change (KIP-320) learns where each epoch ended, across a clean restart and a crash, and
//! after DeleteRecords moved the log start.

mod common;

use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::BaseRecord;
use std::net::TcpStream;
use std::time::Duration;

const UNKNOWN_LEADER_EPOCH: i16 = 75;
const FENCED_LEADER_EPOCH: i16 = 74;

/// (error, epoch, end offset) for `epoch` of `topic`-0, with the client's `current` epoch.
fn end_of(bootstrap: &str, topic: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default().with_replica_id(kafka_protocol::messages::BrokerId(-1)).with_topics(vec![OffsetForLeaderTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.into())))
        .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(current).with_leader_epoch(epoch)])]);
    let mut s = TcpStream::connect(bootstrap).unwrap();
    let resp: OffsetForLeaderEpochResponse = common::raw::call(&mut s, ApiKey::OffsetForLeaderEpoch, 4, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[test]
fn offset_for_leader_epoch_comes_from_the_leader_epoch_checkpoint() {
    let mut broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    common::create_topic(&bs, "epochs", 1, &[]);
    let epoch = ferrite::LEADER_EPOCH;
    assert_eq!(end_of(&bs, "epochs", -1, epoch), (0, epoch, 0), "an empty partition answers for its leader's epoch");
    let p = common::producer(&bs, &[]);
    let v = vec![1u8; 100];
    common::produce_all(&p, (0..25).map(|_| BaseRecord::<[u8], [u8]>::to("epochs").payload(&v[..]).partition(0)).collect());
    assert_eq!(end_of(&bs, "epochs", epoch, epoch), (0, epoch, 25), "the current epoch ends at the log end");
    assert_eq!(end_of(&bs, "epochs", -1, epoch + 1), (0, -1, -1), "an epoch newer than any that wrote is unknown");
    assert_eq!(end_of(&bs, "epochs", epoch + 1, epoch).0, UNKNOWN_LEADER_EPOCH, "the client is ahead of this leader");
    if epoch > 0 {
        assert_eq!(end_of(&bs, "epochs", epoch - 1, epoch).0, FENCED_LEADER_EPOCH);
    }
    let checkpoint = broker.data_dir().join("epochs-0").join("leader-epoch-checkpoint");
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), format!("0\n1\n{epoch} 0\n"), "Kafka's file format");

    // DeleteRecords moves the epoch's start; a clean restart and a crash keep the answers.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("epochs", 0, rdkafka::Offset::Offset(10)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(admin.delete_records(&tpl, &rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))).unwrap();
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), format!("0\n1\n{epoch} 10\n"));
    broker.restart().unwrap();
    assert_eq!(end_of(&broker.bootstrap(), "epochs", epoch, epoch), (0, epoch, 25));
    common::produce_all(&common::producer(&broker.bootstrap(), &[]), (0..5).map(|_| BaseRecord::<[u8], [u8]>::to("epochs").payload(&v[..]).partition(0)).collect());
    broker.crash_and_restart().unwrap();
    assert_eq!(end_of(&broker.bootstrap(), "epochs", epoch, epoch), (0, epoch, 30));
    // A removed checkpoint is rebuilt from the batches' stamped epochs.
    broker.stop_then(|| std::fs::remove_file(&checkpoint).unwrap()).unwrap();
    assert_eq!(end_of(&broker.bootstrap(), "epochs", epoch, epoch), (0, epoch, 30));
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), format!("0\n1\n{epoch} 10\n"));
}
