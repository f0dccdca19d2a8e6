//! Replication (issue 19): followers that copy their leaders' logs, the in-sync replica
//! set, the high watermark. Built in steps: the follower's side of the log lives in
//! `storage` (`Log::append_replicated`, `Log::truncate_to`, the leader-epoch checkpoint);
//! here is the leader's view of its followers (`isr`), and later the replica manager and
//! the fetchers that put them to work.

pub mod isr;
