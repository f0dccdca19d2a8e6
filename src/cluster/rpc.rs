//! Frames on the controller listener: a 4-byte big-endian length, then one JSON message.
//! The quorum's own messages (openraft's AppendEntries, Vote, InstallSnapshot) and the
//! brokers' calls to the controller travel this way; the metadata plane carries little
//! traffic, and JSON keeps it readable in a capture.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame accepted: a metadata snapshot chunk or a large batch fits easily.
pub const MAX_FRAME: usize = 64 << 20;

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a {} byte controller message is too large", body.len())));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a controller frame of {len} bytes is over the {MAX_FRAME} limit")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &vec![1u32, 2, 3]).await.unwrap();
        assert_eq!(read_frame::<_, Vec<u32>>(&mut b).await.unwrap(), Some(vec![1, 2, 3]));
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        assert!(read_frame::<_, Vec<u32>>(&mut b).await.is_err(), "a 4 GB length is refused before allocating");
        drop(a);
        let (a, mut b) = tokio::io::duplex(16);
        drop(a);
        assert_eq!(read_frame::<_, Vec<u32>>(&mut b).await.unwrap(), None);
    }
}
