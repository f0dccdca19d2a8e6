//! The leader's view of one partition's replicas, as Kafka's `Partition` and `Replica`
//! keep it: each follower's log end offset (learned from its fetches) and when it was last
//! caught up; the high watermark (the smallest log end offset over the in-sync replicas,
//! never moving back); which followers fell behind for `replica.lag.time.max.ms` (to be
//! taken out of the ISR) and which caught up to the high watermark (to be put back) —
//! proposals the controller decides on (AlterPartition, KIP-497), so the state here only
//! changes its ISR when told the controller's answer (`set_isr`).
//!
//! A pure state machine over numbers and a caller's clock: no I/O, no time of its own, so
//! its tests drive it exactly.

use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `Replica`: what the leader knows of one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    /// The offset the follower asked for in its last fetch: everything below it is on it.
    pub log_end_offset: i64,
    /// The last time the follower was known to have had everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's last fetch, and when that was.
    last_fetch_leader_leo: i64,
    last_fetch_ms: i64,
}

/// One partition as its leader sees it.
#[derive(Debug)]
pub struct LeaderIsr {
    leader: i32,
    isr: BTreeSet<i32>,
    followers: BTreeMap<i32, FollowerState>,
    high_watermark: i64,
}

/// What a follower's fetch changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FetchEffect {
    /// The high watermark moved (waiting acks=all produces and long-polls may complete).
    pub high_watermark_moved: bool,
    /// The follower caught up outside the ISR: propose this ISR to the controller.
    pub expand_to: Option<BTreeSet<i32>>,
}

impl LeaderIsr {
    /// Taking over as leader at `now_ms` with `replicas` (this broker among them), the
    /// controller's `isr`, and the log's `high_watermark`. Followers count as caught up now,
    /// as Kafka's new leader resets their state: they get a full lag period to show it.
    pub fn new(leader: i32, replicas: &[i32], isr: &[i32], high_watermark: i64, now_ms: i64) -> Self {
        assert!(replicas.contains(&leader), "the leader {leader} is one of the replicas {replicas:?}");
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| (*r, FollowerState { log_end_offset: -1, last_caught_up_ms: now_ms, last_fetch_leader_leo: -1, last_fetch_ms: now_ms }))
            .collect();
        LeaderIsr { leader, isr: isr.iter().copied().collect(), followers, high_watermark }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn isr(&self) -> &BTreeSet<i32> {
        &self.isr
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// Whether acks=all may be answered: at least `min_isr` replicas in sync (Kafka checks
    /// this before the append and again before answering).
    pub fn enough_in_sync(&self, min_isr: usize) -> bool {
        self.isr.len() >= min_isr
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end offset over the ISR (the
    /// leader's own is `leader_leo`); it only ever grows.
    fn advance_high_watermark(&mut self, leader_leo: i64) -> bool {
        let min = self
            .isr
            .iter()
            .map(|r| if *r == self.leader { leader_leo } else { self.followers.get(r).map_or(-1, |f| f.log_end_offset) })
            .min()
            .unwrap_or(leader_leo);
        if min > self.high_watermark {
            self.high_watermark = min;
            return true;
        }
        false
    }

    /// The leader appended: with no follower in the ISR, the high watermark follows it.
    pub fn on_leader_append(&mut self, leader_leo: i64) -> bool {
        self.advance_high_watermark(leader_leo)
    }

    /// A follower fetched from `fetch_offset` at `now_ms` while the leader's log ended at
    /// `leader_leo` (Kafka's `updateFollowerFetchState`). Fetches from non-replicas are
    /// the caller's to refuse; here they change nothing.
    pub fn on_follower_fetch(&mut self, follower: i32, fetch_offset: i64, leader_leo: i64, now_ms: i64) -> FetchEffect {
        let Some(f) = self.followers.get_mut(&follower) else { return FetchEffect::default() };
        if fetch_offset >= leader_leo {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_leo {
            // It has all the leader had at its previous fetch: caught up as of then.
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_leo = leader_leo;
        f.last_fetch_ms = now_ms;
        let caught_up_to_hw = fetch_offset >= self.high_watermark;
        let expand_to = (!self.isr.contains(&follower) && caught_up_to_hw).then(|| {
            let mut isr = self.isr.clone();
            isr.insert(follower);
            isr
        });
        FetchEffect { high_watermark_moved: self.advance_high_watermark(leader_leo), expand_to }
    }

    /// Kafka's `maybeShrinkIsr`: the ISR without the followers that have not been caught
    /// up for longer than `max_lag_ms`, when there are any.
    pub fn shrink_candidates(&self, leader_leo: i64, now_ms: i64, max_lag_ms: i64) -> Option<BTreeSet<i32>> {
        let lagging: BTreeSet<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| *r != self.leader)
            .filter(|r| {
                let f = &self.followers[r];
                f.log_end_offset != leader_leo && now_ms - f.last_caught_up_ms > max_lag_ms
            })
            .collect();
        (!lagging.is_empty()).then(|| self.isr.difference(&lagging).copied().collect())
    }

    /// The controller's ISR (after an AlterPartition it accepted, or a metadata change).
    /// The leader is always in its own ISR; the high watermark may move on a shrink.
    pub fn set_isr(&mut self, isr: &[i32], leader_leo: i64) -> bool {
        assert!(isr.contains(&self.leader), "the leader {} is in the ISR {isr:?} it leads", self.leader);
        self.isr = isr.iter().copied().collect();
        self.advance_high_watermark(leader_leo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 30_000;

    fn set(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn the_high_watermark_is_the_slowest_in_sync_replica_and_never_moves_back() {
        let mut p = LeaderIsr::new(1, &[1, 2, 3], &[1, 2, 3], 0, 0);
        assert!(!p.on_leader_append(10), "followers have nothing yet");
        assert_eq!(p.high_watermark(), 0);
        assert_eq!(p.on_follower_fetch(2, 10, 10, 5), FetchEffect { high_watermark_moved: false, expand_to: None });
        let moved = p.on_follower_fetch(3, 6, 10, 6);
        assert!(moved.high_watermark_moved);
        assert_eq!(p.high_watermark(), 6, "replica 3 has 6 of 10");
        p.on_follower_fetch(3, 10, 10, 7);
        assert_eq!(p.high_watermark(), 10);
        // A follower that truncated and refetches from lower does not pull it back.
        p.on_follower_fetch(3, 4, 10, 8);
        assert_eq!(p.high_watermark(), 10);
        assert!(p.enough_in_sync(3) && !p.enough_in_sync(4));
    }

    #[test]
    fn a_follower_behind_for_the_lag_time_is_proposed_out_and_a_caught_up_one_back_in() {
        let mut p = LeaderIsr::new(1, &[1, 2, 3], &[1, 2, 3], 0, 0);
        // Replica 2 keeps up; replica 3 fetches but never reaches the (moving) log end.
        let mut leo = 0;
        for t in (1_000..=40_000).step_by(1_000) {
            leo += 5;
            p.on_leader_append(leo);
            p.on_follower_fetch(2, leo, leo, t);
            p.on_follower_fetch(3, leo - 50, leo, t);
            if t <= LAG {
                assert_eq!(p.shrink_candidates(leo, t, LAG), None, "within the lag time at {t}");
            }
        }
        assert_eq!(p.shrink_candidates(leo, 40_000, LAG), Some(set(&[1, 2])), "3 is proposed out");
        // The controller accepts: the high watermark now follows 1 and 2 only.
        assert!(p.set_isr(&[1, 2], leo));
        assert_eq!(p.high_watermark(), leo);
        // 3 catches up to the high watermark: proposed back in.
        let e = p.on_follower_fetch(3, leo, leo, 41_000);
        assert_eq!(e.expand_to, Some(set(&[1, 2, 3])));
        p.set_isr(&[1, 2, 3], leo);
        assert_eq!(p.shrink_candidates(leo, 41_000, LAG), None);
    }

    #[test]
    fn a_follower_that_had_everything_at_its_last_fetch_counts_as_caught_up_then() {
        let mut p = LeaderIsr::new(1, &[1, 2], &[1, 2], 0, 0);
        p.on_leader_append(100);
        p.on_follower_fetch(2, 100, 100, 1_000); // caught up at 1 s
        p.on_leader_append(200); // the leader moves on at once
        // 2 fetches slowly but has everything the leader had at its previous fetch.
        p.on_follower_fetch(2, 100, 200, 20_000);
        p.on_leader_append(300);
        p.on_follower_fetch(2, 200, 300, 40_000);
        assert_eq!(p.follower(2).unwrap().last_caught_up_ms, 20_000, "caught up as of its previous fetch");
        assert_eq!(p.shrink_candidates(300, 45_000, LAG), None, "25 s behind: still in");
        assert_eq!(p.shrink_candidates(300, 50_001, LAG), Some(set(&[1])), "past the lag time: out");
        // An idle partition: a follower at the log end is never lagging, however long ago.
        let mut idle = LeaderIsr::new(1, &[1, 2], &[1, 2], 0, 0);
        idle.on_leader_append(7);
        idle.on_follower_fetch(2, 7, 7, 1_000);
        assert_eq!(idle.shrink_candidates(7, 1_000_000, LAG), None);
    }

    #[test]
    fn a_lone_leader_and_non_replicas() {
        let mut p = LeaderIsr::new(1, &[1], &[1], 0, 0);
        assert!(p.on_leader_append(3));
        assert_eq!(p.high_watermark(), 3, "no follower: the high watermark follows the leader");
        assert_eq!(p.on_follower_fetch(9, 3, 3, 1), FetchEffect::default(), "not a replica: nothing changes");
        assert_eq!(p.shrink_candidates(3, 1_000_000, LAG), None);
    }
}
