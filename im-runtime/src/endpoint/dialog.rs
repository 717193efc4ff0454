//! A dialog (RFC 3261 §12) as the endpoint keeps it, and how it is made from the messages
//! that create it.
//!
//! A session keeps one dialog per connected invitee and one with its originator for as
//! long as it lives, so the dialog is compact: its six strings (Call-ID, both tags, both
//! URIs, the remote target) and its route set are one allocation, found by offsets, where
//! they were seven `String`s and a `Vec` (256 bytes inline and 6 or more blocks per dialog).
//!
//! Making one reads what the parser already checked rather than parsing it again: the
//! Contact of a checked message is sliced, not parsed ([`checked_contact_uri`]), and the
//! From and To a 2xx echoes from our INVITE are read from the answer's parse-time record
//! when they are the INVITE's own values ([`Dialog::client_side`]).

use super::machines::{push_addr, push_hex};
use crate::machine::Method;
use crate::proto::sip::build::RequestBuilder;
use crate::proto::sip::{HeaderName, Message, NameAddr, split_values};
use crate::proto::transaction::{MAGIC_COOKIE, Peer};
use bytes::Bytes;
use std::net::SocketAddr;

/// The dialog's strings, in the order they stand in [`Dialog`]'s text; the route set's
/// entries follow them.
#[derive(Clone, Copy)]
enum Part {
    CallId,
    LocalTag,
    RemoteTag,
    LocalUri,
    RemoteUri,
    RemoteTarget,
}

/// How many [`Part`]s there are.
const PARTS: usize = 6;

/// A string of a dialog as it is written into its text: a URI written as `<uri>`, or a
/// value as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A value kept as written.
    Raw(&'a str),
    /// A URI, kept inside `<` `>` (the dialog's local and remote URI).
    Bracketed(&'a str),
}

impl Piece<'_> {
    fn len(self) -> usize {
        match self {
            Piece::Raw(s) => s.len(),
            Piece::Bracketed(s) => s.len() + 2,
        }
    }

    fn write(self, out: &mut String) {
        match self {
            Piece::Raw(s) => out.push_str(s),
            Piece::Bracketed(s) => {
                out.push('<');
                out.push_str(s);
                out.push('>');
            }
        }
    }
}

impl std::fmt::Display for Piece<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Raw(s) => f.write_str(s),
            Piece::Bracketed(s) => write!(f, "<{s}>"),
        }
    }
}

/// From or To of a message (`parsed`, the accessor's view; `raw`, the header's value) as
/// a dialog keeps it: the name-addr without its tag parameter, or the value as written when
/// it does not parse.
pub(crate) fn addr_of<'a>(parsed: Option<NameAddr<'a>>, raw: Option<&'a str>) -> Piece<'a> {
    match (parsed, raw) {
        (Some(na), Some(_)) => Piece::Bracketed(na.uri().as_str()),
        (None, Some(v)) => Piece::Raw(v),
        (_, None) => Piece::Raw(""),
    }
}

/// The URI of the first address of `m`'s first Contact line, `None` when there is none or
/// it is `*`.
///
/// `m` has passed the grammar check of its Contact lines (`Message::check_deferred`: the
/// core runs it on every request and response before they reach a session, the builders on
/// what they build), so the value is sliced where the parse would find the URI rather than
/// parsed again; debug builds compare the two.
fn contact_uri(m: &Message) -> Option<&str> {
    let c = m.header(HeaderName::Contact)?;
    let fast = checked_contact_uri(c);
    debug_assert_eq!(fast, parsed_contact_uri(c), "Contact {c:?}");
    fast
}

/// The URI of the first element of Contact value `c` as `parse_name_addrs` finds it; `None`
/// when the value does not parse (or is `*`).
fn parsed_contact_uri(c: &str) -> Option<&str> {
    let first = crate::proto::sip::parse_name_addrs(c)
        .ok()?
        .into_iter()
        .next()?;
    Some(first.uri().as_str())
}

fn lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// [`parsed_contact_uri`] for a value that passed the Contact grammar check: the same
/// walk as the parser's `NameAddr` (display name, then `<URI>` or an addr-spec) without
/// checking what it steps over, which the check did.
fn checked_contact_uri(c: &str) -> Option<&str> {
    let b = c.as_bytes();
    let skip_lws = |mut i: usize| {
        while b.get(i).copied().is_some_and(lws) {
            i += 1;
        }
        i
    };
    let mut i = skip_lws(0);
    let start = i;
    let angle = match b.get(i) {
        Some(b'"') => {
            // A quoted display name, then `<` (quoted-pairs are two bytes).
            i += 1;
            loop {
                match b.get(i)? {
                    b'"' => break,
                    b'\\' => i += 2,
                    _ => i += 1,
                }
            }
            i = skip_lws(i + 1);
            b.get(i) == Some(&b'<')
        }
        Some(b'<') => true,
        _ => {
            // `*(token LWS)` then `<` is a display name; anything else an addr-spec.
            loop {
                let s = i;
                while b.get(i).copied().is_some_and(token) {
                    i += 1;
                }
                if i == s {
                    break;
                }
                i = skip_lws(i);
            }
            if b.get(i) == Some(&b'<') {
                true
            } else {
                i = start;
                false
            }
        }
    };
    if angle {
        let from = i + 1;
        let rest = b.get(from..)?;
        let len = rest.iter().position(|&x| x == b'>' || lws(x))?;
        return c.get(from..from + len);
    }
    let rest = b.get(i..)?;
    let len = rest
        .iter()
        .position(|&x| matches!(x, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    let uri = c.get(i..i + len)?;
    // `*` passes the Contact check but is no address; every URI has a scheme and a colon.
    uri.contains(':').then_some(uri)
}

/// A dialog (RFC 3261 §12) as the endpoint keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    /// The [`Part`]s back to back, then the route set's entries.
    text: Box<str>,
    /// Where each [`Part`] ends in `text`.
    ends: [u32; PARTS],
    /// Where each route-set entry ends in `text` (empty, and no allocation, without one).
    route_ends: Box<[u32]>,
    pub(crate) local_cseq: u32,
    pub(crate) invite_cseq: u32,
    pub(crate) peer: Peer,
    pub(crate) confirmed: bool,
    pub(crate) ended: bool,
    /// The peer ended the dialog with its BYE (a later BYE gets 481).
    pub(crate) remote_bye: bool,
    /// Over TLS: our TLS address, the sent-by of `SIP/2.0/TLS` in our requests' Via.
    pub(crate) tls: Option<SocketAddr>,
    counter: u64,
}

/// What a UAC dialog (RFC 3261 §12.1.2) takes from its INVITE: the Call-ID and From tag it
/// was sent with, From and To without tags, the Request-URI (the remote target when the 2xx
/// has no Contact) and the CSeq number.
pub(crate) struct UacInvite<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) local_tag: &'a str,
    pub(crate) local_uri: Piece<'a>,
    pub(crate) remote_uri: Piece<'a>,
    pub(crate) request_uri: &'a str,
    pub(crate) cseq: u32,
}

/// An offset into a dialog's text: the text is made from one message's values, far below
/// 4 GiB; a longer one would read as empty strings, never panic.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Dialog {
    /// A dialog of `parts` and `routes` (in route-set order), its strings packed into one
    /// allocation of their exact size.
    fn pack(parts: [Piece<'_>; PARTS], routes: &[&str], peer: Peer, cseq: (u32, u32)) -> Dialog {
        let len = parts.iter().map(|p| p.len()).sum::<usize>()
            + routes.iter().map(|r| r.len()).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut ends = [0u32; PARTS];
        for (p, end) in parts.into_iter().zip(ends.iter_mut()) {
            p.write(&mut text);
            *end = offset(text.len());
        }
        let route_ends = routes
            .iter()
            .map(|r| {
                text.push_str(r);
                offset(text.len())
            })
            .collect();
        Dialog {
            text: text.into_boxed_str(),
            ends,
            route_ends,
            local_cseq: cseq.0,
            invite_cseq: cseq.1,
            peer,
            confirmed: false,
            ended: false,
            remote_bye: false,
            tls: None,
            counter: 0,
        }
    }

    fn slice(&self, start: u32, end: u32) -> &str {
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    fn part(&self, p: Part) -> &str {
        let i = p as usize;
        let start = match i.checked_sub(1) {
            Some(j) => self.ends.get(j).copied().unwrap_or(0),
            None => 0,
        };
        self.slice(start, self.ends.get(i).copied().unwrap_or(0))
    }

    /// The Call-ID.
    pub(crate) fn call_id(&self) -> &str {
        self.part(Part::CallId)
    }

    /// Our tag.
    pub(crate) fn local_tag(&self) -> &str {
        self.part(Part::LocalTag)
    }

    /// The peer's tag.
    pub(crate) fn remote_tag(&self) -> &str {
        self.part(Part::RemoteTag)
    }

    /// Our URI as it appears in From of our requests.
    pub(crate) fn local_uri(&self) -> &str {
        self.part(Part::LocalUri)
    }

    /// The peer's URI as it appears in To of our requests.
    pub(crate) fn remote_uri(&self) -> &str {
        self.part(Part::RemoteUri)
    }

    /// Where our requests go: the peer's Contact.
    pub(crate) fn remote_target(&self) -> &str {
        self.part(Part::RemoteTarget)
    }

    /// The route set, in order (the Route values of our requests).
    pub(crate) fn route_set(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.route_ends.len()).map(|k| {
            let start = match k.checked_sub(1) {
                Some(j) => self.route_ends.get(j),
                None => self.ends.get(PARTS - 1),
            };
            let end = self.route_ends.get(k).copied().unwrap_or(0);
            self.slice(start.copied().unwrap_or(0), end)
        })
    }

    /// Whether the route set is empty.
    pub(crate) fn route_set_is_empty(&self) -> bool {
        self.route_ends.is_empty()
    }

    /// The dialog created by our 2xx to `request` (UAS side, §12.1.1).
    pub(crate) fn server_side(request: &Message, local_tag: &str, peer: Peer) -> Dialog {
        let from = request.from();
        let target = contact_uri(request)
            .or_else(|| from.map(|f| f.uri().as_str()))
            .unwrap_or("");
        let routes: Vec<&str> = request
            .header_lines(HeaderName::RecordRoute)
            .flat_map(split_values)
            .collect();
        Dialog::pack(
            [
                Piece::Raw(request.call_id().unwrap_or("")),
                Piece::Raw(local_tag),
                Piece::Raw(from.and_then(|f| f.tag()).unwrap_or("")),
                addr_of(request.to(), request.header(HeaderName::To)),
                addr_of(from, request.header(HeaderName::From)),
                Piece::Raw(target),
            ],
            &routes,
            peer,
            (0, request.cseq().map_or(1, |c| c.seq)),
        )
    }

    /// The dialog created by a 2xx to our INVITE (UAC side, §12.1.2). `call_id` and
    /// `local_tag` are the ones the INVITE was built with (its Call-ID and From tag).
    pub(crate) fn client_side(
        invite: &Message,
        resp: &Message,
        peer: Option<Peer>,
        call_id: &str,
        local_tag: &str,
    ) -> Option<Dialog> {
        let peer = peer?;
        debug_assert_eq!(invite.call_id(), Some(call_id));
        debug_assert_eq!(invite.from().and_then(|f| f.tag()), Some(local_tag));
        let inv = UacInvite {
            call_id,
            local_tag,
            local_uri: echoed_from(invite, resp),
            remote_uri: echoed_to(invite, resp),
            request_uri: invite.request_uri_str().unwrap_or(""),
            cseq: invite.cseq().map_or(1, |c| c.seq),
        };
        Some(Dialog::uac(&inv, resp, peer))
    }

    /// The dialog a 2xx `resp` to the INVITE `inv` describes makes (UAC side, §12.1.2).
    pub(crate) fn uac(inv: &UacInvite<'_>, resp: &Message, peer: Peer) -> Dialog {
        let mut routes: Vec<&str> = resp
            .header_lines(HeaderName::RecordRoute)
            .flat_map(split_values)
            .collect();
        routes.reverse();
        let target = contact_uri(resp).unwrap_or(inv.request_uri);
        let mut d = Dialog::pack(
            [
                Piece::Raw(inv.call_id),
                Piece::Raw(inv.local_tag),
                Piece::Raw(resp.to().and_then(|t| t.tag()).unwrap_or("")),
                inv.local_uri,
                inv.remote_uri,
                Piece::Raw(target),
            ],
            &routes,
            peer,
            (inv.cseq, inv.cseq),
        );
        d.confirmed = true;
        d
    }

    /// Our Via for the dialog's next request: `SIP/2.0/<transport> <sent-by>;branch=<cookie>
    /// <counter><cseq><tag[..8]>;rport`, written piece by piece (every BYE and ACK of every
    /// leg is made here).
    fn next_via(&mut self, cseq: u32, via_host: SocketAddr) -> String {
        self.counter += 1;
        let mut via = String::with_capacity(96);
        match self.tls {
            Some(tls) => {
                via.push_str("SIP/2.0/TLS ");
                push_addr(&mut via, tls);
            }
            None => {
                via.push_str(if self.peer.reliable {
                    "SIP/2.0/TCP "
                } else {
                    "SIP/2.0/UDP "
                });
                push_addr(&mut via, via_host);
            }
        }
        via.push_str(";branch=");
        via.push_str(MAGIC_COOKIE);
        push_hex(&mut via, self.counter);
        push_hex(&mut via, u64::from(cseq));
        via.push_str(self.local_tag().get(..8).unwrap_or(""));
        via.push_str(";rport");
        via
    }

    pub(super) fn builder(
        &mut self,
        method: Method,
        cseq: u32,
        via_host: SocketAddr,
    ) -> RequestBuilder {
        let via = self.next_via(cseq, via_host);
        let mut b = RequestBuilder::new(method, self.remote_target())
            .via_raw(&via)
            .from(self.local_uri(), self.local_tag())
            .to(self.remote_uri(), Some(self.remote_tag()))
            .call_id(self.call_id())
            .cseq(cseq)
            .max_forwards(70);
        for r in self.route_set() {
            b = b.route(r);
        }
        b
    }

    /// A new in-dialog request (BYE …) with the next CSeq, and where to send it.
    pub(crate) fn request(
        &mut self,
        method: Method,
        via_host: SocketAddr,
    ) -> Option<(Message, Peer)> {
        self.local_cseq = self.local_cseq.max(self.invite_cseq) + 1;
        let cseq = self.local_cseq;
        let m = self
            .builder(method, cseq, via_host)
            .build_in_dialog()
            .ok()?;
        Some((m, self.peer))
    }

    /// The ACK for a 2xx to our INVITE (§13.2.2.4: same CSeq number as the INVITE), as
    /// bytes: it goes out at once, outside any transaction, and every value in it comes
    /// from the dialog, itself built from checked messages.
    pub(crate) fn ack(&mut self, via_host: SocketAddr) -> (Bytes, Peer) {
        let cseq = self.invite_cseq;
        let bytes = if self.one_line() {
            let via = self.next_via(cseq, via_host);
            self.write_ack(&via, cseq)
        } else {
            self.builder(Method::Ack, cseq, via_host).write()
        };
        (bytes, self.peer)
    }

    /// Whether every value stands on one line, as the builder writes them: it unfolds a
    /// value with CR or LF (a folded Record-Route, a From that did not parse), which
    /// [`Dialog::write_ack`] leaves to it.
    fn one_line(&self) -> bool {
        memchr::memchr2(b'\r', b'\n', self.text.as_bytes()).is_none()
    }

    /// The ACK's bytes as [`RequestBuilder::write`] writes them for [`Dialog::builder`], in
    /// one buffer of their size: an ACK goes out once per 2xx, and the builder's own
    /// strings (URI, From, To, Call-ID, Via and each route copied, then written) were most
    /// of its cost. The values are on one line ([`Dialog::one_line`]).
    fn write_ack(&self, via: &str, cseq: u32) -> Bytes {
        use bytes::BufMut as _;
        let seq = itoa_u32(cseq);
        let seq = seq.as_str();
        let routes: usize = self.route_set().map(|r| r.len() + 9).sum();
        let len = 4
            + self.remote_target().len()
            + 10
            + 5
            + via.len()
            + 2
            + 18
            + routes
            + 6
            + self.local_uri().len()
            + 5
            + self.local_tag().len()
            + 2
            + 4
            + self.remote_uri().len()
            + 5
            + self.remote_tag().len()
            + 2
            + 9
            + self.call_id().len()
            + 2
            + 6
            + seq.len()
            + 6
            + 21;
        let mut out = bytes::BytesMut::with_capacity(len);
        let mut put = |parts: &[&str]| {
            for p in parts {
                out.put_slice(p.as_bytes());
            }
        };
        put(&["ACK ", self.remote_target(), " SIP/2.0\r\n"]);
        put(&["Via: ", via, "\r\n", "Max-Forwards: 70\r\n"]);
        for r in self.route_set() {
            put(&["Route: ", r, "\r\n"]);
        }
        put(&[
            "From: ",
            self.local_uri(),
            ";tag=",
            self.local_tag(),
            "\r\n",
        ]);
        put(&[
            "To: ",
            self.remote_uri(),
            ";tag=",
            self.remote_tag(),
            "\r\n",
        ]);
        put(&["Call-ID: ", self.call_id(), "\r\n"]);
        put(&["CSeq: ", seq, " ACK\r\n", "Content-Length: 0\r\n\r\n"]);
        debug_assert_eq!(out.len(), len);
        out.freeze()
    }
}

/// A `u32` in decimal, on the stack.
struct Decimal {
    buf: [u8; 10],
    start: usize,
}

impl Decimal {
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(self.start..).unwrap_or_default()).unwrap_or("0")
    }
}

fn itoa_u32(mut n: u32) -> Decimal {
    let mut d = Decimal {
        buf: [0; 10],
        start: 10,
    };
    loop {
        d.start -= 1;
        if let Some(b) = d.buf.get_mut(d.start) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || d.start == 0 {
            return d;
        }
    }
}

/// The INVITE's From as the dialog keeps it. A 2xx echoes the request's From (RFC 3261
/// §8.2.6.2), and the answer's was checked and recorded when it was parsed, so when the two
/// values are the same bytes the answer's record is read rather than our INVITE parsed
/// (a message we built records nothing).
fn echoed_from<'a>(invite: &'a Message, resp: &'a Message) -> Piece<'a> {
    let raw = invite.header(HeaderName::From);
    if raw.is_some() && raw == resp.header(HeaderName::From) {
        let fast = addr_of(resp.from(), raw);
        debug_assert_eq!(fast, addr_of(invite.from(), raw));
        return fast;
    }
    addr_of(invite.from(), raw)
}

/// The INVITE's To as the dialog keeps it, read from the answer's record when the answer's
/// To is the INVITE's with the answerer's tag appended (§8.2.6.2). The URI is then the same
/// in both: the INVITE's value holds no `"` and no `;` (no quoted display name or
/// parameter the appended `;tag=…` could change the reading of) and does not end in
/// whitespace, and the answer's value parsed.
fn echoed_to<'a>(invite: &'a Message, resp: &'a Message) -> Piece<'a> {
    let raw = invite.header(HeaderName::To);
    if let (Some(inv), Some(ans)) = (raw, resp.header(HeaderName::To)) {
        let to = resp.to();
        let tag = to.and_then(|t| t.tag());
        let appended = ans
            .strip_prefix(inv)
            .and_then(|r| r.strip_prefix(";tag="))
            .is_some_and(|t| Some(t) == tag);
        let plain =
            !inv.bytes().any(|b| b == b'"' || b == b';') && !inv.bytes().last().is_some_and(lws);
        if to.is_some() && (ans == inv || (appended && plain)) {
            let fast = addr_of(to, raw);
            debug_assert_eq!(fast, addr_of(invite.to(), raw));
            return fast;
        }
    }
    addr_of(invite.to(), raw)
}

#[cfg(test)]
mod tests {
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
        for n in [0, 7, 10, 99, 1_000_000, u32::MAX] {
            assert_eq!(itoa_u32(n).as_str(), n.to_string());
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
}
