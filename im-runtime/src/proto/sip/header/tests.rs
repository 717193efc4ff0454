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
