//! Where a new partition's replicas go: Kafka's round robin with a random start and a
//! random shift between rounds, rack-aware when brokers have racks
//! (`AdminUtils.assignReplicasToBrokers`): leaders spread evenly over the brokers, the
//! followers of one leader spread over the others, and one partition's replicas on as
//! many different racks as there are.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    #[error("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered.")]
    NotEnoughBrokers { rf: i16, brokers: usize },
    #[error("replication factor must be at least 1, got {0}")]
    BadReplicationFactor(i16),
    #[error("brokers {0:?} have a rack and others do not: give every broker a broker.rack or none")]
    MixedRacks(Vec<i32>),
}

/// Replica lists for partitions `first..first + count`; the first replica leads. `seed`
/// makes the random start and shift (a fresh random value in use, fixed in tests).
pub fn place(brokers: &[Candidate], first: i32, count: i32, rf: i16, seed: u64) -> Result<Vec<Vec<i32>>, PlacementError> {
    if rf < 1 {
        return Err(PlacementError::BadReplicationFactor(rf));
    }
    if rf as usize > brokers.len() {
        return Err(PlacementError::NotEnoughBrokers { rf, brokers: brokers.len() });
    }
    let with_rack: Vec<i32> = brokers.iter().filter(|b| b.rack.is_some()).map(|b| b.id).collect();
    if !with_rack.is_empty() && with_rack.len() != brokers.len() {
        return Err(PlacementError::MixedRacks(with_rack));
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_by_key(|b| b.id);
    let ordered = if with_rack.is_empty() { sorted } else { rack_alternated(&sorted) };
    let n = ordered.len();
    let start = (seed % n as u64) as usize;
    let mut shift = ((seed >> 32) % n as u64) as usize;
    let racks: usize = {
        let mut r: Vec<_> = ordered.iter().filter_map(|b| b.rack.clone()).collect();
        r.sort();
        r.dedup();
        r.len()
    };
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for i in 0..count.max(0) as usize {
        let p = i + first.max(0) as usize;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let lead = (p + start) % n;
        let mut replicas = vec![ordered[lead].id];
        let mut used_racks: Vec<Option<&String>> = vec![ordered[lead].rack.as_ref()];
        let mut k = 0usize;
        while replicas.len() < rf as usize {
            // The classic follower index for step k, skipping brokers already chosen and,
            // while racks remain unused, brokers on a used rack.
            let idx = follower_index(lead, shift, k, n);
            k += 1;
            let b = &ordered[idx];
            if replicas.contains(&b.id) {
                continue;
            }
            let rack_used = used_racks.contains(&b.rack.as_ref());
            if racks > 0 && rack_used && used_racks.len() < racks && k <= n * n {
                continue;
            }
            replicas.push(b.id);
            used_racks.push(b.rack.as_ref());
        }
        out.push(replicas);
    }
    Ok(out)
}

fn follower_index(lead: usize, shift: usize, k: usize, n: usize) -> usize {
    if n == 1 {
        return lead;
    }
    (lead + 1 + (shift + k) % (n - 1)) % n
}

/// Brokers ordered rack by rack in turn (r1, r2, r3, r1, …), as Kafka does before placing.
fn rack_alternated(brokers: &[Candidate]) -> Vec<Candidate> {
    let mut by_rack: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.clone().unwrap_or_default()).or_default().push(b.clone());
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut i = 0;
    while out.len() < brokers.len() {
        for list in by_rack.values() {
            if let Some(b) = list.get(i) {
                out.push(b.clone());
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(n: i32, racks: Option<i32>) -> Vec<Candidate> {
        (1..=n).map(|id| Candidate { id, rack: racks.map(|r| format!("r{}", id % r)) }).collect()
    }

    fn check_distinct(placed: &[Vec<i32>], rf: usize) {
        for r in placed {
            let mut s = r.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), rf, "replicas are distinct brokers: {r:?}");
        }
    }

    #[test]
    fn leaders_and_replicas_spread_evenly() {
        for seed in [0u64, 7, 1 << 40, u64::MAX] {
            let placed = place(&brokers(3, None), 0, 12, 3, seed).unwrap();
            check_distinct(&placed, 3);
            let mut leads = BTreeMap::new();
            for r in &placed {
                *leads.entry(r[0]).or_insert(0) += 1;
            }
            assert_eq!(leads.values().copied().collect::<Vec<_>>(), vec![4, 4, 4], "seed {seed}: {placed:?}");
            let mut per_broker = BTreeMap::new();
            for r in placed.iter().flatten() {
                *per_broker.entry(*r).or_insert(0) += 1;
            }
            assert!(per_broker.values().all(|c| *c == 12), "every broker holds a third of 36 replicas");
        }
    }

    #[test]
    fn replicas_span_racks() {
        let b = brokers(6, Some(3));
        let racks: BTreeMap<i32, String> = b.iter().map(|c| (c.id, c.rack.clone().unwrap())).collect();
        for seed in [1u64, 99, 12345] {
            let placed = place(&b, 0, 30, 3, seed).unwrap();
            check_distinct(&placed, 3);
            for r in &placed {
                let mut rs: Vec<_> = r.iter().map(|id| racks[id].clone()).collect();
                rs.sort();
                rs.dedup();
                assert_eq!(rs.len(), 3, "seed {seed}: {r:?} on racks {rs:?}");
            }
        }
        // Two racks, rf 3: both racks used.
        let b = brokers(4, Some(2));
        for r in place(&b, 0, 8, 3, 5).unwrap() {
            let rs: std::collections::BTreeSet<_> = r.iter().map(|id| id % 2).collect();
            assert_eq!(rs.len(), 2);
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(place(&brokers(2, None), 0, 1, 3, 0), Err(PlacementError::NotEnoughBrokers { rf: 3, brokers: 2 }));
        assert_eq!(place(&brokers(2, None), 0, 1, 0, 0), Err(PlacementError::BadReplicationFactor(0)));
        let mut mixed = brokers(3, None);
        mixed[0].rack = Some("a".into());
        assert!(matches!(place(&mixed, 0, 1, 1, 0), Err(PlacementError::MixedRacks(_))));
        assert_eq!(place(&brokers(1, None), 0, 3, 1, 9).unwrap(), vec![vec![1], vec![1], vec![1]]);
    }

    #[test]
    fn added_partitions_continue_the_rotation() {
        let all = place(&brokers(3, None), 0, 6, 2, 42).unwrap();
        let later = place(&brokers(3, None), 3, 3, 2, 42).unwrap();
        assert_eq!(&all[3..], &later[..], "partitions 3..6 placed later land where they would have at creation");
    }
}
