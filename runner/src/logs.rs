//! A detached container's output log: the monitor reads the container's stdout and stderr from
//! pipes (or its terminal) and appends one frame per read, so `lamina logs` can keep the streams
//! apart, stamp each chunk with when it was written, and filter by time or count.
//!
//! Frame: `time_ns u64 LE` (Unix nanoseconds), `stream u8` (1 stdout, 2 stderr), `len u32 LE`,
//! then `len` bytes exactly as the container wrote them. Binary, so output that isn't text is kept
//! byte for byte; appends are single `write`s of whole frames, and a torn frame at the end (the
//! monitor killed mid-write) is where reading stops.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Which stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// One chunk of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub time_ns: u64,
    pub stream: Stream,
    pub data: Vec<u8>,
}

const HEAD: usize = 13;

/// The writing side, shared by the monitor's pump threads.
#[derive(Clone)]
pub struct LogWriter {
    file: Arc<Mutex<File>>,
}

impl LogWriter {
    pub fn open(path: &Path) -> std::io::Result<LogWriter> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub fn append(&self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut frame = Vec::with_capacity(HEAD + data.len());
        frame.extend_from_slice(&now.to_le_bytes());
        frame.push(stream as u8);
        frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
        frame.extend_from_slice(data);
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&frame)
    }

    /// Copies `from` (a pipe's read end) into the log until every writer of the pipe is gone.
    pub fn pump(&self, mut from: File, stream: Stream) -> std::thread::JoinHandle<()> {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || log.append(stream, &buf[..n]).is_err() {
                    break;
                }
            }
        })
    }
}

/// Reads whole frames from `offset`; returns them and the offset after the last whole one.
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<Record>, u64)> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= HEAD {
        let h = &bytes[at..at + HEAD];
        let time_ns = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
        let stream = match h[8] {
            2 => Stream::Stderr,
            _ => Stream::Stdout,
        };
        let len = u32::from_le_bytes(h[9..13].try_into().expect("4 bytes")) as usize;
        if bytes.len() - at - HEAD < len {
            break;
        }
        out.push(Record {
            time_ns,
            stream,
            data: bytes[at + HEAD..at + HEAD + len].to_vec(),
        });
        at += HEAD + len;
    }
    Ok((out, offset + at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let w = LogWriter::open(&p).unwrap();
        w.append(Stream::Stdout, b"out\n").unwrap();
        w.append(Stream::Stderr, &[0xff, 0, b'\n']).unwrap();
        let (recs, end) = read_from(&p, 0).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].stream, recs[0].data.as_slice()),
            (Stream::Stdout, &b"out\n"[..])
        );
        assert_eq!(
            (recs[1].stream, recs[1].data.as_slice()),
            (Stream::Stderr, &[0xff, 0, b'\n'][..])
        );
        assert!(recs[0].time_ns <= recs[1].time_ns && recs[0].time_ns > 0);
        // Half a frame: not read until it is whole.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&[1, 2, 3])
            .unwrap();
        let (more, end2) = read_from(&p, end).unwrap();
        assert!(more.is_empty());
        assert_eq!(end2, end);
    }
}
