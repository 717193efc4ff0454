//! RFC 3261 §17 / RFC 6026 transactions in virtual time: every timer and state transition
//! of the four machines, over UDP and TCP, plus CANCEL and the table's bookkeeping.

mod sim;

use im_runtime::Method;
use im_runtime::proto::transaction::{
    CancelStart, Event, Rfc2543Parts, Role, Timer, TimerConfig, TopVia, TransactionsConfig,
    TsxError, TsxKey, TsxMessage, TsxState,
};
use sim::{Sim, key, ms, req, resp, tcp, udp};

const B1: &str = "z9hG4bK1";

fn terminated(key: &TsxKey, role: Role) -> Event {
    Event::Terminated {
        key: key.clone(),
        role,
    }
}

fn timeout(key: &TsxKey, role: Role, timer: Timer) -> Event {
    Event::Timeout {
        key: key.clone(),
        role,
        timer,
    }
}

// ---------------------------------------------------------------- INVITE server

#[test]
fn invite_server_trying_and_duplicate_passed_up_once() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv.clone(), udp());
    assert_eq!(s.take_sent(), ["100 to INVITE z9hG4bK1"]);
    assert_eq!(
        s.take_events(),
        [Event::Request {
            message: inv.clone(),
            peer: udp()
        }]
    );
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Proceeding));
    // Two retransmissions: each answered with the 100 from the transaction, none passed up.
    s.now += ms(500);
    s.request(inv.clone(), udp());
    s.request(inv.clone(), udp());
    assert_eq!(s.take_sent(), ["100 to INVITE z9hG4bK1"; 2]);
    assert!(s.take_events().is_empty());
    // The latest provisional response replaces the 100.
    s.reply(&k, 180);
    s.request(inv, udp());
    assert_eq!(
        s.take_sent(),
        ["180 to INVITE z9hG4bK1", "180 to INVITE z9hG4bK1"]
    );
    assert!(s.take_events().is_empty());
    // Proceeding runs no timer: the TU owns the pace.
    assert_eq!(s.tsx.poll_timeout(), None);
}

#[test]
fn invite_server_without_automatic_trying_absorbs_retransmissions_silently() {
    let mut s = Sim::new(TransactionsConfig {
        send_trying: false,
        ..TransactionsConfig::default()
    });
    let inv = req(Method::Invite, B1);
    s.request(inv.clone(), udp());
    s.request(inv.clone(), udp());
    assert!(s.take_sent().is_empty());
    assert_eq!(s.take_events().len(), 1);
    // The TU sends its own 100.
    s.reply(&inv.key, 100);
    assert_eq!(s.take_sent(), ["100 to INVITE z9hG4bK1"]);
}

#[test]
fn invite_server_2xx_accepted_timer_l() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv.clone(), udp());
    s.take_sent();
    s.take_events();
    s.reply(&k, 200);
    assert_eq!(s.take_sent(), ["200 to INVITE z9hG4bK1"]);
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Accepted));
    // RFC 6026: a retransmitted INVITE is absorbed, neither answered nor passed up.
    s.now += ms(1000);
    s.request(inv, udp());
    assert!(s.take_sent().is_empty());
    assert!(s.take_events().is_empty());
    // The TU retransmits its 2xx through the transaction.
    s.tsx
        .respond(s.now, &k, 200, "200 again".into())
        .expect("2xx retransmission while Accepted");
    s.drain();
    assert_eq!(s.take_sent(), ["200 again"]);
    // An ACK matching the transaction is passed up (the 2xx-ACK belongs to the TU).
    let ack = req(Method::Ack, B1);
    s.request(ack.clone(), udp());
    assert_eq!(
        s.take_events(),
        [Event::Ack {
            message: ack,
            peer: udp()
        }]
    );
    // Non-2xx is refused in Accepted.
    assert_eq!(
        s.tsx.reply(s.now, &k, 486),
        Err(TsxError::InvalidState {
            state: TsxState::Accepted
        })
    );
    // Timer L = 64·T1 after the 2xx.
    s.run_until(ms(31_999));
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Accepted));
    s.run_to_idle();
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(s.take_events(), [terminated(&k, Role::Server)]);
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_server_non2xx_timer_g_until_timer_h_over_udp() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv, udp());
    s.take_sent();
    s.take_events();
    s.reply(&k, 486);
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Completed));
    s.run_to_idle();
    // T1 doubling to T2 = 4 s: 0.5, 1.5, 3.5, 7.5, then every 4 s until Timer H at 32 s.
    assert_eq!(
        s.sent_at("486 to INVITE z9hG4bK1"),
        [
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        s.take_events(),
        [
            timeout(&k, Role::Server, Timer::H),
            terminated(&k, Role::Server)
        ]
    );
    assert_eq!(s.elapsed(), ms(32_000));
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_server_non2xx_over_tcp_sends_once_and_times_out_on_h() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv, tcp());
    s.reply(&k, 603);
    s.take_events();
    s.run_to_idle();
    assert_eq!(s.sent_at("603 to INVITE z9hG4bK1"), [0]);
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(
        s.take_events(),
        [
            timeout(&k, Role::Server, Timer::H),
            terminated(&k, Role::Server)
        ]
    );
}

#[test]
fn invite_server_ack_confirms_then_timer_i() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv.clone(), udp());
    s.reply(&k, 404);
    s.take_sent();
    s.take_events();
    // Completed: a retransmitted INVITE gets the final response again, not the 100.
    s.run_until(ms(1000));
    s.request(inv.clone(), udp());
    assert_eq!(s.take_sent(), ["404 to INVITE z9hG4bK1"; 2]); // Timer G at 0.5 s + the answer
    s.request(req(Method::Ack, B1), udp());
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Confirmed));
    // ACK retransmissions and late INVITEs are absorbed; Timer G no longer runs.
    s.request(req(Method::Ack, B1), udp());
    s.request(inv, udp());
    assert!(s.take_events().is_empty());
    s.run_to_idle();
    assert!(s.take_sent().is_empty());
    // Timer I = T4 = 5 s after the ACK.
    assert_eq!(s.elapsed(), ms(6000));
    assert_eq!(s.take_events(), [terminated(&k, Role::Server)]);
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_server_ack_over_tcp_terminates_at_once() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv, tcp());
    s.reply(&k, 480);
    s.take_events();
    s.request(req(Method::Ack, B1), tcp());
    // Timer I is 0 on a reliable transport.
    assert_eq!(s.take_events(), [terminated(&k, Role::Server)]);
    assert!(s.tsx.is_empty());
    assert_eq!(s.tsx.poll_timeout(), None);
}

#[test]
fn invite_server_refuses_a_second_final_response() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv, udp());
    s.reply(&k, 500);
    assert_eq!(
        s.tsx.reply(s.now, &k, 200),
        Err(TsxError::InvalidState {
            state: TsxState::Completed
        })
    );
    assert_eq!(
        s.tsx.reply(s.now, &k, 180),
        Err(TsxError::InvalidState {
            state: TsxState::Completed
        })
    );
}

// ---------------------------------------------------------------- non-INVITE server

#[test]
fn non_invite_server_trying_proceeding_completed_timer_j_udp() {
    let mut s = Sim::default_config();
    let msg = req(Method::Message, B1);
    let k = msg.key.clone();
    s.request(msg.clone(), udp());
    // No automatic 100 for non-INVITE; Trying absorbs retransmissions silently.
    assert!(s.take_sent().is_empty());
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Trying));
    s.request(msg.clone(), udp());
    assert!(s.take_sent().is_empty());
    assert_eq!(s.take_events().len(), 1, "passed up exactly once");
    s.reply(&k, 100);
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Proceeding));
    s.request(msg.clone(), udp());
    assert_eq!(s.take_sent(), ["100 to MESSAGE z9hG4bK1"; 2]);
    s.now += ms(2000);
    s.reply(&k, 202);
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Completed));
    s.request(msg.clone(), udp());
    assert_eq!(s.take_sent(), ["202 to MESSAGE z9hG4bK1"; 2]);
    assert_eq!(
        s.tsx.reply(s.now, &k, 200),
        Err(TsxError::InvalidState {
            state: TsxState::Completed
        })
    );
    // Completed sends nothing by itself: no retransmission timer for non-INVITE responses.
    s.run_until(ms(33_999));
    assert!(s.take_sent().is_empty());
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Completed));
    s.run_to_idle();
    // Timer J = 64·T1 after the final response at 2 s.
    assert_eq!(s.elapsed(), ms(34_000));
    assert_eq!(s.take_events(), [terminated(&k, Role::Server)]);
    assert!(s.tsx.is_empty());
}

#[test]
fn non_invite_server_final_over_tcp_terminates_at_once() {
    let mut s = Sim::default_config();
    let msg = req(Method::Options, B1);
    let k = msg.key.clone();
    s.request(msg, tcp());
    s.take_events();
    s.reply(&k, 200);
    assert_eq!(s.take_events(), [terminated(&k, Role::Server)]);
    assert!(s.tsx.is_empty());
}

// ---------------------------------------------------------------- INVITE client

#[test]
fn invite_client_timer_a_until_timer_b_over_udp() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Calling));
    s.run_to_idle();
    // Timer A doubles from T1 with no cap: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; Timer B at 32.
    assert_eq!(
        s.sent_at("INVITE z9hG4bK1"),
        [0, 500, 1500, 3500, 7500, 15_500, 31_500]
    );
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(
        s.take_events(),
        [
            timeout(&k, Role::Client, Timer::B),
            terminated(&k, Role::Client)
        ]
    );
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_client_over_tcp_sends_once_and_times_out_on_b() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), tcp());
    s.run_to_idle();
    assert_eq!(s.sent_at("INVITE z9hG4bK1"), [0]);
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(s.take_events()[0], timeout(&k, Role::Client, Timer::B));
}

#[test]
fn invite_client_timers_follow_t1() {
    // A shorter T1 (and per-transaction timers) scales Timers A and B.
    let mut s = Sim::default_config();
    let timers = TimerConfig {
        t1: ms(100),
        ..TimerConfig::default()
    };
    s.tsx
        .send_request_with(s.now, req(Method::Invite, B1), udp(), timers)
        .unwrap();
    s.drain();
    s.run_to_idle();
    assert_eq!(
        s.sent_at("INVITE z9hG4bK1"),
        [0, 100, 300, 700, 1500, 3100, 6300]
    );
    assert_eq!(s.elapsed(), ms(6400));
}

#[test]
fn invite_client_provisional_stops_retransmissions_and_timer_b() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.run_until(ms(1000));
    let ringing = resp(Method::Invite, B1, 180);
    s.response(ringing.clone());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Proceeding));
    assert_eq!(
        s.take_events(),
        [Event::Response {
            message: ringing.clone()
        }]
    );
    // Every provisional response is passed up.
    s.response(ringing);
    assert_eq!(s.take_events().len(), 1);
    // No timer in Proceeding: the INVITE waits for its final response (or the TU's CANCEL).
    assert_eq!(s.tsx.poll_timeout(), None);
    assert_eq!(s.sent_at("INVITE z9hG4bK1"), [0, 500]);
}

#[test]
fn invite_client_non2xx_is_acked_by_the_transaction_timer_d() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.response(resp(Method::Invite, B1, 100));
    s.now += ms(2000);
    let busy = resp(Method::Invite, B1, 486);
    s.response(busy.clone());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Completed));
    assert_eq!(
        s.take_sent(),
        ["INVITE z9hG4bK1", "ACK 486 for INVITE z9hG4bK1"]
    );
    assert_eq!(
        s.take_events().last(),
        Some(&Event::Response {
            message: busy.clone()
        })
    );
    // A retransmitted final response is ACKed again and not passed up.
    s.now += ms(500);
    s.response(busy);
    assert_eq!(s.take_sent(), ["ACK 486 for INVITE z9hG4bK1"]);
    assert!(s.take_events().is_empty());
    // Timer D = 32 s after entering Completed (at 2 s).
    s.run_to_idle();
    assert_eq!(s.elapsed(), ms(34_000));
    assert_eq!(s.take_events(), [terminated(&k, Role::Client)]);
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_client_non2xx_over_tcp_terminates_after_the_ack() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), tcp());
    s.response(resp(Method::Invite, B1, 603));
    assert_eq!(
        s.take_sent(),
        ["INVITE z9hG4bK1", "ACK 603 for INVITE z9hG4bK1"]
    );
    assert_eq!(s.take_events().last(), Some(&terminated(&k, Role::Client)));
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_client_2xx_accepted_passes_further_2xx_timer_m() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.now += ms(200);
    let ok = resp(Method::Invite, B1, 200);
    s.response(ok.clone());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Accepted));
    // The transaction does not ACK a 2xx: the TU does.
    assert_eq!(s.take_sent(), ["INVITE z9hG4bK1"]);
    // Retransmitted (or forked) 2xx go up; anything else is dropped.
    s.response(ok.clone());
    s.response(resp(Method::Invite, B1, 486));
    s.response(resp(Method::Invite, B1, 180));
    assert_eq!(
        s.take_events(),
        [
            Event::Response {
                message: ok.clone()
            },
            Event::Response { message: ok }
        ]
    );
    assert!(s.take_sent().is_empty());
    s.run_to_idle();
    // Timer M = 64·T1 after the first 2xx; Timer A stopped with it.
    assert_eq!(s.elapsed(), ms(32_200));
    assert!(s.sent.is_empty());
    assert_eq!(s.take_events(), [terminated(&k, Role::Client)]);
}

// ---------------------------------------------------------------- non-INVITE client

#[test]
fn non_invite_client_timer_e_until_timer_f_over_udp() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), udp());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Trying));
    s.run_to_idle();
    // T1 doubling, capped at T2 = 4 s.
    assert_eq!(
        s.sent_at("MESSAGE z9hG4bK1"),
        [
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(
        s.take_events(),
        [
            timeout(&k, Role::Client, Timer::F),
            terminated(&k, Role::Client)
        ]
    );
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), udp());
    s.run_until(ms(1000));
    s.response(resp(Method::Message, B1, 100));
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Proceeding));
    s.run_to_idle();
    // The pending Timer E (1.5 s) still fires, then it is reset to T2 each time.
    assert_eq!(
        s.sent_at("MESSAGE z9hG4bK1"),
        [
            0, 500, 1500, 5500, 9500, 13_500, 17_500, 21_500, 25_500, 29_500
        ]
    );
    assert_eq!(s.elapsed(), ms(32_000));
    let events = s.take_events();
    assert_eq!(
        events[1..],
        [
            timeout(&k, Role::Client, Timer::F),
            terminated(&k, Role::Client)
        ]
    );
}

#[test]
fn non_invite_client_completed_absorbs_retransmissions_timer_k() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), udp());
    s.now += ms(300);
    let ok = resp(Method::Message, B1, 200);
    s.response(ok.clone());
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Completed));
    s.response(ok.clone());
    s.response(resp(Method::Message, B1, 100));
    assert_eq!(s.take_events(), [Event::Response { message: ok }]);
    s.run_to_idle();
    // Timer K = T4 = 5 s; Timer E stopped, so only the original request went out.
    assert_eq!(s.elapsed(), ms(5300));
    assert_eq!(s.sent_at("MESSAGE z9hG4bK1"), [0]);
    assert_eq!(s.take_events(), [terminated(&k, Role::Client)]);
}

#[test]
fn non_invite_client_over_tcp() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), tcp());
    s.run_until(ms(10_000));
    assert_eq!(s.sent_at("MESSAGE z9hG4bK1"), [0]);
    s.response(resp(Method::Message, B1, 404));
    // Timer K is 0 on a reliable transport.
    assert_eq!(s.take_events().last(), Some(&terminated(&k, Role::Client)));
    assert!(s.tsx.is_empty());
    // And Timer F still bounds a silent peer.
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), tcp());
    s.run_to_idle();
    assert_eq!(s.elapsed(), ms(32_000));
    assert_eq!(s.take_events()[0], timeout(&k, Role::Client, Timer::F));
}

// ---------------------------------------------------------------- CANCEL

#[test]
fn cancel_server_answers_200_and_asks_for_487() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    let k = inv.key.clone();
    s.request(inv, udp());
    s.take_sent();
    s.take_events();
    let cancel = req(Method::Cancel, B1);
    let ck = cancel.key.clone();
    s.request(cancel.clone(), udp());
    assert_eq!(s.take_sent(), ["200 to CANCEL z9hG4bK1"]);
    assert_eq!(s.take_events(), [Event::Cancelled { invite: k.clone() }]);
    assert_eq!(s.state(Role::Server, &ck), Some(TsxState::Completed));
    // A retransmitted CANCEL gets the 200 again and does not cancel twice.
    s.request(cancel, udp());
    assert_eq!(s.take_sent(), ["200 to CANCEL z9hG4bK1"]);
    assert!(s.take_events().is_empty());
    // The TU answers the INVITE 487; the ACK completes it.
    s.reply(&k, 487);
    assert_eq!(s.take_sent(), ["487 to INVITE z9hG4bK1"]);
    s.request(req(Method::Ack, B1), udp());
    assert_eq!(s.state(Role::Server, &k), Some(TsxState::Confirmed));
    s.run_to_idle();
    assert!(s.tsx.is_empty());
    // Timer J of the CANCEL (64·T1) outlasts Timer I of the INVITE.
    assert_eq!(s.elapsed(), ms(32_000));
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut s = Sim::default_config();
    s.request(req(Method::Cancel, B1), udp());
    assert_eq!(s.take_sent(), ["481 to CANCEL z9hG4bK1"]);
    assert!(s.take_events().is_empty());
    // A CANCEL whose branch matches an INVITE from another sent-by matches nothing either.
    s.request(req(Method::Invite, "z9hG4bK2"), udp());
    let other = TsxKey::from_branch(&Method::Cancel, "z9hG4bK2", "elsewhere.example.com");
    let msg = TsxMessage::request(other, Method::Cancel, "CANCEL other".into());
    s.request(msg, udp());
    assert_eq!(
        s.take_sent().last().map(String::as_str),
        Some("481 to CANCEL other")
    );
}

#[test]
fn cancel_after_the_final_response_gets_200_without_effect() {
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    s.request(inv.clone(), udp());
    s.reply(&inv.key, 200);
    s.take_sent();
    s.take_events();
    s.request(req(Method::Cancel, B1), udp());
    assert_eq!(s.take_sent(), ["200 to CANCEL z9hG4bK1"]);
    assert!(s.take_events().is_empty(), "nothing left to cancel");
    assert_eq!(s.state(Role::Server, &inv.key), Some(TsxState::Accepted));
}

#[test]
fn cancel_client_waits_for_a_provisional_response() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    let ck = key(&Method::Cancel, B1);
    assert_eq!(
        s.tsx.cancel(s.now, &k),
        Ok(CancelStart::Deferred(ck.clone()))
    );
    assert_eq!(s.state(Role::Client, &ck), None);
    s.run_until(ms(600));
    s.response(resp(Method::Invite, B1, 180));
    // §9.1: the CANCEL goes out once the 180 is in, as its own client transaction.
    assert_eq!(
        s.take_sent(),
        [
            "INVITE z9hG4bK1",
            "INVITE z9hG4bK1",
            "CANCEL for INVITE z9hG4bK1"
        ]
    );
    assert_eq!(s.state(Role::Client, &ck), Some(TsxState::Trying));
    let ok = resp(Method::Cancel, B1, 200);
    s.response(ok.clone());
    s.response(resp(Method::Invite, B1, 487));
    assert_eq!(s.take_sent(), ["ACK 487 for INVITE z9hG4bK1"]);
    let events = s.take_events();
    assert!(events.contains(&Event::Response { message: ok }));
    assert!(events.contains(&Event::Response {
        message: resp(Method::Invite, B1, 487)
    }));
    assert_eq!(
        s.tsx.cancel(s.now, &k),
        Err(TsxError::InvalidState {
            state: TsxState::Completed
        })
    );
    s.run_to_idle();
    assert!(s.tsx.is_empty());
}

#[test]
fn cancel_client_in_proceeding_goes_out_at_once() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.response(resp(Method::Invite, B1, 183));
    s.take_sent();
    let ck = key(&Method::Cancel, B1);
    assert_eq!(s.tsx.cancel(s.now, &k), Ok(CancelStart::Sent(ck.clone())));
    s.drain();
    assert_eq!(s.take_sent(), ["CANCEL for INVITE z9hG4bK1"]);
    // A second CANCEL for the same INVITE is refused.
    assert_eq!(s.tsx.cancel(s.now, &k), Err(TsxError::DuplicateTransaction));
    // The CANCEL is a non-INVITE client transaction: Timer E retransmits it.
    s.run_until(ms(600));
    assert_eq!(s.take_sent(), ["CANCEL for INVITE z9hG4bK1"]);
}

#[test]
fn cancelled_invite_with_no_final_response_gives_up_after_64_t1() {
    // §9.1: a peer that sent 183 and then nothing, not even a 487 after our CANCEL, must not
    // hold the INVITE client transaction forever (nor the session waiting for it).
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.response(resp(Method::Invite, B1, 183));
    s.take_events();
    assert!(matches!(s.tsx.cancel(s.now, &k), Ok(CancelStart::Sent(_))));
    s.run_until(ms(31_900));
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Proceeding));
    assert!(
        !s.take_events()
            .iter()
            .any(|e| matches!(e, Event::Timeout { key, .. } if *key == k)),
        "no give-up before 64*T1"
    );
    s.run_until(ms(32_100));
    assert!(s.take_events().contains(&Event::Timeout {
        key: k.clone(),
        role: Role::Client,
        timer: Timer::B,
    }));
    s.run_to_idle();
    assert!(s.tsx.is_empty());
}

#[test]
fn uncancelled_invite_in_proceeding_keeps_waiting() {
    // Without a CANCEL, Proceeding stays untimed (§17.1.1.2): the TU decides how long to ring.
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.response(resp(Method::Invite, B1, 180));
    s.run_until(ms(200_000));
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Proceeding));
}

#[test]
fn deferred_cancel_is_dropped_when_a_final_response_comes_first() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    assert!(matches!(
        s.tsx.cancel(s.now, &k),
        Ok(CancelStart::Deferred(_))
    ));
    s.response(resp(Method::Invite, B1, 200));
    assert_eq!(s.take_sent(), ["INVITE z9hG4bK1"]);
    assert_eq!(s.state(Role::Client, &key(&Method::Cancel, B1)), None);
    assert_eq!(s.tsx.len(), 1);
}

// ---------------------------------------------------------------- table

#[test]
fn stray_responses_are_dropped_and_unmatched_acks_passed_up() {
    let mut s = Sim::default_config();
    s.response(resp(Method::Invite, B1, 200));
    assert!(s.take_events().is_empty());
    assert!(s.take_sent().is_empty());
    // An ACK for a 2xx carries a new branch; it matches nothing and goes to the TU.
    let ack = req(Method::Ack, "z9hG4bKack");
    s.request(ack.clone(), udp());
    assert_eq!(
        s.take_events(),
        [Event::Ack {
            message: ack,
            peer: udp()
        }]
    );
    assert!(s.tsx.is_empty(), "ACK never creates a transaction");
}

#[test]
fn table_keeps_many_transactions_and_ends_empty() {
    let mut s = Sim::default_config();
    // A server INVITE (answered 486), a server MESSAGE (200), a client INVITE (times out)
    // and a client OPTIONS (answered) run side by side.
    let inv = req(Method::Invite, "z9hG4bKs1");
    s.request(inv.clone(), udp());
    let msg = req(Method::Message, "z9hG4bKs2");
    s.request(msg.clone(), udp());
    let ci = s.send(req(Method::Invite, "z9hG4bKc1"), udp());
    let co = s.send(req(Method::Options, "z9hG4bKc2"), udp());
    assert_eq!(s.tsx.len(), 4);
    // The earliest timer over all: Timers A and E at T1.
    assert_eq!(s.tsx.poll_timeout(), Some(s.base + ms(500)));
    s.reply(&inv.key, 486);
    s.reply(&msg.key, 200);
    s.response(resp(Method::Options, "z9hG4bKc2", 200));
    s.run_to_idle();
    assert!(s.tsx.is_empty());
    let ends: Vec<_> = s
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Terminated { .. }))
        .collect();
    assert_eq!(ends.len(), 4);
    // Timer K (5 s) ends the OPTIONS first; Timers J, H and B all end at 32 s, reported in
    // creation order.
    assert_eq!(
        ends[0],
        &(
            ms(5000),
            Event::Terminated {
                key: co,
                role: Role::Client
            }
        )
    );
    let at_32: Vec<_> = s
        .events
        .iter()
        .filter(|(t, _)| *t == ms(32_000))
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(
        at_32,
        [
            timeout(&inv.key, Role::Server, Timer::H),
            terminated(&inv.key, Role::Server),
            terminated(&msg.key, Role::Server),
            timeout(&ci, Role::Client, Timer::B),
            terminated(&ci, Role::Client),
        ]
    );
}

#[test]
fn misuse_is_reported_not_panicked() {
    let mut s = Sim::default_config();
    let now = s.now;
    assert_eq!(
        s.tsx.send_request(now, req(Method::Ack, B1), udp()),
        Err(TsxError::AckIsNotATransaction)
    );
    assert_eq!(
        s.tsx
            .send_request(now, resp(Method::Invite, B1, 200), udp()),
        Err(TsxError::WrongKind {
            expected_request: true
        })
    );
    assert_eq!(
        s.tsx.handle_response(now, req(Method::Invite, B1)),
        Err(TsxError::WrongKind {
            expected_request: false
        })
    );
    assert_eq!(
        s.tsx
            .handle_request(now, resp(Method::Invite, B1, 200), udp()),
        Err(TsxError::WrongKind {
            expected_request: true
        })
    );
    let k = s.send(req(Method::Options, B1), udp());
    assert_eq!(
        s.tsx.send_request(now, req(Method::Options, B1), udp()),
        Err(TsxError::DuplicateTransaction)
    );
    assert_eq!(s.tsx.cancel(now, &k), Err(TsxError::NotAnInvite));
    assert_eq!(
        s.tsx.reply(now, &k, 200),
        Err(TsxError::UnknownTransaction { role: Role::Server })
    );
    assert_eq!(
        s.tsx.cancel(now, &key(&Method::Invite, "z9hG4bKnone")),
        Err(TsxError::UnknownTransaction { role: Role::Client })
    );
    s.request(req(Method::Invite, B1), udp());
    let inv = key(&Method::Invite, B1);
    assert_eq!(s.tsx.reply(now, &inv, 99), Err(TsxError::InvalidStatus(99)));
    assert_eq!(
        s.tsx.reply(now, &inv, 700),
        Err(TsxError::InvalidStatus(700))
    );
    // A builder that cannot write: reply fails cleanly, a CANCEL is dropped unanswered.
    s.tsx.builder_mut().fail = true;
    assert_eq!(s.tsx.reply(now, &inv, 486), Err(TsxError::Build));
    s.take_sent();
    s.request(req(Method::Cancel, B1), udp());
    assert!(s.take_sent().is_empty());
    assert_eq!(s.state(Role::Server, &key(&Method::Cancel, B1)), None);
}

#[test]
fn rfc2543_peer_is_matched_on_the_fallback_key() {
    let mut s = Sim::default_config();
    let via = "SIP/2.0/UDP old.example.com;branch=abc";
    let parts = Rfc2543Parts {
        request_uri: "sip:bob@example.com",
        from_tag: "1928",
        call_id: "a84b4c76e66710",
        cseq: 314,
    };
    let top = TopVia {
        sent_by: "old.example.com",
        branch: Some("abc"),
        raw: via,
    };
    let inv = TsxMessage::request(
        TsxKey::new(&Method::Invite, top, parts),
        Method::Invite,
        "OLD INVITE".into(),
    );
    let ack = TsxMessage::request(
        TsxKey::new(&Method::Ack, top, parts),
        Method::Ack,
        "OLD ACK".into(),
    );
    assert!(!inv.key.is_rfc3261());
    s.request(inv.clone(), udp());
    s.request(inv.clone(), udp());
    assert_eq!(s.take_events().len(), 1);
    s.reply(&inv.key, 486);
    s.request(ack, udp());
    assert_eq!(s.state(Role::Server, &inv.key), Some(TsxState::Confirmed));
}

// ---------------------------------------------------------------- remaining transitions

#[test]
fn invite_client_proceeding_to_accepted() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), udp());
    s.response(resp(Method::Invite, B1, 180));
    s.now += ms(3000);
    s.response(resp(Method::Invite, B1, 200));
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Accepted));
    s.run_to_idle();
    assert_eq!(s.elapsed(), ms(35_000));
    assert!(s.tsx.is_empty());
}

#[test]
fn non_invite_client_proceeding_to_completed() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Message, B1), udp());
    s.response(resp(Method::Message, B1, 100));
    s.run_until(ms(6000)); // Timer E: 0.5 (doubling), then T2: 4.5 s
    s.response(resp(Method::Message, B1, 200));
    assert_eq!(s.state(Role::Client, &k), Some(TsxState::Completed));
    s.run_to_idle();
    assert_eq!(s.sent_at("MESSAGE z9hG4bK1"), [0, 500, 4500]);
    assert_eq!(s.elapsed(), ms(11_000));
    assert!(s.tsx.is_empty());
}

#[test]
fn invite_server_accepted_over_tcp_still_waits_timer_l() {
    // Timer L covers 2xx-ACKs and INVITE retransmissions from upstream proxies, so it
    // runs on reliable transports too (RFC 6026 §8.7).
    let mut s = Sim::default_config();
    let inv = req(Method::Invite, B1);
    s.request(inv.clone(), tcp());
    s.reply(&inv.key, 200);
    s.run_to_idle();
    assert_eq!(s.elapsed(), ms(32_000));
    assert!(s.tsx.is_empty());
}

#[test]
fn transport_error_ends_the_transaction() {
    let mut s = Sim::default_config();
    let k = s.send(req(Method::Invite, B1), tcp());
    s.take_events();
    s.tsx.handle_transport_error(Role::Client, &k).unwrap();
    s.drain();
    assert_eq!(
        s.take_events(),
        [
            Event::TransportError {
                key: k.clone(),
                role: Role::Client
            },
            terminated(&k, Role::Client)
        ]
    );
    assert!(s.tsx.is_empty());
    assert_eq!(
        s.tsx.handle_transport_error(Role::Client, &k),
        Err(TsxError::UnknownTransaction { role: Role::Client })
    );
}

// ---------------------------------------------------------------- two tables, lossy network

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Runs one UAC–UAS exchange over the emulated network and checks what must hold whatever
/// the network did; returns the number of packets the network dropped and whether the
/// server TU was asked to answer 487 after a CANCEL.
fn lossy_exchange(seed: u64, method: Method, reliable: bool, final_status: u16) -> (usize, bool) {
    let mut rng = sim::Rng::new(seed);
    let (loss, dup) = if reliable {
        (0, 0)
    } else {
        (rng.below(31), rng.below(31))
    };
    let net = sim::Net::new(seed, loss, dup, ms(rng.below(300)));
    let delay = ms(rng.below(3000));
    let mut p = sim::Pair::new(net, reliable, final_status, delay);
    let k = p.start(req(method.clone(), B1));
    let cancel_at = (method == Method::Invite && rng.chance(30)).then(|| ms(rng.below(2000)));
    if let Some(at) = cancel_at {
        // Run to the moment the TU gives up, then cancel (deferred if still Calling).
        let settled = p.run(at);
        if !settled {
            p.now = p.base + at;
            let _ = p.client.cancel(p.now, &k);
        }
    }
    let ctx = format!(
        "seed {seed} {method} reliable={reliable} status={final_status} loss={loss}% dup={dup}%"
    );
    assert!(p.run(ms(200_000)), "{ctx}: never settled");
    assert!(p.client.is_empty(), "{ctx}: client table not empty");
    assert!(p.server.is_empty(), "{ctx}: server table not empty");

    // The server TU saw the request at most once, however often it arrived.
    let requests = count(&p.server_events, |e| matches!(e, Event::Request { .. }));
    assert!(requests <= 1, "{ctx}: request passed up {requests} times");
    // The client TU saw exactly one outcome for its request: a final response or Timer B/F.
    let is_final = |e: &Event| matches!(e, Event::Response { message } if message.key == k && message.status >= Some(200));
    let finals = count(&p.client_events, is_final);
    let timeouts = count(
        &p.client_events,
        |e| matches!(e, Event::Timeout { key, role: Role::Client, .. } if *key == k),
    );
    assert_eq!(
        finals + timeouts,
        1,
        "{ctx}: {finals} finals, {timeouts} timeouts"
    );
    if requests == 0 {
        assert_eq!(timeouts, 1, "{ctx}: a final response without a request");
    }
    let cancelled = count(&p.server_events, |e| matches!(e, Event::Cancelled { .. }));
    assert!(cancelled <= 1, "{ctx}: cancelled {cancelled} times");
    (p.net.dropped, cancelled == 1)
}

#[test]
fn lossy_network_never_duplicates_requests_or_final_responses() {
    let (mut dropped, mut cancelled) = (0, 0);
    for seed in 0..150 {
        for (method, status) in [
            (Method::Invite, 486),
            (Method::Message, 200),
            (Method::Options, 404),
        ] {
            let (d, c) = lossy_exchange(seed, method.clone(), false, status);
            dropped += d;
            cancelled += usize::from(c);
            if seed < 20 {
                lossy_exchange(seed, method, true, status);
            }
        }
    }
    // Not vacuous: the runs did lose packets, some INVITEs were cancelled mid-way, and
    // every invariant still held.
    assert!(dropped > 200, "only {dropped} packets dropped");
    assert!(cancelled > 10, "only {cancelled} INVITEs cancelled");
}
