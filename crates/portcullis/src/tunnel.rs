//! Upgraded connections (WebSocket and the like), copied both ways.
//!
//! `tokio::io::copy_bidirectional` gives each direction its own 8 KiB
//! buffer for the tunnel's whole life, 16 KiB per WebSocket even while it
//! is silent, which most are most of the time. [`Tunnel`] reads into one
//! scratch buffer per worker thread and writes straight on; only bytes the
//! other side cannot take yet are kept, in a buffer of their size, freed
//! once written. A quiet tunnel holds no buffer at all.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one read takes: a WebSocket frame of usual size at once.
const SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// Copies `A` to `B` and `B` to `A` until both have ended (each end passed
/// on as a shutdown of the other's write side) or either fails.
pub struct Tunnel<A, B> {
    a: A,
    b: B,
    a_to_b: Direction,
    b_to_a: Direction,
}

impl<A, B> Tunnel<A, B> {
    pub fn new(a: A, b: B) -> Self {
        Self {
            a,
            b,
            a_to_b: Direction::default(),
            b_to_a: Direction::default(),
        }
    }
}

#[derive(Default)]
struct Direction {
    /// Read but not yet taken by the writer.
    waiting: Vec<u8>,
    /// Written since the writer was last flushed.
    unflushed: bool,
    /// The reader ended: shut the writer down, then this direction is done.
    ended: bool,
    done: bool,
}

impl Direction {
    fn poll_copy<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if !self.waiting.is_empty() {
                let written = ready!(Pin::new(&mut *to).poll_write(cx, &self.waiting))?;
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.waiting.drain(..written);
                if self.waiting.is_empty() {
                    self.waiting = Vec::new();
                }
                continue;
            }
            if self.unflushed {
                ready!(Pin::new(&mut *to).poll_flush(cx))?;
                self.unflushed = false;
            }
            if self.ended {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
                continue;
            }
            match ready!(self.poll_pass_on(cx, from, to))? {
                0 => self.ended = true,
                _ => self.unflushed = true,
            }
        }
    }

    /// One read into the scratch buffer, written on as far as the writer
    /// takes it now; the rest waits here. The number of bytes read.
    fn poll_pass_on<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> Poll<io::Result<usize>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut *from).poll_read(cx, &mut read))?;
            let data = read.filled();
            let mut written = 0;
            while written < data.len() {
                match Pin::new(&mut *to).poll_write(cx, &data[written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => break,
                }
            }
            self.waiting.extend_from_slice(&data[written..]);
            Poll::Ready(Ok(data.len()))
        })
    }
}

impl<A, B> Future for Tunnel<A, B>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let forth = this.a_to_b.poll_copy(cx, &mut this.a, &mut this.b)?;
        let back = this.b_to_a.poll_copy(cx, &mut this.b, &mut this.a)?;
        if forth.is_ready() && back.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes that show any loss, repeat or reordering.
    fn numbered(length: usize, seed: u8) -> Vec<u8> {
        (0..length).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[tokio::test]
    async fn both_ways_through_narrow_pipes_nothing_is_lost_and_ends_pass_on() {
        // 64-byte pipes: almost every write is partial or waits.
        let (client, client_side) = tokio::io::duplex(64);
        let (upstream_side, upstream) = tokio::io::duplex(64);
        let tunnel = tokio::spawn(Tunnel::new(client_side, upstream_side));
        let up = numbered(200_000, 0x5a);
        let down = numbered(150_000, 0xa5);
        let (sent_up, sent_down) = (up.clone(), down.clone());
        let client_task = tokio::spawn(async move {
            let (mut reader, mut writer) = tokio::io::split(client);
            let writing = async {
                writer.write_all(&sent_up).await.unwrap();
                writer.shutdown().await.unwrap();
            };
            let mut received = Vec::new();
            let reading = reader.read_to_end(&mut received);
            let ((), read) = tokio::join!(writing, reading);
            read.unwrap();
            received
        });
        let (mut reader, mut writer) = tokio::io::split(upstream);
        let writing = async {
            writer.write_all(&sent_down).await.unwrap();
            writer.shutdown().await.unwrap();
        };
        let mut received = Vec::new();
        let ((), read) = tokio::join!(writing, reader.read_to_end(&mut received));
        read.unwrap();
        assert!(
            received == up,
            "upstream got {} of {} bytes, or others",
            received.len(),
            up.len()
        );
        let at_client = client_task.await.unwrap();
        assert!(
            at_client == down,
            "client got {} of {} bytes, or others",
            at_client.len(),
            down.len()
        );
        tunnel.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_quiet_tunnel_keeps_no_bytes() {
        let (mut client, client_side) = tokio::io::duplex(1024);
        let (upstream_side, mut upstream) = tokio::io::duplex(1024);
        let mut tunnel = Tunnel::new(client_side, upstream_side);
        client.write_all(b"hello").await.unwrap();
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut tunnel).poll(cx))).await;
        assert!(polled.is_pending());
        let mut hello = [0u8; 5];
        upstream.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        assert_eq!(tunnel.a_to_b.waiting.capacity(), 0);
        assert_eq!(tunnel.b_to_a.waiting.capacity(), 0);
    }
}
