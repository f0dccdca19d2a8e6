// The official Java client (kafka-clients) against a running Ferrite: one check per
// capability, each printed as `RESULT <capabilities>[:<what>] PASS|FAIL <detail>` (the
// capabilities, joined by `+`, are the compatibility matrix's columns); exit 1 if any
// failed. Usage: java -cp <jars>:. FerriteCompat <bootstrap> [--kip848]
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.*;

@SuppressWarnings("removal")
public class FerriteCompat {
    static String bootstrap;
    static boolean failed = false;

    interface Check { String run() throws Exception; }

    static void check(String name, Check c) {
        try {
            String detail = c.run();
            System.out.println("RESULT " + name + " PASS " + (detail == null ? "" : detail));
        } catch (Throwable t) {
            failed = true;
            System.out.println("RESULT " + name + " FAIL " + t);
            t.printStackTrace(System.out);
        }
    }

    static void require(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static String unique(String p) { return p + "-" + UUID.randomUUID().toString().substring(0, 8); }

    static Properties props() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        return p;
    }

    static KafkaProducer<String, String> producer(String compression) {
        Properties p = props();
        p.put("compression.type", compression);
        p.put("linger.ms", "5");
        // acks=all and enable.idempotence=true are the defaults since 3.0.
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer(String group, boolean kip848) {
        Properties p = props();
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        if (kip848) p.put("group.protocol", "consumer");
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static List<ConsumerRecord<String, String>> drain(KafkaConsumer<String, String> c, int n) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (out.size() < n && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r);
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        boolean kip848 = Arrays.asList(args).contains("--kip848");
        // --nodes=N: the cluster behind the bootstrap has N combined nodes (1: a lone node).
        int nodes = Arrays.stream(args).filter(a -> a.startsWith("--nodes=")).map(a -> Integer.parseInt(a.substring(8))).findFirst().orElse(1);
        Admin admin = Admin.create(props());

        String topic = unique("java");
        check("admin.topics:create_describe", () -> {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            require(d.partitions().size() == 3, "3 partitions: " + d);
            require(d.topicId() != null && !d.topicId().equals(Uuid.ZERO_UUID), "a topic id");
            return d.partitions().size() + " partitions";
        });
        check("admin.cluster", () -> {
            DescribeClusterResult r = admin.describeCluster();
            require(r.nodes().get().size() == nodes, nodes + " nodes: " + r.nodes().get());
            require(r.clusterId().get() != null, "a cluster id");
            return "controller " + r.controller().get().id();
        });
        check("admin.cluster:metadata_quorum", () -> {
            // What kafka-metadata-quorum describe --status prints comes from here.
            QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get();
            Set<Integer> ids = new HashSet<>();
            for (Node n : admin.describeCluster().nodes().get()) ids.add(n.id());
            require(ids.contains(q.leaderId()), "a node of the cluster leads the quorum: " + q);
            Set<Integer> voters = new HashSet<>();
            for (QuorumInfo.ReplicaState v : q.voters()) voters.add(v.replicaId());
            require(voters.equals(ids), "every node votes: " + q);
            require(q.highWatermark() > 0 && q.leaderEpoch() >= 1, "a committed metadata log: " + q);
            return "leader " + q.leaderId() + " epoch " + q.leaderEpoch() + " hw " + q.highWatermark();
        });

        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            check("round_trip+codecs+idempotence:" + codec, () -> {
                String t = unique("java-" + codec);
                admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
                long ts = System.currentTimeMillis() - 1000;
                try (KafkaProducer<String, String> p = producer(codec)) {
                    for (int i = 0; i < 100; i++) {
                        ProducerRecord<String, String> r = new ProducerRecord<>(t, 0, ts + i, "k" + i, "v" + i);
                        r.headers().add(new RecordHeader("h", ("x" + i).getBytes()));
                        p.send(r);
                    }
                    p.flush();
                }
                try (KafkaConsumer<String, String> c = consumer(unique("g"), false)) {
                    c.assign(List.of(new TopicPartition(t, 0)));
                    c.seekToBeginning(List.of(new TopicPartition(t, 0)));
                    List<ConsumerRecord<String, String>> got = drain(c, 100);
                    require(got.size() == 100, "100 records, got " + got.size());
                    for (int i = 0; i < 100; i++) {
                        ConsumerRecord<String, String> r = got.get(i);
                        require(r.offset() == i && r.key().equals("k" + i) && r.value().equals("v" + i) && r.timestamp() == ts + i, "record " + i + ": " + r);
                        require(new String(r.headers().lastHeader("h").value()).equals("x" + i), "header " + i);
                    }
                }
                return "100 records, idempotent producer";
            });
        }

        check("partitions", () -> {
            String t = unique("java-many");
            admin.createTopics(List.of(new NewTopic(t, 32, (short) 1))).all().get(30, TimeUnit.SECONDS);
            List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
            try (KafkaProducer<String, String> p = producer("lz4")) {
                for (int i = 0; i < 3200; i++) sent.add(p.send(new ProducerRecord<>(t, "key-" + (i % 320), "v" + i)));
                p.flush();
            }
            for (java.util.concurrent.Future<RecordMetadata> f : sent) f.get(); // every send acknowledged
            try (KafkaConsumer<String, String> c = consumer(unique("g"), false)) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int i = 0; i < 32; i++) tps.add(new TopicPartition(t, i));
                c.assign(tps);
                c.seekToBeginning(tps);
                List<ConsumerRecord<String, String>> got = drain(c, 3200);
                if (got.size() != 3200) {
                    // Which partitions came short, against what their leaders hold.
                    Map<Integer, Long> read = new TreeMap<>();
                    for (ConsumerRecord<String, String> r : got) read.merge(r.partition(), 1L, Long::sum);
                    Map<TopicPartition, Long> ends = c.endOffsets(tps);
                    StringBuilder b = new StringBuilder();
                    for (TopicPartition tp : tps) {
                        long have = read.getOrDefault(tp.partition(), 0L);
                        if (have != ends.get(tp)) b.append(" p").append(tp.partition()).append(": read ").append(have).append(" of ").append(ends.get(tp)).append(" at ").append(c.position(tp));
                    }
                    require(false, "3200 records, got " + got.size() + ";" + b);
                }
                Map<String, Set<Integer>> partitionsOfKey = new HashMap<>();
                for (ConsumerRecord<String, String> r : got) partitionsOfKey.computeIfAbsent(r.key(), k -> new HashSet<>()).add(r.partition());
                require(partitionsOfKey.values().stream().allMatch(s -> s.size() == 1), "a key stays in one partition");
                long used = got.stream().map(ConsumerRecord::partition).distinct().count();
                require(used >= 24, "keys spread over the partitions: " + used);
                return used + " partitions used";
            }
        });

        check("by_time", () -> {
            String t = unique("java-times");
            admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> p = producer("lz4")) {
                for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(t, 0, 1_000_000L + i * 100, null, "v" + i));
                p.flush();
            }
            try (KafkaConsumer<String, String> c = consumer(unique("g"), false)) {
                TopicPartition tp = new TopicPartition(t, 0);
                Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, 1_000_450L));
                require(r.get(tp).offset() == 5, "offset 5 for ts 1000450: " + r);
                Map<TopicPartition, Long> end = c.endOffsets(List.of(tp));
                require(end.get(tp) == 10, "end offset 10: " + end);
            }
            return null;
        });

        String group = unique("java-group");
        check(kip848 ? "groups.kip848" : "groups", () -> {
            try (KafkaProducer<String, String> p = producer("none")) {
                for (int i = 0; i < 90; i++) p.send(new ProducerRecord<>(topic, i % 3, "k" + i, "v" + i));
                p.flush();
            }
            try (KafkaConsumer<String, String> a = consumer(group, kip848); KafkaConsumer<String, String> b = consumer(group, kip848)) {
                a.subscribe(List.of(topic));
                b.subscribe(List.of(topic));
                Set<String> seen = new HashSet<>();
                long deadline = System.currentTimeMillis() + 90_000;
                while ((seen.size() < 90 || a.assignment().isEmpty() || b.assignment().isEmpty()) && System.currentTimeMillis() < deadline) {
                    for (KafkaConsumer<String, String> c : List.of(a, b)) {
                        ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                        for (ConsumerRecord<String, String> r : rs) require(seen.add(r.partition() + "/" + r.offset()), "delivered twice: " + r);
                        if (!rs.isEmpty()) c.commitSync();
                    }
                }
                require(seen.size() == 90, "90 records, got " + seen.size());
                require(a.assignment().size() + b.assignment().size() == 3 && !a.assignment().isEmpty() && !b.assignment().isEmpty(),
                        "both members assigned: " + a.assignment() + " " + b.assignment());
            }
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            long sum = committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            require(sum == 90, "committed offsets sum to 90: " + committed);
            return "2 members, 90 records, commits";
        });

        check("admin.groups", () -> {
            Collection<ConsumerGroupListing> listed = admin.listConsumerGroups().all().get();
            require(listed.stream().anyMatch(g -> g.groupId().equals(group)), "group listed: " + listed);
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            require(d.members().isEmpty(), "no members left: " + d);
            admin.deleteConsumerGroupOffsets(group, Set.of(new TopicPartition(topic, 0))).all().get();
            Map<TopicPartition, OffsetAndMetadata> left = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            require(!left.containsKey(new TopicPartition(topic, 0)) || left.get(new TopicPartition(topic, 0)) == null, "offset deleted: " + left);
            admin.deleteConsumerGroups(List.of(group)).all().get();
            require(admin.listConsumerGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)), "group deleted");
            return d.members().size() + " members after the consumers left";
        });

        check("admin.configs", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all().get();
            Config c = admin.describeConfigs(List.of(r)).all().get().get(r);
            require(c.get("retention.ms").value().equals("3600000"), "retention.ms altered: " + c.get("retention.ms"));
            require(c.get("segment.bytes") != null && c.get("segment.bytes").value() != null, "defaults described");
            String nodeId = String.valueOf(admin.describeCluster().nodes().get().iterator().next().id());
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, nodeId);
            Config b = admin.describeConfigs(List.of(broker)).all().get().get(broker);
            require(b.get("log.retention.hours") != null, "broker config described");
            return null;
        });

        check("admin.topics+admin.delete_records:partitions_and_records", () -> {
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            // Other brokers learn of the new partitions a moment later (as in Kafka).
            long until = System.currentTimeMillis() + 10_000;
            int seen;
            while ((seen = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size()) != 4 && System.currentTimeMillis() < until) {
                Thread.sleep(50);
            }
            require(seen == 4, "4 partitions, saw " + seen);
            admin.deleteRecords(Map.of(new TopicPartition(topic, 0), RecordsToDelete.beforeOffset(10))).all().get();
            ListOffsetsResult.ListOffsetsResultInfo e = admin.listOffsets(Map.of(new TopicPartition(topic, 0), OffsetSpec.earliest())).all().get().get(new TopicPartition(topic, 0));
            require(e.offset() == 10, "log start moved to 10: " + e.offset());
            return null;
        });

        check("admin.log_dirs", () -> {
            int first = admin.describeCluster().nodes().get().iterator().next().id();
            Map<Integer, Map<String, LogDirDescription>> dirs = admin.describeLogDirs(List.of(first)).allDescriptions().get();
            require(dirs.get(first).size() == 1, "one log dir: " + dirs);
            return dirs.get(first).keySet().iterator().next();
        });

        String txnTopic = unique("java-txn");
        String txnId = unique("java-tx");
        check("transactions", () -> {
            admin.createTopics(List.of(new NewTopic(txnTopic, 2, (short) 1))).all().get();
            Properties pp = props();
            pp.put("transactional.id", txnId);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                p.initTransactions();
                p.beginTransaction();
                for (int i = 0; i < 30; i++) p.send(new ProducerRecord<>(txnTopic, i % 2, "k" + i, "committed-" + i));
                p.commitTransaction();
                p.beginTransaction();
                for (int i = 0; i < 20; i++) p.send(new ProducerRecord<>(txnTopic, i % 2, "k" + i, "aborted-" + i));
                p.flush();
                p.abortTransaction();
            }
            Properties cp = props();
            cp.put("isolation.level", "read_committed");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                List<TopicPartition> tps = List.of(new TopicPartition(txnTopic, 0), new TopicPartition(txnTopic, 1));
                c.assign(tps);
                c.seekToBeginning(tps);
                List<ConsumerRecord<String, String>> got = drain(c, 30);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofSeconds(1))) got.add(r);
                require(got.size() == 30, "30 committed records, got " + got.size());
                require(got.stream().allMatch(r -> r.value().startsWith("committed-")), "no aborted record");
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                require(end.values().stream().mapToLong(Long::longValue).sum() == 30 + 20 + 4, "end offsets count records and markers: " + end);
            }
            return "30 committed, 20 aborted";
        });

        check("transactions:consume_transform_produce", () -> {
            String out = unique("java-ctp-out");
            String ctpGroup = unique("java-ctp");
            admin.createTopics(List.of(new NewTopic(out, 1, (short) 1))).all().get();
            Properties pp = props();
            pp.put("transactional.id", unique("java-ctp-tx"));
            Properties cp = props();
            cp.put("group.id", ctpGroup);
            cp.put("isolation.level", "read_committed");
            cp.put("enable.auto.commit", "false");
            cp.put("auto.offset.reset", "earliest");
            if (kip848) cp.put("group.protocol", "consumer");
            int moved = 0;
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
                 KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                p.initTransactions();
                c.subscribe(List.of(txnTopic));
                long deadline = System.currentTimeMillis() + 60_000;
                while (moved < 30 && System.currentTimeMillis() < deadline) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    if (rs.isEmpty()) continue;
                    p.beginTransaction();
                    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                    for (ConsumerRecord<String, String> r : rs) {
                        p.send(new ProducerRecord<>(out, 0, r.key(), r.value().replace("committed-", "out-")));
                        offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                        moved++;
                    }
                    p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                    p.commitTransaction();
                }
            }
            require(moved == 30, "30 records moved, got " + moved);
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(ctpGroup).partitionsToOffsetAndMetadata().get();
            long total = 0;
            for (OffsetAndMetadata o : committed.values()) total += o.offset();
            require(total >= 30, "offsets committed with the transactions: " + committed);
            return moved + " records, offsets " + committed.values().stream().map(OffsetAndMetadata::offset).toList();
        });

        check("admin.transactions", () -> {
            Collection<TransactionListing> listed = admin.listTransactions().all().get();
            require(listed.stream().anyMatch(t -> t.transactionalId().equals(txnId)), "listed: " + listed);
            TransactionDescription d = admin.describeTransactions(List.of(txnId)).all().get().get(txnId);
            require(d.state() == TransactionState.COMPLETE_ABORT, "last transaction aborted: " + d);
            return d.state() + " epoch " + d.producerEpoch();
        });

        check("admin.topics:delete", () -> {
            admin.deleteTopics(List.of(topic)).all().get();
            // Other brokers learn of the deletion a moment later (as in Kafka).
            long until = System.currentTimeMillis() + 10_000;
            while (admin.listTopics().names().get().contains(topic) && System.currentTimeMillis() < until) Thread.sleep(50);
            require(!admin.listTopics().names().get().contains(topic), "deleted");
            return null;
        });

        admin.close();
        System.exit(failed ? 1 : 0);
    }
}
