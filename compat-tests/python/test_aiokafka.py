"""aiokafka (asyncio, its own protocol code): every codec round trip with keys, headers
and timestamps, the idempotent producer, a consumer group with commits, and its admin
client's topic and group calls, and transactions with read_committed."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

AIO = "aiokafka 0.14"
NOT_OFFERED = {
    AIO: {
        "groups.kip848": "aiokafka 0.14 speaks only the classic group protocol",
        "admin.log_dirs": "aiokafka 0.14's admin client has no DescribeLogDirs",
        "admin.transactions": "aiokafka 0.14 has no DescribeTransactions/ListTransactions",
    }
}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_topic(bs, name, partitions):
    admin = AIOKafkaAdminClient(bootstrap_servers=bs)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


@pytest.mark.capability(AIO, "round_trip", "codecs", "idempotence")
@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_round_trip(broker, codec):
    async def run():
        bs = broker["bootstrap"]
        topic = unique("aio")
        await make_topic(bs, topic, 1)
        p = AIOKafkaProducer(bootstrap_servers=bs, compression_type=codec, enable_idempotence=True)
        await p.start()
        try:
            for i in range(50):
                await p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0,
                             timestamp_ms=1_700_000_000_000 + i, headers=[("h", b"x%d" % i)])
            await p.flush()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=bs, auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            c.assign([TopicPartition(topic, 0)])
            got = []
            while len(got) < 50:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 30)
                for msgs in batch.values():
                    got.extend(msgs)
        finally:
            await c.stop()
        for i, m in enumerate(got):
            assert (m.offset, m.key, m.value, m.timestamp) == (i, b"k%d" % i, b"v%d" % i, 1_700_000_000_000 + i)
            assert list(m.headers) == [("h", b"x%d" % i)]
    asyncio.run(run())


@pytest.mark.capability(AIO, "groups", "admin.groups", "admin.topics")
def test_group_commits_and_admin(broker):
    async def run():
        bs = broker["bootstrap"]
        topic, group = unique("aio-g"), unique("aio-group")
        await make_topic(bs, topic, 2)
        p = AIOKafkaProducer(bootstrap_servers=bs)
        await p.start()
        for i in range(40):
            await p.send(topic, value=b"%d" % i, partition=i % 2)
        await p.stop()
        c = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
        await c.start()
        seen = set()
        try:
            while len(seen) < 40:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 60)
                for msgs in batch.values():
                    seen.update((m.partition, m.offset) for m in msgs)
                await c.commit()
            committed = [await c.committed(TopicPartition(topic, p)) for p in range(2)]
            assert committed == [20, 20]
        finally:
            await c.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bs)
        await admin.start()
        try:
            groups = [g[0] for g in await admin.list_consumer_groups()]
            assert group in groups
            offsets = await admin.list_consumer_group_offsets(group)
            assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 20, 1: 20}
            described = await admin.describe_consumer_groups([group])
            assert described
        finally:
            await admin.close()
    asyncio.run(run())


@pytest.mark.capability(AIO, "transactions")
def test_transactions_and_read_committed(broker):
    async def run():
        bs = broker["bootstrap"]
        topic, group = unique("aio-txn"), unique("aio-txn-g")
        await make_topic(bs, topic, 1)
        p = AIOKafkaProducer(bootstrap_servers=bs, transactional_id=unique("aio-tx"))
        await p.start()
        try:
            async with p.transaction():
                for i in range(20):
                    await p.send(topic, value=b"committed-%d" % i, partition=0)
                await p.send_offsets_to_transaction({TopicPartition(topic, 0): 5}, group)
            await p.begin_transaction()
            for i in range(10):
                await p.send_and_wait(topic, value=b"aborted-%d" % i, partition=0)
            await p.abort_transaction()
        finally:
            await p.stop()

        async def read(isolation):
            c = AIOKafkaConsumer(bootstrap_servers=bs, isolation_level=isolation, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
            await c.start()
            try:
                c.assign([TopicPartition(topic, 0)])
                await c.seek_to_beginning()
                out = []
                while True:
                    batch = await c.getmany(timeout_ms=1500)
                    if not batch:
                        return out
                    for msgs in batch.values():
                        out.extend(m.value for m in msgs)
            finally:
                await c.stop()

        assert await read("read_committed") == [b"committed-%d" % i for i in range(20)]
        assert len(await read("read_uncommitted")) == 30
        c = AIOKafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            assert await c.committed(TopicPartition(topic, 0)) == 5
        finally:
            await c.stop()

    asyncio.run(run())


@pytest.mark.capability(AIO, "partitions", "by_time")
def test_many_partitions_and_offsets_by_time(broker):
    async def run():
        bs = broker["bootstrap"]
        topic = unique("aio-many")
        await make_topic(bs, topic, 32)
        p = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5)
        await p.start()
        try:
            for i in range(3200):
                await p.send(topic, value=b"%d" % i, partition=i % 32, timestamp_ms=10_000 + i)
            await p.flush()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            tps = [TopicPartition(topic, i) for i in range(32)]
            c.assign(tps)
            await c.seek_to_beginning()
            seen = set()
            while len(seen) < 3200:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 30)
                for msgs in batch.values():
                    seen.update((m.partition, m.offset) for m in msgs)
            assert {part for part, _ in seen} == set(range(32))
            found = await c.offsets_for_times({TopicPartition(topic, 5): 10_100})
            assert found[TopicPartition(topic, 5)].offset == 3
        finally:
            await c.stop()
    asyncio.run(run())


@pytest.mark.capability(AIO, "admin.configs", "admin.cluster", "admin.delete_records", "admin.topics")
def test_admin_configs_cluster_and_records(broker):
    async def run():
        bs = broker["bootstrap"]
        topic = unique("aio-admin")
        admin = AIOKafkaAdminClient(bootstrap_servers=bs)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                                topic_configs={"retention.ms": "3600000"})])
            await admin.create_partitions({topic: NewPartitions(total_count=3)})
            described = await admin.describe_topics([topic])
            assert len(described[0]["partitions"]) == 3
            res = ConfigResource(ConfigResourceType.TOPIC, topic)
            [resp] = await admin.describe_configs([res])
            configs = {e[0]: e[1] for e in resp.resources[0][4]}
            assert configs["retention.ms"] == "3600000"
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "60000"})])
            [resp] = await admin.describe_configs([res])
            assert {e[0]: e[1] for e in resp.resources[0][4]}["retention.ms"] == "60000"
            cluster = await admin.describe_cluster()
            assert [b["node_id"] for b in cluster["brokers"]] == [0] and cluster["controller_id"] == 0
            p = AIOKafkaProducer(bootstrap_servers=bs)
            await p.start()
            for _ in range(10):
                await p.send(topic, value=b"r", partition=0)
            await p.stop()
            deleted = await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(before_offset=4)})
            assert deleted[TopicPartition(topic, 0)] == 4
            await admin.delete_topics([topic])
            assert topic not in await admin.list_topics()
        finally:
            await admin.close()
    asyncio.run(run())
