//! The table of every configuration key Ferrite understands, under its Kafka name.
//!
//! One table serves three masters: parsing (`BrokerConfig`), validation of topic
//! overrides (CreateTopics, AlterConfigs) and DescribeConfigs, which must list every key
//! with its default, its type and its documentation the way Kafka's admin tools expect.

/// The value type of a key, as DescribeConfigs v3+ reports it (`config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
}

impl ConfigType {
    /// The code DescribeConfigs uses (org.apache.kafka.common.config.ConfigDef.Type order).
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }

    /// Checks that `value` parses as this type; returns a message for the operator if not.
    pub fn validate(self, value: &str) -> Result<(), std::string::String> {
        let v = value.trim();
        let ok = match self {
            ConfigType::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
            ConfigType::Int => v.parse::<i32>().is_ok(),
            ConfigType::Short => v.parse::<i16>().is_ok(),
            ConfigType::Long => v.parse::<i64>().is_ok(),
            ConfigType::Double => v.parse::<f64>().is_ok(),
            ConfigType::String | ConfigType::List => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected a value of type {self:?}, got {value:?}"))
        }
    }
}

/// One broker-level key.
pub struct BrokerKey {
    pub name: &'static str,
    /// `None` means Kafka's "null" default (the key is unset).
    pub default: Option<&'static str>,
    pub kind: ConfigType,
    /// Whether a topic-level key falls back to this one (the broker synonym).
    pub doc: &'static str,
}

/// One topic-level key and the broker key it defaults to.
pub struct TopicKey {
    pub name: &'static str,
    pub broker_synonym: Option<&'static str>,
    /// Default used when there is no broker synonym.
    pub default: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
}

const fn b(name: &'static str, default: Option<&'static str>, kind: ConfigType, doc: &'static str) -> BrokerKey {
    BrokerKey { name, default, kind, doc }
}

use ConfigType::*;

pub const BROKER_KEYS: &[BrokerKey] = &[
    b("node.id", Some("0"), Int, "The node id of this broker."),
    b("broker.id", None, Int, "Synonym of node.id kept for older configurations."),
    b("listeners", Some("PLAINTEXT://0.0.0.0:9092"), List, "Addresses the broker listens on, as NAME://host:port."),
    b("advertised.listeners", Some("PLAINTEXT://localhost:9092"), List, "Addresses handed to clients in Metadata."),
    b("log.dirs", Some("./data"), String, "The directory that holds the log data."),
    b("log.dir", None, String, "Synonym of log.dirs."),
    b("num.partitions", Some("1"), Int, "Default number of partitions of an automatically created topic."),
    b("default.replication.factor", Some("1"), Short, "Default replication factor; a single node serves 1."),
    b("auto.create.topics.enable", Some("true"), Boolean, "Create a topic when a client asks Metadata for one that does not exist."),
    b("delete.topic.enable", Some("true"), Boolean, "Allow DeleteTopics."),
    b("log.segment.bytes", Some("1073741824"), Int, "Maximum size of a single log segment file."),
    b("log.roll.ms", None, Long, "Maximum time before a new segment is rolled out (overrides log.roll.hours)."),
    b("log.roll.hours", Some("168"), Int, "Maximum time before a new segment is rolled out, in hours."),
    b("log.index.interval.bytes", Some("4096"), Int, "Bytes of log between two offset index entries."),
    b("log.index.size.max.bytes", Some("10485760"), Int, "Maximum size of an offset index file."),
    b("log.retention.ms", None, Long, "Time to keep a segment before deleting it (overrides minutes and hours); -1 keeps forever."),
    b("log.retention.minutes", None, Int, "Time to keep a segment before deleting it, in minutes."),
    b("log.retention.hours", Some("168"), Int, "Time to keep a segment before deleting it, in hours."),
    b("log.retention.bytes", Some("-1"), Long, "Maximum size of a partition before old segments are deleted; -1 is unlimited."),
    b("log.retention.check.interval.ms", Some("300000"), Long, "How often retention is checked."),
    b("log.flush.interval.messages", Some("9223372036854775807"), Long, "Messages accumulated on a partition before it is fsynced; 1 fsyncs before every acknowledgement."),
    b("log.flush.interval.ms", None, Long, "Maximum time a message stays in the page cache before the partition is fsynced."),
    b("log.flush.scheduler.interval.ms", Some("9223372036854775807"), Long, "How often the flusher checks log.flush.interval.ms."),
    b("log.flush.offset.checkpoint.interval.ms", Some("60000"), Int, "How often the recovery points (and high watermarks) are written to their checkpoint files."),
    b("log.flush.start.offset.checkpoint.interval.ms", Some("60000"), Int, "How often the log start offsets are written to their checkpoint file (DeleteRecords writes it at once)."),
    b("log.message.timestamp.type", Some("CreateTime"), String, "CreateTime or LogAppendTime."),
    b("log.cleanup.policy", Some("delete"), List, "delete, compact or both."),
    b("log.message.format.version", None, String, "Ignored; only message format v2 is served."),
    b("message.max.bytes", Some("1048588"), Int, "Largest record batch accepted."),
    b("connections.max.idle.ms", Some("600000"), Long, "A connection that completes no request for this long is closed (a slowly trickling request does not count as activity)."),
    b("max.connections", Some("2147483647"), Int, "Connections the broker holds at once; past it new connections wait in the listen backlog."),
    b("max.connections.per.ip", Some("2147483647"), Int, "Connections one address may hold; one more is closed at once."),
    b("max.connections.per.ip.overrides", Some(""), String, "Per-address exceptions to max.connections.per.ip, as address:count pairs separated by commas."),
    b("queued.max.request.bytes", Some("536870912"), Long, "Memory for the bytes of requests being read and handled, shared by all connections; a connection whose request does not fit waits for room instead of allocating. Requests under 64 KiB are not counted. Kafka's default is -1 (unbounded); -1 is accepted and means unbounded here too."),
    b("socket.request.max.bytes", Some("104857600"), Int, "Largest request accepted; a larger frame closes the connection."),
    b("compression.type", Some("producer"), String, "Compression of stored batches; only 'producer' keeps batches as sent."),
    b("min.insync.replicas", Some("1"), Int, "Minimum in-sync replicas for acks=all."),
    b("log.cleaner.enable", Some("true"), Boolean, "Run the log cleaner, which compacts topics with cleanup.policy=compact."),
    b("log.cleaner.threads", Some("1"), Int, "Log cleaner threads."),
    b("log.cleaner.dedupe.buffer.size", Some("134217728"), Long, "Memory for the cleaner's offset maps (key to last offset), shared by its threads."),
    b("log.cleaner.io.max.bytes.per.second", Some("1.7976931348623157E308"), Double, "Limit on the cleaner's reads plus writes, in bytes per second."),
    b("log.cleaner.backoff.ms", Some("15000"), Long, "How long a cleaner thread sleeps when no log needs cleaning."),
    b("log.cleaner.delete.retention.ms", Some("86400000"), Long, "How long tombstones are kept on compacted topics."),
    b("log.cleaner.min.cleanable.ratio", Some("0.5"), Double, "Minimum dirty ratio before a log is cleaned."),
    b("log.cleaner.min.compaction.lag.ms", Some("0"), Long, "Minimum age of a record before it can be compacted."),
    b("log.cleaner.max.compaction.lag.ms", Some("9223372036854775807"), Long, "Maximum age of a record before it must be compacted."),
    b("log.segment.delete.delay.ms", Some("60000"), Long, "Delay before a deleted segment's files are removed."),
    b("log.message.timestamp.before.max.ms", Some("9223372036854775807"), Long, "Largest accepted lag of a CreateTime timestamp behind the broker clock."),
    b("log.message.timestamp.after.max.ms", Some("9223372036854775807"), Long, "Largest accepted lead of a CreateTime timestamp over the broker clock."),
    b("log.preallocate", Some("false"), Boolean, "Ignored; segments are appended sequentially."),
    b("unclean.leader.election.enable", Some("false"), Boolean, "Meaningless on a single node; reported for tools."),
    b("cluster.id", None, String, "The cluster id; generated on first start and kept in meta.properties."),
    b("process.roles", Some("broker,controller"), List, "The roles of this node: broker, controller, or both (KRaft's combined mode, the default: a lone node is its own one-voter quorum)."),
    b("controller.quorum.voters", Some(""), List, "The controller quorum's voters as id@host:port, comma-separated. Empty on a lone combined node."),
    b("controller.quorum.bootstrap.servers", Some(""), List, "host:port of controllers a broker-only node may ask for the quorum (KIP-853); an alternative to controller.quorum.voters for brokers."),
    b("controller.listener.names", None, List, "The listeners, by name, the controllers use (and brokers dial, with the first name)."),
    b("metadata.log.dir", None, String, "Where the metadata log (__cluster_metadata-0) lives; log.dirs when unset."),
    b("controller.quorum.election.timeout.ms", Some("1000"), Int, "A voter that hears nothing from the quorum's leader this long (plus up to as much again, at random) stands for election."),
    b("broker.session.timeout.ms", Some("9000"), Int, "A broker whose heartbeats stop this long is fenced: it leads nothing until it heartbeats again."),
    b("broker.heartbeat.interval.ms", Some("2000"), Int, "How often a broker heartbeats to the active controller."),
    b("inter.broker.listener.name", None, String, "The listener brokers reach each other on (transaction markers); by default the first listener that is not a controller listener."),
    b("broker.rack", None, String, "The rack of this broker; replicas are spread over racks."),
    b("listener.security.protocol.map", Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), List, "Listener name to security protocol. Only PLAINTEXT listeners are served: a broker with any other refuses to start."),
    b("offsets.topic.num.partitions", Some("50"), Int, "Partitions of __consumer_offsets."),
    b("group.initial.rebalance.delay.ms", Some("3000"), Int, "Delay of the first rebalance of a new group, extended while members keep joining."),
    b("group.min.session.timeout.ms", Some("6000"), Int, "Smallest session timeout a classic group member may ask for."),
    b("group.max.session.timeout.ms", Some("1800000"), Int, "Largest session timeout a classic group member may ask for."),
    b("group.max.size", Some("2147483647"), Int, "Largest number of members in one group."),
    b("offsets.topic.segment.bytes", Some("104857600"), Int, "Segment size of __consumer_offsets."),
    b("offsets.topic.replication.factor", Some("3"), Short, "Replication factor of __consumer_offsets, made when a group is first looked for; at most the brokers registered then."),
    b("offsets.retention.minutes", Some("10080"), Int, "Committed offsets of a group that has been empty this long are deleted."),
    b("offsets.retention.check.interval.ms", Some("600000"), Long, "How often expired offsets are looked for."),
    b("offset.metadata.max.bytes", Some("4096"), Int, "Largest metadata string accepted with a committed offset."),
    b("group.coordinator.rebalance.protocols", Some("classic,consumer"), List, "Group protocols served: classic (JoinGroup/SyncGroup) and consumer (KIP-848)."),
    b("group.consumer.session.timeout.ms", Some("45000"), Int, "Session timeout of KIP-848 consumer group members."),
    b("group.consumer.heartbeat.interval.ms", Some("5000"), Int, "Heartbeat interval given to KIP-848 consumer group members."),
    b("group.consumer.assignors", Some("uniform,range"), List, "Server-side assignors of KIP-848 consumer groups; the first is the default."),
    b("group.consumer.max.size", Some("2147483647"), Int, "Largest number of members in one KIP-848 consumer group."),
    b("transaction.state.log.num.partitions", Some("50"), Int, "Partitions of __transaction_state."),
    b("transaction.state.log.segment.bytes", Some("104857600"), Int, "Segment size of __transaction_state."),
    b("transaction.state.log.replication.factor", Some("3"), Short, "Replication factor of __transaction_state, made when a transactional id is first looked for; at most the brokers registered then."),
    b("transaction.state.log.min.isr", Some("1"), Int, "Reported for tools; one node keeps one copy."),
    b("transaction.max.timeout.ms", Some("900000"), Int, "Largest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT above it)."),
    b("transactional.id.expiration.ms", Some("604800000"), Int, "A transactional id idle this long, with no open transaction, is forgotten."),
    b("transaction.abort.timed.out.transaction.cleanup.interval.ms", Some("10000"), Int, "How often open transactions are checked against their timeout and aborted."),
    b("transaction.remove.expired.transaction.cleanup.interval.ms", Some("3600000"), Int, "How often expired transactional ids are removed."),
];

const fn t(
    name: &'static str,
    broker_synonym: Option<&'static str>,
    default: &'static str,
    kind: ConfigType,
    doc: &'static str,
) -> TopicKey {
    TopicKey { name, broker_synonym, default, kind, doc }
}

pub const TOPIC_KEYS: &[TopicKey] = &[
    t("cleanup.policy", Some("log.cleanup.policy"), "delete", List, "delete, compact or both."),
    t("compression.type", Some("compression.type"), "producer", String, "Compression of stored batches."),
    t("delete.retention.ms", Some("log.cleaner.delete.retention.ms"), "86400000", Long, "How long tombstones are kept on compacted topics."),
    t("file.delete.delay.ms", Some("log.segment.delete.delay.ms"), "60000", Long, "Delay before a deleted segment's files are removed."),
    t("flush.messages", Some("log.flush.interval.messages"), "9223372036854775807", Long, "Messages before the partition is fsynced."),
    t("flush.ms", Some("log.flush.interval.ms"), "9223372036854775807", Long, "Time before the partition is fsynced."),
    t("index.interval.bytes", Some("log.index.interval.bytes"), "4096", Int, "Bytes of log between two index entries."),
    t("max.message.bytes", Some("message.max.bytes"), "1048588", Int, "Largest record batch accepted."),
    t("message.timestamp.type", Some("log.message.timestamp.type"), "CreateTime", String, "CreateTime or LogAppendTime."),
    t("message.timestamp.before.max.ms", Some("log.message.timestamp.before.max.ms"), "9223372036854775807", Long, "Largest accepted lag of a CreateTime timestamp."),
    t("message.timestamp.after.max.ms", Some("log.message.timestamp.after.max.ms"), "9223372036854775807", Long, "Largest accepted lead of a CreateTime timestamp."),
    t("min.cleanable.dirty.ratio", Some("log.cleaner.min.cleanable.ratio"), "0.5", Double, "Minimum dirty ratio before cleaning."),
    t("min.compaction.lag.ms", Some("log.cleaner.min.compaction.lag.ms"), "0", Long, "Minimum age before compaction."),
    t("max.compaction.lag.ms", Some("log.cleaner.max.compaction.lag.ms"), "9223372036854775807", Long, "Maximum age before compaction."),
    t("min.insync.replicas", Some("min.insync.replicas"), "1", Int, "Minimum in-sync replicas for acks=all."),
    t("preallocate", Some("log.preallocate"), "false", Boolean, "Ignored."),
    t("retention.bytes", Some("log.retention.bytes"), "-1", Long, "Maximum partition size before old segments are deleted."),
    t("retention.ms", Some("log.retention.ms"), "604800000", Long, "Time to keep a segment; -1 keeps forever."),
    t("segment.bytes", Some("log.segment.bytes"), "1073741824", Int, "Maximum size of a segment."),
    t("segment.index.bytes", Some("log.index.size.max.bytes"), "10485760", Int, "Maximum size of an offset index."),
    t("segment.ms", Some("log.roll.ms"), "604800000", Long, "Time before a segment is rolled."),
    t("segment.jitter.ms", None, "0", Long, "Ignored."),
    t("unclean.leader.election.enable", Some("unclean.leader.election.enable"), "false", Boolean, "Meaningless on a single node."),
    t("message.downconversion.enable", None, "true", Boolean, "Ignored; no down-conversion happens."),
];

pub fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}
