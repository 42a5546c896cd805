//! Parallel gzip with bounded memory: the stream is cut into fixed-size chunks, each compressed on its own core as
//! an independent gzip member, and the members are written in order. Multi-member gzip is standard (RFC 1952) and
//! read by every OCI runtime and tool (Go's, zlib's and Rust's gzip readers all read multi-member streams).

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use rayon::prelude::*;

/// Uncompressed bytes per gzip member.
const CHUNK: usize = 1 << 20;

/// A writer that gzips what it receives into `inner`, `batch` chunks at a time in parallel.
/// Memory use is about `batch * CHUNK * 2`, whatever the stream's length.
#[derive(Debug)]
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    batch: usize,
    pending: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(inner: W, level: u32) -> Self {
        let batch = rayon::current_num_threads().max(1) * 2;
        Self {
            inner,
            level,
            batch,
            pending: Vec::with_capacity(batch),
            current: Vec::with_capacity(CHUNK),
        }
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let level = Compression::new(self.level);
        let members: Vec<io::Result<Vec<u8>>> = self
            .pending
            .par_iter()
            .map(|chunk| {
                let mut enc = GzEncoder::new(Vec::with_capacity(chunk.len() / 2), level);
                enc.write_all(chunk)?;
                enc.finish()
            })
            .collect();
        for m in members {
            self.inner.write_all(&m?)?;
        }
        // Reuse the chunk buffers for the next batch.
        for mut c in self.pending.drain(..) {
            c.clear();
        }
        Ok(())
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() || self.pending.is_empty() {
            let last = std::mem::take(&mut self.current);
            self.pending.push(last);
        }
        self.flush_batch()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let room = CHUNK - self.current.len();
            let n = room.min(buf.len());
            self.current.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.current.len() == CHUNK {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
                self.pending.push(full);
                if self.pending.len() >= self.batch {
                    self.flush_batch()?;
                }
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn round_trips_through_a_multi_member_reader() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345))
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let mut gz = ParallelGzip::new(Vec::new(), 6);
        gz.write_all(&data).unwrap();
        let out = gz.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let out = ParallelGzip::new(Vec::new(), 6).finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
