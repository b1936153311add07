//! A pigz-style parallel gzip encoder with output independent of the thread count.
//!
//! The input is cut into fixed [`CHUNK`]-byte chunks. Each chunk is compressed as raw deflate on its own,
//! primed with the previous 32 KiB of input as dictionary and ended with a sync flush (an empty stored block
//! that byte-aligns it), so the compressed chunks concatenate into one valid deflate stream. A final empty
//! fixed block ends it, inside a single gzip member whose crc32 is computed over the input on the calling
//! thread. Chunk boundaries, dictionaries and flushes depend only on the input, so 1 thread and N threads
//! produce the same bytes (unlike `gzp`, whose block layout varies with scheduling).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use flate2::{Compress, FlushCompress};

/// Input bytes per independently compressed chunk (pigz's default block size).
pub const CHUNK: usize = 128 * 1024;
const DICT: usize = 32 * 1024;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" — no time or host leaks in.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final (BFINAL=1) empty block with fixed Huffman codes: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

struct Job {
    seq: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
}

struct Workers {
    jobs: Option<Sender<Job>>,
    results: Receiver<(u64, io::Result<Vec<u8>>)>,
    handles: Vec<JoinHandle<()>>,
    in_flight: usize,
    max_in_flight: usize,
    pending: BTreeMap<u64, io::Result<Vec<u8>>>,
}

/// Parallel gzip writer. Call [`ParGzEncoder::finish`] to write the trailer and get the inner writer back.
pub struct ParGzEncoder<W: Write> {
    inner: W,
    level: u32,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    next_seq: u64,
    next_write: u64,
    workers: Option<Workers>,
}

impl<W: Write> ParGzEncoder<W> {
    /// `threads` ≤ 1 compresses on the calling thread; the output is the same either way.
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let level = level.min(9);
        let workers = (threads > 1).then(|| spawn_workers(level, threads));
        Ok(ParGzEncoder {
            inner,
            level,
            buf: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            next_seq: 0,
            next_write: 0,
            workers,
        })
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let tail = &data[data.len().saturating_sub(DICT)..];
        // The next chunk's dictionary is the last 32 KiB of input, which may span this and earlier chunks
        // when chunks are short (only the final chunk is).
        let mut next_dict = Vec::with_capacity(DICT);
        if tail.len() < DICT {
            let need = DICT - tail.len();
            next_dict.extend_from_slice(&self.dict[self.dict.len().saturating_sub(need)..]);
        }
        next_dict.extend_from_slice(tail);
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let seq = self.next_seq;
        self.next_seq += 1;
        match &mut self.workers {
            None => {
                // Fresh per chunk, for the same reason as in the workers.
                let out = compress_chunk(&mut Compressors::new(self.level), &dict, &data)?;
                self.inner.write_all(&out)?;
                self.next_write += 1;
            }
            Some(w) => {
                w.jobs
                    .as_ref()
                    .expect("job channel open until finish")
                    .send(Job { seq, dict, data })
                    .map_err(|_| io::Error::other("gzip worker threads exited"))?;
                w.in_flight += 1;
                while w.in_flight >= w.max_in_flight {
                    drain_one(w, &mut self.inner, &mut self.next_write)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the last chunk, the end of the deflate stream and the gzip trailer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit()?;
        if let Some(mut w) = self.workers.take() {
            while w.in_flight > 0 {
                drain_one(&mut w, &mut self.inner, &mut self.next_write)?;
            }
        }
        self.inner.write_all(&FINAL_BLOCK)?;
        let crc = std::mem::take(&mut self.crc).finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        self.inner.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.inner)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the job channel ends the workers' loops.
        drop(self.jobs.take());
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        self.total += n as u64;
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A flush must not change chunk boundaries (that would make output depend on callers' flushes).
        self.inner.flush()
    }
}

fn spawn_workers(level: u32, threads: usize) -> Workers {
    let (job_tx, job_rx) = bounded::<Job>(threads * 2);
    let (res_tx, res_rx) = bounded(threads * 4);
    let handles = (0..threads)
        .map(|_| {
            let rx: Receiver<Job> = job_rx.clone();
            let tx = res_tx.clone();
            std::thread::spawn(move || {
                for job in rx {
                    // A fresh compressor per chunk: a reused zlib-rs stream, even after `reset`, was seen
                    // to emit different bytes for the same chunk depending on what it compressed before,
                    // which made blob digests vary with the scheduling of chunks onto workers.
                    let mut c = Compressors::new(level);
                    let out = compress_chunk(&mut c, &job.dict, &job.data);
                    if tx.send((job.seq, out)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    Workers {
        jobs: Some(job_tx),
        results: res_rx,
        handles,
        in_flight: 0,
        max_in_flight: threads * 3,
        pending: BTreeMap::new(),
    }
}

/// Waits for at least one result and writes every chunk that is next in order.
fn drain_one<W: Write>(w: &mut Workers, inner: &mut W, next_write: &mut u64) -> io::Result<()> {
    let (seq, out) = w
        .results
        .recv()
        .map_err(|_| io::Error::other("gzip worker threads exited"))?;
    w.pending.insert(seq, out);
    while let Some(out) = w.pending.remove(next_write) {
        inner.write_all(&out?)?;
        *next_write += 1;
        w.in_flight -= 1;
    }
    Ok(())
}

/// A deflate stream at the requested level, and one at level 0 for chunks that won't compress.
struct Compressors {
    level: Compress,
    store: Compress,
}

impl Compressors {
    fn new(level: u32) -> Self {
        Compressors {
            level: Compress::new(flate2::Compression::new(level), false),
            store: Compress::new(flate2::Compression::new(0), false),
        }
    }
}

/// Whether a chunk looks incompressible (already-compressed or random data): order-0 entropy above
/// 7.9 bits/byte. Deflate would spend its full match search on such a chunk only to emit about as many
/// bytes; storing it is ~free. The decision depends on the chunk's bytes alone, so output stays the same
/// for any thread count. Order-0 entropy can misjudge periodic data with a flat byte histogram; such a
/// chunk is then stored uncompressed, which costs size, never correctness.
fn incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut hist = [0u32; 256];
    for b in data {
        hist[*b as usize] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = hist
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum();
    bits > 7.9
}

/// Raw deflate of one chunk, primed with `dict`, ended by a sync flush.
fn compress_chunk(cs: &mut Compressors, dict: &[u8], data: &[u8]) -> io::Result<Vec<u8>> {
    let c = if incompressible(data) {
        &mut cs.store
    } else {
        &mut cs.level
    };
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    // Above deflate's worst-case bound, so one call normally suffices.
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let consumed = (c.total_in() - start_in) as usize;
        // The flush is complete once all input is in and output space was left over (zlib's rule).
        if consumed == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Partly compressible, partly pseudo-random, so chunks differ.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..n)
            .map(|i| {
                if (i / 50_000) % 2 == 0 {
                    b"lorem ipsum dolor sit amet, "[(i * 7 / 5) % 28]
                } else {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                }
            })
            .collect()
    }

    fn encode(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut enc = ParGzEncoder::new(Vec::new(), 6, threads).unwrap();
        for piece in data.chunks(write_size.max(1)) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn roundtrips_and_is_thread_independent() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345, 1_000_000] {
            let data = sample(len);
            let one = encode(&data, 1, 7777);
            let two = encode(&data, 2, 100_000);
            let four = encode(&data, 4, 1);
            assert_eq!(one, two, "1 vs 2 threads differ for len {len}");
            assert_eq!(one, four, "1 vs 4 threads differ for len {len}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "roundtrip failed for len {len}");
        }
    }

    #[test]
    fn random_chunks_are_stored_not_searched() {
        let data = sample(4 * CHUNK);
        assert!(!incompressible(&data[..CHUNK]));
        assert!(incompressible(&data[50_000..50_000 + 40_000]));
        let gz = encode(&data, 2, 65536);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn gzip_tool_accepts_output() {
        let Ok(status) = std::process::Command::new("gzip").arg("--version").output() else {
            lamina_testkit::skip("gzip not installed");
            return;
        };
        assert!(status.status.success());
        let data = sample(600_000);
        let gz = encode(&data, 2, 65536);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        std::fs::write(&p, &gz).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, data);
        let t = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&p)
            .status()
            .unwrap();
        assert!(t.success());
    }
}

#[cfg(test)]
mod reuse_tests {
    use super::*;

    /// The same input must give the same bytes on every run, whichever worker compresses which chunk.
    /// A reused compressor carried state between chunks (seen with zlib-rs after `reset`: one byte
    /// differed mid-stream), so importing one rootfs tar twice gave two blob digests. Real binary data
    /// (the busybox binary, when present) showed it where synthetic data did not.
    #[test]
    fn same_input_same_bytes_every_run() {
        let mut data = std::fs::read("/usr/bin/busybox").unwrap_or_default();
        let mut x: u64 = 0x2545f4914f6cdd1d;
        data.extend((0..3 * CHUNK).map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / 9_000) % 2 == 0 {
                b"usr/lib/node_modules/x.js\n"[i % 26]
            } else {
                x as u8
            }
        }));
        let encode = |threads: usize| {
            let mut enc = ParGzEncoder::new(Vec::new(), 6, threads).unwrap();
            for piece in data.chunks(10_000) {
                enc.write_all(piece).unwrap();
            }
            enc.finish().unwrap()
        };
        let first = encode(1);
        for run in 0..12 {
            let threads = 1 + run % 3;
            assert!(
                encode(threads) == first,
                "run {run} with {threads} threads gave other bytes"
            );
        }
    }
}
