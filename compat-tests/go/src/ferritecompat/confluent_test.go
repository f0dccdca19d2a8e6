// confluent-kafka-go (Debian's golang-github-confluentinc-confluent-kafka-go-dev, cgo over
// Debian's librdkafka 2.0.2) against the broker at $FERRITE_BOOTSTRAP: produce with
// headers, and a subscribed consumer group that commits.
package ferritecompat

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func TestConfluentProduceConsumeGroup(t *testing.T) {
	bs := bootstrap(t)[0]
	topic, group := unique("ckg"), unique("ckg-group")
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bs, "compression.codec": "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	delivered := make(chan kafka.Event, 100)
	for i := 0; i < 50; i++ {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Headers:        []kafka.Header{{Key: "h", Value: []byte("x")}},
		}, delivered)
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		m := (<-delivered).(*kafka.Message)
		if m.TopicPartition.Error != nil {
			t.Fatalf("delivery: %v", m.TopicPartition.Error)
		}
	}
	p.Close()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bs, "group.id": group,
		"enable.auto.commit": false, "default.topic.config": kafka.ConfigMap{"auto.offset.reset": "earliest"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < 50 && time.Now().Before(deadline) {
		m, err := c.ReadMessage(200 * time.Millisecond)
		if err != nil {
			continue
		}
		if len(m.Headers) != 1 || string(m.Headers[0].Value) != "x" {
			t.Fatalf("headers lost: %v", m.Headers)
		}
		seen[string(m.Key)] = true
		if _, err := c.CommitMessage(m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if len(seen) != 50 {
		t.Fatalf("%d distinct records, want 50", len(seen))
	}
	committed, err := c.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: 0}}, 10000)
	if err != nil || len(committed) != 1 || committed[0].Offset != 50 {
		t.Fatalf("committed %v: %v", committed, err)
	}
}
