//! Bounded reading of response bodies: **memory stays bounded whatever a server sends**.

use bytes::{Bytes, BytesMut};

/// A body that went past its bound; what was read is dropped.
#[derive(Debug)]
pub(crate) struct TooLarge;

/// Reads the whole body, or fails with [`TooLarge`] as soon as it is known to exceed `limit`
/// bytes: from its `Content-Length` before anything is read, or from the bytes received.
/// Transport errors pass through. The response is borrowed, so that its URL stays at hand for
/// an error message; a body that comes in one chunk is kept as it came, without a copy.
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<std::result::Result<Bytes, TooLarge>, reqwest::Error> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit as u64) {
        return Ok(Err(TooLarge));
    }
    // One value across the reads rather than one per stage: the future stays small.
    let mut read = Read::Nothing;
    let mut held = 0_usize;
    while let Some(chunk) = response.chunk().await? {
        held = held.saturating_add(chunk.len());
        if held > limit {
            return Ok(Err(TooLarge));
        }
        read = match read {
            Read::Nothing => Read::One(chunk),
            Read::One(first) => {
                let expected = announced.map_or(0, |n| n as usize);
                let mut body = BytesMut::with_capacity(expected.max(held));
                body.extend_from_slice(&first);
                body.extend_from_slice(&chunk);
                Read::Many(body)
            }
            Read::Many(mut body) => {
                body.extend_from_slice(&chunk);
                Read::Many(body)
            }
        };
    }
    Ok(Ok(match read {
        Read::Nothing => Bytes::new(),
        Read::One(chunk) => chunk,
        Read::Many(body) => body.freeze(),
    }))
}

/// What [`read_bounded`] has read so far.
enum Read {
    Nothing,
    /// A single chunk, kept as it came.
    One(Bytes),
    /// Several chunks, copied together.
    Many(BytesMut),
}

/// Reads at most `limit` bytes of the body, for error reports; a body that fails half-way
/// keeps what arrived.
pub(crate) async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}
