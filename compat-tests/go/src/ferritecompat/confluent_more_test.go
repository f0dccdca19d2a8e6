// confluent-kafka-go: every codec with the idempotent producer over many partitions,
// offsets by time, and its AdminClient's topic and config calls.
package ferritecompat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func TestConfluentCodecsPartitionsByTime(t *testing.T) {
	bs := bootstrap(t)[0]
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bs})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		topic := unique("ckg-" + codec)
		res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 16, ReplicationFactor: 1}})
		if err != nil || res[0].Error.Code() != kafka.ErrNoError {
			t.Fatalf("%s: create: %v %v", codec, res, err)
		}
		p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bs, "compression.codec": codec, "enable.idempotence": true})
		if err != nil {
			t.Fatal(err)
		}
		delivered := make(chan kafka.Event, 1600)
		base := time.Unix(1_700_000_000, 0)
		for i := 0; i < 1600; i++ {
			err := p.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 16)},
				Key:            []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
				Timestamp:      base.Add(time.Duration(i) * time.Millisecond),
			}, delivered)
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 1600; i++ {
			if m := (<-delivered).(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("%s: delivery: %v", codec, m.TopicPartition.Error)
			}
		}
		p.Close()
		c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bs, "group.id": unique("ckg-reader")})
		if err != nil {
			t.Fatal(err)
		}
		var tps []kafka.TopicPartition
		for part := int32(0); part < 16; part++ {
			tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: part, Offset: kafka.OffsetBeginning})
		}
		if err := c.Assign(tps); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		deadline := time.Now().Add(30 * time.Second)
		for len(seen) < 1600 && time.Now().Before(deadline) {
			if m, err := c.ReadMessage(200 * time.Millisecond); err == nil {
				if want := fmt.Sprintf("v%s", string(m.Key[1:])); string(m.Value) != want {
					t.Fatalf("%s: %s=%s", codec, m.Key, m.Value)
				}
				seen[string(m.Key)] = true
			}
		}
		if len(seen) != 1600 {
			t.Fatalf("%s: %d distinct records, want 1600", codec, len(seen))
		}
		// Partition 3 holds ms 3, 19, 35, ...: the first at or after ms 100 is offset 7.
		at := base.Add(100*time.Millisecond).UnixNano() / int64(time.Millisecond)
		found, err := c.OffsetsForTimes([]kafka.TopicPartition{{Topic: &topic, Partition: 3, Offset: kafka.Offset(at)}}, 10000)
		if err != nil || found[0].Offset != 7 {
			t.Fatalf("%s: offsets for times: %v %v", codec, found, err)
		}
		c.Close()
	}
}

func TestConfluentAdminTopicsAndConfigs(t *testing.T) {
	bs := bootstrap(t)[0]
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bs})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := unique("ckg-admin")
	spec := kafka.TopicSpecification{Topic: topic, NumPartitions: 2, ReplicationFactor: 1, Config: map[string]string{"retention.ms": "3600000"}}
	if res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{spec}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("create: %v %v", res, err)
	}
	if res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: 5}}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("create partitions: %v %v", res, err)
	}
	md, err := admin.GetMetadata(&topic, false, 10000)
	if err != nil || len(md.Topics[topic].Partitions) != 5 {
		t.Fatalf("metadata: %v %v", md, err)
	}
	resource := kafka.ConfigResource{Type: kafka.ResourceTopic, Name: topic}
	described, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{resource})
	if err != nil || described[0].Config["retention.ms"].Value != "3600000" {
		t.Fatalf("describe configs: %v %v", described, err)
	}
	alter := kafka.ConfigResource{Type: kafka.ResourceTopic, Name: topic,
		Config: []kafka.ConfigEntry{{Name: "retention.ms", Value: "120000", Operation: kafka.AlterOperationSet}}}
	if res, err := admin.AlterConfigs(ctx, []kafka.ConfigResource{alter}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("alter configs: %v %v", res, err)
	}
	described, err = admin.DescribeConfigs(ctx, []kafka.ConfigResource{resource})
	if err != nil || described[0].Config["retention.ms"].Value != "120000" {
		t.Fatalf("altered config: %v %v", described, err)
	}
	if res, err := admin.DeleteTopics(ctx, []string{topic}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("delete: %v %v", res, err)
	}
}
