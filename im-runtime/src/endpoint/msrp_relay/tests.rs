//! The relay's tables hold what an idle session needs and no more (issue 11 item 4), and
//! find what they held before.

use super::*;
use crate::endpoint::ids::Ids;
use crate::proto::sdp::msrp::MsrpAttributes;
use crate::steer::Shard;
use std::collections::VecDeque;

fn relay() -> MsrpRelay {
    MsrpRelay::new(&EndpointConfig::new(
        "127.0.0.1:5060".parse().expect("an address"),
        "127.0.0.1:2855".parse().expect("an address"),
    ))
}

/// Leg `i` of session `sid` registered and answered with a passive invitee at `port`: the
/// relay connects; returns the connection.
fn answered_leg(r: &mut MsrpRelay, ids: &mut Ids, sid: SessionId, i: usize, port: u16) -> ConnId {
    let local: Arc<str> = ids.msrp_session_id().into();
    r.register_leg(sid, i, &local, false);
    let attrs = MsrpAttributes::read(
        [
            (
                "path",
                Some(format!("msrp://127.0.0.2:{port}/s{i};tcp").as_str()),
            ),
            ("setup", Some("passive")),
        ]
        .iter()
        .map(|(n, v)| (*n, v.as_deref())),
        std::iter::empty(),
    );
    let mut out = VecDeque::new();
    r.leg_answered(sid, i, &attrs, &mut out)
        .expect("the relay connects to a passive invitee")
}

#[test]
fn a_connection_has_no_decoder_until_bytes_come() {
    let mut r = relay();
    let mut ids = Ids::new(3, Shard::default());
    let sid = SessionId(1);
    let conn = answered_leg(&mut r, &mut ids, sid, 0, 30_000);
    let mut events = Vec::new();
    let mut out = VecDeque::new();
    r.opened(conn, false, &mut events, [0; 10], &mut out);
    assert!(r.leg_ready(sid, 0));
    assert!(
        r.conns.get(&conn).is_some_and(|c| c.decoder.is_none()),
        "an idle connection holds no decoder"
    );
    // A response to nothing of ours: read (and ignored), with a decoder made for it.
    r.handle_bytes(
        conn,
        b"MSRP x1 200 OK\r\nTo-Path: msrp://127.0.0.1:2855/a;tcp\r\nFrom-Path: msrp://127.0.0.2:30000/s0;tcp\r\n-------x1$\r\n",
        &mut events,
        [0; 10],
        &mut out,
    );
    assert!(r.conns.get(&conn).is_some_and(|c| c.decoder.is_some()));
    assert!(!out.iter().any(|o| matches!(o, Output::Close { .. })));
}

#[test]
fn sides_are_filed_per_session_and_forgotten_with_it() {
    let mut r = relay();
    let mut ids = Ids::new(5, Shard::default());
    for s in 1..=2 {
        for i in 0..3 {
            answered_leg(&mut r, &mut ids, SessionId(s), i, 30_000 + i as u16);
        }
    }
    assert_eq!(r.sides.sessions(), 2, "one entry per session, not per side");
    assert!(
        r.sides
            .get(&SideKey::leg(SessionId(2), 2).expect("a key"))
            .is_some()
    );
    let mut out = VecDeque::new();
    r.close_session(SessionId(1), 3, &mut out);
    assert_eq!(r.sides.sessions(), 1);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Close { .. }))
            .count(),
        3,
        "each leg's connection closed"
    );
    assert!(
        r.sides
            .get(&SideKey::leg(SessionId(1), 0).expect("a key"))
            .is_none()
    );
    assert!(
        r.sides
            .get(&SideKey::leg(SessionId(2), 0).expect("a key"))
            .is_some()
    );
}

#[test]
fn our_session_ids_have_distinct_keys_and_are_found_whole() {
    let mut ids = Ids::new(11, Shard::default());
    let mut keys = std::collections::HashSet::new();
    for _ in 0..1_000 {
        let sid = ids.msrp_session_id();
        let k = sid_key(&sid).expect("an id of ours has a key");
        assert!(keys.insert(k), "no two of our ids share a key");
    }
    for other in [
        "",
        "0123456789abcde",
        "0123456789ABCDEF0000",
        "0123456789abcdeg0000",
    ] {
        assert_eq!(sid_key(other), None, "{other:?}");
    }
    let mut r = relay();
    let local: Arc<str> = ids.msrp_session_id().into();
    r.register_leg(SessionId(7), 0, &local, false);
    let key = SideKey::leg(SessionId(7), 0);
    assert_eq!(r.by_local(&local), key);
    // Same key, different id: not ours.
    let mut other = local.to_string();
    let last = if other.ends_with('0') { "1" } else { "0" };
    other.replace_range(other.len() - 1.., last);
    assert_eq!(sid_key(&other), sid_key(&local));
    assert_eq!(r.by_local(&other), None);
    let mut out = VecDeque::new();
    r.close_leg(SessionId(7), 0, &mut out);
    assert_eq!(r.by_local(&local), None);
    assert!(r.by_local.is_empty());
}

#[test]
fn a_side_that_receives_nothing_keeps_one_pointer_for_receiving() {
    // Every side of every session is one of these (4 for a group session of 3): the
    // receive state only the originator's side uses is behind one pointer.
    assert!(
        std::mem::size_of::<Side>() <= 72,
        "{}",
        std::mem::size_of::<Side>()
    );
    assert_eq!(std::mem::size_of::<Option<Box<Inbound>>>(), 8);
}
