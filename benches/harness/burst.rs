//! Hands librdkafka a burst of records in one call (`rd_kafka_produce_batch`).
//!
//! The latency runs offer records at a fixed rate: every millisecond, the records that fell
//! due. Through the crate's `send` each record takes the producer's queue lock, reads the
//! clock and allocates on its own, and a loop that sleeps "until the next record is due"
//! wakes every ~60 µs (the shortest sleep) with a few dozen records: 10,000 small produce
//! requests a second, half a core of this machine's two away from the broker and the
//! consumer being measured. One `rd_kafka_produce_batch` per millisecond enqueues the same
//! records with one call, as an application that hands its client a batch does.

use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer};
use std::ffi::CString;
use std::time::Duration;

/// One topic-partition of `producer`, to which bursts of identical records go.
pub struct BurstProducer<'p> {
    producer: &'p BaseProducer,
    topic: *mut rd::rd_kafka_topic_t,
    partition: i32,
}

impl<'p> BurstProducer<'p> {
    pub fn new(producer: &'p BaseProducer, topic: &str, partition: i32) -> Self {
        let name = CString::new(topic).expect("a topic name without NUL");
        // SAFETY: a live producer handle and a NUL-terminated name; librdkafka copies the
        // name, and a null configuration means the producer's defaults.
        let topic = unsafe { rd::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), std::ptr::null_mut()) };
        assert!(!topic.is_null(), "rd_kafka_topic_new failed for {name:?}");
        BurstProducer { producer, topic, partition }
    }

    /// Enqueues `count` records carrying `payload`, waiting out a full local queue by
    /// serving delivery reports.
    pub fn send(&self, payload: &[u8], count: usize) {
        let mut pending = count;
        while pending > 0 {
            let mut msgs: Vec<rd::rd_kafka_message_t> = (0..pending).map(|_| message(payload)).collect();
            // SAFETY: every message points at `payload`, which outlives the call, and
            // RD_KAFKA_MSG_F_COPY makes librdkafka copy it into each record before it returns.
            unsafe {
                rd::rd_kafka_produce_batch(self.topic, self.partition, rd::RD_KAFKA_MSG_F_COPY, msgs.as_mut_ptr(), msgs.len() as i32);
            }
            let ok = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
            let full = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__QUEUE_FULL;
            assert!(msgs.iter().all(|m| m.err == ok || m.err == full), "librdkafka refused a record for another reason than a full queue");
            pending = msgs.iter().filter(|m| m.err == full).count();
            if pending > 0 {
                self.producer.poll(Duration::from_millis(1));
            }
        }
    }
}

fn message(payload: &[u8]) -> rd::rd_kafka_message_t {
    rd::rd_kafka_message_t {
        err: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        rkt: std::ptr::null_mut(),
        partition: 0,
        payload: payload.as_ptr() as *mut _,
        len: payload.len(),
        key: std::ptr::null_mut(),
        key_len: 0,
        offset: 0,
        _private: std::ptr::null_mut(),
    }
}

impl Drop for BurstProducer<'_> {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_topic_new above; records still in flight hold their
        // own reference to the topic.
        unsafe { rd::rd_kafka_topic_destroy(self.topic) }
    }
}
