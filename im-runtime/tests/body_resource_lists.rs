//! RFC 4826 / RFC 5364 resource lists: digest §11 vectors, namespace leniency, hostile
//! documents, limits, de-duplication, the recipient-list-history writer and round-trips.

use im_runtime::machine::{CopyControl, ListEntry, Uri, UriParts};
use im_runtime::proto::body::resource_lists::{
    self, ANONYMOUS_URI, Entry, Limits, ListError, Unresolved,
};
use proptest::prelude::*;

/// Just enough of a SIP/tel URI parser for these tests (the runtime passes the SIP layer's).
fn uri(raw: &str) -> Option<Uri> {
    let (scheme, rest) = raw.split_once(':')?;
    let rest = rest.split(';').next()?;
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None if scheme.eq_ignore_ascii_case("tel") => (rest, ""),
        None => ("", rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (hostport, None),
    };
    Some(Uri::new(UriParts {
        scheme: &scheme.to_ascii_lowercase(),
        user,
        host: &host.to_ascii_lowercase(),
        port,
        raw,
        ..UriParts::default()
    }))
}

fn parse(xml: &str) -> Result<resource_lists::ResourceLists, ListError> {
    resource_lists::parse(xml.as_bytes(), &Limits::default())
}

/// Digest §11: rcsjta-style list (capital-C copyControl namespace), with the sender and
/// duplicates in it.
const RCSJTA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copyControl">
 <list>
  <entry uri="sip:alice@example.com" cp:copyControl="to"/>
  <entry uri="sip:bob@example.com" cp:copyControl="cc"><display-name>Bob &amp; Co</display-name></entry>
  <entry uri="sip:carol@example.com" cp:copyControl="bcc"/>
  <entry uri="sip:bob@EXAMPLE.COM;transport=tcp" cp:copyControl="to"/>
  <entry uri="tel:+15551234" cp:anonymize="true"/>
  <entry uri="sip:sender@example.com"/>
 </list>
</resource-lists>"#;

#[test]
fn rcsjta_capital_c_namespace_sender_and_duplicates() {
    let rl = parse(RCSJTA).unwrap();
    let cc: Vec<_> = rl.entries.iter().map(|e| e.copy_control).collect();
    assert_eq!(
        cc,
        [
            CopyControl::To,
            CopyControl::Cc,
            CopyControl::Bcc,
            CopyControl::To,
            CopyControl::To,
            CopyControl::To
        ]
    );
    assert_eq!(rl.entries[1].display_name.as_deref(), Some("Bob & Co"));
    assert!(rl.entries[4].anonymize);
    let entries = rl.list_entries(uri).unwrap();
    let sender = uri("sip:sender@example.com").unwrap();
    let clean = resource_lists::dedup(entries, &sender);
    let uris: Vec<_> = clean.iter().map(|e| e.uri.raw()).collect();
    assert_eq!(
        uris,
        [
            "sip:alice@example.com",
            "sip:bob@example.com",
            "sip:carol@example.com",
            "tel:+15551234"
        ]
    );
    // The first mention of bob wins, with its attributes.
    assert_eq!(clean[1].copy_control, CopyControl::Cc);
    assert_eq!(clean[1].display_name.as_deref(), Some("Bob & Co"));
}

#[test]
fn any_prefix_any_case_but_only_the_copycontrol_namespace() {
    let xml = r#"<rl:resource-lists xmlns:rl="URN:IETF:PARAMS:XML:NS:RESOURCE-LISTS"
        xmlns:x="urn:ietf:params:xml:ns:copycontrol" xmlns:other="urn:example:other">
      <rl:list>
        <rl:entry uri="sip:a@h" x:CopyControl="BCC" x:Anonymize="1"/>
        <rl:entry uri="sip:b@h" other:copyControl="bcc"/>
        <rl:entry uri="sip:c@h" copyControl="bcc"/>
      </rl:list>
    </rl:resource-lists>"#;
    let rl = parse(xml).unwrap();
    assert_eq!(rl.entries[0].copy_control, CopyControl::Bcc);
    assert!(rl.entries[0].anonymize);
    // A foreign namespace, or no namespace, is not RFC 5364's attribute.
    assert_eq!(rl.entries[1].copy_control, CopyControl::To);
    assert_eq!(rl.entries[2].copy_control, CopyControl::To);
}

#[test]
fn no_namespace_nested_lists_flattened_in_order_and_references_reported() {
    let xml = r#"<resource-lists>
      <list name="outer"><display-name>Outer</display-name>
        <entry uri="sip:1@h"/>
        <list><entry uri="sip:2@h"/><list><entry uri="sip:3@h"/></list></list>
        <entry-ref ref="resource-lists/users/x/index/~~/resource-lists/list/entry"/>
        <external anchor="http://xcap.example.com/list"/>
        <foo:ext xmlns:foo="urn:foo"><entry uri="sip:ignored@h"/></foo:ext>
        <entry uri=" sip:4@h "/>
      </list>
      <list><entry uri="sip:5@h"/></list>
    </resource-lists>"#;
    let rl = parse(xml).unwrap();
    let uris: Vec<_> = rl.entries.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["sip:1@h", "sip:2@h", "sip:3@h", "sip:4@h", "sip:5@h"]
    );
    assert_eq!(
        rl.unresolved,
        [
            Unresolved::EntryRef(
                "resource-lists/users/x/index/~~/resource-lists/list/entry".into()
            ),
            Unresolved::External("http://xcap.example.com/list".into()),
        ]
    );
}

#[test]
fn billion_laughs_and_xxe_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:a@h"><display-name>&lol4;</display-name></entry></list></resource-lists>"#;
    assert_eq!(parse(laughs), Err(ListError::DtdNotAllowed));
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:a@h"><display-name>&xxe;</display-name></entry></list></resource-lists>"#;
    assert_eq!(parse(xxe), Err(ListError::DtdNotAllowed));
}

#[test]
fn each_limit_is_its_own_error() {
    let entries = |n: usize| {
        let mut s = String::from("<resource-lists><list>");
        for i in 0..n {
            s.push_str(&format!("<entry uri=\"sip:u{i}@h\"/>"));
        }
        s + "</list></resource-lists>"
    };
    let l = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        resource_lists::parse(entries(10).as_bytes(), &l),
        Err(ListError::TooLarge { limit: 100 })
    );
    let l = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    assert_eq!(
        resource_lists::parse(entries(3).as_bytes(), &l)
            .unwrap()
            .entries
            .len(),
        3
    );
    assert_eq!(
        resource_lists::parse(entries(4).as_bytes(), &l),
        Err(ListError::TooManyEntries { limit: 3 })
    );
    let l = Limits {
        max_nodes: 20,
        ..Limits::default()
    };
    assert_eq!(
        resource_lists::parse(entries(30).as_bytes(), &l),
        Err(ListError::TooManyNodes { limit: 20 })
    );
    let deep = |d: usize| {
        format!(
            "<resource-lists>{}{}</resource-lists>",
            "<list>".repeat(d),
            "</list>".repeat(d)
        )
    };
    let l = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    assert!(resource_lists::parse(deep(4).as_bytes(), &l).is_ok());
    assert_eq!(
        resource_lists::parse(deep(5).as_bytes(), &l),
        Err(ListError::TooDeep { limit: 5 })
    );
    // Depth counts in extension elements too, not only in lists.
    let ext = format!(
        "<resource-lists><list><x:a xmlns:x=\"urn:x\">{}</x:a></list></resource-lists>",
        "<x:a>".repeat(10) + &"</x:a>".repeat(10)
    );
    assert_eq!(
        resource_lists::parse(ext.as_bytes(), &l),
        Err(ListError::TooDeep { limit: 5 })
    );
    // A very deep document is refused without exhausting the stack.
    let huge = deep(50_000);
    let l = Limits {
        max_bytes: 1 << 20,
        max_nodes: 200_000,
        ..Limits::default()
    };
    assert_eq!(
        resource_lists::parse(huge.as_bytes(), &l),
        Err(ListError::TooDeep { limit: 16 })
    );
}

#[test]
fn malformed_documents() {
    assert_eq!(parse("<foo/>"), Err(ListError::NotResourceLists));
    assert_eq!(
        parse("<x:resource-lists xmlns:x=\"urn:other\"/>"),
        Err(ListError::NotResourceLists)
    );
    assert!(matches!(
        parse("<resource-lists><list>"),
        Err(ListError::Xml(_))
    ));
    assert_eq!(
        resource_lists::parse(b"<resource-lists>\xff</resource-lists>", &Limits::default()),
        Err(ListError::NotUtf8)
    );
    assert_eq!(
        parse("<resource-lists><list><entry/></list></resource-lists>"),
        Err(ListError::EntryWithoutUri)
    );
    let cp = |v: &str| {
        format!(
            "<resource-lists xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\"><list><entry uri=\"sip:a@h\" {v}/></list></resource-lists>"
        )
    };
    assert_eq!(
        parse(&cp("cp:copyControl=\"bc\"")),
        Err(ListError::BadCopyControl("bc".into()))
    );
    assert_eq!(
        parse(&cp("cp:anonymize=\"yes\"")),
        Err(ListError::BadAnonymize("yes".into()))
    );
    let rl = parse(&cp("cp:copyControl=\" cc \" cp:count=\"3\"")).unwrap();
    assert_eq!(rl.entries[0].copy_control, CopyControl::Cc);
    assert_eq!(rl.entries[0].count, Some(3));
    assert_eq!(
        parse(&cp("")).unwrap().list_entries(|_| None),
        Err(ListError::BadUri("sip:a@h".into()))
    );
}

fn entry(raw: &str, cc: CopyControl, anonymize: bool, name: Option<&str>) -> ListEntry {
    ListEntry {
        uri: uri(raw).unwrap(),
        display_name: name.map(Into::into),
        copy_control: cc,
        anonymize,
    }
}

#[test]
fn history_lists_to_and_cc_never_bcc_and_counts_anonymous() {
    let recipients = vec![
        entry(
            "sip:alice@example.com",
            CopyControl::To,
            false,
            Some("Alice <\"A\"> & 'co'"),
        ),
        entry("sip:bob@example.com;x=a&b", CopyControl::Cc, false, None),
        entry("sip:carol@example.com", CopyControl::Bcc, false, None),
        entry("sip:dave@example.com", CopyControl::To, true, None),
        entry("sip:erin@example.com", CopyControl::To, true, None),
        entry("sip:frank@example.com", CopyControl::Cc, true, None),
        entry("sip:gina@example.com", CopyControl::Bcc, true, None),
    ];
    let xml = resource_lists::write_history(&recipients);
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\r\n\
<list>\r\n\
<entry uri=\"sip:alice@example.com\" cp:copyControl=\"to\"><display-name>Alice &lt;&quot;A&quot;&gt; &amp; &apos;co&apos;</display-name></entry>\r\n\
<entry uri=\"sip:bob@example.com;x=a&amp;b\" cp:copyControl=\"cc\"/>\r\n\
<entry uri=\"sip:anonymous@anonymous.invalid\" cp:copyControl=\"to\" cp:count=\"2\"/>\r\n\
<entry uri=\"sip:anonymous@anonymous.invalid\" cp:copyControl=\"cc\" cp:count=\"1\"/>\r\n\
</list>\r\n\
</resource-lists>\r\n"
    );
    assert!(!xml.contains("carol") && !xml.contains("gina") && !xml.contains("dave"));
    // Parse it back with the reader.
    let back = parse(&xml).unwrap();
    assert_eq!(
        back.entries,
        [
            Entry {
                uri: "sip:alice@example.com".into(),
                display_name: Some("Alice <\"A\"> & 'co'".into()),
                copy_control: CopyControl::To,
                anonymize: false,
                count: None
            },
            Entry {
                uri: "sip:bob@example.com;x=a&b".into(),
                display_name: None,
                copy_control: CopyControl::Cc,
                anonymize: false,
                count: None
            },
            Entry {
                uri: ANONYMOUS_URI.into(),
                display_name: None,
                copy_control: CopyControl::To,
                anonymize: false,
                count: Some(2)
            },
            Entry {
                uri: ANONYMOUS_URI.into(),
                display_name: None,
                copy_control: CopyControl::Cc,
                anonymize: false,
                count: Some(1)
            },
        ]
    );
}

#[test]
fn history_escapes_control_characters() {
    let r = vec![entry(
        "sip:a@h",
        CopyControl::To,
        false,
        Some("tab\there\u{1}x"),
    )];
    let xml = resource_lists::write_history(&r);
    assert!(xml.contains("tab&#9;here\u{FFFD}x"));
    assert_eq!(
        parse(&xml).unwrap().entries[0].display_name.as_deref(),
        Some("tab\there\u{FFFD}x")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn never_panics_on_arbitrary_input(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = resource_lists::parse(&data, &Limits::default());
    }

    #[test]
    fn never_panics_on_mutated_lists(pos in 0usize..700, len in 0usize..12, fill in prop::sample::select(b"<>/=\"&x:; ".to_vec())) {
        let mut v = RCSJTA.as_bytes().to_vec();
        let start = pos.min(v.len());
        let end = (start + len).min(v.len());
        for b in &mut v[start..end] { *b = fill; }
        let _ = resource_lists::parse(&v, &Limits::default());
    }

    /// write_history → parse keeps every visible recipient with its attributes and text.
    #[test]
    fn history_round_trip(
        list in prop::collection::vec(
            ("[a-z]{1,6}", 0u8..3, any::<bool>(), prop::option::of("[ -~\u{e9}\u{4e2d}]{1,12}")),
            0..8,
        ),
    ) {
        let recipients: Vec<ListEntry> = list
            .iter()
            .map(|(u, c, a, n)| {
                let cc = [CopyControl::To, CopyControl::Cc, CopyControl::Bcc][*c as usize];
                entry(&format!("sip:{u}@example.com"), cc, *a, n.as_deref())
            })
            .collect();
        let back = parse(&resource_lists::write_history(&recipients)).unwrap();
        let visible: Vec<_> = recipients
            .iter()
            .filter(|r| r.copy_control != CopyControl::Bcc && !r.anonymize)
            .collect();
        let named: Vec<_> = back.entries.iter().filter(|e| e.uri != ANONYMOUS_URI).collect();
        prop_assert_eq!(named.len(), visible.len());
        for (e, r) in named.iter().zip(&visible) {
            prop_assert_eq!(&e.uri, &r.uri.raw());
            prop_assert_eq!(e.copy_control, r.copy_control);
            let want = r.display_name.as_deref().map(str::trim).filter(|s| !s.is_empty());
            prop_assert_eq!(e.display_name.as_deref(), want);
        }
        let hidden = recipients.iter().filter(|r| r.copy_control != CopyControl::Bcc && r.anonymize).count() as u32;
        let counted: u32 = back.entries.iter().filter(|e| e.uri == ANONYMOUS_URI).filter_map(|e| e.count).sum();
        prop_assert_eq!(counted, hidden);
    }
}
