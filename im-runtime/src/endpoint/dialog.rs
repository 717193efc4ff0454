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
        let mut digits = [0u8; 20];
        let seq = crate::proto::decimal::decimal(&mut digits, u64::from(cseq));
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
#[path = "dialog/tests.rs"]
mod tests;
