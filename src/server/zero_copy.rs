//! Writes a response frame to a socket: runs of in-memory bytes with one vectored write,
//! record file ranges with `sendfile`, so record data never passes through the process.

use crate::response_frame::{Chunk, ResponseFrame};
use crate::metrics::Metrics;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use tokio::io::Interest;
use tokio::net::TcpStream;

pub async fn write_frame(stream: &TcpStream, frame: &ResponseFrame, metrics: &Metrics) -> io::Result<()> {
    let mut i = 0;
    while i < frame.chunks.len() {
        match &frame.chunks[i] {
            Chunk::Bytes(_) => {
                let start = i;
                while i < frame.chunks.len() && matches!(frame.chunks[i], Chunk::Bytes(_)) {
                    i += 1;
                }
                let mut slices: Vec<IoSlice<'_>> = frame.chunks[start..i]
                    .iter()
                    .map(|c| match c {
                        Chunk::Bytes(b) => IoSlice::new(b),
                        Chunk::File(_) => unreachable!(),
                    })
                    .collect();
                write_all_vectored(stream, &mut slices).await?;
            }
            Chunk::File(slice) => {
                send_file(stream, slice.file.as_fd(), slice.position, slice.len).await?;
                metrics.sendfile_bytes.fetch_add(slice.len, Ordering::Relaxed);
                i += 1;
            }
        }
    }
    Ok(())
}

async fn write_all_vectored(stream: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        stream.writable().await?;
        match stream.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn send_file(stream: &TcpStream, file: std::os::fd::BorrowedFd<'_>, position: u64, len: u64) -> io::Result<()> {
    let mut offset = position as i64;
    let end = position + len;
    while (offset as u64) < end {
        stream.writable().await?;
        let remaining = (end - offset as u64) as usize;
        let res = stream.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile64(stream.as_fd(), file, Some(&mut offset), remaining).map_err(io::Error::from)
        });
        match res {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment file ended before the promised range"))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
