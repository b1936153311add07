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

/// The frames of a log from an offset on, one at a time (a log grows without bound: it is never read
/// whole). Iteration ends at EOF or at a torn frame, a frame the monitor is still writing (or was
/// killed writing); [`Frames::offset`] is then where the next whole frame will start, for a later
/// [`frames_from`] when following.
pub struct Frames {
    file: std::io::BufReader<File>,
    offset: u64,
}

/// [`Frames`] of the log at `path`, from `offset` (0, or an earlier [`Frames::offset`]).
pub fn frames_from(path: &Path, offset: u64) -> std::io::Result<Frames> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    Ok(Frames {
        file: std::io::BufReader::with_capacity(64 * 1024, f),
        offset,
    })
}

impl Frames {
    /// The offset after the last whole frame returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Fills `buf` unless EOF comes first (`false`: a torn or absent frame).
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let mut at = 0;
        while at < buf.len() {
            match self.file.read(&mut buf[at..]) {
                Ok(0) => return Ok(false),
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Iterator for Frames {
    type Item = std::io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut h = [0u8; HEAD];
        match self.fill(&mut h) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(e)),
        }
        let time_ns = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
        let stream = match h[8] {
            2 => Stream::Stderr,
            _ => Stream::Stdout,
        };
        let len = u32::from_le_bytes(h[9..13].try_into().expect("4 bytes")) as usize;
        let mut data = vec![0u8; len];
        match self.fill(&mut data) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(e)),
        }
        self.offset += (HEAD + len) as u64;
        Some(Ok(Record {
            time_ns,
            stream,
            data,
        }))
    }
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
        let mut frames = frames_from(&p, 0).unwrap();
        let recs: Vec<Record> = frames.by_ref().map(Result::unwrap).collect();
        let end = frames.offset();
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
        let mut more = frames_from(&p, end).unwrap();
        assert!(more.next().is_none());
        assert_eq!(more.offset(), end);
        // Completed later (a frame whose header said 3 bytes of data): read whole from the same
        // offset.
        let mut rest = 0u64.to_le_bytes()[..5].to_vec();
        rest.extend_from_slice(&[1, 3, 0, 0, 0, b'a', b'b', b'c']);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&rest)
            .unwrap();
        let mut again = frames_from(&p, end).unwrap();
        let r = again.next().unwrap().unwrap();
        assert_eq!((r.stream, r.data.as_slice()), (Stream::Stdout, &b"abc"[..]));
        assert!(again.next().is_none());
        assert_eq!(again.offset(), end + 16);
    }
}
