//! Spec gaps in the log: when no rule decides what a transaction or a session still needs,
//! the runtime does it and logs one error line `spec gap: …` that names the trigger as a
//! spec writes it and the procedures that heard it (`clause/procedure@state`), so an operator
//! goes from the line to where the rule is missing. The sans-IO endpoint runs the machines of
//! `specs/` as written (no such line) and of copies with one rule taken out (`gaps.toml`):
//! no `respond` to the originator's BYE, no `shutdown` handler, no `copy unroutable` handler,
//! no rule deciding a new conference-state subscription, an unsubscribe rule that decides
//! nothing, an invitee's refusal that records no `outcome` for its copy.
//! A rule that decided and whose action failed (the application refusing a `store copy`) is
//! no gap: the log says which rule it was, and the rules decide again.

use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Core, Input, StreamKind};
use imspec_spec_edit::{
    declined_without_outcome, exploder, gap_no_copy_unroutable, gap_no_originator_bye,
    gap_no_shutdown, no_subscription_decision, original, refused_after_inviting,
    refused_after_inviting_legs_left_up, store_always_when_unroutable, store_when_unroutable,
    unsubscribe_undecided,
};
use std::time::Duration;

#[path = "common/gap.rs"]
mod gap;
mod replies;

use gap::{ALICE, GROUP, Group, INVITEE, Log, Run, addr, logged, response, spec, to};
use replies::final_to;

/// The status of the one final response to a `method` among `msgs`.
fn final_status(msgs: &[Message], method: &str) -> u16 {
    replies::status(&final_to(msgs, method))
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
                   a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";

/// A pager-mode INVITE to the conference factory listing bob.
fn invite() -> String {
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@example.com\"/></list></resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgap1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: gap@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Alice's INVITE handed to `run`: the 200 that answers her, and the INVITE sent to bob.
fn invited(run: &mut Run) -> (Message, Message) {
    let out = run.send(ALICE, &invite());
    let ok = to(&out, ALICE)
        .into_iter()
        .find(|m| m.status().map(u16::from) == Some(200))
        .expect("the session is answered 200");
    let to_bob = to(&out, INVITEE)
        .into_iter()
        .find(|m| m.method() == Some(&Method::Invite))
        .expect("bob is invited");
    (ok, to_bob)
}

/// The endpoint of `group` with alice's group session answered 200; the 200.
fn session(group: Group) -> (Run, Message) {
    let mut run = group.run();
    let (ok, _) = invited(&mut run);
    (run, ok)
}

/// Alice's BYE in the dialog the 200 `ok` made; the status it gets.
fn originator_bye(group: Group) -> u16 {
    let (mut run, ok) = session(group);
    let to = ok.header_str("To").unwrap_or_default().to_string();
    let bye = format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapbye;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: {to}\r\nCall-ID: gap@alice\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        focus(&ok)
    );
    final_status(&run.alice_sends(&bye), "BYE")
}

#[test]
fn the_originators_bye_without_a_respond_is_logged_as_a_spec_gap() {
    let (status, log) = logged(|| originator_bye(Group::of(spec!(original))));
    assert_eq!(status, 200);
    log.assert_no_gap();

    let (status, log) = logged(|| originator_bye(Group::of(spec!(gap_no_originator_bye))));
    assert_eq!(
        status, 500,
        "the transaction still needs its final response"
    );
    log.assert_one_gap(
        "no spec rule answered the originator's BYE; 500 sent",
        "request BYE",
        "6.1.3.3.2/pager_mode_session@",
        &["call_id=gap@alice"],
    );
}

/// Alice's session, then the server shuts down: the log.
fn shutdown(group: Group) -> Log {
    logged(|| {
        let (mut run, _) = session(group);
        run.input(Input::Shutdown);
    })
    .1
}

#[test]
fn a_shutdown_no_rule_handles_is_logged_as_a_spec_gap() {
    let log = shutdown(Group::of(spec!(original)));
    log.assert_no_gap();
    assert!(
        log.contains("6.1.3.3.2/server_shutdown"),
        "the rule acted: {log}"
    );

    let log = shutdown(Group::of(spec!(gap_no_shutdown)));
    log.assert_one_gap(
        "no spec rule ended the session",
        "shutdown",
        "6.1.3.3.2/pager_mode_session@",
        &["the runtime CANCELs and BYEs what is left"],
    );
}

/// Alice messages the group; bob has no route. The log, and how many times the spec's
/// `store copy` reached the application.
fn message_to_unroutable_bob(group: Group) -> (Log, usize) {
    let (stores, log) = logged(|| {
        let mut run = group.unroutable().run();
        let body = "hello\r\n";
        let message = format!(
            "MESSAGE {GROUP} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapm;rport\r\nMax-Forwards: 40\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <{GROUP}>\r\nCall-ID: gapm@alice\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(final_status(&run.alice_sends(&message), "MESSAGE"), 202);
        run.app().stores.get()
    });
    (log, stores)
}

#[test]
fn a_copy_no_rule_fails_is_logged_as_a_spec_gap() {
    let (log, _) = message_to_unroutable_bob(Group::of(spec!(exploder)));
    log.assert_no_gap();

    let (log, _) = message_to_unroutable_bob(Group::of(spec!(gap_no_copy_unroutable)));
    log.assert_one_gap(
        "no spec rule said what a copy that was not sent fails with",
        "copy unroutable",
        "ext-dr/delivery_reports@",
        &[],
    );
}

#[test]
fn a_store_the_application_refuses_is_no_spec_gap() {
    // `store_when_unroutable` keeps a copy with no route (`store copy`, ext-dr.10) and fails
    // one that cannot be kept with 503. The application refuses to keep it: the rules decide
    // again with the copy not storable.
    let group = Group::of(spec!(store_when_unroutable)).refusing_store();
    let (log, stores) = message_to_unroutable_bob(group);
    log.assert_no_gap();
    assert_eq!(stores, 1, "{log}");
    assert!(
        log.contains("recipient sip:bob@example.com: Failed(503)"),
        "{log}"
    );

    // Kept when the application can.
    let (log, stores) = message_to_unroutable_bob(Group::of(spec!(store_when_unroutable)));
    log.assert_no_gap();
    assert_eq!(stores, 1);
    assert!(!log.contains("Failed("), "{log}");
}

#[test]
fn a_rule_that_stores_whatever_the_application_says_is_named_when_the_store_fails() {
    let group = Group::of(spec!(store_always_when_unroutable)).refusing_store();
    let (log, stores) = message_to_unroutable_bob(group);
    log.assert_no_gap();
    assert_eq!(stores, 2, "tried again with the copy not storable: {log}");
    let warned = log.lines_with("could not keep the copy the rule stored");
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("rule=ext-dr.10/keep_unroutable"),
        "{}",
        warned[0]
    );
    // bob is a user of this domain with no registration: the runtime's 480.
    assert!(
        log.contains("recipient sip:bob@example.com: Failed(480)"),
        "{log}"
    );
}

/// Alice's INVITE is refused 486 after bob was invited; bob rings; alice never ACKs the 486.
/// The requests the endpoint sends bob once Timer H of the INVITE server transaction has
/// fired (64·T1), and the log.
fn unacked_refusal(group: Group) -> (Vec<Method>, Log) {
    logged(|| {
        // No ring timeout of the leg's own before Timer H (both are 32 s by default).
        let mut run = group
            .config(|c| c.spec.invite_timeout = Duration::from_secs(600))
            .run();
        let out = run.send(ALICE, &invite());
        let refused: Vec<u16> = to(&out, ALICE)
            .iter()
            .filter_map(|m| m.status().map(u16::from))
            .collect();
        assert!(refused.contains(&486), "{out:?}");
        let to_bob = to(&out, INVITEE)
            .into_iter()
            .find(|m| m.method() == Some(&Method::Invite))
            .expect("bob is invited before the refusal");
        let contact = format!("Contact: <sip:bob@{INVITEE}>\r\n");
        run.send(
            INVITEE,
            &response(&to_bob, "180 Ringing", Some("bob1"), &contact),
        );
        let mut sent = Vec::new();
        let end = run.now + Duration::from_secs(40);
        while let Some(t) = run.ep.poll_timeout().filter(|t| *t <= end) {
            run.now = t;
            let out = run.input(Input::Timeout);
            sent.extend(to(&out, INVITEE).iter().filter_map(|m| m.method().cloned()));
        }
        sent
    })
}

#[test]
fn an_unacked_refusal_ends_the_legs_as_the_timer_h_rule_says() {
    // 6.1.3.3.2 `no_ack` CANCELs the legs.
    let (sent, log) = unacked_refusal(Group::of(spec!(refused_after_inviting)));
    assert!(sent.contains(&Method::Cancel), "{sent:?}\n{log}");
    assert!(log.contains("6.1.3.3.2/no_ack"), "{log}");
    log.assert_no_gap();
    // The edited `no_ack` leaves them up: the runtime does not CANCEL them on its own.
    let (sent, log) = unacked_refusal(Group::of(spec!(refused_after_inviting_legs_left_up)));
    assert!(log.contains("6.1.3.3.2/no_ack"), "{log}");
    assert!(!sent.contains(&Method::Cancel), "{sent:?}\n{log}");
    log.assert_no_gap();
}

/// The focus URI of the session the 200 `ok` answered (its Contact).
fn focus(ok: &Message) -> String {
    ok.header_str("Contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Alice's SUBSCRIBE to `focus` in dialog `call` (`to_tag`: ours, once it exists) for
/// `expires` seconds: its final answer, and the NOTIFYs sent with it (each answered 200).
fn subscribe(
    run: &mut Run,
    focus: &str,
    to_tag: Option<&str>,
    cseq: u32,
    expires: u32,
) -> (Message, Vec<Message>) {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let text = format!(
        "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapsub{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=sub1\r\nTo: <{focus}>{tag}\r\nCall-ID: gapsub@alice\r\nCSeq: {cseq} SUBSCRIBE\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\nExpires: {expires}\r\nContact: <sip:alice@{ALICE}>\r\nContent-Length: 0\r\n\r\n"
    );
    let out = run.alice_sends(&text);
    let answer = final_to(&out, "SUBSCRIBE");
    let notifies: Vec<Message> = out.into_iter().filter(Message::is_request).collect();
    for n in &notifies {
        run.send(ALICE, &response(n, "200 OK", None, ""));
    }
    (answer, notifies)
}

/// Alice's session, then her SUBSCRIBE to its focus: the answer's status and Warning, and
/// the log.
fn new_subscription(group: Group) -> ((u16, String), Log) {
    logged(|| {
        let (mut run, ok) = session(group.conference());
        let (answer, _) = subscribe(&mut run, &focus(&ok), None, 1, 600);
        (
            answer.status().map(u16::from).unwrap_or(0),
            answer.header_str("Warning").unwrap_or_default().to_string(),
        )
    })
}

#[test]
fn a_subscription_no_rule_decides_is_refused_and_logged_as_a_spec_gap() {
    let ((status, _), log) = new_subscription(Group::of(spec!(original)));
    assert_eq!(status, 200, "ext-dr.4 grants the originator's: {log}");
    log.assert_no_gap();

    let ((status, warning), log) = new_subscription(Group::of(spec!(no_subscription_decision)));
    assert_eq!(status, 403, "nothing granted that no rule grants: {log}");
    assert!(
        warning.contains("no rule of the spec accepts this subscription"),
        "{warning}"
    );
    log.assert_one_gap(
        "no spec rule decided a new subscription; 403 sent",
        "request SUBSCRIBE",
        "ext-dr/delivery_reports@",
        &[],
    );
}

/// Alice's session, her subscription granted, then her unsubscribe (Expires: 0) in its
/// dialog: the unsubscribe's status, the last NOTIFY's Subscription-State, and the log of
/// the unsubscribe alone.
fn unsubscribe(group: Group) -> (u16, String, Log) {
    let (mut run, ok) = session(group.conference());
    let focus = focus(&ok);
    let (granted, n) = subscribe(&mut run, &focus, None, 1, 600);
    assert_eq!(granted.status().map(u16::from), Some(200), "{granted:?}");
    assert_eq!(n.len(), 1, "the full state: {n:?}");
    let tag = granted
        .to()
        .and_then(|t| t.tag())
        .expect("a To tag")
        .to_string();
    let ((status, state), log) = logged(|| {
        let (answer, n) = subscribe(&mut run, &focus, Some(&tag), 2, 0);
        assert_eq!(n.len(), 1, "one last NOTIFY: {n:?}");
        (
            answer.status().map(u16::from).unwrap_or(0),
            n[0].header_str("Subscription-State")
                .unwrap_or_default()
                .to_string(),
        )
    });
    (status, state, log)
}

#[test]
fn an_unsubscribe_no_rule_decides_ends_the_subscription_and_is_logged_as_a_spec_gap() {
    let (status, state, log) = unsubscribe(Group::of(spec!(original)));
    assert_eq!(status, 200, "{log}");
    assert_eq!(state, "terminated;reason=timeout");
    log.assert_no_gap();
    assert!(
        log.contains("ext-dr.13/unsubscribes"),
        "the rule acted: {log}"
    );

    // `unsubscribes` decides nothing: the subscriber may always end its own subscription
    // (RFC 6665 §4.2.1.2), so it ends as asked, and the missing decision is logged.
    let (status, state, log) = unsubscribe(Group::of(spec!(unsubscribe_undecided)));
    assert_eq!(status, 200, "{log}");
    assert_eq!(state, "terminated;reason=timeout");
    log.assert_one_gap(
        "no spec rule decided an unsubscribe; 200 sent, subscription ended",
        "request SUBSCRIBE",
        "ext-dr/delivery_reports@",
        &[],
    );
}

/// Alice's session; her ACK, and her message over MSRP (held for the legs); then bob, who
/// was invited, refuses with 486. The log.
fn declined_after_the_message(group: Group) -> Log {
    logged(|| {
        let mut run = group.run();
        let (ok, to_bob) = invited(&mut run);
        let ack = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapack;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: {}\r\nCall-ID: gap@alice\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            focus(&ok),
            ok.header_str("To").unwrap_or_default()
        );
        run.send(ALICE, &ack);

        // Alice connects to the MSRP path of the answer and sends her message.
        let answer = String::from_utf8_lossy(ok.body_bytes()).into_owned();
        let our_path = answer
            .lines()
            .find_map(|l| l.strip_prefix("a=path:"))
            .expect("the answer has a path")
            .trim()
            .to_owned();
        let conn = ConnId(ConnId::ACCEPTED | 1);
        run.input(Input::StreamOpened {
            conn,
            kind: StreamKind::Msrp,
            local: addr(gap::MSRP),
            peer: addr("127.0.0.1:7000"),
        });
        let text = "hello";
        let send_msrp = format!(
            "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-{n}/{n}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n-------t1$\r\n",
            n = text.len()
        );
        run.input(Input::StreamData {
            conn,
            data: send_msrp.into_bytes().into(),
        });
        run.send(INVITEE, &response(&to_bob, "486 Busy Here", Some("bob1"), ""));
    })
    .1
}

#[test]
fn a_failed_leg_with_no_outcome_is_logged_as_a_spec_gap() {
    // 7.9.1.4 `declined` records the copy's outcome: no gap.
    let log = declined_after_the_message(Group::of(spec!(original)));
    assert!(log.contains("7.9.1.4/declined"), "the rule acted: {log}");
    assert!(
        log.contains("recipient sip:bob@example.com: not reached (486)"),
        "{log}"
    );
    log.assert_no_gap();

    // The edited `declined` fails the leg and records nothing: the copy still fails with
    // bob's 486, and the missing `outcome` is logged against bob's leg machine.
    let log = declined_after_the_message(Group::of(spec!(declined_without_outcome)));
    log.assert_one_gap(
        "no spec rule recorded the outcome of a failed leg; its copy fails with 486",
        "response 486",
        "7.9.1.4/invitee_leg@failed",
        &[],
    );
}
