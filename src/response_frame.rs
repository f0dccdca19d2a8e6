//! Response frames: a size prefix, the response header and body, where the body may carry
//! file ranges that go to the socket by `sendfile` instead of through a buffer.

use crate::storage::FileSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// One piece of a response on the wire.
pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

impl Chunk {
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response, size prefix included, ready for the connection writer.
pub struct ResponseFrame {
    pub chunks: Vec<Chunk>,
}

/// Encodes the response header for `api_key`/`version` into `buf`.
pub fn encode_header(buf: &mut BytesMut, api_key: ApiKey, version: i16, correlation_id: i32) -> anyhow::Result<()> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(buf, api_key.response_header_version(version))
}

/// Encodes a plain (all in memory) response with its size prefix.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> anyhow::Result<ResponseFrame> {
    let mut buf = BytesMut::with_capacity(64 + body.compute_size(version)?);
    buf.put_i32(0);
    encode_header(&mut buf, api_key, version, correlation_id)?;
    body.encode(&mut buf, version)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(ResponseFrame { chunks: vec![Chunk::Bytes(buf.freeze())] })
}
