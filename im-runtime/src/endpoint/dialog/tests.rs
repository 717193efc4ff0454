use super::*;

#[test]
fn a_checked_contact_is_sliced_where_the_parse_finds_its_uri() {
    let values = [
        "<sip:bob@192.0.2.4:5060;transport=tcp>",
        "  <sip:bob@192.0.2.4>;expires=60",
        "sip:bob@192.0.2.4;ob",
        "sip:bob@192.0.2.4 ;ob",
        "sip:bob@192.0.2.4, <sip:carol@example.com>",
        "Bob <sip:bob@example.com>",
        "Bob  Smith\t<sip:bob@example.com>;q=0.5",
        "\"Bob \\\"B\\\" <x>\" <sip:bob@example.com>",
        "\"\" <sips:bob@example.com>",
        "<tel:+1-201-555-0123>",
        "<sip:[2001:db8::1]:5070>",
        "*",
        " * ",
        "sip:a@b,sip:c@d",
        "<sip:a@b>,\"x,y\" <sip:c@d>",
        "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
    ];
    let mut checked = 0;
    for v in values {
        // Only values that pass the check the core runs before a session reads them.
        let m = parse(&format!(
            "OPTIONS sip:x@y SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\nFrom: <sip:a@b>;tag=1\n\
             To: <sip:x@y>\nCall-ID: c\nCSeq: 1 OPTIONS\nContact: {v}\nContent-Length: 0\n\n"
        ));
        if m.check_deferred().is_err() {
            continue;
        }
        checked += 1;
        assert_eq!(checked_contact_uri(v), parsed_contact_uri(v), "{v:?}");
        assert_eq!(contact_uri(&m), parsed_contact_uri(v), "{v:?}");
    }
    assert!(checked >= 14, "{checked}");
    assert_eq!(checked_contact_uri("*"), None);
    assert_eq!(
        checked_contact_uri("Bob <sip:bob@example.com>"),
        Some("sip:bob@example.com")
    );
}

fn peer() -> Peer {
    Peer {
        addr: "192.0.2.9:5060".parse().unwrap(),
        reliable: false,
    }
}

#[test]
fn the_packed_strings_read_back_as_made() {
    let d = Dialog::pack(
        [
            Piece::Raw("call@host"),
            Piece::Raw("ours"),
            Piece::Raw(""),
            Piece::Bracketed("sip:focus@example.com"),
            Piece::Raw("Bob <sip:bob@example.com>"),
            Piece::Raw("sip:bob@192.0.2.4"),
        ],
        &["<sip:p1;lr>", "", "<sip:p2;lr>"],
        peer(),
        (3, 1),
    );
    assert_eq!(d.call_id(), "call@host");
    assert_eq!(d.local_tag(), "ours");
    assert_eq!(d.remote_tag(), "");
    assert_eq!(d.local_uri(), "<sip:focus@example.com>");
    assert_eq!(d.remote_uri(), "Bob <sip:bob@example.com>");
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.4");
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:p1;lr>", "", "<sip:p2;lr>"]
    );
    assert_eq!((d.local_cseq, d.invite_cseq), (3, 1));
    let none = Dialog::pack([Piece::Raw(""); PARTS], &[], peer(), (0, 1));
    assert!(none.route_set_is_empty());
    assert_eq!(none.route_set().count(), 0);
    assert_eq!(none.remote_target(), "");
}

#[test]
fn a_dialog_is_smaller_than_its_seven_strings() {
    // Was 256 bytes: seven `String`s and a `Vec` inline.
    assert!(
        std::mem::size_of::<Dialog>() <= 144,
        "{}",
        std::mem::size_of::<Dialog>()
    );
}

fn parse(s: &str) -> Message {
    Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
}

fn invite(to: &str, from: &str) -> Message {
    crate::proto::sip::build::RequestBuilder::new(Method::Invite, "sip:bob@192.0.2.4")
        .via("UDP", "192.0.2.1:5060", "z9hG4bKx")
        .from(from, "ours")
        .to(to, None)
        .call_id("c@h")
        .cseq(7)
        .max_forwards(70)
        .contact("<sip:focus@192.0.2.1>")
        .build_own()
        .unwrap()
}

fn answer(to: &str, from: &str, extra: &str) -> Message {
    parse(&format!(
        "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\n\
         From: {from}\nTo: {to}\nCall-ID: c@h\nCSeq: 7 INVITE\n{extra}Content-Length: 0\n\n"
    ))
}

/// What the dialog read before: every value parsed from the INVITE itself.
fn slow(inv: &Message) -> (String, String) {
    (
        addr_of(inv.from(), inv.header(HeaderName::From)).to_string(),
        addr_of(inv.to(), inv.header(HeaderName::To)).to_string(),
    )
}

#[test]
fn from_and_to_read_from_the_answer_are_the_invites() {
    let cases = [
        // (INVITE To, INVITE From, answer To, answer From)
        (
            "<sip:bob@example.com>",
            "<sip:focus@example.com>",
            "<sip:bob@example.com>;tag=t9",
            "<sip:focus@example.com>;tag=ours",
        ),
        (
            "Bob <sip:bob@example.com>",
            "\"Focus\" <sip:focus@example.com>",
            "Bob <sip:bob@example.com>;tag=t9",
            "\"Focus\" <sip:focus@example.com>;tag=ours",
        ),
        (
            "sip:bob@example.com",
            "sip:focus@example.com",
            "sip:bob@example.com;tag=t9",
            "sip:focus@example.com;tag=ours",
        ),
        // An answerer that rewrites them: the INVITE's are parsed.
        (
            "<sip:bob@example.com>",
            "<sip:focus@example.com>",
            "<sip:robert@example.com>;tag=t9",
            "<sip:other@example.com>;tag=ours",
        ),
        (
            "<sip:bob@example.com>;x=1",
            "<sip:focus@example.com>",
            "<sip:bob@example.com>;x=1;tag=t9",
            "<sip:focus@example.com>;tag=ours",
        ),
    ];
    for (to, from, ato, afrom) in cases {
        let inv = invite(to, from);
        let resp = answer(ato, afrom, "Contact: <sip:bob@192.0.2.4:5070>\n");
        let d = Dialog::client_side(&inv, &resp, Some(peer()), "c@h", "ours").unwrap();
        let (lu, ru) = slow(&inv);
        assert_eq!((d.local_uri(), d.remote_uri()), (lu.as_str(), ru.as_str()));
        assert_eq!(d.remote_tag(), "t9");
        assert_eq!(d.remote_target(), "sip:bob@192.0.2.4:5070");
        assert_eq!((d.local_cseq, d.invite_cseq), (7, 7));
        assert!(d.confirmed);
    }
}

#[test]
fn a_uac_dialog_takes_the_reversed_record_route_and_falls_back_to_the_request_uri() {
    let inv = invite("<sip:bob@example.com>", "<sip:focus@example.com>");
    let resp = answer(
        "<sip:bob@example.com>;tag=t9",
        "<sip:focus@example.com>;tag=ours",
        "Record-Route: <sip:p1;lr>, <sip:p2;lr>\nRecord-Route: <sip:p3;lr>\n",
    );
    let d = Dialog::client_side(&inv, &resp, Some(peer()), "c@h", "ours").unwrap();
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:p3;lr>", "<sip:p2;lr>", "<sip:p1;lr>"]
    );
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.4");
    assert!(Dialog::client_side(&inv, &resp, None, "c@h", "ours").is_none());
}

#[test]
fn the_ack_is_written_as_the_builder_writes_it() {
    let mut dialogs = Vec::new();
    for routes in [
        &[][..],
        &["<sip:p1;lr>"][..],
        &["<sip:p1;lr>", "<sip:[::1]:5;lr>"][..],
    ] {
        for (lu, ru) in [
            (
                Piece::Bracketed("sip:focus@example.com"),
                Piece::Bracketed("sip:bob@h"),
            ),
            (Piece::Raw("\"F\" <sip:f@x>"), Piece::Raw("sip:bob@h;x=1")),
            // Folded values: the builder unfolds them.
            (Piece::Raw("\"F\r\n G\" <sip:f@x>"), Piece::Raw("<sip:b@h>")),
        ] {
            let mut d = Dialog::pack(
                [
                    Piece::Raw("abc@192.0.2.1"),
                    Piece::Raw("0123456789ab"),
                    Piece::Raw("rt"),
                    lu,
                    ru,
                    Piece::Raw("sip:bob@192.0.2.4:5070;transport=tcp"),
                ],
                routes,
                peer(),
                (1, 1),
            );
            dialogs.push(d.clone());
            d.peer.reliable = true;
            d.invite_cseq = u32::MAX;
            dialogs.push(d.clone());
            d.tls = Some("[2001:db8::1]:5061".parse().unwrap());
            d.invite_cseq = 0;
            dialogs.push(d);
        }
    }
    let host: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    for d in dialogs {
        let (mut a, mut b) = (d.clone(), d);
        let cseq = a.invite_cseq;
        let built = a.builder(Method::Ack, cseq, host).write();
        let (written, p) = b.ack(host);
        assert_eq!(written, built, "{:?}", std::str::from_utf8(&built));
        assert_eq!(p, a.peer);
        // The next request's branch moves on in both.
        assert_eq!(a.counter, b.counter);
    }
}

#[test]
fn a_uas_dialog_reads_the_request() {
    let req = parse(
        "INVITE sip:conf@192.0.2.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKy\n\
         From: Alice <sip:alice@example.com>;tag=a1\nTo: <sip:conf@example.com>\n\
         Call-ID: x@y\nCSeq: 4 INVITE\nContact: \"A\" <sip:alice@192.0.2.4:5062>\n\
         Record-Route: <sip:p1;lr>, <sip:p2;lr>\nMax-Forwards: 70\nContent-Length: 0\n\n",
    );
    let d = Dialog::server_side(&req, "ours", peer());
    assert_eq!(d.call_id(), "x@y");
    assert_eq!(d.local_tag(), "ours");
    assert_eq!(d.remote_tag(), "a1");
    assert_eq!(d.local_uri(), "<sip:conf@example.com>");
    assert_eq!(d.remote_uri(), "<sip:alice@example.com>");
    assert_eq!(d.remote_target(), "sip:alice@192.0.2.4:5062");
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:p1;lr>", "<sip:p2;lr>"]
    );
    assert_eq!((d.local_cseq, d.invite_cseq), (0, 4));
    assert!(!d.confirmed);
}
