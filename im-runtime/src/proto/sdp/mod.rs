//! SDP (RFC 8866) and the offer/answer rules for MSRP media (RFC 3264, RFC 4975, RFC 6135).
//!
//! * this module: parsing (with a size limit) and the conversion to the contract's
//!   [`SdpFacts`];
//! * [`msrp`]: the typed MSRP attribute layer (`path`, `accept-types`, `setup` …);
//! * [`answer`]: the answer builder for an MSRP offer (design.md rules a–d) and the
//!   server's own MSRP offer for invitee INVITEs.
//!
//! # Why `sdp-types` 0.3
//! shared/crates.md §2 found it the only maintained SDP crate that accepts MSRP offers
//! (`m=message 7394 TCP/MSRP *`, FQDNs in `o=`/`c=`, `a=path`, `a=accept-types`); the others
//! reject `TCP/MSRP` or `message`, reject FQDNs, or silently drop lines. We re-checked this on
//! 0.3.1 in `tests/sdp_msrp.rs` (`sdp_types_handles_msrp_offers_byte_identically`):
//! the RFC 4975 §8.7-style FQDN offer, an IPv4 offer and a `TCP/TLS/MSRP` offer with a
//! two-hop path parse with every attribute kept generically (name, optional value) and write
//! back byte-identical. Its model keeps `media`, `proto` and `fmt` as strings, so nothing
//! MSRP-specific is lost. Two behaviours to know, also pinned by tests:
//! * it is lax about missing `o=`/`s=` lines (it fills placeholders); we accept that,
//!   since the answer builder writes its own `o=`/`s=`;
//! * it accepts LF-only line ends as well as CRLF; its writer always emits CRLF.

pub mod answer;
pub mod msrp;
mod view;

use crate::machine::{SdpFacts, SdpMedia};

/// Largest SDP body parsed by default, in octets. An MSRP offer is a few hundred octets;
/// the SIP layer has its own message-size limit, this one bounds the SDP work on its own.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;

/// Why an SDP body was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than the limit.
    #[error("SDP larger than {limit} octets")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not UTF-8 (sdp-types supports only UTF-8).
    #[error("SDP is not UTF-8")]
    NotUtf8,
    /// sdp-types refused the body; its message.
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

/// Parses an SDP body of at most [`DEFAULT_MAX_BYTES`].
pub fn parse(data: &[u8]) -> Result<sdp_types::Session, SdpError> {
    parse_with_limit(data, DEFAULT_MAX_BYTES)
}

/// Parses an SDP body of at most `max_bytes` octets.
pub fn parse_with_limit(data: &[u8], max_bytes: usize) -> Result<sdp_types::Session, SdpError> {
    if data.len() > max_bytes {
        return Err(SdpError::TooLarge { limit: max_bytes });
    }
    if std::str::from_utf8(data).is_err() {
        return Err(SdpError::NotUtf8);
    }
    sdp_types::Session::parse(data).map_err(|e| SdpError::Malformed(e.to_string()))
}

/// Serialises a session (CRLF line ends).
pub fn write(session: &sdp_types::Session) -> String {
    // sdp-types writes into any io::Write; a Vec never fails, and its output is UTF-8
    // because every field is a String.
    let mut out = Vec::with_capacity(512);
    let _ = session.write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `data` and builds the contract's [`SdpFacts`] view.
///
/// The facts come from one walk over the lines that allocates only what they keep
/// ([`facts_direct`]); a body that walk refuses goes to the general parser, which gives the
/// error (or, should the two ever disagree, the facts). Same results as
/// `facts_from_session(&parse(data)?, …)`, which the `sdp` fuzz target checks.
pub fn facts(data: &[u8]) -> Result<SdpFacts, SdpError> {
    if let Some(f) = facts_direct(data) {
        return Ok(f);
    }
    let session = parse(data)?;
    Ok(facts_from_session(
        &session,
        String::from_utf8_lossy(data).into_owned(),
    ))
}

/// The facts of a body the general parser ([`parse`]) accepts, built without its model;
/// `None` for a body it refuses (too large, not UTF-8, malformed).
pub fn facts_direct(data: &[u8]) -> Option<SdpFacts> {
    if data.len() > DEFAULT_MAX_BYTES {
        return None;
    }
    view::facts(std::str::from_utf8(data).ok()?)
}

/// The MSRP attributes of the first MSRP media section with a non-zero port of an SDP body
/// (what an invitee's answer says about its MSRP session), `None` when the body is refused
/// (as by [`facts`]) or has no such section. The same as
/// [`msrp::MsrpAttributes::from_media`] of that section of [`facts`], read without building
/// the facts (their strings and vectors), which a leg would drop at once.
pub fn answer_msrp(data: &[u8]) -> Option<msrp::MsrpAttributes> {
    if data.len() <= DEFAULT_MAX_BYTES
        && let Ok(text) = std::str::from_utf8(data)
        && let Some(found) = view::msrp_media(text)
    {
        return found;
    }
    // Refused by the walk: the general parser decides, as in `facts`.
    let f = facts(data).ok()?;
    let m = f
        .media
        .iter()
        .find(|m| msrp::is_msrp(m.media(), m.proto()) && m.port() != 0)?;
    Some(msrp::MsrpAttributes::from_media(m))
}

/// Builds the contract's [`SdpFacts`] from a parsed session and its raw text.
pub fn facts_from_session(session: &sdp_types::Session, raw: String) -> SdpFacts {
    SdpFacts {
        connection: session
            .connection
            .as_ref()
            .map(|c| c.connection_address.clone()),
        media: session
            .medias
            .iter()
            .map(|m| {
                let mut attributes: Vec<(&str, Option<&str>)> = m
                    .attributes
                    .iter()
                    .map(|a| (a.attribute.as_str(), a.value.as_deref()))
                    .collect();
                // RFC 4566 §6: a direction attribute at session level applies to every
                // media section that has none of its own. Conditions read media sections
                // only, so the inherited one is added to the section's view.
                let own = attributes
                    .iter()
                    .any(|(n, _)| msrp::Direction::from_attr(n).is_some());
                if !own
                    && let Some(d) = session
                        .attributes
                        .iter()
                        .find(|a| msrp::Direction::from_attr(&a.attribute).is_some())
                {
                    attributes.push((d.attribute.as_str(), None));
                }
                SdpMedia::new(&m.media, m.port, &m.proto, &m.fmt, &attributes)
            })
            .collect(),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";

    fn media_attrs(sdp: &str) -> Vec<Vec<String>> {
        facts(sdp.as_bytes())
            .expect("valid SDP")
            .media
            .iter()
            .map(|m| m.attributes().map(|(n, _)| n.to_owned()).collect())
            .collect()
    }

    #[test]
    fn session_level_direction_reaches_media_without_its_own() {
        let sdp = format!(
            "{HEAD}a=sendonly\r\nm=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
             m=message 7395 TCP/MSRP *\r\na=recvonly\r\n"
        );
        assert_eq!(
            media_attrs(&sdp),
            vec![
                vec!["accept-types".to_owned(), "sendonly".to_owned()],
                vec!["recvonly".to_owned()],
            ]
        );
    }

    /// `facts_direct` gives the general parser's facts for what it accepts, `None` for what
    /// it refuses.
    fn agrees(sdp: &str) {
        let general = parse(sdp.as_bytes())
            .ok()
            .map(|s| facts_from_session(&s, sdp.to_owned()));
        assert_eq!(facts_direct(sdp.as_bytes()), general, "{sdp:?}");
        agrees_msrp(sdp);
    }

    /// `answer_msrp` reads what `MsrpAttributes::from_media` reads of the facts' first MSRP
    /// section with a port.
    fn agrees_msrp(sdp: &str) {
        let via_facts = facts(sdp.as_bytes()).ok().and_then(|f| {
            f.media
                .iter()
                .find(|m| msrp::is_msrp(m.media(), m.proto()) && m.port() != 0)
                .map(msrp::MsrpAttributes::from_media)
        });
        assert_eq!(answer_msrp(sdp.as_bytes()), via_facts, "{sdp:?}");
    }

    #[test]
    fn an_answers_msrp_attributes_are_its_first_msrp_section_with_a_port() {
        let answers = [
            format!(
                "{HEAD}a=recvonly\r\nm=audio 4000 RTP/AVP 0\r\na=setup:active\r\n\
                 m=message 0 TCP/MSRP *\r\na=path:msrp://x:1/zero;tcp\r\n\
                 m=message 7394 tcp/msrp *\r\na=PATH:msrp://r:1/a;tcp msrp://h:2/b;tcp\r\n\
                 a=setup:passive\r\na=accept-types:text/plain message/cpim\r\na=max-size:99\r\n\
                 m=message 7395 TCP/MSRP *\r\na=path:msrp://h:3/c;tcp\r\n"
            ),
            format!("{HEAD}m=message 9 TCP/TLS/MSRP *\r\na=setup:active\r\na=sendonly\r\n"),
            format!("{HEAD}m=audio 4000 RTP/AVP 0\r\n"),
            format!("{HEAD}a=inactive\r\nm=message 9 TCP/MSRP *\r\n"),
        ];
        for a in &answers {
            agrees_msrp(a);
        }
        let first = answer_msrp(answers[0].as_bytes()).expect("an MSRP section");
        assert_eq!(first.path, ["msrp://r:1/a;tcp", "msrp://h:2/b;tcp"]);
        assert_eq!(first.setup, Some(msrp::Setup::Passive));
        assert_eq!(first.direction, msrp::Direction::RecvOnly);
        assert!(answer_msrp(answers[2].as_bytes()).is_none());
        assert!(answer_msrp(b"v=1\r\n").is_none());
    }

    #[test]
    fn direct_facts_agree_with_the_general_parser() {
        let m =
            "m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h:1/s;tcp\r\n";
        let accepted = [
            format!("{HEAD}{m}"),
            format!("{HEAD}a=sendonly\r\n{m}m=message 7395/2 TCP/MSRP * x\r\na=RECVONLY\r\n"),
            format!("{HEAD}a=Inactive:x\r\n{m}"),
            "v=0\nm=message 1 TCP/MSRP  *  \na=\na=:x\n".to_owned(),
            format!(
                "\r\nv=0\r\n\r\no=- 1 +2 IN IP4 h\r\nt=1 2\r\nr=7d 1h 0 25m\r\nr=1 1\r\nz=1 -1h 2 3s\r\nb=:5\r\nk=x\r\ne=x\r\np=y\r\nx=z\r\n{m}i=a\r\nk=b\r\nc=IN IP4 h\r\nc=IN IP6 ::1\r\nb=AS:1\r\nv=9\r\no=o\r\n"
            ),
            format!("{HEAD}m=audio 0 RTP/AVP 0 8\r\nm=message 9 TCP/TLS/MSRP *"),
            "v=0".to_owned(),
            "v=0\r\nc=IN IP4 192.0.2.9\r\n".to_owned(),
        ];
        let refused = [
            String::new(),
            "v=1\r\n".to_owned(),
            "o=- 1 1 IN IP4 h\r\nv=0\r\n".to_owned(),
            format!("{HEAD}o=- 1 1 IN IP4 h\r\n"),
            format!("{HEAD}c=IN IP4 h\r\n"),
            format!("{HEAD}s=x\r\n"),
            "v=0\r\no=- 1 x IN IP4 h\r\n".to_owned(),
            "v=0\r\no=- 1 1 I\"N IP4 h\r\n".to_owned(),
            "v=0\r\no=- 1 1 IN IP4 h x\r\n".to_owned(),
            "v=0\r\nc=IN IP4\r\n".to_owned(),
            "v=0\r\nb=AS\r\n".to_owned(),
            "v=0\r\nb=AS:1:2\r\n".to_owned(),
            "v=0\r\nt=0\r\n".to_owned(),
            "v=0\r\nr=1 1\r\n".to_owned(),
            "v=0\r\nt=0 0\r\nr=1x 1\r\n".to_owned(),
            "v=0\r\nt=0 0\r\nr=1\r\n".to_owned(),
            "v=0\r\nz=1\r\n".to_owned(),
            "v=0\r\nz=1 -\r\n".to_owned(),
            "v=0\r\nz=1 -9223372036854775809\r\n".to_owned(),
            "v=0\r\nk=a\r\nk=b\r\n".to_owned(),
            "v=0\r\nbroken\r\n".to_owned(),
            "v=0\r\n=x\r\n".to_owned(),
            "v=0\r\nab=x\r\n".to_owned(),
            "v=0\r\na=x\ry\r\n".to_owned(),
            "v=0\r\na=x\0\r\n".to_owned(),
            format!("{HEAD}m=message x TCP/MSRP *\r\n"),
            format!("{HEAD}m=message 1/ TCP/MSRP *\r\n"),
            format!("{HEAD}m=message 70000 TCP/MSRP *\r\n"),
            format!("{HEAD}m=message 1 TCP/MSRP\r\n"),
            format!("{HEAD}{m}i=a\r\ni=b\r\n"),
            format!("{HEAD}{m}c=IN\r\n"),
            format!("{HEAD}{m}b=x\r\n"),
            format!("{HEAD}{m}x\r\n"),
        ];
        for sdp in accepted.iter() {
            assert!(facts_direct(sdp.as_bytes()).is_some(), "{sdp:?}");
            agrees(sdp);
        }
        for sdp in refused.iter() {
            assert!(parse(sdp.as_bytes()).is_err(), "{sdp:?}");
            agrees(sdp);
        }
        let big = format!("{HEAD}{}", "a=x\r\n".repeat(DEFAULT_MAX_BYTES / 5));
        assert!(facts_direct(big.as_bytes()).is_none());
        assert!(facts_direct(b"v=0\r\ns=\xff\r\n").is_none());
    }

    #[test]
    fn no_session_direction_adds_nothing() {
        let sdp = format!("{HEAD}m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n");
        assert_eq!(media_attrs(&sdp), vec![vec!["accept-types".to_owned()]]);
    }
}
