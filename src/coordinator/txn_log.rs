//! The records of `__transaction_state`, in Kafka's layout (TransactionLogKey v0 →
//! TransactionLogValue v0; v1 values of newer Kafka brokers are read too), and the
//! transaction states they carry.

use super::wire::{put_str, Reader};
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

/// Decodes one record: the transactional id and its state (`None`: a tombstone). Returns
/// `None` if the record is malformed (the caller logs and skips it).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<TxnRecord>)> {
    let mut k = Reader::classic(key);
    if k.i16()? != KEY_VERSION {
        return None;
    }
    let id = k.str()?;
    let Some(v) = value else { return Some((id, None)) };
    let mut r = Reader::classic(v);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return None;
    }
    r.set_flexible(version >= 1);
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
