//! What a page-mode MESSAGE's copies leave behind, in virtual time (`endpoint/copies.rs`,
//! the transaction table's `linger_non_invite_clients`): a copy's transaction ends with
//! its final answer, over UDP too, so the endpoint holds nothing for it once every copy is
//! answered; an answer sent again (a recipient retransmitting its 200 or its 486) then
//! matches nothing and changes nothing: nothing is sent, no session or count moves, as
//! when RFC 3261's Timer K kept the transaction to absorb it.

mod common;

use common::harness::{ALICE, Sim, udp_to};
use common::*;
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use im_runtime::transport::Output;
use std::time::Duration;

fn copy_to(out: &[Output], to: &str) -> Message {
    let m = udp_to(out, to);
    assert_eq!(m.len(), 1, "one copy to {to}: {out:?}");
    let copy = m.into_iter().next().expect("one");
    assert_eq!(copy.method(), Some(&Method::Message), "{copy:?}");
    copy
}

#[test]
fn a_copy_ends_with_its_answer_and_a_retransmitted_answer_changes_nothing() {
    let knobs = Knobs {
        page_mode: true,
        ..Knobs::default()
    };
    let mut sim = Sim::registrar(knobs, Locations::default(), |_| {});
    let (bob, carol) = ("127.0.0.2:5080", "127.0.0.2:5081");
    let out = sim.udp(
        ALICE,
        &list_message(
            "pm1",
            "z9hG4bKpm1",
            "hello",
            &[&format!("sip:bob@{bob}"), &format!("sip:carol@{carol}")],
        ),
    );
    let (to_bob, to_carol) = (copy_to(&out, bob), copy_to(&out, carol));
    // The originator's MESSAGE and the two copies; the copies filed under their session.
    assert_eq!(sim.ep.transactions(), (3, 2), "{out:?}");

    let answers = [
        (bob, response_to(&to_bob, 200, "b1", None)),
        (carol, response_to(&to_carol, 486, "c1", None)),
    ];
    let mut first = Vec::new();
    for (who, answer) in &answers {
        first.extend(sim.udp(who, answer));
    }
    // Both copies answered: their transactions are gone, over UDP as over TCP; only the
    // originator's MESSAGE lingers (Timer J), for its own retransmissions.
    assert_eq!(sim.ep.transactions(), (1, 0), "{first:?}");
    let stats = format!("{:?}", sim.ep.live_stats().snapshot());

    for _ in 0..2 {
        for (who, answer) in &answers {
            let out = sim.udp(who, answer);
            let sent = out
                .iter()
                .any(|o| matches!(o, Output::Datagram { .. } | Output::StreamSend { .. }));
            assert!(!sent, "{out:?}");
        }
    }
    assert_eq!(sim.ep.transactions(), (1, 0));
    assert_eq!(format!("{:?}", sim.ep.live_stats().snapshot()), stats);

    // Past Timer J the originator's transaction ends too; nothing is left and nothing was
    // waiting on the copies.
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.ep.transactions(), (0, 0));
    sim.still_serving("after the copies");
}
