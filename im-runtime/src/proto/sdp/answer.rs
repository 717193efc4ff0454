//! The SDP answer to an MSRP offer (design.md "SDP answer rules" a–d, RFC 3264, RFC 4975,
//! RFC 6135) and the server's own MSRP offer for invitee INVITEs.
//!
//! [`build_answer`] applies only the [`SdpAnswerItem`]s it is given, but always in one
//! fixed order, whatever the order of the items:
//!
//! ```text
//! v=0
//! o=- <session id> <version> IN IP4|IP6 <address>
//! s=-
//! c=IN IP4|IP6 <address>                       (b)
//! t=0 0
//! m=message <msrp port> <offer's proto> *      (b)
//! a=path:<own MSRP URI>                        (a)  OwnPath
//! a=accept-types:<intersection>                (c)  AcceptTypesIntersection
//! a=accept-wrapped-types:<intersection>        (c)  AcceptWrappedTypesIntersection (if any)
//! a=max-size:<server's>                        (c)  OwnMaxSize (if configured)
//! a=setup:<complement>                         (c)  ComplementSetup
//! a=connection:new                             (c)  ComplementSetup
//! a=<mirrored direction>                       (c)  MirrorDirection
//! a=<echoed attribute>                         (c)  Echo, in item order, when offered
//! a=<fixed attribute>                          (d)  Fixed, in item order
//! ```
//!
//! The first MSRP m-line of the offer (media `message`, proto `TCP/MSRP` or `TCP/TLS/MSRP`)
//! is the one answered; any other m-line is refused with port 0 in its place, as RFC 3264
//! §6 requires the answer to keep the offer's m-lines in order.

use std::net::IpAddr;

use sdp_types::{AddrType, Attribute, Connection, Media, NetType, Origin, Session, Time};

use super::msrp::{self, Direction, MsrpAttributes, Setup, intersect_types};
use super::{SdpError, view, write};
use crate::machine::{Config, SdpAnswerItem, SdpFacts};

/// What the server puts in its SDP besides what it takes from the offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// The advertised address for `o=` and `c=` (an IP literal or a host name).
    pub address: String,
    /// The MSRP listening port for `m=`.
    pub msrp_port: u16,
    /// The server's own MSRP URI for this session, for `a=path`.
    pub path: String,
    /// `o=` session id (digits).
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
}

/// Why no answer could be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The offer did not parse.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// The offer has no `m=message` line with proto `TCP/MSRP` or `TCP/TLS/MSRP`.
    #[error("no MSRP media in the offer")]
    NoMsrpMedia,
    /// An entry of the offer's `a=path` is not an MSRP URI (RFC 4975 §8.1: the path says where
    /// the session's frames go and come from).
    #[error("offer a=path is not a list of MSRP URIs")]
    BadPath,
    /// The offer's proto (`TCP/MSRP` or `TCP/TLS/MSRP`) and the server's own path disagree
    /// on TLS: an `msrps:` path goes with `TCP/TLS/MSRP` and an `msrp:` one with `TCP/MSRP`
    /// (RFC 4975 §8.1, §14). Seen when the offer asks for TLS and the server has none.
    #[error("MSRP over TLS is not available here (offered {offered})")]
    TlsMismatch {
        /// The offered proto.
        offered: String,
    },
    /// The offer's MSRP media has no `a=accept-types` (mandatory, RFC 4975 §8.6).
    #[error("offer has no accept-types")]
    MissingAcceptTypes,
    /// No type of the offer's accept-types is acceptable to the server (→ 488 + Warning).
    #[error("no common accept-types (offered: {})", offered.join(" "))]
    NoCommonAcceptTypes {
        /// The offer's accept-types, for the Warning text.
        offered: Vec<String>,
    },
    /// The items lack [`SdpAnswerItem::MediaFromOffer`]: without it there is no m-line and
    /// no `c=` to answer with, so the spec rule is incomplete.
    #[error("answer items lack the media line (MediaFromOffer)")]
    MissingMediaItem,
}

/// A built answer and what the runtime needs to act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The SDP text (CRLF line ends).
    pub sdp: String,
    /// The server's connection role: `Active` means the server opens the TCP connection to
    /// the offerer's path. When `ComplementSetup` is not applied the offerer connects
    /// (RFC 4975 §5.4), so this is `Passive`.
    pub role: Setup,
    /// The offer's typed MSRP attributes (its `path` says where to connect or whom to
    /// expect).
    pub offer: MsrpAttributes,
    /// The answered media is `TCP/TLS/MSRP`: the session runs over TLS (RFC 4975 §14).
    pub tls: bool,
}

/// Builds the answer to `offer` (the request's SDP view; its `raw` text is re-read so that
/// session-level attributes count) following `items`.
///
/// The offer's text is walked once without the `sdp-types` model and the answer written
/// straight into its string; an offer that walk refuses goes through the model
/// ([`build_answer_to_session`]), which gives the error. Both give the same result for every
/// offer (unit tests below and the `sdp` fuzz target compare them).
pub fn build_answer(
    offer: &SdpFacts,
    items: &[SdpAnswerItem],
    local: &LocalMedia,
    config: &Config,
) -> Result<Answer, AnswerError> {
    if let Some(answer) = build_answer_direct(&offer.raw, items, local, config) {
        return answer;
    }
    let session = super::parse(offer.raw.as_bytes())?;
    build_answer_to_session(&session, items, local, config)
}

/// The offer's media sections as the direct answer needs them: every m-line (to refuse the
/// others) and the attributes of the first MSRP one.
#[derive(Default)]
struct OfferLines<'a> {
    lines: Vec<view::MediaLine<'a>>,
    msrp: Option<usize>,
    attrs: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> view::Sink<'a> for OfferLines<'a> {
    fn media(&mut self, m: view::MediaLine<'a>) {
        if self.msrp.is_none() && msrp::is_msrp(m.media, m.proto) {
            self.msrp = Some(self.lines.len());
        }
        self.lines.push(m);
    }

    fn attribute(&mut self, name: &'a str, value: Option<&'a str>) {
        if self.msrp.is_some() && self.msrp == self.lines.len().checked_sub(1) {
            self.attrs.push((name, value));
        }
    }
}

/// [`build_answer_to_session`] without the model: `None` when the general parser would
/// refuse the offer (too large or malformed).
fn build_answer_direct(
    raw: &str,
    items: &[SdpAnswerItem],
    local: &LocalMedia,
    config: &Config,
) -> Option<Result<Answer, AnswerError>> {
    if raw.len() > super::DEFAULT_MAX_BYTES {
        return None;
    }
    let mut offer = OfferLines::default();
    let walked = view::walk(raw, &mut offer)?;
    Some(answer_lines(
        &offer,
        walked.session_direction,
        items,
        local,
        config,
    ))
}

fn answer_lines(
    offer: &OfferLines<'_>,
    session_direction: Option<&str>,
    items: &[SdpAnswerItem],
    local: &LocalMedia,
    config: &Config,
) -> Result<Answer, AnswerError> {
    let index = offer.msrp.ok_or(AnswerError::NoMsrpMedia)?;
    let offered_media = offer.lines.get(index).ok_or(AnswerError::NoMsrpMedia)?;
    let attrs = MsrpAttributes::read(
        offer.attrs.iter().copied(),
        session_direction.map(|d| (d, None)),
    );
    if !items.contains(&SdpAnswerItem::MediaFromOffer) {
        return Err(AnswerError::MissingMediaItem);
    }
    // As in `build_answer_to_session`: an unreachable path is refused here, as a 488.
    if attrs
        .path
        .iter()
        .any(|p| p.parse::<crate::proto::msrp::MsrpUri>().is_err())
    {
        return Err(AnswerError::BadPath);
    }
    let tls = is_tls_proto(offered_media.proto);
    let own_tls = local
        .path
        .parse::<crate::proto::msrp::MsrpUri>()
        .is_ok_and(|u| u.scheme == crate::proto::msrp::Scheme::Msrps);
    if tls != own_tls {
        return Err(AnswerError::TlsMismatch {
            offered: offered_media.proto.to_owned(),
        });
    }
    let has = |want: &SdpAnswerItem| items.contains(want);
    let mut role = Setup::Passive;
    // The values built here outlive the attribute list that borrows them.
    let mut accept = None;
    if has(&SdpAnswerItem::AcceptTypesIntersection) {
        let offered = attrs
            .accept_types
            .as_ref()
            .filter(|t| !t.is_empty())
            .ok_or(AnswerError::MissingAcceptTypes)?;
        let common = intersect_types(offered, &config.accept_types);
        if common.is_empty() {
            return Err(AnswerError::NoCommonAcceptTypes {
                offered: offered.clone(),
            });
        }
        accept = Some(common.join(" "));
    }
    let wrapped = match &attrs.accept_wrapped_types {
        Some(offered) if has(&SdpAnswerItem::AcceptWrappedTypesIntersection) => {
            let common = intersect_types(offered, &config.accept_wrapped_types);
            (!common.is_empty()).then(|| common.join(" "))
        }
        _ => None,
    };
    let max = match config.max_size {
        Some(max) if has(&SdpAnswerItem::OwnMaxSize) => Some(max.to_string()),
        _ => None,
    };
    let mut out: Vec<(&str, Option<&str>)> = Vec::with_capacity(8);
    if has(&SdpAnswerItem::OwnPath) {
        out.push(("path", Some(&local.path)));
    }
    if let Some(a) = &accept {
        out.push(("accept-types", Some(a)));
    }
    if let Some(w) = &wrapped {
        out.push(("accept-wrapped-types", Some(w)));
    }
    if let Some(m) = &max {
        out.push(("max-size", Some(m)));
    }
    if has(&SdpAnswerItem::ComplementSetup) {
        role = Setup::answer_to(attrs.setup);
        out.push(("setup", Some(role.as_str())));
        out.push(("connection", Some("new")));
    }
    if has(&SdpAnswerItem::MirrorDirection) {
        out.push((attrs.direction.mirror().as_str(), None));
    }
    for item in items {
        if let SdpAnswerItem::Echo(name) = item
            && let Some(a) = offer.attrs.iter().find(|a| a.0.eq_ignore_ascii_case(name))
        {
            out.push(*a);
        }
    }
    for item in items {
        if let SdpAnswerItem::Fixed(name, value) = item {
            // A spec-given attribute replaces one the builder already wrote.
            out.retain(|a| !a.0.eq_ignore_ascii_case(name));
            out.push((name.as_ref(), value.as_deref()));
        }
    }

    let mut s = String::with_capacity(256 + local.path.len() + 32 * offer.lines.len());
    write_session_head(&mut s, local);
    for (i, m) in offer.lines.iter().enumerate() {
        s.push_str("m=");
        if i == index {
            s.push_str("message ");
            push_u64(&mut s, u64::from(local.msrp_port));
            s.push(' ');
            free_text(&mut s, m.proto);
            s.push_str(" *\r\n");
            for (name, value) in &out {
                s.push_str("a=");
                free_text(&mut s, name);
                if let Some(v) = value {
                    s.push(':');
                    free_text(&mut s, v);
                }
                s.push_str("\r\n");
            }
        } else {
            // Refused: the offer's m-line with port 0 and no attributes (RFC 3264 §6).
            free_text(&mut s, m.media);
            s.push_str(" 0 ");
            free_text(&mut s, m.proto);
            s.push(' ');
            free_text(&mut s, m.fmt);
            s.push_str("\r\n");
        }
    }
    Ok(Answer {
        sdp: s,
        role,
        offer: attrs,
        tls,
    })
}

/// Appends `text` without NUL, CR and LF, as the `sdp-types` writer does (a value that
/// cannot stand on one SDP line must not add lines).
fn free_text(s: &mut String, text: &str) {
    if text.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        s.extend(text.chars().filter(|c| !matches!(c, '\0' | '\r' | '\n')));
    } else {
        s.push_str(text);
    }
}

fn push_u64(s: &mut String, n: u64) {
    s.push_str(crate::proto::decimal::decimal(&mut [0; 20], n));
}

/// Writes the session lines every SDP of the server starts with, its answers and its
/// offers alike: `v=`, `o=`, `s=`, `c=` and `t=`. The address type follows the configured
/// address (a host name is written with IP4, as RFC 4975 §8.7's example does); a NUL, CR or
/// LF in the address is dropped ([`free_text`]).
///
/// Written piece by piece: `write!` with its formatting machinery was a third of the cost of
/// an offer, and the server writes one per invitee and an answer per session.
fn write_session_head(s: &mut String, local: &LocalMedia) {
    let at = match addr_type(&local.address) {
        AddrType::Ip6 => "IP6",
        _ => "IP4",
    };
    s.push_str("v=0\r\no=- ");
    push_u64(s, local.session_id);
    s.push(' ');
    push_u64(s, local.session_version);
    s.push_str(" IN ");
    s.push_str(at);
    s.push(' ');
    free_text(s, &local.address);
    s.push_str("\r\ns=-\r\nc=IN ");
    s.push_str(at);
    s.push(' ');
    free_text(s, &local.address);
    s.push_str("\r\nt=0 0\r\n");
}

/// Writes the head of the server's own MSRP offer: the session lines
/// ([`write_session_head`]), then `m=message <port> TCP/MSRP *` (`TCP/TLS/MSRP` with
/// `tls`), its own `a=path` and `a=accept-types` with `accept_types`, the lines RFC 4975 §8
/// makes mandatory. Each offer the server writes starts so: [`build_offer`]'s and the one
/// of a spec's `invite each` (`endpoint/invitation.rs`), which adds the spec's attribute
/// lines after it. A NUL, CR or LF in a configured value is dropped ([`free_text`]).
pub(crate) fn write_offer_head(
    s: &mut String,
    local: &LocalMedia,
    accept_types: &[String],
    tls: bool,
) {
    write_session_head(s, local);
    s.push_str("m=message ");
    push_u64(s, u64::from(local.msrp_port));
    s.push_str(if tls {
        " TCP/TLS/MSRP *\r\na=path:"
    } else {
        " TCP/MSRP *\r\na=path:"
    });
    free_text(s, &local.path);
    s.push_str("\r\na=accept-types:");
    join_into(s, accept_types);
    s.push_str("\r\n");
}

/// [`build_answer`] for an already parsed offer.
pub fn build_answer_to_session(
    offer: &Session,
    items: &[SdpAnswerItem],
    local: &LocalMedia,
    config: &Config,
) -> Result<Answer, AnswerError> {
    let index = offer
        .medias
        .iter()
        .position(|m| msrp::is_msrp(&m.media, &m.proto))
        .ok_or(AnswerError::NoMsrpMedia)?;
    let offered_media = offer.medias.get(index).ok_or(AnswerError::NoMsrpMedia)?;
    let attrs = MsrpAttributes::from_session(offer, offered_media);
    if !items.contains(&SdpAnswerItem::MediaFromOffer) {
        return Err(AnswerError::MissingMediaItem);
    }
    // Accepting an offer whose path we cannot parse would leave a session nobody can reach
    // (and, before issue 14's fix, the path parser panicked on some of them): refuse it here,
    // where the refusal becomes a 488 with this reason.
    if attrs
        .path
        .iter()
        .any(|p| p.parse::<crate::proto::msrp::MsrpUri>().is_err())
    {
        return Err(AnswerError::BadPath);
    }

    let tls = is_tls_proto(&offered_media.proto);
    let own_tls = local
        .path
        .parse::<crate::proto::msrp::MsrpUri>()
        .is_ok_and(|u| u.scheme == crate::proto::msrp::Scheme::Msrps);
    if tls != own_tls {
        return Err(AnswerError::TlsMismatch {
            offered: offered_media.proto.clone(),
        });
    }
    let mut media = Media {
        media: "message".into(),
        port: local.msrp_port,
        num_ports: None,
        proto: offered_media.proto.clone(),
        fmt: "*".into(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    };
    let mut role = Setup::Passive;
    let has = |want: &SdpAnswerItem| items.contains(want);

    if has(&SdpAnswerItem::OwnPath) {
        push(&mut media, "path", Some(&local.path));
    }
    if has(&SdpAnswerItem::AcceptTypesIntersection) {
        let offered = attrs
            .accept_types
            .as_ref()
            .filter(|t| !t.is_empty())
            .ok_or(AnswerError::MissingAcceptTypes)?;
        let common = intersect_types(offered, &config.accept_types);
        if common.is_empty() {
            return Err(AnswerError::NoCommonAcceptTypes {
                offered: offered.clone(),
            });
        }
        push(&mut media, "accept-types", Some(&common.join(" ")));
    }
    if has(&SdpAnswerItem::AcceptWrappedTypesIntersection)
        && let Some(offered) = &attrs.accept_wrapped_types
    {
        // Wrapped types are optional: no overlap just means none are offered back.
        let common = intersect_types(offered, &config.accept_wrapped_types);
        if !common.is_empty() {
            push(&mut media, "accept-wrapped-types", Some(&common.join(" ")));
        }
    }
    if has(&SdpAnswerItem::OwnMaxSize)
        && let Some(max) = config.max_size
    {
        push(&mut media, "max-size", Some(&max.to_string()));
    }
    if has(&SdpAnswerItem::ComplementSetup) {
        role = Setup::answer_to(attrs.setup);
        push(&mut media, "setup", Some(role.as_str()));
        push(&mut media, "connection", Some("new"));
    }
    if has(&SdpAnswerItem::MirrorDirection) {
        push(&mut media, attrs.direction.mirror().as_str(), None);
    }
    for item in items {
        if let SdpAnswerItem::Echo(name) = item
            && let Some(a) = offered_media
                .attributes
                .iter()
                .find(|a| a.attribute.eq_ignore_ascii_case(name))
        {
            push(&mut media, &a.attribute, a.value.as_deref());
        }
    }
    for item in items {
        if let SdpAnswerItem::Fixed(name, value) = item {
            // A spec-given attribute the builder already wrote (e.g. `connection` with
            // ComplementSetup) replaces it instead of appearing twice.
            media
                .attributes
                .retain(|a| !a.attribute.eq_ignore_ascii_case(name));
            push(&mut media, name, value.as_deref());
        }
    }

    let mut session = base_session(local);
    for (i, m) in offer.medias.iter().enumerate() {
        if i == index {
            session.medias.push(media.clone());
        } else {
            session.medias.push(refused(m));
        }
    }
    Ok(Answer {
        sdp: write(&session),
        role,
        offer: attrs,
        tls,
    })
}

/// Whether an MSRP m-line's proto is `TCP/TLS/MSRP` (RFC 4975 §8.1): MSRP over TLS, with
/// `msrps:` paths.
pub fn is_tls_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("TCP/TLS/MSRP")
}

/// Options of the server's own MSRP offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferOptions {
    /// `a=setup` value; `ActPass` by default (let the invitee choose, RFC 6135).
    pub setup: Setup,
    /// Direction; `SendOnly` by default (the server delivers one message).
    pub direction: Direction,
    /// `TCP/TLS/MSRP` instead of `TCP/MSRP`.
    pub tls: bool,
    /// Add `a=msrp-cema` (RFC 6714).
    pub cema: bool,
}

impl Default for OfferOptions {
    fn default() -> Self {
        OfferOptions {
            setup: Setup::ActPass,
            direction: Direction::SendOnly,
            tls: false,
            cema: false,
        }
    }
}

/// Builds the server's MSRP offer for an invitee INVITE:
/// `m=message <port> TCP/MSRP *`, own path, the configured accept-types,
/// accept-wrapped-types and max-size, `a=setup`, `a=connection:new`, the direction.
///
/// Written straight into the string (one allocation); values that could not stand on one
/// SDP line take the general path through the `sdp_types` model, whose output the direct
/// one equals byte for byte (unit test below).
pub fn build_offer(local: &LocalMedia, config: &Config, opts: &OfferOptions) -> String {
    let plain = |s: &str| !s.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0);
    if !(plain(&local.address)
        && plain(&local.path)
        && config.accept_types.iter().all(|t| plain(t))
        && config.accept_wrapped_types.iter().all(|t| plain(t)))
    {
        return build_offer_model(local, config, opts);
    }
    let mut s = String::with_capacity(256 + local.path.len());
    write_offer_head(&mut s, local, &config.accept_types, opts.tls);
    if !config.accept_wrapped_types.is_empty() {
        s.push_str("a=accept-wrapped-types:");
        join_into(&mut s, &config.accept_wrapped_types);
        s.push_str("\r\n");
    }
    if let Some(max) = config.max_size {
        s.push_str("a=max-size:");
        push_u64(&mut s, max);
        s.push_str("\r\n");
    }
    for piece in [
        "a=setup:",
        opts.setup.as_str(),
        "\r\na=connection:new\r\na=",
        opts.direction.as_str(),
        "\r\n",
    ] {
        s.push_str(piece);
    }
    if opts.cema {
        s.push_str("a=msrp-cema\r\n");
    }
    s
}

/// `items` separated by spaces, each as [`free_text`].
fn join_into(s: &mut String, items: &[String]) {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        free_text(s, t);
    }
}

/// [`build_offer`] through the `sdp_types` model (the general path).
fn build_offer_model(local: &LocalMedia, config: &Config, opts: &OfferOptions) -> String {
    let mut media = Media {
        media: "message".into(),
        port: local.msrp_port,
        num_ports: None,
        proto: if opts.tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" }.into(),
        fmt: "*".into(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    };
    push(&mut media, "path", Some(&local.path));
    push(
        &mut media,
        "accept-types",
        Some(&config.accept_types.join(" ")),
    );
    if !config.accept_wrapped_types.is_empty() {
        push(
            &mut media,
            "accept-wrapped-types",
            Some(&config.accept_wrapped_types.join(" ")),
        );
    }
    if let Some(max) = config.max_size {
        push(&mut media, "max-size", Some(&max.to_string()));
    }
    push(&mut media, "setup", Some(opts.setup.as_str()));
    push(&mut media, "connection", Some("new"));
    push(&mut media, opts.direction.as_str(), None);
    if opts.cema {
        push(&mut media, "msrp-cema", None);
    }
    let mut session = base_session(local);
    session.medias.push(media);
    write(&session)
}

fn push(media: &mut Media, name: &str, value: Option<&str>) {
    media.attributes.push(Attribute {
        attribute: name.to_owned(),
        value: value.map(str::to_owned),
    });
}

fn addr_type(address: &str) -> AddrType {
    // A host name is written with IP4, as RFC 4975 §8.7's example does.
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => AddrType::Ip6,
        _ => AddrType::Ip4,
    }
}

fn base_session(local: &LocalMedia) -> Session {
    let addrtype = addr_type(&local.address);
    Session {
        origin: Origin {
            username: None,
            sess_id: local.session_id.to_string(),
            sess_version: local.session_version,
            nettype: NetType::In,
            addrtype: addrtype.clone(),
            unicast_address: local.address.clone(),
        },
        session_name: "-".into(),
        session_description: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection {
            nettype: NetType::In,
            addrtype,
            connection_address: local.address.clone(),
        }),
        bandwidths: Vec::new(),
        times: vec![Time {
            start_time: 0,
            stop_time: 0,
            repeats: Vec::new(),
        }],
        time_zones: Vec::new(),
        key: None,
        attributes: Vec::new(),
        medias: Vec::new(),
    }
}

/// The offer's m-line with port 0 and no attributes: a refused stream (RFC 3264 §6).
fn refused(m: &Media) -> Media {
    Media {
        media: m.media.clone(),
        port: 0,
        num_ports: None,
        proto: m.proto.clone(),
        fmt: m.fmt.clone(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// The direct answer equals the `sdp-types` model's (`build_answer_to_session` over the
    /// parsed offer), answer or error, for offers that exercise every rule: session-level
    /// directions, echoed and fixed attributes, refused extra m-lines, TLS, bad paths,
    /// missing or disjoint accept-types, values with characters that cannot stand on a line.
    #[test]
    fn the_direct_answer_equals_the_model() {
        const HEAD: &str =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        let path = "a=path:msrp://192.0.2.9:7394/abc;tcp\r\n";
        let offers = [
            format!(
                "{HEAD}m=message 7394 TCP/MSRP *\r\n{path}a=accept-types:message/cpim text/plain\r\n\
                 a=accept-wrapped-types:*\r\na=setup:actpass\r\na=sendonly\r\na=msrp-cema\r\n"
            ),
            format!(
                "{HEAD}a=RECVONLY\r\nm=audio 49170/2 RTP/AVP 0  8 \r\na=rtpmap:0 PCMU/8000\r\n\
                 m=message 7394 tcp/msrp *\r\n{path}a=Accept-Types:TEXT/*\r\na=SETUP:active\r\n\
                 a=connection:existing\r\nm=message 7395 TCP/MSRP *\r\n{path}"
            ),
            format!(
                "{HEAD}m=message 7394 TCP/TLS/MSRP *\r\na=path:msrps://h:1/x;tcp\r\na=accept-types:*\r\n"
            ),
            format!("{HEAD}m=message 7394 TCP/MSRP *\r\na=path:not-a-uri\r\na=accept-types:*\r\n"),
            format!("{HEAD}m=message 7394 TCP/MSRP *\r\n{path}"),
            format!("{HEAD}m=message 7394 TCP/MSRP *\r\n{path}a=accept-types:\r\n"),
            format!(
                "{HEAD}m=message 7394 TCP/MSRP *\r\n{path}a=accept-types:image/png\r\na=setup:holdconn\r\n"
            ),
            format!("{HEAD}m=audio 1 RTP/AVP 0\r\n"),
            "v=0\nm=message 1 TCP/MSRP  *  \na=accept-types:*\na=inactive\na=\na=:x\n".to_owned(),
            format!("{HEAD}a=sendonly\r\nm=message 1 TCP/MSRP *\r\na=accept-types:text/plain\r\n"),
            format!("{HEAD}m=message 7394 TCP/MSRP *\r\n{path}a=accept-types:text/plain\r\n"),
            format!("{HEAD}m=message x TCP/MSRP *\r\n"),
            String::new(),
        ];
        let all = vec![
            SdpAnswerItem::MediaFromOffer,
            SdpAnswerItem::OwnPath,
            SdpAnswerItem::AcceptTypesIntersection,
            SdpAnswerItem::AcceptWrappedTypesIntersection,
            SdpAnswerItem::OwnMaxSize,
            SdpAnswerItem::ComplementSetup,
            SdpAnswerItem::MirrorDirection,
            SdpAnswerItem::Echo(Cow::Borrowed("msrp-cema")),
            SdpAnswerItem::Echo(Cow::Borrowed("SENDONLY")),
            SdpAnswerItem::Fixed(Cow::Borrowed("tb-granted"), None),
        ];
        let item_sets = [
            all.clone(),
            vec![SdpAnswerItem::OwnPath],
            vec![
                SdpAnswerItem::Fixed(Cow::Borrowed("Connection"), Some(Cow::Borrowed("existing"))),
                SdpAnswerItem::MirrorDirection,
                SdpAnswerItem::MediaFromOffer,
                SdpAnswerItem::ComplementSetup,
                SdpAnswerItem::Fixed(Cow::Borrowed("x\r\ny"), Some(Cow::Borrowed("a\0b\nc"))),
                SdpAnswerItem::Echo(Cow::Borrowed("setup")),
            ],
            vec![
                SdpAnswerItem::MediaFromOffer,
                SdpAnswerItem::AcceptWrappedTypesIntersection,
            ],
        ];
        let locals = [
            LocalMedia {
                address: "198.51.100.7".into(),
                msrp_port: 2855,
                path: "msrp://198.51.100.7:2855/s3ss10n;tcp".into(),
                session_id: 42,
                session_version: 1,
            },
            LocalMedia {
                address: "2001:db8::7".into(),
                msrp_port: 9,
                path: "msrps://[2001:db8::7]:9/x;tcp".into(),
                session_id: u64::MAX,
                session_version: 7,
            },
            LocalMedia {
                address: "im.exa\r\nmple.com".into(),
                msrp_port: 65535,
                path: "msrp://im.example.com:65535/abc;tcp".into(),
                session_id: 0,
                session_version: 0,
            },
        ];
        let configs = [
            Config::default(),
            Config {
                accept_types: vec!["text/plain".into(), "message/cpim".into()],
                accept_wrapped_types: vec![],
                max_size: None,
                ..Config::default()
            },
            Config {
                accept_types: vec!["*".into()],
                accept_wrapped_types: vec!["text/\rplain".into()],
                max_size: Some(0),
                ..Config::default()
            },
        ];
        let mut answered = 0;
        for offer in &offers {
            let facts = SdpFacts {
                connection: None,
                media: Vec::new(),
                raw: offer.clone(),
            };
            for items in &item_sets {
                for local in &locals {
                    for config in &configs {
                        let model = super::super::parse(offer.as_bytes())
                            .map_err(AnswerError::from)
                            .and_then(|s| build_answer_to_session(&s, items, local, config));
                        let direct = build_answer(&facts, items, local, config);
                        assert_eq!(direct, model, "{offer:?} {items:?} {local:?}");
                        answered += usize::from(direct.is_ok());
                    }
                }
            }
        }
        assert!(answered > 50, "too few answers built: {answered}");
    }

    /// The direct offer writer equals the `sdp_types` model's output for every option and
    /// every shape of configuration (v4 and v6 addresses, with and without wrapped types
    /// and max-size, no accept-types at all).
    #[test]
    fn the_direct_offer_equals_the_model() {
        let locals = [
            LocalMedia {
                address: "198.51.100.7".into(),
                msrp_port: 2855,
                path: "msrp://198.51.100.7:2855/s3ss10n;tcp".into(),
                session_id: 42,
                session_version: 1,
            },
            LocalMedia {
                address: "2001:db8::7".into(),
                msrp_port: 9,
                path: "msrp://[2001:db8::7]:9/x;tcp".into(),
                session_id: u64::MAX,
                session_version: 7,
            },
            LocalMedia {
                address: "im.example.com".into(),
                msrp_port: 65535,
                path: "msrps://im.example.com:65535/abc;tcp".into(),
                session_id: 0,
                session_version: 0,
            },
        ];
        let configs = [
            Config::default(),
            Config {
                accept_wrapped_types: vec![],
                max_size: None,
                ..Config::default()
            },
            Config {
                accept_types: vec![],
                accept_wrapped_types: vec!["*".into()],
                max_size: Some(0),
                ..Config::default()
            },
        ];
        let setups = [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ];
        let directions = [
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::SendRecv,
            Direction::Inactive,
        ];
        for local in &locals {
            for config in &configs {
                for setup in setups {
                    for direction in directions {
                        for (tls, cema) in [(false, false), (true, false), (false, true)] {
                            let opts = OfferOptions {
                                setup,
                                direction,
                                tls,
                                cema,
                            };
                            assert_eq!(
                                build_offer(local, config, &opts),
                                build_offer_model(local, config, &opts),
                                "{opts:?} {:?}",
                                local.address
                            );
                        }
                    }
                }
            }
        }
    }
}
