// Sarama (Debian's golang-github-shopify-sarama-dev, pure Go, its own protocol code)
// against the broker at $FERRITE_BOOTSTRAP: admin, produce/consume with every codec, and
// a consumer group with commits.
package ferritecompat

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/sarama"
)

func bootstrap(t *testing.T) []string {
	b := os.Getenv("FERRITE_BOOTSTRAP")
	if b == "" {
		t.Fatal("FERRITE_BOOTSTRAP is not set")
	}
	return []string{b}
}

// nodes is how many brokers stand behind the bootstrap address (FERRITE_NODES, default 1:
// a lone node, whose id is 0).
func nodes() int {
	if n, err := strconv.Atoi(os.Getenv("FERRITE_NODES")); err == nil && n > 0 {
		return n
	}
	return 1
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// With a retention set Sarama commits with OffsetCommit v2; without, it uses v1,
	// which Kafka 4 (KIP-896) and Ferrite no longer serve.
	c.Consumer.Offsets.Retention = 24 * time.Hour
	return c
}

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

func TestSaramaAdminAndCodecs(t *testing.T) {
	admin, err := sarama.NewClusterAdmin(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
	for name, codec := range codecs {
		topic := unique("sarama-" + name)
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("%s: create topic: %v", name, err)
		}
		cfg := saramaConfig()
		cfg.Producer.Compression = codec
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer(bootstrap(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			msg := &sarama.ProducerMessage{Topic: topic, Partition: 1, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)),
				Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)), Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("x")}}}
			if part, offset, err := p.SendMessage(msg); err != nil || part != 1 || offset != int64(i) {
				t.Fatalf("%s: send %d: partition %d offset %d: %v", name, i, part, offset, err)
			}
		}
		p.Close()
		c, err := sarama.NewConsumer(bootstrap(t), saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		pc, err := c.ConsumePartition(topic, 1, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			select {
			case m := <-pc.Messages():
				if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) ||
					len(m.Headers) != 1 || string(m.Headers[0].Value) != "x" {
					t.Fatalf("%s: record %d is %d %q=%q", name, i, m.Offset, m.Key, m.Value)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s: timed out after %d records", name, i)
			}
		}
		pc.Close()
		c.Close()
	}
	// (ListTopics and DescribeConfig speak DescribeConfigs v0, which Kafka 4 removed (KIP-896).)
	topic := unique("sarama-admin")
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreatePartitions(topic, 4, nil, false); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	meta, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(meta) != 1 || len(meta[0].Partitions) != 4 {
		t.Fatalf("describe topics: %v %v", meta, err)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
}

type handler struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.seen[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = true
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func TestSaramaConsumerGroup(t *testing.T) {
	topic, group := unique("sarama-group"), unique("sarama-g")
	admin, err := sarama.NewClusterAdmin(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(bootstrap(t), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	cfg := saramaConfig()
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup(bootstrap(t), group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{seen: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				t.Logf("consume: %v", err)
			}
		}
	}()
	for ctx.Err() == nil {
		h.mu.Lock()
		n := len(h.seen)
		h.mu.Unlock()
		if n >= 60 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // one commit interval
	cancel()
	cg.Close()
	if len(h.seen) != 60 {
		t.Fatalf("%d records consumed, want 60", len(h.seen))
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range offsets.Blocks[topic] {
		sum += b.Offset
	}
	if sum != 60 {
		t.Fatalf("committed offsets sum to %d, want 60", sum)
	}
}
