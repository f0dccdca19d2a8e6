//! The records of `__transaction_state`, in Kafka's layout (TransactionLogKey v0 →
//! TransactionLogValue v0; v1 values of newer Kafka brokers are read too), and the
//! transaction states they carry.

use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeSet;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Kafka's TransactionState, with its stored codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn code(self) -> i8 {
        TxnState::ALL.iter().position(|s| *s == self).expect("listed") as i8
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        TxnState::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What `__transaction_state` keeps of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the open transaction started (-1: none).
    pub start_ms: i64,
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

pub fn key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(KEY_VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

pub fn value(r: &TxnRecord) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(VALUE_VERSION);
    b.put_i64(r.producer_id);
    b.put_i16(r.producer_epoch);
    b.put_i32(r.timeout_ms);
    b.put_i8(r.state.code());
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &r.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t, vec![*p])),
        }
    }
    b.put_i32(topics.len() as i32);
    for (t, ps) in topics {
        put_str(&mut b, t);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(p);
        }
    }
    b.put_i64(r.last_update_ms);
    b.put_i64(r.start_ms);
    b.freeze()
}

/// A bounds-checked reader of both the classic and the flexible (compact) encodings.
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn i8(&mut self) -> Option<i8> {
        self.take(1).map(|b| b[0] as i8)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes(b.try_into().unwrap()))
    }
    fn i64(&mut self) -> Option<i64> {
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
    /// An array or string length; `None` inside for null.
    fn len(&mut self, classic: fn(&mut Self) -> Option<i64>) -> Option<Option<usize>> {
        let n = if self.flexible { self.uvarint()? as i64 - 1 } else { classic(self)? };
        Some(usize::try_from(n).ok())
    }
    fn str(&mut self) -> Option<String> {
        let n = self.len(|r| r.i16().map(i64::from))?.unwrap_or(0);
        self.take(n).map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn array_len(&mut self) -> Option<usize> {
        let n = self.len(|r| r.i32().map(i64::from))?.unwrap_or(0);
        // Each element takes at least one byte: a length past the input is malformed.
        (n <= self.buf.len()).then_some(n)
    }
    fn skip_tagged(&mut self) -> Option<()> {
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

/// Decodes one record: the transactional id and its state (`None`: a tombstone). Returns
/// `None` if the record is malformed (the caller logs and skips it).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<TxnRecord>)> {
    let mut k = Reader { buf: key, flexible: false };
    if k.i16()? != KEY_VERSION {
        return None;
    }
    let id = k.str()?;
    let Some(v) = value else { return Some((id, None)) };
    let mut r = Reader { buf: v, flexible: false };
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return None;
    }
    r.flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.i8()?)?;
    let mut partitions = BTreeSet::new();
    for _ in 0..r.array_len()? {
        let topic = r.str()?;
        for _ in 0..r.array_len()? {
            partitions.insert((topic.clone(), r.i32()?));
        }
        r.skip_tagged()?;
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    r.skip_tagged()?;
    Some((id, Some(TxnRecord { producer_id, producer_epoch, timeout_ms, state, partitions, last_update_ms, start_ms })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnRecord {
        TxnRecord {
            producer_id: 42,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeSet::from([("a".into(), 0), ("a".into(), 2), ("b".into(), 1)]),
            last_update_ms: 1000,
            start_ms: 900,
        }
    }

    #[test]
    fn records_round_trip() {
        let r = sample();
        assert_eq!(decode(&key("tx"), Some(&value(&r))), Some(("tx".into(), Some(r))));
        assert_eq!(decode(&key("tx"), None), Some(("tx".into(), None)));
        for s in TxnState::ALL {
            assert_eq!(TxnState::from_code(s.code()), Some(s));
            assert_eq!(TxnState::from_name(s.name()), Some(s));
        }
    }

    #[test]
    fn flexible_values_of_newer_brokers_are_read() {
        // TransactionLogValue v1: compact arrays and strings, tagged fields.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(42);
        b.put_i16(3);
        b.put_i32(60_000);
        b.put_i8(TxnState::Ongoing.code());
        b.put_u8(2); // one topic
        b.put_u8(2); // "a"
        b.put_slice(b"a");
        b.put_u8(3); // two partitions
        b.put_i32(0);
        b.put_i32(2);
        b.put_u8(0); // topic's tagged fields
        b.put_i64(1000);
        b.put_i64(900);
        b.put_u8(1); // one tagged field: ClientTransactionVersion
        b.put_u8(2);
        b.put_u8(2);
        b.put_i16(1);
        let (_, got) = decode(&key("tx"), Some(&b)).unwrap();
        let got = got.unwrap();
        assert_eq!(got.partitions, BTreeSet::from([("a".into(), 0), ("a".into(), 2)]));
        assert_eq!((got.producer_id, got.start_ms), (42, 900));
    }

    #[test]
    fn truncated_values_are_refused_not_panicking() {
        let v = value(&sample());
        for cut in 0..v.len() {
            assert!(decode(&key("tx"), Some(&v[..cut])).is_none(), "cut at {cut}");
        }
        assert!(decode(&[0], None).is_none());
    }
}
