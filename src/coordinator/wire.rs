//! The primitive encodings of the coordinators' records (`__consumer_offsets`,
//! `__transaction_state`): Kafka's classic strings, bytes and arrays, and the compact,
//! tagged forms of flexible versions, read with bounds checks so that a malformed record
//! is refused rather than panicking.

use bytes::{BufMut, Bytes, BytesMut};

pub fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

pub fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

pub fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

/// A bounds-checked reader of the classic and the flexible (compact) encodings.
pub struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    pub fn classic(buf: &'a [u8]) -> Self {
        Reader { buf, flexible: false }
    }

    /// Switches to the compact encodings (a flexible record version).
    pub fn set_flexible(&mut self, flexible: bool) {
        self.flexible = flexible;
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    pub fn i8(&mut self) -> Option<i8> {
        self.take(1).map(|b| b[0] as i8)
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes(b.try_into().unwrap()))
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_be_bytes(b.try_into().unwrap()))
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A length; `None` inside for null.
    fn len(&mut self, classic: fn(&mut Self) -> Option<i64>) -> Option<Option<usize>> {
        let n = if self.flexible { self.uvarint()? as i64 - 1 } else { classic(self)? };
        Some(usize::try_from(n).ok())
    }
    pub fn nullable_str(&mut self) -> Option<Option<String>> {
        match self.len(|r| r.i16().map(i64::from))? {
            None => Some(None),
            Some(n) => self.take(n).map(|b| Some(String::from_utf8_lossy(b).into_owned())),
        }
    }
    pub fn str(&mut self) -> Option<String> {
        self.nullable_str().map(Option::unwrap_or_default)
    }
    pub fn bytes(&mut self) -> Option<Bytes> {
        match self.len(|r| r.i32().map(i64::from))? {
            None => Some(Bytes::new()),
            Some(n) => self.take(n).map(Bytes::copy_from_slice),
        }
    }
    /// An array's length (null reads as empty).
    pub fn array_len(&mut self) -> Option<usize> {
        let n = self.len(|r| r.i32().map(i64::from))?.unwrap_or(0);
        // Each element takes at least one byte: a length past the input is malformed.
        (n <= self.buf.len()).then_some(n)
    }
    /// Skips a flexible version's tagged fields (nothing in classic versions).
    pub fn skip_tagged(&mut self) -> Option<()> {
        if self.flexible {
            for _ in 0..self.uvarint()? {
                self.uvarint()?;
                let size = self.uvarint()? as usize;
                self.take(size)?;
            }
        }
        Some(())
    }
}
