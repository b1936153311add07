//! Just enough of the SQLite file format (sqlite.org/fileformat2.html) to read every row of one table
//! from a database held in memory: the header's page size, the schema table on page 1, table b-trees
//! (interior and leaf pages), records, and overflow chains. Read-only and for untrusted files: every page
//! number is checked, a page is visited at most once (a cyclic tree ends instead of looping), and a bad
//! structure is an error, not a panic. Written for rpm's `rpmdb.sqlite`, so no sqlite library (a C build)
//! is needed; WAL files, index b-trees and free lists are not read.

/// A column value of a row (integers, text and blobs; floats are kept as their bits).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// Why a database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("not an SQLite 3 database")]
    NotSqlite,
    #[error("bad SQLite structure: {0}")]
    Corrupt(&'static str),
    #[error("no table {0:?} in the schema")]
    NoTable(String),
}

type Result<T> = std::result::Result<T, SqliteError>;

pub struct Database<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
}

impl<'a> Database<'a> {
    pub fn open(data: &'a [u8]) -> Result<Database<'a>> {
        if data.len() < 100 || &data[..16] != b"SQLite format 3\0" {
            return Err(SqliteError::NotSqlite);
        }
        let page_size = match u16::from_be_bytes([data[16], data[17]]) {
            1 => 65536,
            n if n >= 512 && n.is_power_of_two() => n as usize,
            _ => return Err(SqliteError::Corrupt("page size")),
        };
        let reserved = data[20] as usize;
        let usable = page_size
            .checked_sub(reserved)
            .filter(|u| *u >= 480)
            .ok_or(SqliteError::Corrupt("reserved bytes"))?;
        Ok(Database {
            data,
            page_size,
            usable,
        })
    }

    /// Every row of `table` (its rowid and columns), in rowid order.
    pub fn rows(&self, table: &str) -> Result<Vec<(i64, Vec<Value>)>> {
        let root = self
            .table_rows(1)?
            .into_iter()
            .find_map(|(_, cols)| match cols.as_slice() {
                [Value::Text(kind), Value::Text(name), _, Value::Int(root), ..]
                    if kind == b"table" && name.eq_ignore_ascii_case(table.as_bytes()) =>
                {
                    Some(*root)
                }
                _ => None,
            })
            .ok_or_else(|| SqliteError::NoTable(table.to_owned()))?;
        let root = u32::try_from(root).map_err(|_| SqliteError::Corrupt("root page"))?;
        self.table_rows(root)
    }

    fn page(&self, n: u32) -> Result<&'a [u8]> {
        let start = (n as usize)
            .checked_sub(1)
            .and_then(|i| i.checked_mul(self.page_size))
            .ok_or(SqliteError::Corrupt("page number"))?;
        self.data
            .get(start..start + self.page_size)
            .map(|p| &p[..self.usable])
            .ok_or(SqliteError::Corrupt("page past the end of the file"))
    }

    fn pages(&self) -> usize {
        self.data.len() / self.page_size
    }

    fn table_rows(&self, root: u32) -> Result<Vec<(i64, Vec<Value>)>> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.pages() + 1];
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            let slot = seen
                .get_mut(n as usize)
                .ok_or(SqliteError::Corrupt("page number"))?;
            if std::mem::replace(slot, true) {
                return Err(SqliteError::Corrupt("a b-tree page is reached twice"));
            }
            let page = self.page(n)?;
            let h = if n == 1 { 100 } else { 0 };
            let kind = *page.get(h).ok_or(SqliteError::Corrupt("page header"))?;
            let cells = be16(page, h + 3)? as usize;
            let (header_len, interior) = match kind {
                0x0d => (8, false),
                0x05 => (12, true),
                _ => return Err(SqliteError::Corrupt("not a table b-tree page")),
            };
            let mut children = Vec::new();
            for c in 0..cells {
                let off = be16(page, h + header_len + 2 * c)? as usize;
                if interior {
                    children.push(be32(page, off)?);
                } else {
                    out.push(self.leaf_cell(page, off, &mut seen)?);
                }
            }
            if interior {
                children.push(be32(page, h + 8)?);
                // Popped last-pushed first: push right to left so rows come out in rowid order.
                stack.extend(children.into_iter().rev());
            }
        }
        Ok(out)
    }

    fn leaf_cell(&self, page: &[u8], off: usize, seen: &mut [bool]) -> Result<(i64, Vec<Value>)> {
        let (size, a) = varint(page, off)?;
        let (rowid, b) = varint(page, off + a)?;
        let start = off + a + b;
        let size = usize::try_from(size).map_err(|_| SqliteError::Corrupt("payload size"))?;
        if size > self.data.len() {
            return Err(SqliteError::Corrupt("payload larger than the file"));
        }
        // How much of the payload is on the page (the file format's rule for table leaves).
        let u = self.usable;
        let x = u - 35;
        let local = if size <= x {
            size
        } else {
            let m = (u - 12) * 32 / 255 - 23;
            let k = m + (size - m) % (u - 4);
            if k <= x { k } else { m }
        };
        let mut payload = page
            .get(start..start + local)
            .ok_or(SqliteError::Corrupt("cell past the page"))?
            .to_vec();
        if local < size {
            let mut next = be32(page, start + local)?;
            while payload.len() < size {
                let slot = seen
                    .get_mut(next as usize)
                    .ok_or(SqliteError::Corrupt("overflow page"))?;
                if std::mem::replace(slot, true) {
                    return Err(SqliteError::Corrupt("an overflow page is reached twice"));
                }
                let p = self.page(next)?;
                let take = (size - payload.len()).min(u - 4);
                payload.extend_from_slice(&p[4..4 + take]);
                next = be32(p, 0)?;
            }
        }
        Ok((rowid as i64, record(&payload)?))
    }
}

fn be16(p: &[u8], at: usize) -> Result<u16> {
    p.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(SqliteError::Corrupt("short page"))
}

fn be32(p: &[u8], at: usize) -> Result<u32> {
    p.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(SqliteError::Corrupt("short page"))
}

/// SQLite's big-endian varint (1–9 bytes): the value and its length.
fn varint(p: &[u8], at: usize) -> Result<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = *p.get(at + i).ok_or(SqliteError::Corrupt("varint past the end"))?;
        if i == 8 {
            return Ok(((v << 8) | b as u64, 9));
        }
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    unreachable!("the loop returns by its ninth byte")
}

/// A record: a header of serial types, then the values.
fn record(p: &[u8]) -> Result<Vec<Value>> {
    let (header_len, n) = varint(p, 0)?;
    let header_len = header_len as usize;
    if header_len > p.len() {
        return Err(SqliteError::Corrupt("record header"));
    }
    let mut types = Vec::new();
    let mut at = n;
    while at < header_len {
        let (t, n) = varint(p, at)?;
        types.push(t);
        at += n;
    }
    let mut body = header_len;
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let len = match t {
            0 | 8 | 9 | 10 | 11 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            t => ((t - 12) / 2) as usize,
        };
        let bytes = p
            .get(body..body + len)
            .ok_or(SqliteError::Corrupt("record value past the end"))?;
        body += len;
        let int = || {
            // Big-endian two's complement of 1–8 bytes.
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes {
                v = (v << 8) | *b as i64;
            }
            v
        };
        out.push(match t {
            0 | 10 | 11 => Value::Null,
            1..=6 => Value::Int(int()),
            7 => Value::Float(f64::from_bits(int() as u64)),
            8 => Value::Int(0),
            9 => Value::Int(1),
            t if t % 2 == 0 => Value::Blob(bytes.to_vec()),
            _ => Value::Text(bytes.to_vec()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_records() {
        assert_eq!(varint(&[0x05], 0).unwrap(), (5, 1));
        assert_eq!(varint(&[0x81, 0x00], 0).unwrap(), (128, 2));
        assert!(varint(&[0x81], 0).is_err());
        // header 4 bytes: types NULL, int8 (1), text "hi" (13 + 2*2 = 17); body: 0xff, "hi".
        let rec = [4, 0, 1, 17, 0xff, b'h', b'i'];
        assert_eq!(
            record(&rec).unwrap(),
            vec![Value::Null, Value::Int(-1), Value::Text(b"hi".to_vec())]
        );
        assert!(record(&[4, 0, 1, 17, 0xff]).is_err());
    }

    #[test]
    fn junk_is_refused_not_a_panic() {
        assert!(matches!(Database::open(b"nope"), Err(SqliteError::NotSqlite)));
        let mut d = vec![0u8; 1024];
        d[..16].copy_from_slice(b"SQLite format 3\0");
        d[16..18].copy_from_slice(&512u16.to_be_bytes());
        // Page 1 claims to be an interior table page whose children point at itself.
        d[100] = 0x05;
        d[108..112].copy_from_slice(&1u32.to_be_bytes());
        let db = Database::open(&d).unwrap();
        assert!(db.rows("Packages").is_err());
    }
}
