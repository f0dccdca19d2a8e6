//! Server-side partition assignors of KIP-848 consumer groups: `uniform` (balanced and
//! sticky: members keep what they have as far as balance allows) and `range` (each
//! topic's partitions cut into contiguous ranges over its subscribers, in member order).

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// topic id → partitions.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What an assignor knows about one member.
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// Topic ids the member subscribes to (resolved, existing topics only).
    pub topics: BTreeSet<Uuid>,
    pub current: &'a Assignment,
}

/// topic id → partition count.
pub type TopicCounts = BTreeMap<Uuid, i32>;

pub fn assign(name: &str, members: &[AssignorMember<'_>], topics: &TopicCounts) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

fn range(members: &[AssignorMember<'_>], topics: &TopicCounts) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.iter().map(|m| (m.member_id.to_string(), Assignment::new())).collect();
    for (&topic, &count) in topics {
        let mut subs: Vec<&str> = members.iter().filter(|m| m.topics.contains(&topic)).map(|m| m.member_id).collect();
        subs.sort_unstable();
        if subs.is_empty() {
            continue;
        }
        let (per, extra) = (count as usize / subs.len(), count as usize % subs.len());
        let mut next = 0i32;
        for (i, m) in subs.iter().enumerate() {
            let n = per + usize::from(i < extra);
            let parts: BTreeSet<i32> = (next..next + n as i32).collect();
            next += n as i32;
            if !parts.is_empty() {
                out.get_mut(*m).expect("member").insert(topic, parts);
            }
        }
    }
    out
}

fn uniform(members: &[AssignorMember<'_>], topics: &TopicCounts) -> BTreeMap<String, Assignment> {
    let ids: Vec<&str> = members.iter().map(|m| m.member_id).collect();
    let eligible = |topic: &Uuid| -> Vec<usize> { (0..members.len()).filter(|&i| members[i].topics.contains(topic)).collect() };
    let mut owned: Vec<BTreeSet<(Uuid, i32)>> = vec![BTreeSet::new(); members.len()];
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // Stickiness: every member keeps what it still may own.
    for (i, m) in members.iter().enumerate() {
        for (t, parts) in m.current {
            let Some(&count) = topics.get(t) else { continue };
            if !m.topics.contains(t) {
                continue;
            }
            for &p in parts.iter().filter(|&&p| p < count) {
                if taken.insert((*t, p)) {
                    owned[i].insert((*t, p));
                }
            }
        }
    }
    // Everything else goes to the least loaded eligible member.
    for (&t, &count) in topics {
        let who = eligible(&t);
        if who.is_empty() {
            continue;
        }
        for p in 0..count {
            if taken.contains(&(t, p)) {
                continue;
            }
            let i = *who.iter().min_by_key(|&&i| (owned[i].len(), ids[i])).expect("eligible");
            owned[i].insert((t, p));
            taken.insert((t, p));
        }
    }
    // Balance: move partitions from the most to the least loaded eligible member until
    // no move makes the spread smaller. Each move lowers the sum of squares: it ends.
    loop {
        let mut moved = false;
        for from in 0..members.len() {
            let candidates: Vec<(Uuid, i32)> = owned[from].iter().rev().copied().collect();
            for tp in candidates {
                let to = eligible(&tp.0).into_iter().filter(|&j| owned[j].len() + 1 < owned[from].len()).min_by_key(|&j| (owned[j].len(), ids[j]));
                if let Some(to) = to {
                    owned[from].remove(&tp);
                    owned[to].insert(tp);
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    let mut out = BTreeMap::new();
    for (i, set) in owned.into_iter().enumerate() {
        let mut a = Assignment::new();
        for (t, p) in set {
            a.entry(t).or_default().insert(p);
        }
        out.insert(ids[i].to_string(), a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    #[test]
    fn uniform_balances_and_keeps_what_it_can() {
        let t = Uuid::from_u128(1);
        let topics = TopicCounts::from([(t, 6)]);
        let empty = Assignment::new();
        let two = [
            AssignorMember { member_id: "a", topics: [t].into(), current: &empty },
            AssignorMember { member_id: "b", topics: [t].into(), current: &empty },
        ];
        let first = assign("uniform", &two, &topics);
        assert_eq!((count(&first["a"]), count(&first["b"])), (3, 3));
        let three = [
            AssignorMember { member_id: "a", topics: [t].into(), current: &first["a"] },
            AssignorMember { member_id: "b", topics: [t].into(), current: &first["b"] },
            AssignorMember { member_id: "c", topics: [t].into(), current: &empty },
        ];
        let second = assign("uniform", &three, &topics);
        assert_eq!([&second["a"], &second["b"], &second["c"]].map(count), [2, 2, 2]);
        // Sticky: a and b each gave up exactly one partition.
        assert!(second["a"][&t].is_subset(&first["a"][&t]));
        assert!(second["b"][&t].is_subset(&first["b"][&t]));
        let all: BTreeSet<i32> = second.values().flat_map(|a| a[&t].iter().copied()).collect();
        assert_eq!(all, (0..6).collect());
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let topics = TopicCounts::from([(t1, 4), (t2, 2)]);
        let empty = Assignment::new();
        let ms = [
            AssignorMember { member_id: "a", topics: [t1].into(), current: &empty },
            AssignorMember { member_id: "b", topics: [t1, t2].into(), current: &empty },
        ];
        let out = assign("uniform", &ms, &topics);
        assert!(!out["a"].contains_key(&t2), "a does not subscribe to t2");
        assert_eq!(count(&out["a"]) + count(&out["b"]), 6);
        assert_eq!((count(&out["a"]), count(&out["b"])), (3, 3));
    }

    #[test]
    fn range_cuts_contiguous_ranges() {
        let t = Uuid::from_u128(7);
        let topics = TopicCounts::from([(t, 5)]);
        let empty = Assignment::new();
        let ms = [
            AssignorMember { member_id: "b", topics: [t].into(), current: &empty },
            AssignorMember { member_id: "a", topics: [t].into(), current: &empty },
        ];
        let out = assign("range", &ms, &topics);
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
    }
}
