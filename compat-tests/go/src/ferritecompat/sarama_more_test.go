// Sarama: an idempotent producer over many partitions, offsets by time, and the cluster
// admin's cluster, group and DeleteRecords calls.
package ferritecompat

import (
	"fmt"
	"testing"
	"time"

	"github.com/Shopify/sarama"
)

func TestSaramaIdempotentManyPartitionsByTime(t *testing.T) {
	admin, err := sarama.NewClusterAdmin(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := unique("sarama-many")
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 16, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(bootstrap(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 1600; i++ {
		msg := &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 16), Value: sarama.StringEncoder(fmt.Sprint(i)),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		if _, _, err := p.SendMessage(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	p.Close()
	client, err := sarama.NewClient(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for part := int32(0); part < 16; part++ {
		end, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil || end != 100 {
			t.Fatalf("partition %d ends at %d (%v), want 100", part, end, err)
		}
	}
	// Partition 3 holds ms 3, 19, 35, ...: the first at or after ms 100 is ms 115, offset 7.
	at, err := client.GetOffset(topic, 3, base.Add(100*time.Millisecond).UnixNano()/int64(time.Millisecond))
	if err != nil || at != 7 {
		t.Fatalf("offset for time: %d %v, want 7", at, err)
	}
}

func TestSaramaClusterGroupsAndDeleteRecords(t *testing.T) {
	admin, err := sarama.NewClusterAdmin(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Sarama 1.22 asks with Metadata v0, which carries no controller id (it reports -1,
	// against Kafka too): the brokers are what it learns.
	brokers, _, err := admin.DescribeCluster()
	if err != nil || len(brokers) != nodes() || (nodes() == 1 && brokers[0].ID() != 0) {
		t.Fatalf("describe cluster: %v %v", brokers, err)
	}
	topic, group := unique("sarama-adm"), unique("sarama-adm-group")
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
	if nodes() > 1 {
		// Sarama 1.22 sends DeleteRecords to the controller rather than to the partition's
		// leader and drops the per-partition errors (against a Kafka cluster as well): the
		// partition is placed on the broker it will ask.
		c, err := sarama.NewClient(bootstrap(t), saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		ctrl, err := c.Controller()
		if err != nil {
			t.Fatal(err)
		}
		detail = &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1, ReplicaAssignment: map[int32][]int32{0: {ctrl.ID()}}}
		c.Close()
	}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatal(err)
	}
	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(bootstrap(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("r")}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 6}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	client, err := sarama.NewClient(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if first, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || first != 6 {
		t.Fatalf("log start %d %v, want 6", first, err)
	}
	// A group's committed offset, then the group through the admin calls.
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pom.MarkOffset(8, "")
	pom.Close()
	om.Close() // flushes the commit
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; !ok {
		t.Fatalf("group %s not listed: %v", group, groups)
	}
	described, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(described) != 1 || described[0].State != "Empty" {
		t.Fatalf("describe group: %+v %v", described, err)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if b := offsets.GetBlock(topic, 0); b == nil || b.Offset != 8 {
		t.Fatalf("committed offset %+v, want 8", b)
	}
}
