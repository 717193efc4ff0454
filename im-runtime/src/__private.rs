//! Helpers called by code generated from `.imspec` files. Not a public API: the generator
//! and this module change together, and names here may change in any release.
//!
//! The generator keeps expansions thin by calling these functions instead of inlining logic
//! (style practice 10): each spec primitive (a fact, a field, a built-in) maps to one
//! function here, so its meaning is defined — and unit-tested — in one place.

use crate::machine::{BodyPart, Config, CopyControl, Env, Facts, ListEntry, SdpMedia, Uri};
use std::time::Duration;

/// The empty URI returned for absent URI facts (`request.asserted_identity`).
static EMPTY_URI: Uri = Uri::EMPTY;

fn to_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---- root facts ----------------------------------------------------------------------------

/// `request.method`: the method token, empty when the facts carry none.
pub fn method(facts: &Facts) -> &str {
    facts.method.as_ref().map(|m| m.as_str()).unwrap_or("")
}

/// `request.asserted_identity`: the P-Asserted-Identity URI, the empty URI when absent.
pub fn asserted_identity(facts: &Facts) -> &Uri {
    facts.asserted_identity.as_ref().unwrap_or(&EMPTY_URI)
}

/// `request.authenticated`. A call, as for `sdp.present`, so that `not request.authenticated`
/// is no double negation for clippy in build-script output.
pub fn authenticated(facts: &Facts) -> bool {
    !facts.unauthenticated
}

/// `request.originator_domain`: the vouched domain, `config.domain` when authentication is
/// off.
pub fn originator_domain<'a>(facts: &'a Facts, config: &'a crate::machine::Config) -> &'a str {
    facts
        .originator_domain
        .as_deref()
        .unwrap_or(config.domain.as_str())
}

/// `request.max_forwards_decremented`: the request's Max-Forwards less one (RFC 3261 §16.6
/// step 3), 70 when it had none (or an unreadable one), never above 70: a copy sent on the
/// request's behalf that names the server again runs out of hops instead of looping.
pub fn max_forwards_decremented(facts: &Facts) -> i64 {
    facts
        .header("max-forwards")
        .and_then(|v| v.trim().parse::<u8>().ok())
        .map_or(70, |m| i64::from(m.saturating_sub(1).min(70)))
}

/// `sdp.present`: the request carries an SDP offer. A call rather than `sdp.is_some()` so
/// that `not sdp.present` expands to `!sdp_present(..)`, which clippy's `nonminimal_bool`
/// accepts in `include!`d (build-script) output.
pub fn sdp_present(facts: &Facts) -> bool {
    facts.sdp.is_some()
}

/// `sdp.media`: the offer's media sections, none when there is no SDP.
pub fn sdp_media(facts: &Facts) -> &[SdpMedia] {
    facts
        .sdp
        .as_ref()
        .map(|s| s.media.as_slice())
        .unwrap_or(&[])
}

/// `response.status`: the status code, 0 when the event is not a response.
pub fn status(facts: &Facts) -> i64 {
    facts.status.map(i64::from).unwrap_or(0)
}

/// `config.max_size`: 0 when unlimited.
pub fn max_size(config: &Config) -> i64 {
    config
        .max_size
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `config.max_recipients`.
pub fn max_recipients(config: &Config) -> i64 {
    to_int(config.max_recipients)
}

/// `legs.*`: a leg count as the language's Int.
pub fn count_i64(n: usize) -> i64 {
    to_int(n)
}

// ---- fields ----------------------------------------------------------------------------------

/// `uri.scheme`.
pub fn uri_scheme(uri: &Uri) -> &str {
    uri.scheme()
}

/// `uri.user`.
pub fn uri_user(uri: &Uri) -> &str {
    uri.user()
}

/// `uri.host`.
pub fn uri_host(uri: &Uri) -> &str {
    uri.host()
}

/// `uri.port`: 0 when absent.
pub fn uri_port(uri: &Uri) -> i64 {
    uri.port().map(i64::from).unwrap_or(0)
}

/// `part.type`.
pub fn part_type(part: &BodyPart) -> &str {
    &part.content_type
}

/// `part.disposition`.
pub fn part_disposition(part: &BodyPart) -> &str {
    &part.disposition
}

/// `part.len`.
pub fn part_len(part: &BodyPart) -> i64 {
    to_int(part.len)
}

/// `entry.uri`.
pub fn entry_uri(entry: &ListEntry) -> &Uri {
    &entry.uri
}

/// `entry.display_name`: empty when absent.
pub fn entry_display_name(entry: &ListEntry) -> &str {
    entry.display_name.as_deref().unwrap_or("")
}

/// `entry.copy_control`: `to`, `cc` or `bcc`.
pub fn entry_copy_control(entry: &ListEntry) -> &'static str {
    match entry.copy_control {
        CopyControl::To => "to",
        CopyControl::Cc => "cc",
        CopyControl::Bcc => "bcc",
    }
}

/// `entry.anonymize`.
pub fn entry_anonymize(entry: &ListEntry) -> bool {
    entry.anonymize
}

/// `media.media`.
pub fn media_media(media: &SdpMedia) -> &str {
    media.media()
}

/// `media.proto`.
pub fn media_proto(media: &SdpMedia) -> &str {
    media.proto()
}

/// `media.port`.
pub fn media_port(media: &SdpMedia) -> i64 {
    i64::from(media.port())
}

/// `media.formats` (the generated code takes the list's slice).
pub fn media_formats(media: &SdpMedia) -> Vec<&str> {
    media.formats().collect()
}

// ---- built-ins -------------------------------------------------------------------------------

/// `count(list)`.
pub fn count<T>(list: &[T]) -> i64 {
    to_int(list.len())
}

/// `request.header(name)`: the first value, empty when absent.
pub fn header<'a>(facts: &'a Facts, name: &str) -> &'a str {
    facts.header(name).unwrap_or("")
}

/// `request.has_header(name)`.
pub fn has_header(facts: &Facts, name: &str) -> bool {
    facts.has_header(name)
}

/// `m.has(name)`.
pub fn media_has(media: &SdpMedia, name: &str) -> bool {
    media.has_attr(name)
}

/// `m.attr(name)`: empty when absent or a flag.
pub fn media_attr<'a>(media: &'a SdpMedia, name: &str) -> &'a str {
    media.attr(name).unwrap_or("")
}

/// `m.tokens(name)`.
pub fn media_tokens<'a>(media: &'a SdpMedia, name: &str) -> Vec<&'a str> {
    media.attr_tokens(name)
}

/// `directory.owns(uri)`.
pub fn owns(env: &Env<'_>, group: &Uri) -> bool {
    env.directory.owns(group)
}

/// `directory.is_member(group, user)`: `false` for an unknown group.
pub fn is_member(env: &Env<'_>, group: &Uri, user: &Uri) -> bool {
    env.directory
        .policy(group, user)
        .is_some_and(|p| p.is_member)
}

/// `directory.may_initiate(group, user)`: `false` for an unknown group.
pub fn may_initiate(env: &Env<'_>, group: &Uri, user: &Uri) -> bool {
    env.directory
        .policy(group, user)
        .is_some_and(|p| p.may_initiate)
}

/// `directory.invites_members(group)`: `<invite-members>` (absent: `true`); `false` for an
/// unknown group. Group-wide, read through the request's originator like
/// [`max_participants`].
pub fn invites_members(facts: &Facts, env: &Env<'_>, group: &Uri) -> bool {
    env.directory
        .policy(group, &facts.originator)
        .is_some_and(|p| p.invites_members)
}

/// `directory.may_join(group, user)`: `false` for an unknown group.
pub fn may_join(env: &Env<'_>, group: &Uri, user: &Uri) -> bool {
    env.directory
        .policy(group, user)
        .is_some_and(|p| p.may_join)
}

/// `directory.allows_anonymity(group, user)`: `false` for an unknown group.
pub fn allows_anonymity(env: &Env<'_>, group: &Uri, user: &Uri) -> bool {
    env.directory
        .policy(group, user)
        .is_some_and(|p| p.allows_anonymity)
}

/// `directory.member_count(group)`: 0 for an unknown group.
pub fn member_count(env: &Env<'_>, group: &Uri) -> i64 {
    env.directory
        .members(group)
        .map(|m| to_int(m.len()))
        .unwrap_or(0)
}

/// `directory.members(group)`: every member, as entries with no attributes; empty for an
/// unknown group.
pub fn members(env: &Env<'_>, group: &Uri) -> Vec<ListEntry> {
    env.directory
        .members(group)
        .unwrap_or_default()
        .into_iter()
        .map(|uri| ListEntry {
            uri,
            ..ListEntry::default()
        })
        .collect()
}

/// `distinct(entries)`: each identity once (RFC 3261 §19.1.4, parameters ignored), the
/// first entry kept. Borrows the entries it keeps rather than cloning them: the generated
/// code mostly counts the result (`count(distinct(…))`), and an entry clone is a URI's and
/// a display name's allocations. Takes entries or references to them, so calls nest.
pub fn distinct<E: std::borrow::Borrow<ListEntry>>(entries: &[E]) -> Vec<&ListEntry> {
    let s = crate::machine::Selection {
        without_originator: false,
        distinct: true,
    };
    s.apply(
        entries.iter().map(std::borrow::Borrow::borrow).collect(),
        &Uri::default(),
        |e| &e.uri,
    )
}

/// `without(entries, uri)`: the entries whose identity is not `uri`'s, borrowed as in
/// [`distinct`].
pub fn without<'a, E: std::borrow::Borrow<ListEntry>>(
    entries: &'a [E],
    uri: &Uri,
) -> Vec<&'a ListEntry> {
    let s = crate::machine::Selection {
        without_originator: true,
        distinct: false,
    };
    s.apply(
        entries.iter().map(std::borrow::Borrow::borrow).collect(),
        uri,
        |e| &e.uri,
    )
}

/// `directory.max_participants(group)`: 0 when unlimited or unknown. The directory reports
/// the group-wide `<max-participant-count>` as part of a user's policy, so it is read through
/// the request's originator.
pub fn max_participants(facts: &Facts, env: &Env<'_>, group: &Uri) -> i64 {
    env.directory
        .policy(group, &facts.originator)
        .and_then(|p| p.max_participants)
        .map(to_int)
        .unwrap_or(0)
}

/// `overlap(a, b)`: the lists share an element. MIME types and option tags compare ASCII
/// case-insensitively; `*` on either side matches any element of a non-empty other list and
/// `type/*` any subtype of `type` (RFC 4975 §8.6, the same matching the SDP answer builder
/// uses, so a condition never accepts what the answer then cannot carry, or the reverse).
pub fn overlap<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| crate::proto::sdp::msrp::types_match(x.as_ref(), y.as_ref()))
    })
}

/// `list contains s` (ASCII case-insensitive, like [`overlap`]).
pub fn list_contains<A: AsRef<str>>(list: &[A], s: &str) -> bool {
    list.iter().any(|x| x.as_ref().eq_ignore_ascii_case(s))
}

/// `text contains s`: substring test, case-sensitive.
pub fn str_contains(text: &str, s: &str) -> bool {
    text.contains(s)
}

/// `a == b` on lists: same elements in the same order (ASCII case-insensitive).
pub fn list_eq<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.as_ref().eq_ignore_ascii_case(y.as_ref()))
}

/// `a == b` on URIs: RFC 3261 §19.1.4 identity (see [`Uri::same_identity`]).
pub fn uri_eq(a: &Uri, b: &Uri) -> bool {
    a.same_identity(b)
}

// ---- answers ---------------------------------------------------------------------------------

/// Keeps the present items, in order (SDP answer items with `when` conditions).
pub fn present<T, const N: usize>(items: [Option<T>; N]) -> Vec<T> {
    items.into_iter().flatten().collect()
}

/// One piece of interpolated text (`"limit is {config.max_recipients}"`).
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    /// Literal text.
    Lit(&'a str),
    /// A string value.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A URI, printed as it appeared in the message.
    Uri(&'a Uri),
    /// A duration, printed as the spec writes it (`32s`, `500ms`).
    Duration(Duration),
}

/// Formats interpolated text.
pub fn text(pieces: &[Piece<'_>]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for p in pieces {
        // Writing into a String cannot fail.
        let _ = match p {
            Piece::Lit(s) | Piece::Str(s) => {
                out.push_str(s);
                Ok(())
            }
            Piece::Int(n) => write!(out, "{n}"),
            Piece::Bool(b) => write!(out, "{b}"),
            Piece::Uri(u) => {
                write_uri(&mut out, u);
                Ok(())
            }
            Piece::Duration(d) => write_duration(&mut out, *d),
        };
    }
    out
}

/// Appends `u` as interpolated text prints it: as it appeared in the message, else (a URI
/// built from parts) `scheme:user@host:port`.
pub(crate) fn write_uri(out: &mut String, u: &Uri) {
    if !u.raw().is_empty() {
        out.push_str(u.raw());
        return;
    }
    if u.scheme().is_empty() {
        return;
    }
    out.push_str(u.scheme());
    out.push(':');
    if !u.user().is_empty() {
        out.push_str(u.user());
        if !u.host().is_empty() {
            out.push('@');
        }
    }
    out.push_str(u.host());
    if let Some(p) = u.port() {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(out, ":{p}");
    }
}

fn write_duration(out: &mut String, d: Duration) -> std::fmt::Result {
    use std::fmt::Write as _;
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        write!(out, "{}s", ms / 1000)
    } else {
        write!(out, "{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::UriParts;
    use crate::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Route};

    fn uri(raw: &str, user: &str, host: &str) -> Uri {
        Uri::new(UriParts {
            scheme: "sip",
            user,
            host,
            port: None,
            raw,
            ..UriParts::default()
        })
    }

    #[test]
    fn overlap_is_case_insensitive_and_star_matches_all() {
        assert!(overlap(&["Text/Plain"], &["message/cpim", "text/plain"]));
        assert!(!overlap(&["text/html"], &["message/cpim", "text/plain"]));
        assert!(overlap(&["*"], &["text/plain"]));
        assert!(overlap(&["text/plain"], &["*"]));
        assert!(!overlap::<&str, &str>(&[], &["*"]));
        assert!(!overlap(&["*"], &Vec::<String>::new()));
        // RFC 4975 §8.6: `type/*` matches any subtype of type, in either list.
        assert!(overlap(&["text/*"], &["message/cpim", "text/plain"]));
        assert!(overlap(&["text/plain"], &["TEXT/*"]));
        assert!(!overlap(&["image/*"], &["message/cpim", "text/plain"]));
        assert!(!overlap(&["text/*"], &["texts/plain"]));
    }

    #[test]
    fn list_helpers() {
        assert!(list_contains(&["100rel", "Timer"], "timer"));
        assert!(!list_contains(&["100rel"], "timer"));
        assert!(list_eq(&["a", "B"], &["A".to_string(), "b".to_string()]));
        assert!(!list_eq(&["a"], &["a", "b"]));
        assert!(str_contains("hello world", "o w"));
        assert!(!str_contains("hello", "H"));
        assert_eq!(count(&[1, 2, 3]), 3);
    }

    #[test]
    fn absent_facts_have_neutral_values() {
        let f = Facts::default();
        assert_eq!(method(&f), "");
        assert_eq!(asserted_identity(&f), &Uri::default());
        assert!(sdp_media(&f).is_empty());
        assert!(!sdp_present(&f));
        assert_eq!(status(&f), 0);
        assert_eq!(header(&f, "Subject"), "");
        assert!(!has_header(&f, "Subject"));
        let c = Config {
            max_size: None,
            ..Config::default()
        };
        assert_eq!(max_size(&c), 0);
        assert_eq!(max_recipients(&c), 100);
    }

    #[test]
    fn uri_identity_ignores_params_and_case() {
        let a = uri("sip:g@Example.com;transport=tcp", "g", "example.com");
        let g = uri("sip:g@example.com", "g", "example.com");
        let b = Uri::new(UriParts {
            scheme: "SIP",
            ..g.parts(&[])
        });
        assert!(uri_eq(&a, &b));
        let c = uri("sip:G@example.com", "G", "example.com");
        assert!(!uri_eq(&a, &c));
        assert_eq!(uri_port(&a), 0);
    }

    #[test]
    fn media_helpers() {
        let m = SdpMedia::new(
            "message",
            7394,
            "TCP/MSRP",
            "*",
            &[
                ("accept-types", Some("message/cpim text/plain")),
                ("sendonly", None),
            ],
        );
        assert!(media_has(&m, "sendonly"));
        assert_eq!(media_attr(&m, "sendonly"), "");
        assert_eq!(media_attr(&m, "path"), "");
        assert_eq!(
            media_tokens(&m, "accept-types"),
            ["message/cpim", "text/plain"]
        );
        assert_eq!(media_port(&m), 7394);
        assert_eq!(media_formats(&m), ["*"]);
        assert_eq!(media_proto(&m), "TCP/MSRP");
    }

    struct Dir;
    impl GroupDirectory for Dir {
        fn owns(&self, g: &Uri) -> bool {
            g.user() == "friends"
        }
        fn members(&self, g: &Uri) -> Option<Vec<Uri>> {
            self.owns(g).then(|| vec![Uri::default(), Uri::default()])
        }
        fn policy(&self, g: &Uri, u: &Uri) -> Option<GroupPolicy> {
            self.owns(g).then(|| GroupPolicy {
                is_member: u.user() == "alice",
                may_initiate: u.user() == "alice",
                max_participants: Some(10),
                invites_members: true,
                may_join: u.user() == "alice",
                allows_anonymity: false,
            })
        }
    }
    struct NoRoute;
    impl InviteeRouter for NoRoute {
        fn route(&self, _: &Uri) -> Option<Route> {
            None
        }
    }

    #[test]
    fn directory_helpers() {
        let config = Config::default();
        let env = Env {
            config: &config,
            directory: &Dir,
            router: &NoRoute,
        };
        let g = uri("", "friends", "example.com");
        let other = uri("", "foes", "example.com");
        let alice = uri("", "alice", "example.com");
        let bob = uri("", "bob", "example.com");
        assert!(owns(&env, &g));
        assert!(!owns(&env, &other));
        assert!(is_member(&env, &g, &alice));
        assert!(!is_member(&env, &g, &bob));
        assert!(!is_member(&env, &other, &alice));
        assert!(may_initiate(&env, &g, &alice));
        assert!(may_join(&env, &g, &alice));
        assert!(!allows_anonymity(&env, &g, &alice));
        assert_eq!(member_count(&env, &g), 2);
        assert_eq!(member_count(&env, &other), 0);
        let facts = Facts {
            originator: bob,
            ..Facts::default()
        };
        assert_eq!(max_participants(&facts, &env, &g), 10);
        assert_eq!(max_participants(&facts, &env, &other), 0);
    }

    #[test]
    fn text_interpolation() {
        let u = uri("", "alice", "example.com");
        let s = text(&[
            Piece::Lit("at most "),
            Piece::Int(100),
            Piece::Lit(" recipients; "),
            Piece::Uri(&u),
            Piece::Lit(" "),
            Piece::Bool(true),
            Piece::Lit(" "),
            Piece::Duration(Duration::from_secs(32)),
            Piece::Lit("/"),
            Piece::Duration(Duration::from_millis(1500)),
            Piece::Str(" ok"),
        ]);
        assert_eq!(
            s,
            "at most 100 recipients; sip:alice@example.com true 32s/1500ms ok"
        );
        let raw = uri("sip:bob@example.com;transport=tcp", "bob", "example.com");
        assert_eq!(
            text(&[Piece::Uri(&raw)]),
            "sip:bob@example.com;transport=tcp"
        );
        assert_eq!(text(&[Piece::Uri(&Uri::default())]), "");
    }

    /// The shapes the generated code gives `distinct` and `without`: nested, over a fact's
    /// entries or a directory's (owned) list, counted or walked by a quantifier whose body
    /// reads a field; the entries kept are the first of each identity, borrowed in order.
    #[test]
    fn distinct_and_without_borrow_and_nest() {
        let entry = |raw: &str, user: &str, name: &str| ListEntry {
            uri: uri(raw, user, "example.com"),
            display_name: Some(name.into()),
            ..ListEntry::default()
        };
        let entries = vec![
            entry("sip:bob@example.com", "bob", "first bob"),
            entry("sip:alice@example.com", "alice", "alice"),
            entry("sip:bob@example.com;transport=tcp", "bob", "second bob"),
            entry("sip:carol@example.com", "carol", "carol"),
        ];
        let alice = uri("sip:alice@example.com", "alice", "example.com");
        assert_eq!(
            count(distinct(without(entries.as_slice(), &alice).as_slice()).as_slice()),
            2
        );
        let others = without(entries.as_slice(), &alice);
        let kept = distinct(others.as_slice());
        assert_eq!(count(kept.as_slice()), 2);
        assert!(
            std::ptr::eq(kept[0], &entries[0]),
            "the first bob, borrowed"
        );
        assert!(std::ptr::eq(kept[1], &entries[3]));
        assert!(
            distinct(entries.as_slice())
                .as_slice()
                .iter()
                .any(|e| entry_display_name(e) == "alice")
        );
        assert_eq!(count(without(kept.as_slice(), &kept[0].uri).as_slice()), 1);
        let owned: Vec<ListEntry> = entries.clone();
        assert_eq!(count(distinct(owned.as_slice()).as_slice()), 3);
    }

    #[test]
    fn present_keeps_order() {
        assert_eq!(present([Some(1), None, Some(3)]), vec![1, 3]);
        assert_eq!(entry_copy_control(&ListEntry::default()), "to");
    }
}
