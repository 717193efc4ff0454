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

use crate::machine::{SdpAttribute, SdpFacts, SdpMedia};

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
pub fn facts(data: &[u8]) -> Result<SdpFacts, SdpError> {
    let session = parse(data)?;
    Ok(facts_from_session(
        &session,
        String::from_utf8_lossy(data).into_owned(),
    ))
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
                let mut attributes: Vec<SdpAttribute> = m
                    .attributes
                    .iter()
                    .map(|a| SdpAttribute {
                        name: a.attribute.clone(),
                        value: a.value.clone(),
                    })
                    .collect();
                // RFC 4566 §6: a direction attribute at session level applies to every
                // media section that has none of its own. Conditions read media sections
                // only, so the inherited one is added to the section's view.
                let own = attributes
                    .iter()
                    .any(|a| msrp::Direction::from_attr(&a.name).is_some());
                if !own
                    && let Some(d) = session
                        .attributes
                        .iter()
                        .find(|a| msrp::Direction::from_attr(&a.attribute).is_some())
                {
                    attributes.push(SdpAttribute {
                        name: d.attribute.clone(),
                        value: None,
                    });
                }
                SdpMedia {
                    media: m.media.clone(),
                    port: m.port,
                    proto: m.proto.clone(),
                    formats: m.fmt.split_ascii_whitespace().map(str::to_owned).collect(),
                    attributes,
                }
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
            .map(|m| m.attributes.iter().map(|a| a.name.clone()).collect())
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

    #[test]
    fn no_session_direction_adds_nothing() {
        let sdp = format!("{HEAD}m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n");
        assert_eq!(media_attrs(&sdp), vec![vec!["accept-types".to_owned()]]);
    }
}
