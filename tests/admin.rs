//! Admin APIs spoken raw: DescribeLogDirs, reassignments and client quotas (answered
//! truthfully for one node), and dynamic broker configs at both scopes across a restart.

mod common;

use common::raw::{call, connect};
use common::*;
use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::producer::BaseRecord;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

#[test]
fn describe_log_dirs_reports_the_directory_and_partition_sizes() {
    let b = EmbeddedBroker::start();
    create_topic(&b.bootstrap(), "dirs", 2, &[]);
    produce_all(&producer(&b.bootstrap(), &[]), (0..10).map(|i| BaseRecord::to("dirs").partition(i % 2).payload(&b"0123456789"[..])).collect());
    let mut s = connect(&b);
    let resp: DescribeLogDirsResponse = call(&mut s, ApiKey::DescribeLogDirs, 4, &DescribeLogDirsRequest::default().with_topics(None));
    let [dir] = &resp.results[..] else { panic!("one log dir: {resp:?}") };
    assert_eq!(dir.error_code, 0);
    assert_eq!(dir.log_dir.as_str(), std::fs::canonicalize(b.data_dir()).unwrap().to_str().unwrap());
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    let topic = dir.topics.iter().find(|t| t.name.as_str() == "dirs").expect("the topic is listed");
    assert_eq!(topic.partitions.len(), 2);
    assert!(topic.partitions.iter().all(|p| p.partition_size > 0));
    // Asking for one partition lists just that one.
    let one = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default().with_topic(name("dirs")).with_partitions(vec![1]),
    ]));
    let resp: DescribeLogDirsResponse = call(&mut s, ApiKey::DescribeLogDirs, 4, &one);
    let parts: Vec<i32> = resp.results[0].topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.partition_index)).collect();
    assert_eq!(parts, vec![1]);
}

#[test]
fn reassignments_and_quotas_are_answered_for_one_node() {
    let b = EmbeddedBroker::start();
    create_topic(&b.bootstrap(), "moves", 1, &[]);
    let mut s = connect(&b);
    let listed: ListPartitionReassignmentsResponse =
        call(&mut s, ApiKey::ListPartitionReassignments, 0, &ListPartitionReassignmentsRequest::default());
    assert!(listed.topics.is_empty() && listed.error_code == 0);
    let ask = |replicas: Option<Vec<i32>>, topic: &str| {
        AlterPartitionReassignmentsRequest::default().with_topics(vec![ReassignableTopic::default().with_name(name(topic)).with_partitions(vec![
            ReassignablePartition::default().with_partition_index(0).with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect())),
        ])])
    };
    let code = |r: AlterPartitionReassignmentsResponse| r.responses[0].partitions[0].error_code;
    assert_eq!(code(call(&mut s, ApiKey::AlterPartitionReassignments, 0, &ask(Some(vec![0]), "moves"))), 0);
    assert_eq!(code(call(&mut s, ApiKey::AlterPartitionReassignments, 0, &ask(Some(vec![1]), "moves"))), ResponseError::InvalidReplicaAssignment.code());
    assert_eq!(code(call(&mut s, ApiKey::AlterPartitionReassignments, 0, &ask(None, "moves"))), ResponseError::NoReassignmentInProgress.code());
    assert_eq!(code(call(&mut s, ApiKey::AlterPartitionReassignments, 0, &ask(Some(vec![0]), "nope"))), ResponseError::UnknownTopicOrPartition.code());
    let quotas: DescribeClientQuotasResponse = call(&mut s, ApiKey::DescribeClientQuotas, 1, &DescribeClientQuotasRequest::default());
    assert_eq!((quotas.error_code, quotas.entries.map(|e| e.len())), (0, Some(0)));
}

fn incremental(s: &mut std::net::TcpStream, broker: &str, key: &str, value: Option<&str>) -> IncrementalAlterConfigsResponse {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let op = if value.is_some() { 0 } else { 1 };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(StrBytes::from_string(broker.into()))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_string(key.into()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.into())))])]);
    call(s, ApiKey::IncrementalAlterConfigs, 1, &req)
}

#[test]
fn dynamic_broker_defaults_apply_to_topics_and_survive_a_restart() {
    let mut b = EmbeddedBroker::start();
    create_topic(&b.bootstrap(), "dyn", 1, &[]);
    create_topic(&b.bootstrap(), "dyn-own", 1, &[("retention.ms", "1000")]);
    let mut s = connect(&b);
    // The cluster-wide default (""), then this broker's own value ("0") above it.
    let resp = incremental(&mut s, "", "log.retention.ms", Some("5000000"));
    assert_eq!(resp.responses[0].error_code, 0, "{resp:?}");
    let retention = |b: &EmbeddedBroker, t: &str| b.broker().state().logs.partition(t, 0).unwrap().log().config().retention_ms;
    assert_eq!(retention(&b, "dyn"), 5_000_000);
    assert_eq!(retention(&b, "dyn-own"), 1000, "a topic override wins");
    assert_eq!(incremental(&mut s, "0", "log.retention.ms", Some("6000000")).responses[0].error_code, 0);
    assert_eq!(retention(&b, "dyn"), 6_000_000);
    // Static keys, unknown brokers and bad values are refused.
    let refused = incremental(&mut s, "0", "num.partitions", Some("3"));
    assert_eq!(refused.responses[0].error_code, ResponseError::InvalidRequest.code());
    assert!(refused.responses[0].error_message.as_deref().unwrap().contains("restart"));
    assert_eq!(incremental(&mut s, "7", "log.retention.ms", Some("1")).responses[0].error_code, ResponseError::InvalidRequest.code());
    assert_eq!(incremental(&mut s, "0", "log.retention.ms", Some("soon")).responses[0].error_code, ResponseError::InvalidConfig.code());
    drop(s);
    b.restart().unwrap();
    assert_eq!(retention(&b, "dyn"), 6_000_000, "kept in dynamic-configs/ across a restart");
    let mut s = connect(&b);
    assert_eq!(incremental(&mut s, "0", "log.retention.ms", None).responses[0].error_code, 0);
    assert_eq!(retention(&b, "dyn"), 5_000_000, "back to the cluster default");
    create_topic(&b.bootstrap(), "dyn-new", 1, &[]);
    assert_eq!(retention(&b, "dyn-new"), 5_000_000, "new topics start from the dynamic default");
}
