//! Typed MSRP media attributes (RFC 4975 §8, RFC 6135, RFC 6714, RFC 4566 direction).
//!
//! Attribute names are matched without regard to case. Values that do not parse are
//! treated as absent (an unknown `a=setup` value, a non-numeric `a=max-size`): these
//! attributes only steer negotiation, and absence has a defined meaning for each.

use std::fmt;

use crate::machine::SdpMedia;

/// `a=setup` (RFC 4145 via RFC 6135): which side opens the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    /// The endpoint connects.
    Active,
    /// The endpoint listens.
    Passive,
    /// Either (offer only).
    ActPass,
    /// No connection for now.
    HoldConn,
}

impl Setup {
    /// Parses a value (any case).
    pub fn parse(v: &str) -> Option<Setup> {
        let v = v.trim();
        [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ]
        .into_iter()
        .find(|s| v.eq_ignore_ascii_case(s.as_str()))
    }

    /// The value as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// The answerer's role for an offer with `offered` (design.md rule c, digest §1.6):
    /// `active` → `passive`; `actpass` and `passive` → `active`; `holdconn` → `holdconn`;
    /// absent → `passive`, because without `a=setup` the offerer connects (RFC 4975 §5.4).
    pub fn answer_to(offered: Option<Setup>) -> Setup {
        match offered {
            Some(Setup::Active) | None => Setup::Passive,
            Some(Setup::ActPass) | Some(Setup::Passive) => Setup::Active,
            Some(Setup::HoldConn) => Setup::HoldConn,
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=connection` (RFC 4145 via RFC 6135).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    /// A new connection.
    New,
    /// Reuse the existing connection.
    Existing,
}

impl ConnectionMode {
    /// Parses a value (any case).
    pub fn parse(v: &str) -> Option<ConnectionMode> {
        let v = v.trim();
        [ConnectionMode::New, ConnectionMode::Existing]
            .into_iter()
            .find(|m| v.eq_ignore_ascii_case(m.as_str()))
    }

    /// The value as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::New => "new",
            ConnectionMode::Existing => "existing",
        }
    }
}

/// Media direction (RFC 4566 §6, RFC 4975 §8.9 for MSRP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=sendrecv`, also the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Maps an attribute name (any case) to a direction.
    pub fn from_attr(name: &str) -> Option<Direction> {
        if name.len() != 8 {
            return None;
        }
        [
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::SendRecv,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::SendRecv => "sendrecv",
            Direction::Inactive => "inactive",
        }
    }

    /// The answer's direction for this offered direction (RFC 3264 §6.1).
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::SendRecv => Direction::SendRecv,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// The MSRP attributes of one `m=message` section, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsrpAttributes {
    /// `a=path`: the MSRP URIs in order (relays first, the endpoint last). Empty when absent.
    pub path: Vec<String>,
    /// `a=accept-types` tokens; `None` when the attribute is absent.
    pub accept_types: Option<Vec<String>>,
    /// `a=accept-wrapped-types` tokens; `None` when the attribute is absent.
    pub accept_wrapped_types: Option<Vec<String>>,
    /// `a=max-size` in octets.
    pub max_size: Option<u64>,
    /// `a=setup`.
    pub setup: Option<Setup>,
    /// `a=connection`.
    pub connection: Option<ConnectionMode>,
    /// The media-level direction, else the session-level one, else `sendrecv`.
    pub direction: Direction,
    /// `a=msrp-cema` present (RFC 6714).
    pub cema: bool,
}

impl MsrpAttributes {
    /// Reads media-level attributes, falling back to `session_attrs` for the direction
    /// (RFC 4566 §6: a session-level direction applies to media without their own).
    pub fn read<'a>(
        media_attrs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        session_attrs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> MsrpAttributes {
        let mut out = MsrpAttributes::default();
        let mut direction = None;
        let tokens = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or_default()
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect()
        };
        for (name, value) in media_attrs {
            // Compared without regard to case and without a lower-cased copy per attribute.
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("path") {
                if out.path.is_empty() {
                    out.path = tokens(value);
                }
            } else if is("accept-types") {
                if out.accept_types.is_none() {
                    out.accept_types = Some(tokens(value));
                }
            } else if is("accept-wrapped-types") {
                if out.accept_wrapped_types.is_none() {
                    out.accept_wrapped_types = Some(tokens(value));
                }
            } else if is("max-size") {
                if out.max_size.is_none() {
                    out.max_size = value.and_then(|v| v.trim().parse().ok());
                }
            } else if is("setup") {
                if out.setup.is_none() {
                    out.setup = value.and_then(Setup::parse);
                }
            } else if is("connection") {
                if out.connection.is_none() {
                    out.connection = value.and_then(ConnectionMode::parse);
                }
            } else if is("msrp-cema") {
                out.cema = true;
            } else if direction.is_none() {
                direction = Direction::from_attr(name);
            }
        }
        if direction.is_none() {
            direction = session_attrs
                .into_iter()
                .find_map(|(n, _)| Direction::from_attr(n));
        }
        out.direction = direction.unwrap_or_default();
        out
    }

    /// Reads the attributes of a media section of the contract's view (no session-level
    /// fallback: [`SdpMedia`] does not keep session attributes).
    pub fn from_media(media: &SdpMedia) -> MsrpAttributes {
        MsrpAttributes::read(media.attributes(), std::iter::empty())
    }

    /// Reads media section `media` of a parsed session, with session-level fallback.
    pub fn from_session(session: &sdp_types::Session, media: &sdp_types::Media) -> MsrpAttributes {
        MsrpAttributes::read(
            media
                .attributes
                .iter()
                .map(|a| (a.attribute.as_str(), a.value.as_deref())),
            session
                .attributes
                .iter()
                .map(|a| (a.attribute.as_str(), a.value.as_deref())),
        )
    }
}

/// Whether an m-line is an MSRP one: media `message`, proto `TCP/MSRP` or `TCP/TLS/MSRP`
/// (any case).
pub fn is_msrp(media: &str, proto: &str) -> bool {
    media.eq_ignore_ascii_case("message")
        && (proto.eq_ignore_ascii_case("TCP/MSRP") || proto.eq_ignore_ascii_case("TCP/TLS/MSRP"))
}

/// Intersects two accept-types lists (RFC 4975 §8.6), in the order of `offered`.
///
/// Tokens compare without regard to case. `*` matches anything and `type/*` any subtype of
/// `type`; a match contributes the more specific of the two tokens (the server's when equal),
/// so an offer of `*` yields the server's list and a server of `*` yields the offer's.
/// Duplicates are removed.
pub fn intersect_types(offered: &[String], ours: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in offered {
        for s in ours {
            if let Some(m) = type_match(o, s)
                && !out.iter().any(|x| x.eq_ignore_ascii_case(m))
            {
                out.push(m.to_owned());
            }
        }
    }
    out
}

/// Whether two accept-types tokens match (RFC 4975 §8.6): equal without regard to case, `*`
/// on either side, or `type/*` against any subtype of `type`.
pub fn types_match(a: &str, b: &str) -> bool {
    type_match(a, b).is_some()
}

/// The more specific of `a` and `b` when they match, else `None`.
fn type_match<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    fn rank(t: &str) -> u8 {
        if t == "*" {
            0
        } else if t.ends_with("/*") {
            1
        } else {
            2
        }
    }
    fn top(t: &str) -> &str {
        t.split('/').next().unwrap_or(t)
    }
    let matches = a.eq_ignore_ascii_case(b)
        || a == "*"
        || b == "*"
        || (rank(a) == 1 && top(a).eq_ignore_ascii_case(top(b)))
        || (rank(b) == 1 && top(b).eq_ignore_ascii_case(top(a)));
    if !matches {
        return None;
    }
    Some(if rank(a) > rank(b) { a } else { b })
}
