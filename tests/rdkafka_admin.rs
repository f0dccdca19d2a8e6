//! The rdkafka crate's AdminClient (librdkafka's admin API): topics created with configs,
//! partitions added, configs described and altered, records deleted, a group deleted,
//! topics deleted; each checked against what a client then sees.

mod common;

use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

#[test]
fn admin_client_manages_topics_configs_records_and_groups() {
    let _covers = covers(LIBRDKAFKA, &["admin.topics", "admin.configs", "admin.delete_records", "admin.groups"]);
    not_offered(
        LIBRDKAFKA,
        &[
            ("admin.cluster", "the rdkafka crate 0.38 does not wrap DescribeCluster"),
            ("admin.log_dirs", "neither librdkafka nor the rdkafka crate has DescribeLogDirs"),
            ("admin.transactions", "neither librdkafka nor the rdkafka crate has Describe/ListTransactions"),
        ],
    );
    let broker = EmbeddedBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]);
    let bs = broker.bootstrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(15)));

    let t = NewTopic::new("rd-admin", 2, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let created = rt.block_on(admin.create_topics([&t], &opts)).unwrap();
    assert_eq!(created, vec![Ok("rd-admin".to_string())]);
    let again = rt.block_on(admin.create_topics([&t], &opts)).unwrap();
    assert!(matches!(&again[0], Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))), "{again:?}");
    let grown = rt.block_on(admin.create_partitions([&NewPartitions::new("rd-admin", 4)], &opts)).unwrap();
    assert_eq!(grown, vec![Ok("rd-admin".to_string())]);
    let md = consumer(&bs, &[]).fetch_metadata(Some("rd-admin"), Duration::from_secs(10)).unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);

    let described = rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic("rd-admin")], &opts)).unwrap();
    let config = described[0].as_ref().unwrap();
    assert_eq!(config.get("retention.ms").and_then(|e| e.value.as_deref()), Some("3600000"));
    assert!(config.get("retention.ms").is_some_and(|e| !e.is_default));
    let alter = AlterConfig::new(ResourceSpecifier::Topic("rd-admin")).set("retention.ms", "7200000").set("cleanup.policy", "delete");
    let altered = rt.block_on(admin.alter_configs([&alter], &opts)).unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    let described = rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic("rd-admin")], &opts)).unwrap();
    assert_eq!(described[0].as_ref().unwrap().get("retention.ms").and_then(|e| e.value.as_deref()), Some("7200000"));

    let p = producer(&bs, &[]);
    produce_all(&p, (0..20).map(|_| BaseRecord::<[u8], [u8]>::to("rd-admin").partition(0).payload(b"x")).collect());
    let mut below = TopicPartitionList::new();
    below.add_partition_offset("rd-admin", 0, Offset::Offset(15)).unwrap();
    let deleted = rt.block_on(admin.delete_records(&below, &opts)).unwrap();
    assert_eq!(deleted.find_partition("rd-admin", 0).unwrap().offset(), Offset::Offset(15));
    assert_eq!(consumer(&bs, &[]).fetch_watermarks("rd-admin", 0, Duration::from_secs(10)).unwrap(), (15, 20));

    // A group with a committed offset, then deleted.
    let c = consumer(&bs, &[("group.id", "rd-admin-group")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rd-admin", 0, Offset::Offset(17)).unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
    drop(c);
    let groups = rt.block_on(admin.delete_groups(&["rd-admin-group"], &opts)).unwrap();
    assert_eq!(groups, vec![Ok("rd-admin-group".to_string())]);
    let listed = consumer(&bs, &[]).fetch_group_list(Some("rd-admin-group"), Duration::from_secs(10)).unwrap();
    assert!(listed.groups().is_empty(), "the group is gone");

    let gone = rt.block_on(admin.delete_topics(&["rd-admin"], &opts)).unwrap();
    assert_eq!(gone, vec![Ok("rd-admin".to_string())]);
    let md = consumer(&bs, &[]).fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(md.topics().iter().all(|t| t.name() != "rd-admin"));
}
