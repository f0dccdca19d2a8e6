//! The classic group state machine driven by hand: time is a number the test moves, and
//! parked JoinGroup/SyncGroup answers are read with `try_recv`, so nothing sleeps.

use super::*;
use crate::coordinator::member::{JoinRequest, SyncRequest};

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn cfg(initial_delay: i64) -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: initial_delay, ..GroupConfig::default() }
}

fn req(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: instance.map(Into::into),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: true,
    }
}

fn sync_req(member: &str, instance: Option<&str>, generation_id: i32, protocol: Option<(&str, &str)>, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        member_id: member.into(),
        group_instance_id: instance.map(Into::into),
        generation_id,
        protocol_type: protocol.map(|p| p.0.into()),
        protocol_name: protocol.map(|p| p.1.into()),
        assignments,
    }
}

fn now_result<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(v) => v,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

fn parked<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a parked request"),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("the parked request has been answered")
}

fn pending<T>(rx: &mut oneshot::Receiver<T>) {
    assert!(matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)), "answered too early");
}

/// The write of the leader's assignment is durable: what the coordinator reports then.
fn stored(g: &mut ClassicGroup, t: i64) {
    assert!(g.take_dirty(), "the leader's assignment is to be stored");
    let generation = g.generation_id;
    g.assignment_stored(generation, Ok(()), t, &cfg(0));
}

/// KIP-394: the first join gets an id, the second is parked.
fn join_new(g: &mut ClassicGroup, now: i64, cfg: &GroupConfig) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_result(g.join(req("", None), now, cfg));
    assert_eq!(first.error, Some(Error::MemberIdRequired));
    assert!(first.member_id.starts_with("client-"));
    let rx = parked(g.join(req(&first.member_id, None), now, cfg));
    (first.member_id, rx)
}

/// When `stable_group` is done: the initial delay (3 s) ran twice.
const T0: i64 = 6000;

/// A Stable group of `n` dynamic members at generation 1, reached at `T0` (all joined at
/// 0, within one initial rebalance delay); returns their ids, leader first.
fn stable_group(n: usize, _cfg: &GroupConfig) -> (ClassicGroup, Vec<String>) {
    let cfg = &self::cfg(3000);
    let mut g = ClassicGroup::new("g", 0);
    let mut joins = Vec::new();
    for _ in 0..n {
        joins.push(join_new(&mut g, 0, cfg));
    }
    g.tick(3000, cfg);
    g.tick(T0, cfg);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let mut ids = Vec::new();
    let leader = g.leader_id.clone().unwrap();
    ids.push(leader.clone());
    for (id, mut rx) in joins {
        let r = ready(&mut rx);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader_id, leader);
        if id != leader {
            assert!(r.members.is_empty());
            ids.push(id);
        } else {
            assert_eq!(r.members.len(), n);
        }
    }
    let t = T0;
    let mut follower_syncs: Vec<_> =
        ids[1..].iter().map(|id| parked(g.sync(sync_req(id, None, 1, None, vec![]), t))).collect();
    let assignment: Vec<(String, Bytes)> = ids.iter().map(|id| (id.clone(), Bytes::from(format!("for-{id}")))).collect();
    let mut leader_sync = parked(g.sync(sync_req(&leader, None, 1, Some(("consumer", "range")), assignment), t));
    // Nobody hears of the assignment before it is stored.
    pending(&mut leader_sync);
    follower_syncs.iter_mut().for_each(|rx| pending(rx));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    stored(&mut g, t);
    assert_eq!(ready(&mut leader_sync).assignment, Bytes::from(format!("for-{leader}")));
    for (rx, id) in follower_syncs.iter_mut().zip(&ids[1..]) {
        assert_eq!(ready(rx).assignment, Bytes::from(format!("for-{id}")));
    }
    assert_eq!(g.state(), GroupState::Stable);
    (g, ids)
}

#[test]
fn initial_delay_waits_for_more_members_then_completes() {
    let cfg = cfg(3000);
    let mut g = ClassicGroup::new("g", 0);
    let (_, mut a) = join_new(&mut g, 0, &cfg);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.tick(1000, &cfg);
    let (_, mut b) = join_new(&mut g, 1000, &cfg);
    g.tick(2999, &cfg);
    pending(&mut a);
    // A member joined during the delay: it is extended once more.
    g.tick(3000, &cfg);
    pending(&mut a);
    g.tick(6000, &cfg);
    let (ra, rb) = (ready(&mut a), ready(&mut b));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    assert_eq!(ra.members.len() + rb.members.len(), 2, "only the leader sees the members");
}

#[test]
fn stable_group_hands_out_the_leaders_assignment() {
    let (g, ids) = stable_group(3, &cfg(0));
    assert_eq!(g.generation_id, 1);
    for id in &ids {
        assert_eq!(g.member(id).unwrap().assignment, Bytes::from(format!("for-{id}")));
    }
}

#[test]
fn join_during_stable_triggers_a_rebalance_that_waits_for_everyone() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(2, &cfg);
    let (new_id, mut new_rx) = join_new(&mut g, T0 + 100, &cfg);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(&ids[0], None, 1, T0 + 100), Some(Error::RebalanceInProgress));
    pending(&mut new_rx);
    let mut a = parked(g.join(req(&ids[0], None), T0 + 200, &cfg));
    pending(&mut a);
    let mut b = parked(g.join(req(&ids[1], None), T0 + 300, &cfg));
    let (ra, rb, rn) = (ready(&mut a), ready(&mut b), ready(&mut new_rx));
    assert_eq!((ra.generation_id, rb.generation_id, rn.generation_id), (2, 2, 2));
    assert_eq!(ra.leader_id, ids[0], "the leader that rejoined stays leader");
    assert_eq!(ra.members.len(), 3);
    assert!(!g.member(&new_id).unwrap().is_new);
}

#[test]
fn duplicate_join_replaces_the_parked_one() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(2, &cfg);
    // A follower rejoining a Stable group unchanged just gets the current generation.
    let same = now_result(g.join(req(&ids[1], None), T0 + 5, &cfg));
    assert_eq!((same.generation_id, same.error), (1, None));
    // A newcomer starts a rebalance; the follower then joins twice before the leader.
    let (_, mut newcomer) = join_new(&mut g, T0 + 10, &cfg);
    let mut first = parked(g.join(req(&ids[1], None), T0 + 20, &cfg));
    let mut second = parked(g.join(req(&ids[1], None), T0 + 30, &cfg));
    assert_eq!(ready(&mut first).error, Some(Error::RebalanceInProgress));
    pending(&mut second);
    let mut leader = parked(g.join(req(&ids[0], None), T0 + 40, &cfg));
    assert_eq!(ready(&mut second).generation_id, 2);
    assert_eq!(ready(&mut newcomer).generation_id, 2);
    assert_eq!(ready(&mut leader).members.len(), 3);
}

#[test]
fn leader_leaving_mid_sync_restarts_the_rebalance() {
    let cfg = cfg(0);
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut ra) = join_new(&mut g, 0, &cfg);
    let _ = ready(&mut ra); // completes alone at once (delay 0)
    let mut a_sync = parked(g.sync(sync_req(&a, None, 1, None, vec![(a.clone(), Bytes::from_static(b"x"))]), 0));
    stored(&mut g, 0);
    let _ = ready(&mut a_sync);
    let (b, mut rb) = join_new(&mut g, 10, &cfg);
    let mut ra = parked(g.join(req(&a, None), 20, &cfg));
    let (ja, jb) = (ready(&mut ra), ready(&mut rb));
    assert_eq!(ja.leader_id, a);
    assert_eq!(jb.generation_id, 2);
    let mut b_sync = parked(g.sync(sync_req(&b, None, 2, None, vec![]), 30));
    assert_eq!(g.leave(&a, None, 40, &cfg), Ok(a.clone()));
    assert_eq!(ready(&mut b_sync).error, Some(Error::RebalanceInProgress));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let mut rb = parked(g.join(req(&b, None), 50, &cfg));
    let jb = ready(&mut rb);
    assert_eq!(jb.generation_id, 3);
    assert_eq!(jb.leader_id, b, "the remaining member becomes leader");
    assert_eq!(jb.members.len(), 1);
}

#[test]
fn members_that_stop_heartbeating_expire_after_their_session_timeout() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(2, &cfg);
    // Member 0 keeps heartbeating; member 1 goes silent.
    let mut t = T0;
    while t < T0 + SESSION as i64 - 1000 {
        t += 3000;
        assert_eq!(g.heartbeat(&ids[0], None, 1, t), None);
        g.tick(t, &cfg);
    }
    assert_eq!(g.size(), 2, "not expired before the session timeout");
    assert_eq!(g.heartbeat(&ids[0], None, 1, t), None);
    t = T0 + SESSION as i64;
    g.tick(t, &cfg);
    assert_eq!(g.size(), 1);
    assert!(g.member(&ids[1]).is_none());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(&ids[1], None, 1, t), Some(Error::UnknownMemberId));
    let mut r = parked(g.join(req(&ids[0], None), t, &cfg));
    assert_eq!(ready(&mut r).generation_id, 2);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(2, &cfg);
    let start = T0 + 100;
    let mut r = parked(g.join(req(&ids[0], None), start, &cfg));
    // Member 1 keeps heartbeating (told REBALANCE_IN_PROGRESS) but never rejoins.
    let mut t = start;
    while t < start + REBALANCE as i64 - 5000 {
        t += 5000;
        assert_eq!(g.heartbeat(&ids[1], None, 1, t), Some(Error::RebalanceInProgress));
        g.tick(t, &cfg);
    }
    g.tick(start + REBALANCE as i64 - 1, &cfg);
    pending(&mut r);
    g.tick(start + REBALANCE as i64, &cfg);
    let jr = ready(&mut r);
    assert_eq!(jr.generation_id, 2);
    assert_eq!(jr.members.len(), 1);
    assert!(g.member(&ids[1]).is_none());
}

#[test]
fn a_member_that_never_syncs_is_removed_at_the_rebalance_timeout() {
    let cfg = cfg(0);
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut ra) = join_new(&mut g, 0, &cfg);
    let (b, mut rb) = join_new(&mut g, 0, &cfg);
    let mut ra2 = parked(g.join(req(&a, None), 1, &cfg));
    let _ = (ready(&mut ra).error, ready(&mut rb), ready(&mut ra2));
    let leader = g.leader_id.clone().unwrap();
    let other = if leader == a { b.clone() } else { a.clone() };
    let gen = g.generation_id;
    let mut s = parked(g.sync(sync_req(&leader, None, gen, None, vec![]), 2));
    stored(&mut g, 2);
    let _ = ready(&mut s);
    assert_eq!(g.state(), GroupState::Stable);
    let mut t = 2;
    while t + 5000 < REBALANCE as i64 {
        t += 5000;
        assert_eq!(g.heartbeat(&leader, None, gen, t), None);
        // The other member heartbeats too: only its missing SyncGroup removes it.
        assert_eq!(g.heartbeat(&other, None, gen, t), None);
        g.tick(t, &cfg);
    }
    assert!(g.member(&other).is_some());
    g.tick(1 + REBALANCE as i64, &cfg);
    assert!(g.member(&other).is_none(), "the member that never synced is gone");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_restart_gets_its_assignment_without_a_rebalance() {
    let cfg = cfg(0);
    let mut g = ClassicGroup::new("g", 0);
    let mut ra = parked(g.join(req("", Some("inst-a")), 0, &cfg));
    let ja = ready(&mut ra);
    assert!(ja.member_id.starts_with("inst-a-"), "static members skip MEMBER_ID_REQUIRED");
    let mut rb = parked(g.join(req("", Some("inst-b")), 1, &cfg));
    let mut ra = parked(g.join(req(&ja.member_id, Some("inst-a")), 2, &cfg));
    let (ja, jb) = (ready(&mut ra), ready(&mut rb));
    assert_eq!(ja.generation_id, 2);
    let assignment = vec![(ja.member_id.clone(), Bytes::from_static(b"A")), (jb.member_id.clone(), Bytes::from_static(b"B"))];
    let mut sb = parked(g.sync(sync_req(&jb.member_id, Some("inst-b"), 2, None, vec![]), 3));
    let mut sa = parked(g.sync(sync_req(&ja.member_id, Some("inst-a"), 2, None, assignment), 3));
    stored(&mut g, 3);
    let _ = (ready(&mut sa), ready(&mut sb));

    // inst-b restarts: a new JoinGroup without a member id.
    let rejoined = now_or_ready(g.join(req("", Some("inst-b")), 4, &cfg));
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation_id, 2, "no new generation");
    assert_ne!(rejoined.member_id, jb.member_id);
    assert_eq!(g.state(), GroupState::Stable);
    let sync = now_result(g.sync(sync_req(&rejoined.member_id, Some("inst-b"), 2, None, vec![]), 5));
    assert_eq!(sync.assignment, Bytes::from_static(b"B"));
    // The old incarnation is fenced.
    assert_eq!(g.heartbeat(&jb.member_id, Some("inst-b"), 2, 6), Some(Error::FencedInstanceId));
    assert_eq!(g.heartbeat(&rejoined.member_id, Some("inst-b"), 2, 6), None);
}

fn now_or_ready(r: Reply<JoinResult>) -> JoinResult {
    match r {
        Reply::Now(v) => v,
        Reply::Later(mut rx) => ready(&mut rx),
    }
}

#[test]
fn wrong_generation_and_unknown_members_are_refused() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(1, &cfg);
    assert_eq!(g.heartbeat(&ids[0], None, 7, 1), Some(Error::IllegalGeneration));
    assert_eq!(g.heartbeat("nobody", None, 1, 1), Some(Error::UnknownMemberId));
    assert_eq!(now_result(g.sync(sync_req(&ids[0], None, 0, None, vec![]), 1)).error, Some(Error::IllegalGeneration));
    assert_eq!(now_result(g.join(req("nobody", None), 1, &cfg)).error, Some(Error::UnknownMemberId));
    let mut other = req("", None);
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(now_result(g.join(other, 1, &cfg)).error, Some(Error::InconsistentGroupProtocol));
    assert_eq!(g.validate_commit(&ids[0], None, 1, 1), None);
    assert_eq!(g.validate_commit(&ids[0], None, 0, 1), Some(Error::IllegalGeneration));
    assert_eq!(g.validate_commit("", None, -1, 1), Some(Error::UnknownMemberId), "a live group is not offset-only");
}

#[test]
fn last_member_leaving_empties_the_group() {
    let cfg = cfg(0);
    let (mut g, ids) = stable_group(1, &cfg);
    let _ = g.take_dirty();
    assert_eq!(g.leave(&ids[0], None, T0 + 10, &cfg), Ok(ids[0].clone()));
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation_id, 2);
    assert!(g.take_dirty());
    assert_eq!(g.validate_commit("", None, -1, T0 + 11), None, "an empty group takes offset-only commits");
}

#[test]
fn stored_form_round_trips_into_a_stable_group() {
    let cfg = cfg(0);
    let (g, ids) = stable_group(2, &cfg);
    let back = ClassicGroup::from_stored("g", g.to_stored(), 1000);
    assert_eq!(back.state(), GroupState::Stable);
    assert_eq!(back.generation_id, 1);
    assert_eq!(back.leader_id, g.leader_id);
    for id in &ids {
        assert_eq!(back.member(id).unwrap().assignment, g.member(id).unwrap().assignment);
        assert_eq!(back.member(id).unwrap().heartbeat_deadline, 1000 + SESSION as i64);
    }
}

/// A failed write of the leader's assignment reaches every member parked in SyncGroup
/// (nobody keeps an assignment that is not stored) and the group rebalances; the members
/// rejoin into a new generation whose assignment, stored, reaches them all.
#[test]
fn a_failed_store_of_the_assignment_fails_every_sync_and_rebalances() {
    let cfg = cfg(0);
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut ra) = join_new(&mut g, 0, &cfg);
    let (b, mut rb) = join_new(&mut g, 0, &cfg);
    let mut ra2 = parked(g.join(req(&a, None), 1, &cfg));
    let _ = (ready(&mut ra), ready(&mut rb), ready(&mut ra2));
    let leader = g.leader_id.clone().unwrap();
    let other = if leader == a { b.clone() } else { a.clone() };
    let gen = g.generation_id;
    let mut other_sync = parked(g.sync(sync_req(&other, None, gen, None, vec![]), 2));
    let given = vec![(leader.clone(), Bytes::from_static(b"L")), (other.clone(), Bytes::from_static(b"O"))];
    let mut leader_sync = parked(g.sync(sync_req(&leader, None, gen, None, given.clone()), 3));
    // The leader retries while the write is in flight: it waits with the others, and the
    // assignment is written once.
    assert!(g.take_dirty());
    let mut leader_retry = parked(g.sync(sync_req(&leader, None, gen, None, given), 4));
    assert!(!g.take_dirty(), "no second write for the retry");
    let _ = ready(&mut leader_sync); // the replaced request is told to rebalance
    pending(&mut leader_retry);
    pending(&mut other_sync);
    // A stale outcome (another generation) changes nothing.
    g.assignment_stored(gen - 1, Err(Error::NotCoordinator), 5, &cfg);
    pending(&mut other_sync);
    g.assignment_stored(gen, Err(Error::NotCoordinator), 5, &cfg);
    assert_eq!(ready(&mut other_sync).error, Some(Error::NotCoordinator));
    assert_eq!(ready(&mut leader_retry).error, Some(Error::NotCoordinator));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(g.members().all(|m| m.assignment.is_empty()), "no member keeps an unstored assignment");
    assert_eq!(g.heartbeat(&other, None, gen, 6), Some(Error::RebalanceInProgress), "heartbeats send them back to JoinGroup");
    // Both rejoin: generation + 1, and this time the assignment is stored.
    let mut ja = parked(g.join(req(&a, None), 7, &cfg));
    let mut jb = parked(g.join(req(&b, None), 7, &cfg));
    let (ja, jb) = (ready(&mut ja), ready(&mut jb));
    assert_eq!((ja.generation_id, jb.generation_id), (gen + 1, gen + 1));
    let leader = ja.leader_id.clone();
    let other = if leader == a { b.clone() } else { a.clone() };
    let mut so = parked(g.sync(sync_req(&other, None, gen + 1, None, vec![]), 8));
    let mut sl = parked(g.sync(sync_req(&leader, None, gen + 1, None, vec![(other.clone(), Bytes::from_static(b"O2"))]), 8));
    stored(&mut g, 9);
    assert_eq!(ready(&mut so).assignment, Bytes::from_static(b"O2"));
    assert_eq!(ready(&mut sl).error, None);
    assert_eq!(g.state(), GroupState::Stable);
}
