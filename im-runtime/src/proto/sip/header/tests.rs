use super::*;

/// Inside `<…>` one walk finds the `>` or whitespace; the error and its offset are what
/// a walk to the `>` followed by a whitespace search gave.
#[test]
fn angle_uri_errors() {
    let e = |s: &str| NameAddr::parse(s).unwrap_err();
    let ws = e("<sip:a@b c>;tag=1");
    assert_eq!(ws.kind, ErrorKind::Expected("URI without whitespace"));
    assert_eq!(ws.offset, 8);
    assert_eq!(e("x <sip:a@b\t>").offset, 10);
    assert_eq!(e("<sip:a@b c").kind, ErrorKind::Unterminated("<URI>"));
    assert_eq!(e("\"A\" <sip:a@b").kind, ErrorKind::Unterminated("<URI>"));
    assert_eq!(e("\"A\" <sip:a@b").offset, 4);
    let ok = NameAddr::parse("\"A\" <sip:a%41@b;lr>;tag=9").unwrap();
    assert_eq!(ok.uri().user(), Some("a%41"));
    assert_eq!(ok.tag(), Some("9"));
    assert_eq!(
        Uri::parse("sip:a%4g@x").unwrap_err().kind,
        ErrorKind::Escape
    );
    assert!(Uri::parse("sip:a@x;p=%41%42").is_ok());
    // The user ends at the first `:`, where the password starts.
    let u = Uri::parse("sip:al%3A:pw@h").unwrap();
    assert_eq!((u.user(), u.password()), (Some("al%3A"), Some("pw")));
    let u = Uri::parse("sip:al:@h").unwrap();
    assert_eq!((u.user(), u.password()), (Some("al"), Some("")));
    assert_eq!(
        Uri::parse("sip::pw@h").unwrap_err().kind,
        ErrorKind::Expected("user")
    );
    let bad = Uri::parse("sip:a{b:pw@h").unwrap_err();
    assert_eq!(
        (bad.kind, bad.offset),
        (ErrorKind::Expected("URI character"), 5)
    );
    assert!(Uri::parse("sip:a@x;p=\u{e9}").is_err());
}

#[test]
fn header_names_are_recognised() {
    for &h in HeaderName::ALL {
        let c = h.canonical().unwrap();
        assert_eq!(HeaderName::from_name(c), h, "{c}");
        assert_eq!(HeaderName::from_name(&c.to_ascii_lowercase()), h, "{c}");
        assert_eq!(HeaderName::from_name(&c.to_ascii_uppercase()), h, "{c}");
        if let Some(k) = h.compact() {
            assert_eq!(HeaderName::from_name(&k.to_string()), h);
            assert_eq!(
                HeaderName::from_name(&k.to_ascii_uppercase().to_string()),
                h
            );
        }
        // One letter off (first, middle, last) is another header.
        for i in [0, c.len() / 2, c.len() - 1] {
            let mut b = c.as_bytes().to_vec();
            b[i] = if b[i] == b'x' { b'y' } else { b'x' };
            assert_eq!(HeaderName::from_bytes(&b), HeaderName::Other, "{c} at {i}");
        }
    }
    for other in [
        "",
        "Z",
        "Call\rID",
        "Vias",
        "Call-IDs",
        "Contacts",
        "CSeq2",
        "g",
        "Call_ID",
        "Content\rLength",
        "Content-Lengt\r",
        "Max\rForwards",
        "Session\rExpires",
        "P-Asserted\rIdentity",
    ] {
        assert_eq!(HeaderName::from_name(other), HeaderName::Other, "{other}");
    }
}

/// Call-ID is `word [ "@" word ]`: the one-walk check accepts and rejects what splitting at
/// the first `@` and checking both sides did, with the same error offset.
#[test]
fn call_id_words() {
    for ok in [
        "a",
        "a@b",
        "3848276298220188511@atlanta.example.com",
        "(x)<y>@[z]?{}",
    ] {
        assert!(check_call_id(ok).is_ok(), "{ok}");
    }
    for (bad, at) in [
        ("", 0),
        ("@", 0),
        ("@b", 0),
        ("a@", 0),
        ("a@b@c", 0),
        ("a b", 1),
        ("a@b c", 3),
        ("a;b", 1),
        ("é", 0),
    ] {
        let e = check_call_id(bad).unwrap_err();
        assert_eq!(e.offset, at, "{bad}");
    }
}

/// Hand-picked Via values: what the one-pass reader accepts it reads as the general parse
/// does (the same fields and record); the rest it leaves to that parse.
const VIAS: &[&str] = &[
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
    "SIP/2.0/TCP host.example.com;branch=z9hG4bKx",
    "SIP/2.0/UDP 127.0.0.1:5060;rport=5061;branch=z9hG4bKx;received=10.0.0.1",
    "SIP/2.0/UDP h;branch=z9hG4bKa;branch=second",
    "SIP/2.0/UDP h;RPORT;Branch=z9hG4bKa",
    "SIP/2.0/UDP h;rport;rport=bad",
    "SIP/2.0/UDP h;maddr=[::1];ttl=1",
    "SIP/2.0/UDP h:0",
    "SIP/2.0/UDP h:65535",
    "SIP/2.0/UDP h",
    "SIP/2.0/WSS h;x",
    // Left to the general parse, which accepts them.
    "SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx",
    "SIP/2.0/UDP h ; branch=x",
    "SIP/2.0/UDP h;branch=x, SIP/2.0/UDP g",
    "sip/2.0/udp h",
    "SIP/2.0/UDP  h",
    "SIP / 2.0 / UDP h",
    "SIP/2.0/UDP h;x=\"q\"",
    "SIP/2.0/UDP h\r\n ;branch=x",
    // Refused by both.
    "SIP/2.0/UDP h;rport=99999;branch=x",
    "SIP/2.0/UDP h;rport=abc",
    "SIP/2.0/UDP h;rport=",
    "SIP/2.0/UDP h;branch",
    "SIP/2.0/UDP h;branch=\"q\"",
    "SIP/2.0/UDP h:99999",
    "SIP/2.0/UDP h:",
    "SIP/2.0/UDP h:5x",
    "SIP/2.0/UDP -h",
    "SIP/2.0/UDP .h",
    "SIP/2.0/UDP h;x=;y",
    "SIP/2.0/UDP h;=x",
    "SIP/2.0/UDP h;branch=a;",
    "SIP/2.0/UDP h;branch=a,",
    "SIP/2.0/ h",
    "SIP/2.0/UDPh",
    "SIP/2.0/UDP h x",
    "SIP/2.0/UDP h;b=é",
    "SIP/2.0/",
    "",
];

/// Hand-picked From/To values, as [`VIAS`].
const ADDRS: &[&str] = &[
    "<sip:r1@127.0.0.1:43524>;tag=1234SIPpTag201",
    "<sip:loader@example.com>;tag=abc",
    "<sip:a@b>",
    "<sip:a@b;transport=tcp>;tag=x;foo",
    "<sips:[::1]:5061>",
    "<tel:+123>",
    "<urn:service:sos>",
    "<sip:a@b>;tag",
    "<sip:a@b>;tag;tag=x",
    "<sip:a@b>;x=1;tag=y;TAG=z",
    "<sip:a%41:pw@b?subject=x>;tag=1",
    "\"A\" <sip:a@b>",
    "A <sip:a@b>",
    "\"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    "\"A\"<sip:a@b>",
    "\"\" <sip:a@b>",
    "\"Zoë, \t<x>\" <sip:a@b>;tag=1",
    "Bob  Smith\t<sip:b@c>;tag=1",
    "Bob<sip:b@c>",
    // Left to the general parse, which accepts them.
    "<sip:a@b> ;tag=x",
    " \"A\" <sip:a@b>",
    "\"A \\\"B\\\"\" <sip:a@b>",
    "\"A\"\r\n <sip:a@b>",
    "A\r\n <sip:a@b>",
    "sip:a@b;tag=x",
    "<sip:a@b>;tag=\"q\"",
    "<sip:a@b>\r\n ;tag=x",
    // Refused by both.
    "<sip:a@b",
    "<>",
    "<sip:a@b>x",
    "<sip:a%4g@b>",
    "<sip:a@b c>",
    "<sip:a@b>;tag=x;",
    "<sip:a@b>;=x",
    "<sip:a@b>;tag=",
    "<sip:@b>",
    "<sip:a@b>;t=é",
    "\"A\" sip:a@b",
    "\"A <sip:a@b>",
    "\"A\u{1}\" <sip:a@b>",
    "A B",
    "<",
    "",
];

fn via_agrees(v: &str) -> bool {
    let general = Via::parse_first(v).ok();
    match Via::parse_plain(v) {
        Some(p) => {
            assert_eq!(Some(p), general, "{v:?}");
            assert_eq!(
                p.record(v),
                general.and_then(|g| g.record(v)),
                "record of {v:?}"
            );
            true
        }
        None => false,
    }
}

fn addr_agrees(v: &str) -> bool {
    let general = NameAddr::parse(v).ok();
    match NameAddr::parse_plain(v) {
        Some(p) => {
            assert_eq!(Some(p), general, "{v:?}");
            assert_eq!(
                p.record(v),
                general.and_then(|g| g.record(v)),
                "record of {v:?}"
            );
            true
        }
        None => false,
    }
}

/// The one-pass readers take the usual forms and agree with the general parse on them.
#[test]
fn plain_readers_agree_with_the_general_parse() {
    let vias = VIAS.iter().filter(|v| via_agrees(v)).count();
    assert_eq!(vias, 11, "plain Via forms read in one pass");
    let addrs = ADDRS.iter().filter(|v| addr_agrees(v)).count();
    assert_eq!(addrs, 19, "plain name-addr forms read in one pass");
}

/// Values made of pieces of the grammar (and of what breaks it), many times over: whatever
/// a one-pass reader accepts, the general parse accepts with the same result.
#[test]
fn plain_readers_agree_on_generated_values() {
    const VIA_PIECES: &[&str] = &[
        "SIP/2.0/",
        "UDP",
        "tcp",
        " ",
        "  ",
        "\t",
        "h",
        "127.0.0.1",
        "[::1]",
        "-",
        ".",
        ":",
        "5060",
        "99999",
        "0",
        ";",
        "branch",
        "rport",
        "RPORT",
        "received",
        "=",
        "z9hG4bKx",
        "\"q\"",
        ",",
        "x y",
        "@",
        "é",
        "\r\n ",
        "/",
        "[",
        "]",
    ];
    const ADDR_PIECES: &[&str] = &[
        "<",
        ">",
        "sip:",
        "sips:",
        "tel:",
        "x:",
        "a",
        "@",
        "b.example.com",
        "127.0.0.1",
        "[::1]",
        ":",
        "5060",
        "%41",
        "%4",
        ";",
        "tag",
        "TAG",
        "transport=tcp",
        "=",
        "x",
        "?",
        "h=v",
        "&",
        " ",
        "\"A\"",
        "\"",
        "\\",
        "\t",
        "Bob",
        ",",
        "é",
        "\r\n ",
        "lr",
    ];
    // A fixed-seed generator: the same values every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let (mut vias, mut addrs) = (0, 0);
    for _ in 0..40_000 {
        let mut v = String::from(["SIP/2.0/UDP h", "SIP/2.0/UDP h", "SIP/2.0/UDP ", ""][next(4)]);
        for _ in 0..next(9) {
            v.push_str(VIA_PIECES[next(VIA_PIECES.len())]);
        }
        vias += usize::from(via_agrees(&v));
        let mut a = String::from(
            [
                "<sip:a@b>",
                "<sip:a@b>",
                "<sip:",
                "",
                "\"A\" <sip:a@b>",
                "Bob <sip:",
            ][next(6)],
        );
        for _ in 0..next(9) {
            a.push_str(ADDR_PIECES[next(ADDR_PIECES.len())]);
        }
        addrs += usize::from(addr_agrees(&a));
    }
    // Enough of each form is read in one pass for the comparison to mean something.
    assert!(vias > 1_000, "{vias}");
    assert!(addrs > 1_000, "{addrs}");
}
