//! Streaming SHA-256 in constant memory: two 1 MiB buffers, each filled completely before its
//! hash update, whatever the size of the input; an optional size limit stops reading as soon
//! as the input is longer than declared.

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read (and hashed) per step.
pub const BUFFER: usize = 1 << 20;

/// A digest and the number of bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// 64 lowercase hex characters.
    pub sha256: String,
    pub size: u64,
}

/// A SHA-256 being computed over a stream, with the length so far.
#[derive(Default)]
pub struct Running {
    hasher: Sha256,
    size: u64,
}

impl Running {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Hashed {
        Hashed { sha256: hex::encode(self.hasher.finalize()), size: self.size }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("reading failed after {read} bytes: {source}")]
    Read { read: u64, source: std::io::Error },
    #[error("is larger than its declared size of {limit} bytes (read {read} bytes so far)")]
    TooLarge { limit: u64, read: u64 },
}

/// Hash everything `reader` yields; fails once more than `limit` bytes have been read.
///
/// Two buffers: while one full buffer is hashed, the next is being read (a file read runs on
/// tokio's blocking pool, a network body is driven by the connection task), so throughput is
/// that of the slower of the two instead of their sum.
pub async fn hash_async<R: AsyncRead + Unpin>(mut reader: R, limit: Option<u64>) -> Result<Hashed, HashError> {
    let mut hashed = Running::default();
    let mut current = vec![0u8; BUFFER];
    let mut next = vec![0u8; BUFFER];
    let mut total: u64 = 0;
    let mut filled = fill(&mut reader, &mut current, total).await?;
    loop {
        total += filled as u64;
        if let Some(limit) = limit.filter(|limit| total > *limit) {
            return Err(HashError::TooLarge { limit, read: total });
        }
        if filled < current.len() {
            hashed.update(&current[..filled]);
            return Ok(hashed.finish());
        }
        // The read is polled first, so it is in flight before the hashing runs.
        let (read, ()) = tokio::join!(fill(&mut reader, &mut next, total), async { hashed.update(&current[..]) });
        filled = read?;
        std::mem::swap(&mut current, &mut next);
    }
}

/// Read until `buffer` is full or the input ends; returns the bytes read.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buffer: &mut [u8], before: u64) -> Result<usize, HashError> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = reader
            .read(&mut buffer[filled..])
            .await
            .map_err(|source| HashError::Read { read: before + filled as u64, source })?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// The SHA-256 (lowercase hex) of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, like a network body.
    struct Dribble<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Dribble<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn matches_one_shot_digest_across_buffer_boundaries() {
        for len in [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 2 * BUFFER + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let got = block_on(hash_async(Dribble { data: &data, step: 7919 }, None)).unwrap();
            assert_eq!(got, Hashed { sha256: sha256_hex(&data), size: len as u64 }, "len {len}");
        }
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn limit() {
        let data = vec![7u8; 1000];
        assert!(block_on(hash_async(Dribble { data: &data, step: 100 }, Some(1000))).is_ok());
        let err = block_on(hash_async(Dribble { data: &data, step: 100 }, Some(999))).unwrap_err();
        assert!(matches!(err, HashError::TooLarge { limit: 999, read: 1000 }), "{err}");
    }
}
