//! One Kafka request from this broker to another over the inter-broker listener, on a
//! connection of its own: what the transaction marker channel and the admin propagation
//! wait send. Calls are rare and small, so no pooling; a frame larger than `max_response`
//! is refused rather than allocated.

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `req` as `api` at `version` to `addr` and decodes the answer.
pub async fn call<Req: Encodable, Resp: Decodable>(
    addr: &str,
    api: ApiKey,
    version: i16,
    client_id: &'static str,
    req: &Req,
    max_response: usize,
) -> io::Result<Resp> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    header.encode(&mut buf, api.request_header_version(version)).map_err(io::Error::other)?;
    req.encode(&mut buf, version).map_err(io::Error::other)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&buf).await?;
    let len = s.read_i32().await?;
    if len < 0 || len as usize > max_response {
        return Err(io::Error::other(format!("a {api:?} answer of {len} bytes from {addr}")));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await?;
    let mut body = bytes::Bytes::from(body);
    let head = ResponseHeader::decode(&mut body, api.response_header_version(version)).map_err(io::Error::other)?;
    if head.correlation_id != 1 {
        return Err(io::Error::other(format!("{addr} answered correlation id {}", head.correlation_id)));
    }
    let resp = Resp::decode(&mut body, version).map_err(io::Error::other)?;
    if body.has_remaining() {
        return Err(io::Error::other(format!("{} bytes after a {api:?} answer from {addr}", body.remaining())));
    }
    Ok(resp)
}
