//! Topic-level `compression.type`: when a topic names a codec (not `producer`), batches
//! that arrive with another codec are re-encoded with the topic's, as Kafka's
//! LogValidator does. This is the produce path's only re-encoding, and it happens only
//! when an operator asks for it; with the default (`producer`) batches are stored as sent.

use super::batch::{validate_produced, BatchError, BatchHeader};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

/// Re-encodes `batch` with `codec` when it uses another; `None` when it already matches.
/// The records, their offsets deltas, timestamps, headers, and the batch's producer id,
/// epoch, base sequence and transactional flag are kept.
pub fn recompress(batch: &[u8], h: &BatchHeader, codec: Compression) -> Result<Option<(Vec<u8>, BatchHeader)>, BatchError> {
    if h.compression() == codec as i16 {
        return Ok(None);
    }
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).map_err(|_| BatchError::Invalid("the records cannot be read"))?;
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(&mut out, set.records.iter(), &RecordEncodeOptions { version: 2, compression: codec })
        .map_err(|_| BatchError::Invalid("the records cannot be re-encoded"))?;
    let out = out.to_vec();
    let header = validate_produced(&out, usize::MAX)?;
    if header.size != out.len() || header.record_count != h.record_count {
        return Err(BatchError::Invalid("the records do not re-encode as one batch"));
    }
    Ok(Some((out, header)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::test_support::batch;

    #[test]
    fn batches_take_the_topic_codec_and_keep_their_records() {
        let b = batch(&[b"alpha", b"beta", b"gamma"], 1_000);
        let h = validate_produced(&b, usize::MAX).unwrap();
        assert!(recompress(&b, &h, Compression::None).unwrap().is_none(), "already uncompressed");
        let (z, zh) = recompress(&b, &h, Compression::Zstd).unwrap().unwrap();
        assert_eq!((zh.compression(), zh.record_count, zh.max_timestamp), (4, 3, 1_002));
        let mut back = Bytes::from(z);
        let set = RecordBatchDecoder::decode(&mut back).unwrap();
        let values: Vec<_> = set.records.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, vec![Bytes::from_static(b"alpha"), Bytes::from_static(b"beta"), Bytes::from_static(b"gamma")]);
        use crate::config::log_config::topic_codec;
        assert_eq!(topic_codec("producer").unwrap(), None);
        assert!(topic_codec("brotli").is_err());
    }
}
