//! Message size limits enforced on the wire, for every service the server mounts.
//!
//! Generated tonic servers have their own limits (4 MiB decoding by default, unlimited
//! encoding) that only their builder can change, and `serve` receives them already built. So
//! the bootstrap reads the gRPC framing itself (a flag byte and a big-endian u32 length before
//! every message) and refuses a message whose announced length passes
//! `grpc.max_message_bytes` before any of it is buffered. Services should still set the same
//! limit on their generated server, or tonic's 4 MiB decoding default stays the lower bound.
//! The length of a compressed message is its compressed size.
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// Follows the gRPC length-prefixed framing across arbitrarily split chunks.
#[derive(Debug)]
pub(crate) struct FrameLimit {
    limit: usize,
    header: [u8; 5],
    have: usize,
    /// Payload bytes of the current message still to come.
    remaining: usize,
}

impl FrameLimit {
    pub(crate) fn new(limit: usize) -> FrameLimit {
        FrameLimit {
            limit,
            header: [0; 5],
            have: 0,
            remaining: 0,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Consumes a chunk; `Err(length)` for the first message longer than the limit.
    pub(crate) fn check(&mut self, mut data: &[u8]) -> Result<(), usize> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                if len > self.limit {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

/// A request body that fails with RESOURCE_EXHAUSTED at the first oversized message; tonic's
/// decoder hands that status to the handler's stream (or answers it for a unary call).
pub(crate) struct LimitedBody {
    inner: Body,
    frames: FrameLimit,
    failed: bool,
}

impl LimitedBody {
    pub(crate) fn new(inner: Body, limit: usize) -> LimitedBody {
        LimitedBody {
            inner,
            frames: FrameLimit::new(limit),
            failed: false,
        }
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
            && let Err(len) = this.frames.check(data)
        {
            this.failed = true;
            // Stop reading the client's stream; what it still sends is discarded by h2.
            this.inner = Body::empty();
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "request message of {len} bytes is larger than the limit of {} bytes",
                this.frames.limit()
            )))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&(len as u32).to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len));
        m
    }

    #[test]
    fn messages_within_the_limit_pass_however_split() {
        let mut wire = message(10);
        wire.extend(message(0));
        wire.extend(message(100));
        for chunk in [1, 2, 3, 5, 7, 64, wire.len()] {
            let mut limit = FrameLimit::new(100);
            for part in wire.chunks(chunk) {
                assert_eq!(limit.check(part), Ok(()), "chunk size {chunk}");
            }
        }
    }

    #[test]
    fn an_oversized_message_is_caught_at_its_header() {
        let mut wire = message(3);
        wire.extend(message(101));
        for chunk in [1, 4, 6, wire.len()] {
            let mut limit = FrameLimit::new(100);
            let result: Result<Vec<()>, usize> =
                wire.chunks(chunk).map(|p| limit.check(p)).collect();
            assert_eq!(result, Err(101), "chunk size {chunk}");
        }
    }
}
