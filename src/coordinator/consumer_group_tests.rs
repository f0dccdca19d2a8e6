//! KIP-848 reconciliation driven by hand: heartbeats at chosen times, no sleeping.

use super::*;
use crate::coordinator::topic_metadata::StaticTopics;

const T: Uuid = Uuid::from_u128(42);

fn topics(partitions: i32) -> StaticTopics {
    let t = StaticTopics::default();
    t.0.lock().unwrap().insert("t".into(), (T, partitions));
    t
}

fn cfg() -> GroupConfig {
    GroupConfig { consumer_session_timeout_ms: 10_000, ..GroupConfig::default() }
}

fn join(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 5000,
        subscribed_topics: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    }
}

fn beat(id: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
    Heartbeat { member_id: id.into(), member_epoch: epoch, owned: Some(owned.clone()), ..Default::default() }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get(&T).cloned().unwrap_or_default()
}

#[test]
fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
    let (cfg, tp) = (cfg(), topics(6));
    let mut g = ConsumerGroup::new("g", &cfg);
    let a = g.heartbeat(join("a"), 0, &cfg, &tp).unwrap();
    assert_eq!((a.member_epoch, parts(a.assignment.as_ref().unwrap()).len()), (1, 6));
    assert_eq!(g.state_name(), "Stable");
    let a_owned = a.assignment.unwrap();

    let b = g.heartbeat(join("b"), 10, &cfg, &tp).unwrap();
    // b is at the new epoch but its target partitions are still a's.
    assert_eq!(b.member_epoch, 2);
    assert!(parts(b.assignment.as_ref().unwrap()).is_empty());
    assert_eq!(g.state_name(), "Reconciling");

    // a is told to give up half, keeping its epoch until it has.
    let a2 = g.heartbeat(beat("a", 1, &a_owned), 20, &cfg, &tp).unwrap();
    assert_eq!(a2.member_epoch, 1);
    let kept = a2.assignment.unwrap();
    assert_eq!(parts(&kept).len(), 3);
    // b heartbeats: nothing released yet.
    let mut b2 = beat("b", 2, &Assignment::new());
    b2.owned = None;
    let b2 = g.heartbeat(b2, 30, &cfg, &tp).unwrap();
    assert_eq!(b2.assignment, None, "unchanged assignment is not resent");
    // a confirms the revocation: new epoch.
    let a3 = g.heartbeat(beat("a", 1, &kept), 40, &cfg, &tp).unwrap();
    assert_eq!(a3.member_epoch, 2);
    // b now receives the released partitions.
    let b3 = g.heartbeat(beat("b", 2, &Assignment::new()), 50, &cfg, &tp).unwrap();
    let b_parts = parts(b3.assignment.as_ref().unwrap());
    assert_eq!(b_parts.len(), 3);
    assert!(b_parts.is_disjoint(&parts(&kept)));
    assert_eq!(g.state_name(), "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_unknown_members_refused() {
    let (cfg, tp) = (cfg(), topics(2));
    let mut g = ConsumerGroup::new("g", &cfg);
    let a = g.heartbeat(join("a"), 0, &cfg, &tp).unwrap();
    let owned = a.assignment.unwrap();
    assert_eq!(g.heartbeat(beat("a", 7, &owned), 1, &cfg, &tp).unwrap_err().0, Error::FencedMemberEpoch);
    assert_eq!(g.heartbeat(beat("zz", 1, &owned), 1, &cfg, &tp).unwrap_err().0, Error::UnknownMemberId);
    let mut bad = join("c");
    bad.subscribed_topics = None;
    assert_eq!(g.heartbeat(bad, 1, &cfg, &tp).unwrap_err().0, Error::InvalidRequest);
}

#[test]
fn an_expired_member_is_removed_and_its_partitions_reassigned() {
    let (cfg, tp) = (cfg(), topics(4));
    let mut g = ConsumerGroup::new("g", &cfg);
    let a = g.heartbeat(join("a"), 0, &cfg, &tp).unwrap();
    let b = g.heartbeat(join("b"), 0, &cfg, &tp).unwrap();
    let a2 = g.heartbeat(beat("a", a.member_epoch, a.assignment.as_ref().unwrap()), 100, &cfg, &tp).unwrap();
    let kept = a2.assignment.unwrap();
    let a3 = g.heartbeat(beat("a", a2.member_epoch, &kept), 200, &cfg, &tp).unwrap();
    let _ = g.heartbeat(beat("b", b.member_epoch, &Assignment::new()), 300, &cfg, &tp).unwrap();
    assert_eq!(g.members().count(), 2);
    // b goes silent; a keeps heartbeating.
    let mut owned = kept;
    let mut epoch = a3.member_epoch;
    let mut t = 300;
    while t < 10_300 {
        t += 2000;
        assert!(!g.tick(t) || g.member("b").is_none());
        let r = g.heartbeat(beat("a", epoch, &owned), t, &cfg, &tp).unwrap();
        epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            owned = a;
        }
    }
    assert!(g.member("b").is_none(), "b expired after its session timeout");
    assert_eq!(parts(&owned).len(), 4, "a owns everything again");
}

#[test]
fn a_static_member_that_leaves_and_returns_keeps_its_assignment() {
    let (cfg, tp) = (cfg(), topics(4));
    let mut g = ConsumerGroup::new("g", &cfg);
    let mut ja = join("a1");
    ja.instance_id = Some("inst".into());
    let a = g.heartbeat(ja, 0, &cfg, &tp).unwrap();
    let owned = a.assignment.unwrap();
    let leave = Heartbeat { member_id: "a1".into(), member_epoch: STATIC_LEAVE_EPOCH, instance_id: Some("inst".into()), ..Default::default() };
    g.heartbeat(leave, 10, &cfg, &tp).unwrap();
    let epoch_before = g.group_epoch;
    let mut back = join("a2");
    back.instance_id = Some("inst".into());
    let r = g.heartbeat(back, 20, &cfg, &tp).unwrap();
    assert_eq!(r.member_id, "a2");
    assert_eq!(r.assignment.unwrap(), owned);
    assert_eq!(g.group_epoch, epoch_before, "no rebalance");
    // While the instance is active, another member id for it is refused.
    let mut dup = join("a3");
    dup.instance_id = Some("inst".into());
    assert_eq!(g.heartbeat(dup, 30, &cfg, &tp).unwrap_err().0, Error::UnreleasedInstanceId);
}

#[test]
fn new_partitions_bump_the_epoch_and_are_assigned() {
    let (cfg, tp) = (cfg(), topics(2));
    let mut g = ConsumerGroup::new("g", &cfg);
    let a = g.heartbeat(join("a"), 0, &cfg, &tp).unwrap();
    tp.0.lock().unwrap().insert("t".into(), (T, 5));
    let r = g.heartbeat(beat("a", a.member_epoch, a.assignment.as_ref().unwrap()), 10, &cfg, &tp).unwrap();
    assert!(r.member_epoch > a.member_epoch);
    assert_eq!(parts(r.assignment.as_ref().unwrap()).len(), 5);
}

#[test]
fn repeated_heartbeats_with_the_same_subscription_keep_the_epoch() {
    let (cfg, tp) = (cfg(), topics(2));
    let mut g = ConsumerGroup::new("g", &cfg);
    let mut first = join("a");
    first.subscribed_regex = Some(String::new()); // clients may send "" for "no pattern"
    let a = g.heartbeat(first, 0, &cfg, &tp).unwrap();
    let owned = a.assignment.unwrap();
    for t in 1..5 {
        let mut hb = beat("a", a.member_epoch, &owned);
        hb.subscribed_topics = Some(vec!["t".into()]);
        hb.subscribed_regex = Some(String::new());
        hb.server_assignor = Some(String::new());
        let r = g.heartbeat(hb, t, &cfg, &tp).unwrap();
        assert_eq!(r.member_epoch, a.member_epoch, "nothing changed: no new epoch");
    }
    assert_eq!(g.group_epoch, 1);
}

#[test]
fn a_commit_one_epoch_behind_is_accepted_only_for_partitions_the_member_kept() {
    let (cfg, tp) = (cfg(), topics(6));
    let mut g = ConsumerGroup::new("g", &cfg);
    let a_owned = g.heartbeat(join("a"), 0, &cfg, &tp).unwrap().assignment.unwrap();
    g.heartbeat(join("b"), 10, &cfg, &tp).unwrap();
    let kept = g.heartbeat(beat("a", 1, &a_owned), 20, &cfg, &tp).unwrap().assignment.unwrap();
    assert_eq!(g.heartbeat(beat("a", 1, &kept), 40, &cfg, &tp).unwrap().member_epoch, 2);
    let given_up: Vec<i32> = parts(&a_owned).difference(&parts(&kept)).copied().collect();
    let kept: Vec<i32> = parts(&kept).into_iter().collect();
    let commit = |ps: &[i32]| ps.iter().map(|p| (Some(T), *p)).collect::<Vec<_>>();
    // a's commit sent at epoch 1, just before it learned of epoch 2.
    assert_eq!(g.validate_commit("a", 1, &commit(&kept), Error::StaleMemberEpoch), None, "partitions it kept");
    assert_eq!(g.validate_commit("a", 1, &commit(&given_up), Error::StaleMemberEpoch), Some(Error::StaleMemberEpoch), "partitions now b's");
    assert_eq!(g.validate_commit("a", 2, &commit(&kept), Error::StaleMemberEpoch), None);
    assert_eq!(g.validate_commit("a", 0, &commit(&kept), Error::StaleMemberEpoch), Some(Error::StaleMemberEpoch), "two epochs behind");
    assert_eq!(g.validate_commit("a", 3, &commit(&kept), Error::StaleMemberEpoch), Some(Error::StaleMemberEpoch), "ahead of the group");
    assert_eq!(g.validate_commit("a", 1, &[(None, kept[0])], Error::StaleMemberEpoch), Some(Error::StaleMemberEpoch), "unknown topic");
}
