//! One client connection: reads size-prefixed request frames, hands each to the API
//! handlers in arrival order, and a writer task sends the responses in the same order.
//!
//! Each completed request can be logged with where its time went, as Kafka's request
//! logger does: `FERRITE_LOG=ferrite::request=debug`.
//!
//! A frame is bounded by `socket.request.max.bytes` before any buffer is sized by it, and
//! its buffer grows only as bytes arrive. An undecodable frame closes this one connection
//! with one log line; every other connection carries on.

use crate::response_frame::ResponseFrame;
pub use crate::broker_state::ConnectionInfo;
use super::zero_copy::write_frame;
use crate::handlers::{self, Outcome};
use crate::server::connection_quotas::ConnectionSlot;
use crate::server::request_pool::{RequestPool, Reservation};
use crate::server::BrokerState;
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Responses queued for the writer before the reader stops reading more requests.
const PIPELINE_DEPTH: usize = 64;
/// Read granularity while a frame's bytes arrive.
const READ_CHUNK: usize = 64 * 1024;

/// Serves one connection until the client closes it, it breaks the protocol, it completes
/// no request for `connections.max.idle.ms`, or the broker stops. `_slot` holds its place
/// under the connection limits until then.
pub async fn serve(stream: TcpStream, info: ConnectionInfo, state: Arc<BrokerState>, cancel: CancellationToken, _slot: ConnectionSlot) {
    let _ = stream.set_nodelay(true);
    state.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let (mut reader, writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<(ResponseFrame, Timing)>(PIPELINE_DEPTH);
    let metrics = state.metrics.clone();
    let peer = info.peer;
    let write_task = tokio::spawn(async move {
        while let Some((frame, timing)) = rx.recv().await {
            let dequeued = Instant::now();
            if let Err(e) = write_frame(writer.as_ref(), &frame, &metrics).await {
                tracing::debug!(%peer, error = %e, "connection closed while writing");
                return;
            }
            timing.log(&peer, dequeued);
        }
    });
    let max = state.config.socket_request_max_bytes;
    let idle = std::time::Duration::from_millis(state.config.connections_max_idle_ms);
    loop {
        // Idle means no complete request: a client trickling a frame byte by byte is idle too.
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            f = tokio::time::timeout(idle, read_frame(&mut reader, max, &state.request_pool)) => match f {
                Ok(f) => f,
                Err(_) => {
                    tracing::debug!(%peer, idle_ms = idle.as_millis() as u64, "closing a connection idle for connections.max.idle.ms");
                    break;
                }
            },
        };
        let (frame, _room) = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(FrameError::Io(e)) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {
                // Clients often close with a reset: nothing to report.
                tracing::debug!(%peer, error = %e, "connection reset by the client");
                break;
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "closing connection");
                break;
            }
        };
        state.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let mut timing = Timing::start(&frame);
        match handlers::handle(&state, &info, frame).await {
            Outcome::Respond(resp) => {
                timing.handled = Instant::now();
                if tx.send((resp, timing)).await.is_err() {
                    break;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                tracing::info!(%peer, reason, "closing connection after an invalid request");
                break;
            }
        }
    }
    drop(tx);
    let _ = write_task.await;
}

/// Where one request's time went, for the request log.
struct Timing {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    received: Instant,
    /// The handler's answer was ready (a long-polling fetch includes its wait).
    handled: Instant,
}

impl Timing {
    fn start(frame: &[u8]) -> Self {
        // The request header starts with api key, version and correlation id; a frame too
        // short for them is refused by the handlers, and logged here as -1.
        let i16_at = |at: usize| frame.get(at..at + 2).map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
        let correlation_id = frame.get(4..8).map_or(-1, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let now = Instant::now();
        Timing {
            api_key: i16_at(0),
            api_version: i16_at(2),
            correlation_id,
            received: now,
            handled: now,
        }
    }

    /// Logs at debug under `ferrite::request`: handler time, time queued behind earlier
    /// responses of the connection, time writing it to the socket.
    fn log(&self, peer: &SocketAddr, dequeued: Instant) {
        let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        let sent = Instant::now();
        tracing::debug!(
            target: "ferrite::request",
            %peer,
            api_key = self.api_key,
            api_version = self.api_version,
            correlation_id = self.correlation_id,
            total_ms = ms(self.received, sent),
            local_ms = ms(self.received, self.handled),
            response_queue_ms = ms(self.handled, dequeued),
            send_ms = ms(dequeued, sent),
            "completed request"
        );
    }
}

#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("request size {0} is negative")]
    Negative(i32),
    #[error("request of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("connection ended in the middle of a request")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame, after taking room for it from the request pool (held until the
/// returned reservation is dropped, once the request is handled); `Ok(None)` on a clean end
/// of stream between frames.
async fn read_frame(reader: &mut OwnedReadHalf, max: usize, pool: &RequestPool) -> Result<Option<(BytesMut, Reservation)>, FrameError> {
    let mut size_buf = [0u8; 4];
    match reader.read_exact(&mut size_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = (&size_buf[..]).get_i32();
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let room = pool.reserve(size).await;
    // Sized once, now that the pool has room for it (large allocations are mapped lazily:
    // memory is committed only as bytes arrive); no reallocation while it fills.
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK);
        buf.reserve(want);
        let n = (&mut *reader).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some((buf, room)))
}

#[cfg(test)]
mod tests {
    use super::Timing;

    #[test]
    fn timing_reads_the_request_header() {
        // Produce v9, correlation id 0x01020304, then the rest of a header.
        let t = Timing::start(&[0, 0, 0, 9, 1, 2, 3, 4, 0xff, 0xff]);
        assert_eq!((t.api_key, t.api_version, t.correlation_id), (0, 9, 0x0102_0304));
        // Negative fields stay negative; a truncated header gives -1.
        let t = Timing::start(&[0xff, 0xfe, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!((t.api_key, t.api_version, t.correlation_id), (-2, 1, -1));
        let t = Timing::start(&[0, 18, 0]);
        assert_eq!((t.api_key, t.api_version, t.correlation_id), (18, -1, -1));
    }
}
