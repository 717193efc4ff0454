//! The contract between generated state machines and the runtime.
//!
//! Code generated from `specs/*.imspec` by `im-macros` (or `im_dsl::build`) implements
//! [`Machine`]. The runtime owns sockets, transactions, dialogs and the clock; a machine owns
//! only the procedure's state. The loop, once per input:
//!
//! 1. the runtime parses a message (or notices a timer, an MSRP event, …) and builds the
//!    typed [`Facts`] view of the request it concerns;
//! 2. it calls [`Machine::handle`] with the current time, the [`Event`], the facts and an
//!    [`Env`] (configuration, group directory, invitee router);
//! 3. the machine returns [`Action`]s, each stamped with the [`Origin`] (procedure, clause,
//!    rule) that produced it; the runtime executes them in order and feeds their outcomes
//!    back as later events.
//!
//! Nothing here reads a clock or touches a socket. Conditions in generated code are plain
//! Rust expressions over the public fields of [`Facts`], [`Config`] and the [`GroupDirectory`]
//! methods; states are enum variants; nothing compares event or state names as strings.

mod invitee;
pub use invitee::{InviteePiece, LegEvent, render as render_invitee, template as invitee_template};
mod headers;
mod rare;
mod request;
pub use headers::Headers;
pub use rare::Rare;
pub use request::{BodyFacts, SubscriptionFacts};
mod uri;

#[cfg(test)]
mod selection_tests;
pub use uri::{Params as UriParams, Uri, UriParts};

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

/// A SIP method (RFC 3261 §7.1). Open: unknown extension methods keep their name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// MESSAGE (RFC 3428).
    Message,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// UPDATE (RFC 3311).
    Update,
    /// INFO (RFC 6086).
    Info,
    /// PRACK (RFC 3262).
    Prack,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other (extension) method, as it appeared on the wire.
    Other(Box<str>),
}

impl Method {
    /// Maps a method token (case-sensitive, RFC 3261 §7.1) to a [`Method`].
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "MESSAGE" => Method::Message,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.into()),
        }
    }

    /// The method token as it goes on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Message => "MESSAGE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The procedure, clause and rule that produced an action: every message the server sends
/// can be traced back to the `.imspec` rule (and so to the standard's clause) behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Procedure name as written in the spec (`page_mode_group_invite`).
    pub procedure: &'static str,
    /// Clause id of the rule (`7.9.1.4`).
    pub clause: &'static str,
    /// Rule name within the procedure (`adhoc_list`, or `otherwise`).
    pub rule: &'static str,
}

/// A timer a machine can wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RFC 3261 Timer B: an INVITE client transaction got no final response in time.
    B,
    /// RFC 3261 Timer F: a non-INVITE client transaction got no final response in time.
    F,
    /// RFC 3261 Timer H: no ACK arrived for a final response sent to an INVITE.
    H,
    /// The session's lifetime (`EndpointConfig::session_lifetime`) is over: the machines
    /// say what becomes of the legs and the originator; the runtime ends what is still up
    /// 64·T1 later.
    Lifetime,
    /// A timer declared in the spec; the number is assigned by the generator per procedure.
    Spec(u16),
}

/// Something that happened to an MSRP session a machine owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MsrpEvent {
    /// The TCP connection for the session is up and bound (first SEND or our connect).
    Connected,
    /// A complete message (all chunks up to `$`) arrived on the session.
    MessageReceived,
    /// The message was delivered: the 200 to its last chunk, or, for a copy whose SEND asked
    /// `Success-Report: yes`, the success REPORT covering every byte (RFC 4975 §7.1.2).
    Delivered,
    /// Delivery failed; the MSRP status code says why (RFC 4975 §10).
    DeliveryFailed(u16),
    /// The connection closed or the session was torn down.
    Closed,
}

/// An input to a machine. Which facts accompany it is said on each variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request outside any dialog (no To-tag): the facts describe that request.
    InitialRequest(Method),
    /// A request inside a dialog the machine owns (ACK, BYE, CANCEL …).
    InDialogRequest(Method),
    /// A response to a request the machine caused the runtime to send; the facts describe
    /// that response's request context and [`Facts::status`] holds the status code.
    Response(u16),
    /// A timer fired.
    Timer(Timer),
    /// An MSRP session event.
    Msrp(MsrpEvent),
    /// Every invitee leg's machine has reached a final state (what it decided about its
    /// copy is in [`Facts::legs`]); sent once.
    LegsSettled,
    /// One recipient's copy of the message has its outcome (a page-mode copy's final
    /// response, or a copy not sent, after [`CopyOutcome::Unroutable`] /
    /// [`CopyOutcome::Expired`] asked the machines for its status; a copy whose MESSAGE got
    /// no final response is [`Event::Timer`] `F` instead, the copy current). `Delivered` and
    /// `Failed` are sent once per copy; [`Facts::status`] holds the SIP status (0 when there
    /// is none: an invitee leg that never answered).
    Copy(CopyOutcome),
    /// An invitee leg's state (pending, connected, disconnected) or its copy's outcome
    /// changed (extension: conference state, RFC 4575). Sent once after the input that
    /// changed it, and only while the session has subscribers, since nothing else reads
    /// that state.
    LegsChanged,
    /// Something happened to the invitee leg whose machine hears it ([`LegEvent`]).
    Leg(LegEvent),
    /// The server is shutting down (`shutdown`): the session's live machines say what
    /// becomes of the originator and the legs; the runtime ends what is left only when no
    /// rule acted (a spec gap, logged).
    Shutdown,
}

/// What became of one recipient's copy ([`Event::Copy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The recipient accepted it (2xx).
    Delivered,
    /// It was refused (the final status), timed out or was not sent (the status the
    /// machines gave it on [`CopyOutcome::Unroutable`] / [`CopyOutcome::Expired`]).
    Failed(u16),
    /// The copy had no route and was not sent (`copy unroutable`); [`Facts::copy`] says
    /// whether its recipient is a user of this domain with no registration. The machines
    /// say what it fails with (`outcome failed STATUS`); [`CopyOutcome::Failed`] follows.
    Unroutable,
    /// A copy kept for an offline recipient was kept past the configured age and is not
    /// sent (`copy expired`). The machines say what it fails with, as for `Unroutable`.
    Expired,
}

/// The IMDN facts of the message being handled (`message.*` in a spec).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// The message is `message/cpim` whose `imdn.Disposition-Notification` asks for
    /// `positive-delivery` (RFC 5438 §6.2).
    pub wants_positive_delivery: bool,
    /// … asks for `negative-delivery`.
    pub wants_negative_delivery: bool,
    /// The message is itself an IMDN: `message/cpim` carrying `message/imdn+xml`.
    pub is_notification: bool,
    /// The sender of a session's held MSRP message asked for a success REPORT
    /// (`Success-Report: yes` on its first SEND with a body, RFC 4975 §7.1.2), so it will
    /// get one if the session reports success; false before the message is held.
    pub success_report: bool,
}

/// The facts of the copy an [`Event::Copy`] is about (`copy.*` in a spec); all false for
/// other events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyFacts {
    /// The copy had no route and its recipient is a user of this server's domain
    /// (`config.domain`) with no registration.
    pub recipient_offline: bool,
    /// The application can keep the copy for later: it offers storage and the recipient is
    /// under its bounds (count per user; false in the `copy failed` that follows `copy
    /// expired`, so a kept copy is kept again only when a `copy expired` rule says so).
    pub storable: bool,
}

/// Whether the request's `recipient-list` part could be read (`list.*` in a spec). A list
/// that cannot be read reaches the machines with no `recipients`; what it is answered is the
/// spec's rule, not the runtime's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFacts {
    /// The part is not a resource list the server can read: not well-formed XML, a DTD, not
    /// UTF-8, not `<resource-lists>`, an entry without a valid URI, a bad copyControl or
    /// anonymize value (RFC 4826, RFC 5364).
    pub malformed: bool,
    /// The part breaks one of the configured list limits (octets, nesting depth, XML nodes,
    /// entries: `EndpointConfig::body_limits`).
    pub too_large: bool,
    /// Why, in words that name the limit (`more than 1000 entries`); empty when the list was
    /// read or there is none.
    pub error: String,
    /// `<entry-ref>` and `<external>` elements of a list that was read: references into
    /// the sender's XCAP documents, which the server cannot resolve, so they name no
    /// recipient (`list.unresolved`).
    pub unresolved: usize,
}

/// The delivery status a `send imdn` action reports (RFC 5438 §7.2.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImdnStatus {
    /// `delivered`.
    Delivered,
    /// `failed`.
    Failed,
}

/// One body part: the whole body when it is not multipart, else each part of a
/// `multipart/mixed` body in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyPart {
    /// Media type without parameters, lower case (`application/sdp`).
    pub content_type: String,
    /// Disposition type without parameters, lower case (`recipient-list`); empty when absent.
    pub disposition: String,
    /// Length of the part's content in octets.
    pub len: usize,
}

/// RFC 5364 copyControl value of a resource-list entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CopyControl {
    /// The recipient is a primary recipient (the default).
    #[default]
    To,
    /// Carbon copy.
    Cc,
    /// Blind carbon copy: never shown to the other recipients.
    Bcc,
}

/// One recipient from a `recipient-list` body part (RFC 4826 entry, RFC 5364 attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListEntry {
    /// The entry's URI.
    pub uri: Uri,
    /// `<display-name>` when present.
    pub display_name: Option<String>,
    /// `cp:copyControl`.
    pub copy_control: CopyControl,
    /// `cp:anonymize="true"`.
    pub anonymize: bool,
}

/// One `m=` section of an SDP offer with the attributes that belong to it.
///
/// Kept in one allocation: the media type, the proto, the format list and each attribute,
/// in one text that the accessors read. Every session keeps its offer's sections for its
/// whole life, and a section with its own strings and vectors took about 12 allocations
/// and 400 bytes where this takes one of about 100 (issue 11 item 4). Build one with
/// [`SdpMedia::new`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdpMedia {
    /// `media\nproto\nformats\n`, then per attribute `name\n` (a flag) or
    /// `name\rvalue\n`: neither CR nor LF can be in an SDP line's parts (RFC 4566 §5).
    text: Box<str>,
    port: u16,
}

/// Separates the pieces of [`SdpMedia`]'s text.
const PIECE_END: char = '\n';
/// Separates an attribute's name from its value in [`SdpMedia`]'s text.
const VALUE_START: char = '\r';

/// Appends `part` without CR and LF (no SDP line holds them) to `text`: the usual part holds
/// neither and is pushed whole, not filtered char by char (~6.7 k instructions per group
/// session went to the filter when the invitee offer's lines were written that way).
fn push_line_part(text: &mut String, part: &str) {
    if part.contains(['\r', '\n']) {
        text.extend(part.chars().filter(|c| !matches!(c, '\r' | '\n')));
    } else {
        text.push_str(part);
    }
}

impl SdpMedia {
    /// The section `m=<media> <port> <proto> <formats>` with `attributes` (`(name, value)`,
    /// `None` for a flag) in order. `formats` is the m-line's format list, split on
    /// whitespace. CR and LF, which no SDP line holds, are left out of every part.
    pub fn new(
        media: &str,
        port: u16,
        proto: &str,
        formats: &str,
        attributes: &[(&str, Option<&str>)],
    ) -> SdpMedia {
        let len = media.len()
            + proto.len()
            + formats.len()
            + 3
            + attributes
                .iter()
                .map(|(n, v)| n.len() + v.map_or(0, |v| v.len() + 1) + 1)
                .sum::<usize>();
        let mut text = String::with_capacity(len);
        push_line_part(&mut text, media);
        text.push(PIECE_END);
        push_line_part(&mut text, proto);
        text.push(PIECE_END);
        for (i, f) in formats.split_ascii_whitespace().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            push_line_part(&mut text, f);
        }
        text.push(PIECE_END);
        for &(name, value) in attributes {
            push_line_part(&mut text, name);
            if let Some(v) = value {
                text.push(VALUE_START);
                push_line_part(&mut text, v);
            }
            text.push(PIECE_END);
        }
        SdpMedia {
            text: text.into_boxed_str(),
            port,
        }
    }

    fn pieces(&self) -> std::str::SplitTerminator<'_, char> {
        self.text.split_terminator(PIECE_END)
    }

    /// Media type (`message`, `audio` …).
    pub fn media(&self) -> &str {
        self.pieces().next().unwrap_or("")
    }

    /// Port from the m-line.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Transport protocol (`TCP/MSRP`, `TCP/TLS/MSRP`, `RTP/AVP` …).
    pub fn proto(&self) -> &str {
        self.pieces().nth(1).unwrap_or("")
    }

    /// The format list (`*` for MSRP), in order.
    pub fn formats(&self) -> std::str::SplitAsciiWhitespace<'_> {
        self.pieces().nth(2).unwrap_or("").split_ascii_whitespace()
    }

    /// Media-level attributes in order as `(name, value)` (`None` for a flag), plus a
    /// session-level direction attribute (`sendonly` …) when the section has none of its
    /// own (RFC 4566 §6).
    pub fn attributes(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.pieces()
            .skip(3)
            .map(|a| match a.split_once(VALUE_START) {
                Some((n, v)) => (n, Some(v)),
                None => (a, None),
            })
    }

    /// Whether the media section carries attribute `name` (with or without a value).
    pub fn has_attr(&self, name: &str) -> bool {
        self.attributes().any(|(n, _)| n == name)
    }

    /// The value of the first attribute `name`; empty for a flag, `None` when absent.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes()
            .find(|&(n, _)| n == name)
            .map(|(_, v)| v.unwrap_or(""))
    }

    /// The whitespace-separated tokens of attribute `name` (`accept-types` …).
    pub fn attr_tokens(&self, name: &str) -> Vec<&str> {
        self.attr(name)
            .map(|v| v.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod sdp_media_tests {
    use super::SdpMedia;

    #[test]
    fn a_section_reads_back_what_it_was_built_from() {
        let attrs = [
            ("accept-types", Some("message/cpim  text/plain")),
            ("sendonly", None),
            ("empty", Some("")),
            ("path", Some("msrp://h:1/a;tcp msrp://h:2/b;tcp")),
            ("accept-types", Some("second")),
        ];
        let m = SdpMedia::new("message", 7394, "TCP/MSRP", " *  x ", &attrs);
        assert_eq!(
            (m.media(), m.port(), m.proto()),
            ("message", 7394, "TCP/MSRP")
        );
        assert!(m.formats().eq(["*", "x"]));
        assert!(m.attributes().eq(attrs));
        assert_eq!(m.attr("sendonly"), Some(""));
        assert_eq!(m.attr("empty"), Some(""));
        assert!(m.has_attr("empty") && !m.has_attr("setup"));
        assert_eq!(m.attr("setup"), None);
        // The first of a repeated attribute, as before.
        assert_eq!(
            m.attr_tokens("accept-types"),
            ["message/cpim", "text/plain"]
        );
        // One allocation, 24 bytes inline (a section of `String`s and `Vec`s was 104).
        assert_eq!(std::mem::size_of::<SdpMedia>(), 24);
    }

    #[test]
    fn line_ends_in_a_part_are_left_out_and_empty_sections_read_empty() {
        let m = SdpMedia::new(
            "mess\r\nage",
            1,
            "TCP/\nMSRP",
            "*",
            &[("a\rb", Some("c\nd"))],
        );
        assert_eq!((m.media(), m.proto()), ("message", "TCP/MSRP"));
        assert!(m.attributes().eq([("ab", Some("cd"))]));
        let m = SdpMedia::new("", 0, "", "", &[]);
        assert_eq!((m.media(), m.proto(), m.formats().count()), ("", "", 0));
        assert_eq!(m.attributes().count(), 0);
        let d = SdpMedia::default();
        assert_eq!((d.media(), d.proto(), d.attributes().count()), ("", "", 0));
    }
}

/// An SDP offer (or answer) reduced to what conditions test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdpFacts {
    /// The session-level `c=` address, when present.
    pub connection: Option<String>,
    /// Media sections in order.
    pub media: Vec<SdpMedia>,
    /// The raw SDP text, so the answer builder can re-read what the view leaves out.
    pub raw: String,
}

/// The typed view of one request (and, for [`Event::Response`], the response status) that
/// generated conditions read. The runtime builds it once per message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The request method.
    pub method: Option<Method>,
    /// The Request-URI.
    pub request_uri: Uri,
    /// The From URI.
    pub from: Uri,
    /// The To URI.
    pub to: Uri,
    /// P-Asserted-Identity (first SIP URI), when present.
    pub asserted_identity: Option<Uri>,
    /// The originator: P-Asserted-Identity when the request came from a trusted host,
    /// otherwise From (design.md glossary).
    pub originator: Uri,
    /// The request reached the machines with no established identity
    /// (`request.authenticated` is its negation). False when it passed Digest
    /// authentication, came from a trusted host (which authenticated it), or authentication
    /// is off (the operator vouches for every request); false by default, so code that
    /// builds facts by hand keeps its meaning.
    pub unauthenticated: bool,
    /// The domain the originator belongs to, as far as the server can vouch for it: the
    /// realm it authenticated in, or the host of the asserted identity from a trusted host
    /// (`request.originator_domain`). `None`: authentication is off, and the server's own
    /// domain (`config.domain`) stands for it.
    pub originator_domain: Option<String>,
    /// Option tags of Require.
    pub require: Vec<String>,
    /// Option tags of Supported.
    pub supported: Vec<String>,
    /// Every header as (lower-case full name, value), in order; multi-value headers appear
    /// once per line as received.
    pub headers: Headers,
    /// Body parts (see [`BodyPart`]).
    pub parts: Vec<BodyPart>,
    /// Entries of the `recipient-list` part, flattened, as the list names them (empty when
    /// there is none or it could not be read: see [`Facts::list`]).
    pub recipients: Vec<ListEntry>,
    /// The SDP offer, when the body (or a part of it) is `application/sdp`.
    pub sdp: Option<SdpFacts>,
    /// Status code, when the event is a response.
    pub status: Option<u16>,
    /// How the session's invitee legs stand (filled in for [`Event::LegsSettled`] and
    /// later events; zero before any leg exists).
    pub legs: LegCounts,
    /// The IMDN request of the message (`message.*`).
    pub message: MessageFacts,
    /// Who sent the SUBSCRIBE being handled (`subscription.subscriber`): its
    /// P-Asserted-Identity from a trusted host, else its From. Empty for other events.
    pub subscriber: Rare<Uri>,
    /// The copy an [`Event::Copy`] is about (`copy.*`).
    pub copy: CopyFacts,
    /// Whether the `recipient-list` part could be read (`list.*`).
    pub list: Rare<ListFacts>,
    /// Whether the body could be read at all (`body.malformed`, `body.error`).
    pub body: Rare<BodyFacts>,
    /// The user name Digest authentication established for the request
    /// (`request.authenticated_user`); empty when it was not Digest-authenticated
    /// (authentication off, or a trusted host sent it).
    pub authenticated_user: String,
    /// The SUBSCRIBE being handled (`subscription.in_invite_dialog`, `…over_limit`,
    /// `…error`).
    pub subscription: Rare<SubscriptionFacts>,
    /// The session's focus URI (`session.focus`), the IM Session Identity the server made
    /// for it (RFC 4579); empty until the session exists.
    pub focus: Uri,
}

/// Outcome counts of a session's invitee legs (`legs.*` in a spec).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegCounts {
    /// Legs started.
    pub total: usize,
    /// Legs that answered 2xx.
    pub connected: usize,
    /// Legs whose machine recorded `outcome delivered` ([`DeliveryOutcome::Delivered`]).
    pub delivered: usize,
    /// Legs whose machine recorded `outcome failed`, or reached a final state without
    /// recording `outcome delivered` (declined, timed out, unroutable …).
    pub failed: usize,
}

impl Facts {
    /// The first value of header `name` (any case; full name), or `None`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Whether header `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// Server configuration visible to conditions and answer builders (`config.*` in a spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The domain this server is authoritative for.
    pub domain: String,
    /// The conference-factory URI.
    pub conference_factory: Uri,
    /// MIME types the server accepts in MSRP (`a=accept-types`).
    pub accept_types: Vec<String>,
    /// MIME types the server accepts wrapped in CPIM (`a=accept-wrapped-types`).
    pub accept_wrapped_types: Vec<String>,
    /// Largest MSRP message the server takes (`a=max-size`).
    pub max_size: Option<u64>,
    /// Whether the deployment asks for `a=tb-granted` in answers (digest §1.10).
    pub tb_granted: bool,
    /// Whether a sender's delivery notifications about one message are sent aggregated
    /// (`config.aggregate_imdns`; RFC 5438 leaves it to the list server's local policy).
    pub aggregate_imdns: bool,
    /// Whether authenticated users may address recipients outside `domain`
    /// (`config.allow_external_recipients`; RFC 5365 §9, RFC 5366 §9: no open relay).
    pub allow_external_recipients: bool,
    /// Largest number of recipients an ad-hoc list or page-mode explosion may name.
    pub max_recipients: usize,
    /// How long an invitee leg may stay unanswered before it is cancelled.
    pub invite_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "example.com".into(),
            conference_factory: Uri::new(UriParts {
                scheme: "sip",
                user: "conference-factory",
                host: "example.com",
                raw: "sip:conference-factory@example.com",
                ..UriParts::default()
            }),
            accept_types: vec!["message/cpim".into(), "text/plain".into()],
            accept_wrapped_types: vec!["text/plain".into(), "message/imdn+xml".into()],
            max_size: Some(1 << 20),
            tb_granted: false,
            aggregate_imdns: false,
            allow_external_recipients: false,
            max_recipients: 100,
            invite_timeout: Duration::from_secs(32),
        }
    }
}

/// What a group's document says, group-wide and for one user (OMA list-service ruleset,
/// digest §1.7). The default is a group that invites its members and grants nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    /// The user is in the group's `<list>`.
    pub is_member: bool,
    /// `<allow-initiate-conference>` holds for the user.
    pub may_initiate: bool,
    /// `<max-participant-count>` of the group.
    pub max_participants: Option<usize>,
    /// `<invite-members>` of the group (absent counts as `true`): the server invites the
    /// members when a session starts; `false` means a chat-room group whose members join
    /// by themselves.
    pub invites_members: bool,
    /// `<join-handling>` allows the user to join a running session.
    pub may_join: bool,
    /// `<allow-anonymity>` holds for the user.
    pub allows_anonymity: bool,
}

impl Default for GroupPolicy {
    fn default() -> Self {
        GroupPolicy {
            is_member: false,
            may_initiate: false,
            max_participants: None,
            invites_members: true,
            may_join: false,
            allows_anonymity: false,
        }
    }
}

/// The pre-defined group store the application supplies (an XDMS, a folder of documents …).
pub trait GroupDirectory {
    /// Whether `group` is a group identity this server owns.
    fn owns(&self, group: &Uri) -> bool;
    /// The members of `group`, or `None` when the group is unknown.
    fn members(&self, group: &Uri) -> Option<Vec<Uri>>;
    /// What the group's rules say about `user`, or `None` when the group is unknown.
    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy>;
}

/// Where to send a request for an invitee (design.md "Routing invitees").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to this address (an IP-literal host, or a location-table binding).
    Direct(std::net::SocketAddr),
    /// Through the configured outbound proxy.
    OutboundProxy(std::net::SocketAddr),
}

/// Decides where invitee requests go; supplied by the application.
pub trait InviteeRouter {
    /// The route for `invitee`, or `None` when it cannot be reached (the leg fails).
    fn route(&self, invitee: &Uri) -> Option<Route>;
}

/// A directory with no groups: every group look-up misses.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGroups;

impl GroupDirectory for NoGroups {
    fn owns(&self, _: &Uri) -> bool {
        false
    }
    fn members(&self, _: &Uri) -> Option<Vec<Uri>> {
        None
    }
    fn policy(&self, _: &Uri, _: &Uri) -> Option<GroupPolicy> {
        None
    }
}

/// What a machine may consult besides the facts: configuration and the application's
/// directory and router. Borrowed for one `handle` call.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Server configuration.
    pub config: &'a Config,
    /// The group directory.
    pub directory: &'a dyn GroupDirectory,
    /// The invitee router.
    pub router: &'a dyn InviteeRouter,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("config", self.config)
            .finish_non_exhaustive()
    }
}

/// How one attribute of the SDP answer is obtained (design.md items a–d). The generator
/// emits these from the spec's `sdp { … }` block; the runtime's answer builder applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdpAnswerItem {
    /// (a) `a=path` with the server's own MSRP URI for this session.
    OwnPath,
    /// (b) `m=message <server port> <offer's proto> *` and `c=` the advertised address.
    MediaFromOffer,
    /// (c) `a=accept-types`: intersection of the offer's and the server's.
    AcceptTypesIntersection,
    /// (c) `a=accept-wrapped-types`: intersection of the offer's and the server's.
    AcceptWrappedTypesIntersection,
    /// (c) `a=max-size`: the server's.
    OwnMaxSize,
    /// (c) direction mirrored (`sendonly` → `recvonly` …).
    MirrorDirection,
    /// (c) `a=setup` complementing the offer's (RFC 6135; absent → the offerer connects).
    ComplementSetup,
    /// (c) echo attribute `name` when the offer has it (`msrp-cema`).
    Echo(Cow<'static, str>),
    /// (d) a fixed attribute line, `a=name[:value]` (`tb-granted`).
    Fixed(Cow<'static, str>, Option<Cow<'static, str>>),
    /// Not part of the answer: the status and reason the spec sends instead when the offer
    /// cannot be answered (the Warning then says why).
    Else(u16, Cow<'static, str>),
}

/// A header to put on a response or request. `Contact` with `isfocus` is requested with
/// [`HeaderValue::FocusContact`] so the runtime fills in its own address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// A literal value from the spec.
    Text(Cow<'static, str>),
    /// The server's session URI as Contact, with the `isfocus` parameter (RFC 4579).
    FocusContact,
    /// The same followed by these parameters, written as `;name[=value]…` (feature tags,
    /// RFC 3840: `;+g.oma.sip-im`).
    FocusContactWith(Cow<'static, str>),
    /// A value of an invitee request that names its recipient (`{invitee.uri}`), filled in
    /// once per recipient ([`render_invitee`]).
    PerInvitee(Vec<InviteePiece>),
}

/// What an invitee INVITE carries besides what the runtime always writes: the headers RFC
/// 3261 §8.1.1 makes mandatory that no spec chooses (Via, To, the From tag, Call-ID, CSeq, a
/// Contact with the focus URI) and the MSRP offer's own lines (`m=`, `c=`, `a=path`,
/// `a=accept-types`, RFC 4975 §8). The spec's `invite each … { … }` says it, From and
/// Max-Forwards included (as `From` / `Max-Forwards` headers, written in their place; the
/// runtime's defaults, the focus URI and 70, only when it gives none);
/// [`Invitation::default`] adds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invitation {
    /// Headers in order. A `Contact` given as [`HeaderValue::FocusContact`] or
    /// [`HeaderValue::FocusContactWith`] replaces the plain focus Contact.
    pub headers: Vec<(Cow<'static, str>, HeaderValue)>,
    /// Add the `recipient-list-history` body part (RFC 5364): the entries of the request's
    /// list the selection addresses, to/cc only (bcc never, anonymized ones counted), per
    /// copyControl.
    pub history: bool,
    /// Attributes of the offer's message line after the mandatory ones, in order.
    pub offer: Vec<OfferItem>,
}

/// One attribute line of the server's MSRP offer in an invitee INVITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferItem {
    /// `a=accept-wrapped-types` with the server's (`Config::accept_wrapped_types`); no line
    /// when it has none.
    OwnAcceptWrappedTypes,
    /// `a=max-size` with the server's (`Config::max_size`); no line without a limit.
    OwnMaxSize,
    /// `a=name[:value]` as written (`setup:actpass`, `sendonly`, `connection:new`).
    Fixed(Cow<'static, str>, Option<Cow<'static, str>>),
}

impl Invitation {
    /// Appends the offer's attribute lines after the mandatory ones to `out`, each as
    /// `a=…` CRLF, in the spec's order. A CR or LF inside a value (from the configuration)
    /// is dropped, so every attribute stays on its line.
    pub fn write_offer_lines(&self, config: &Config, out: &mut String) {
        for item in &self.offer {
            match item {
                OfferItem::OwnAcceptWrappedTypes => {
                    if config.accept_wrapped_types.is_empty() {
                        continue;
                    }
                    out.push_str("a=accept-wrapped-types:");
                    for (i, t) in config.accept_wrapped_types.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        push_line_part(out, t);
                    }
                }
                OfferItem::OwnMaxSize => {
                    let Some(m) = config.max_size else { continue };
                    out.push_str("a=max-size:");
                    out.push_str(crate::proto::decimal::decimal(&mut [0; 20], m));
                }
                OfferItem::Fixed(name, value) => {
                    out.push_str("a=");
                    push_line_part(out, name);
                    if let Some(v) = value {
                        out.push(':');
                        push_line_part(out, v);
                    }
                }
            }
            out.push_str("\r\n");
        }
    }

    /// The same lines as [`Invitation::write_offer_lines`], one string each without the
    /// line end (`a=setup:actpass`).
    pub fn offer_lines(&self, config: &Config) -> Vec<String> {
        let mut s = String::new();
        self.write_offer_lines(config, &mut s);
        s.split_terminator("\r\n").map(str::to_owned).collect()
    }
}

/// A SIP response the machine wants sent to the request being handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: Cow<'static, str>,
    /// Extra headers (name, value) in order.
    pub headers: Vec<(Cow<'static, str>, HeaderValue)>,
    /// `Warning` (the server's host as agent), when the spec gives one.
    pub warning: Option<Warning>,
    /// The SDP answer to build, item by item; empty for no body.
    pub sdp_answer: Vec<SdpAnswerItem>,
}

/// A `Warning` header's code and text (RFC 3261 §20.43); the agent is the server's host.
/// It reads as its text (`Deref<Target = str>`); made from a string it has code 399.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The warn-code, 300..=399 (the spec's `warning 305 "…"`; 399 when it gives none).
    pub code: u16,
    /// The warn-text.
    pub text: Cow<'static, str>,
}

impl Warning {
    /// RFC 3261 §20.43 "399 Miscellaneous warning": the code of a Warning the spec gives
    /// without one.
    pub const MISCELLANEOUS: u16 = 399;
}

impl std::ops::Deref for Warning {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<&'static str> for Warning {
    fn from(text: &'static str) -> Self {
        Warning {
            code: Warning::MISCELLANEOUS,
            text: Cow::Borrowed(text),
        }
    }
}

impl From<String> for Warning {
    fn from(text: String) -> Self {
        Warning {
            code: Warning::MISCELLANEOUS,
            text: Cow::Owned(text),
        }
    }
}

/// Who a fan-out action addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// The entries of the request's `recipient-list` part, as the list names them.
    RecipientList,
    /// The members of the pre-defined group named by the Request-URI (the originator too,
    /// when it is one).
    GroupMembers,
}

/// Which addresses of a fan-out are kept; the spec says it (`invite each recipient_list
/// without originator distinct`), the runtime only applies it ([`Selection::apply`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    /// `without originator`: every address with the originator's identity is dropped.
    pub without_originator: bool,
    /// `distinct`: an identity named again is dropped (the first one is kept).
    pub distinct: bool,
}

impl Selection {
    /// Keeps the items of `items` this selection addresses, in order; `uri` reads an item's
    /// address. Identities compare as [`Uri::same_identity`] (parameters ignored).
    pub fn apply<T>(self, items: Vec<T>, originator: &Uri, uri: impl Fn(&T) -> &Uri) -> Vec<T> {
        // Comparing each item with every one kept costs n²/2 comparisons: fine for a group
        // of a few, but a list of 10 ran ~45 per selection (four selections per MESSAGE) and
        // one of 1,000 half a million. Past a few items, each is compared only with the
        // kept ones whose identity digest is the same.
        const PAIRWISE_UP_TO: usize = 6;
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        if !self.distinct || items.len() <= PAIRWISE_UP_TO {
            for it in items {
                let u = uri(&it);
                if self.without_originator && u.same_identity(originator) {
                    continue;
                }
                if self.distinct && out.iter().any(|k| uri(k).same_identity(u)) {
                    continue;
                }
                out.push(it);
            }
            return out;
        }
        let state = foldhash::fast::RandomState::default();
        let mut seen: std::collections::HashSet<u64, _> =
            std::collections::HashSet::with_capacity_and_hasher(items.len(), state.clone());
        let mut digests: Vec<u64> = Vec::with_capacity(items.len());
        for it in items {
            let u = uri(&it);
            if self.without_originator && u.same_identity(originator) {
                continue;
            }
            let d = identity_digest(&state, u);
            if !seen.insert(d)
                && out
                    .iter()
                    .zip(&digests)
                    .any(|(k, &dk)| dk == d && uri(k).same_identity(u))
            {
                continue;
            }
            out.push(it);
            digests.push(d);
        }
        out
    }
}

/// A digest equal for any two URIs [`Uri::same_identity`] calls the same: the port and the
/// user as they are, the host and the scheme only by their lengths (they compare without
/// case, and their lengths are all of them that case does not change). Entries of one list
/// differ by user nearly always, so digests rarely collide; when they do, the full
/// comparison decides.
fn identity_digest(state: &foldhash::fast::RandomState, u: &Uri) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = state.build_hasher();
    u.port().hash(&mut h);
    u.user().hash(&mut h);
    h.write_usize(u.host().len());
    h.write_usize(u.scheme().len());
    h.finish()
}

/// What a `report` action tells the originator (RFC 4975 §7.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// A success REPORT (`Status: 000 200`), sent only when the SEND asked for one.
    Success,
    /// A failure REPORT, unless the SEND said `Failure-Report: no`.
    Failure {
        /// The MSRP status code the spec chose (4xx or 5xx).
        status: u16,
        /// The comment after the status code.
        reason: Cow<'static, str>,
    },
}

/// What an invitee leg's machine decided about its copy of the message (`outcome …` in a
/// spec): what `legs.*`, the delivery reports and the conference state count. The runtime
/// records it as given and never decides a leg's outcome itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// `outcome delivered`.
    Delivered,
    /// `outcome failed [STATUS]`: the status given, or (`None`) the one the event being
    /// handled carries: the MSRP code of `msrp failed`, the status of a response, else 0.
    Failed(Option<u16>),
}

/// What a machine asks the runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// Answer the request being handled.
    Respond(Reply),
    /// Run the procedure with this clause id on the same event and facts.
    Call(&'static str),
    /// Send an INVITE with the server's own MSRP offer to each recipient, carrying what the
    /// [`Invitation`] says; each becomes an invitee leg whose responses come back as
    /// [`Event::Response`] to that leg's machine.
    InviteEach(Recipients, Selection, Invitation),
    /// Send the request (MESSAGE) on to each recipient, exploding a page-mode message; each
    /// copy carries the [`Invitation`]'s headers and history part (its Contact and offer do
    /// not apply to a MESSAGE).
    ForwardEach(Recipients, Selection, Invitation),
    /// Cancel the pending INVITE of this leg.
    Cancel,
    /// End this leg's dialog with BYE.
    Bye,
    /// CANCEL every invitee leg of the session still waiting for its final response (the
    /// spec's teardown of the other legs).
    CancelLegs,
    /// BYE every invitee leg of the session whose dialog is up, closing its MSRP session.
    ByeLegs,
    /// Start a spec timer.
    StartTimer(Timer, Duration),
    /// Stop a spec timer.
    StopTimer(Timer),
    /// Deliver the message held for the session over this leg's MSRP session (queued until
    /// it is held and the leg's MSRP session is up; a later `Deliver` before the copy is
    /// sent replaces this one's options).
    Deliver {
        /// The copy's SEND asks for a success REPORT (`Success-Report: yes`, RFC 4975
        /// §7.1.2): the leg then hears `msrp delivered` on that REPORT, not on the 200 to
        /// the last chunk, and `msrp failed` 408 if none comes within
        /// [`EndpointConfig::msrp_report_wait`](crate::endpoint::EndpointConfig::msrp_report_wait).
        /// `false`: `no`, the 200 settles the copy.
        success_report: bool,
    },
    /// Record this leg's outcome (an invitee-leg machine only).
    Outcome(DeliveryOutcome),
    /// Report the outcome of the held message to the originator with an MSRP REPORT.
    Report(ReportOutcome),
    /// Write a log line.
    Log(Cow<'static, str>),
    /// Send the message's sender a delivery notification (RFC 5438 IMDN in `message/cpim`,
    /// as a SIP MESSAGE) about the copy whose [`Event::Copy`] is being handled.
    SendImdn(ImdnStatus),
    /// The same notification, kept: once every copy of the message has its outcome, the
    /// kept notifications go to the sender together in one SIP MESSAGE (`multipart/mixed`,
    /// one `message/cpim` part each; RFC 5438 aggregation by a list server).
    CollectImdn(ImdnStatus),
    /// Pass the request (an IMDN a recipient sent to the list service) on to the original
    /// sender it names in its CPIM `To`, unchanged (RFC 5438: the list service as IMDN
    /// forwarder).
    ForwardImdn,
    /// Accept the SUBSCRIBE being handled (RFC 6665): 200 with Expires, then a NOTIFY with
    /// the full state (RFC 4575 `conference` package).
    AcceptSubscription,
    /// Send every subscriber of the session a NOTIFY with the current state.
    NotifySubscribers,
    /// Keep the copy whose [`Event::Copy`] is being handled in the application's store
    /// (extension ext-dr.6), to deliver when its recipient registers
    /// ([`crate::endpoint::Application::offline_store`]).
    StoreCopy,
}

/// One thing to do, with the spec rule that asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The rule that produced the action.
    pub origin: Origin,
    /// What to do.
    pub kind: ActionKind,
}

/// A generated state machine for one procedure of a spec.
///
/// The runtime creates one value per transaction-bound use (the dispatcher per initial
/// request, one per invitee leg …), calls [`Machine::handle`] for each input, and drops it
/// when [`Machine::is_final`] returns `true`.
pub trait Machine {
    /// Procedure name as written in the spec.
    const PROCEDURE: &'static str;
    /// Clause id of the procedure.
    const CLAUSE: &'static str;

    /// Feeds one input. `now` is the caller's clock; machines never read one.
    fn handle(&mut self, now: Instant, event: &Event, facts: &Facts, env: &Env<'_>) -> Vec<Action>;

    /// The current state's name as written in the spec, for logs and traces.
    fn state_name(&self) -> &'static str;

    /// Whether the machine reached a final state and may be dropped.
    fn is_final(&self) -> bool;
}

/// One rule of a spec, as listed in the generated `SPEC` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// Procedure name.
    pub procedure: &'static str,
    /// Rule name.
    pub rule: &'static str,
    /// Clause id.
    pub clause: &'static str,
    /// `file:line` of the rule in the `.imspec`.
    pub location: &'static str,
}
