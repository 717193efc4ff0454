//! Header names (with compact forms) and typed header values (RFC 3261 §20, §25).
//!
//! Every typed value borrows from the message; parameters are kept as a validated raw
//! section and looked up on demand, so typed access allocates nothing but the list `Vec`s.

use std::borrow::Cow;
use std::fmt;

use super::error::{ErrorKind, ParseError};
use super::scan::{Cur, Rel, digits_u64, is_gen_value, is_token, split_commas, unquote};
use super::uri::{Uri, UriRec, check_host, is_host_char};
use crate::machine::Method;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $var:ident = $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Known names are recognised case-insensitively, including
        /// their compact forms (RFC 3261 §7.3.3 and the IANA registry); others keep their
        /// spelling in the message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// Any other header, kept verbatim.
            Other,
        }

        impl HeaderName {
            /// The canonical spelling (`Call-ID`, `CSeq` …); `None` for [`HeaderName::Other`].
            pub fn canonical(self) -> Option<&'static str> {
                match self {
                    $( HeaderName::$var => Some($canon), )*
                    HeaderName::Other => None,
                }
            }

            /// Recognises a header name (full or compact form, any case).
            pub fn from_name(name: &str) -> HeaderName {
                Self::from_bytes(name.as_bytes())
            }

            /// [`HeaderName::from_name`] on bytes: the length and the first and last
            /// letters pick the one known name it can be, then one comparison confirms it
            /// (rather than comparing with every known name in turn).
            pub(crate) fn from_bytes(name: &[u8]) -> HeaderName {
                let (Some(first), Some(last)) = (name.first(), name.last()) else {
                    return HeaderName::Other;
                };
                let first = first.to_ascii_lowercase();
                if name.len() == 1 {
                    return match first {
                        $( $( $compact => HeaderName::$var, )? )*
                        _ => HeaderName::Other,
                    };
                }
                let cand = candidate(name.len(), first, last.to_ascii_lowercase());
                match cand.canonical() {
                    Some(c) if same_name(name, c.as_bytes()) => cand,
                    _ => HeaderName::Other,
                }
            }

            /// Every known name, for tests.
            #[cfg(test)]
            const ALL: &[HeaderName] = &[$( HeaderName::$var, )*];

            /// The compact form, when the name has one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$var => Some($compact as char), )? )*
                    _ => None,
                }
            }
        }
    };
}

header_names! {
    /// `Via` (`v`).
    Via = "Via", b'v';
    /// `From` (`f`).
    From = "From", b'f';
    /// `To` (`t`).
    To = "To", b't';
    /// `Call-ID` (`i`).
    CallId = "Call-ID", b'i';
    /// `CSeq`.
    CSeq = "CSeq";
    /// `Contact` (`m`).
    Contact = "Contact", b'm';
    /// `Max-Forwards`.
    MaxForwards = "Max-Forwards";
    /// `Content-Type` (`c`).
    ContentType = "Content-Type", b'c';
    /// `Content-Length` (`l`).
    ContentLength = "Content-Length", b'l';
    /// `Content-Encoding` (`e`).
    ContentEncoding = "Content-Encoding", b'e';
    /// `Content-Disposition`.
    ContentDisposition = "Content-Disposition";
    /// `Subject` (`s`).
    Subject = "Subject", b's';
    /// `Supported` (`k`).
    Supported = "Supported", b'k';
    /// `Require`.
    Require = "Require";
    /// `Proxy-Require`.
    ProxyRequire = "Proxy-Require";
    /// `Unsupported`.
    Unsupported = "Unsupported";
    /// `Allow`.
    Allow = "Allow";
    /// `Accept`.
    Accept = "Accept";
    /// `Route`.
    Route = "Route";
    /// `Record-Route`.
    RecordRoute = "Record-Route";
    /// `P-Asserted-Identity` (RFC 3325).
    PAssertedIdentity = "P-Asserted-Identity";
    /// `Warning`.
    Warning = "Warning";
    /// `Expires`.
    Expires = "Expires";
    /// `Event` (`o`, RFC 6665).
    Event = "Event", b'o';
    /// `Allow-Events` (`u`, RFC 6665).
    AllowEvents = "Allow-Events", b'u';
    /// `Refer-To` (`r`, RFC 3515).
    ReferTo = "Refer-To", b'r';
    /// `Referred-By` (`b`, RFC 3892).
    ReferredBy = "Referred-By", b'b';
    /// `Reject-Contact` (`j`, RFC 3841).
    RejectContact = "Reject-Contact", b'j';
    /// `Accept-Contact` (`a`, RFC 3841).
    AcceptContact = "Accept-Contact", b'a';
    /// `Request-Disposition` (`d`, RFC 3841).
    RequestDisposition = "Request-Disposition", b'd';
    /// `Session-Expires` (`x`, RFC 4028).
    SessionExpires = "Session-Expires", b'x';
    /// `Identity` (`y`, RFC 8224).
    Identity = "Identity", b'y';
}

/// Whether `name` is the canonical name `canon` in any case. Canonical names are letters and
/// `-`, where setting bit 0x20 lower-cases a letter and keeps `-`; the only other byte that
/// bit maps onto one of them is CR (onto `-`), which is excluded. Compared eight (or four)
/// bytes at a time: this runs once per header line of every message, and a byte loop over
/// names such as `Content-Length` was most of the name recognition's cost.
#[inline]
fn same_name(name: &[u8], canon: &[u8]) -> bool {
    let n = name.len();
    if n != canon.len() {
        return false;
    }
    if n >= 8 {
        // Chunks at 0, 8, … and a last one ending at `n` (overlapping the one before).
        let mut i = 0;
        loop {
            let at = i.min(n - 8);
            if !same8(name.get(at..), canon.get(at..)) {
                return false;
            }
            if at == n - 8 {
                return true;
            }
            i += 8;
        }
    }
    if n >= 4 {
        return same4(name.get(..4), canon.get(..4))
            && same4(name.get(n - 4..), canon.get(n - 4..));
    }
    name.iter()
        .zip(canon)
        .all(|(&a, &c)| a | 0x20 == c | 0x20 && a != b'\r')
}

/// The first eight bytes of `a` and `c` are equal with bit 0x20 set, and `a` has no CR there.
#[inline]
fn same8(a: Option<&[u8]>, c: Option<&[u8]>) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    match (
        a.and_then(|a| a.first_chunk::<8>()),
        c.and_then(|c| c.first_chunk::<8>()),
    ) {
        (Some(a), Some(c)) => {
            let x = u64::from_le_bytes(*a);
            x | CASE == u64::from_le_bytes(*c) | CASE && !has_cr64(x)
        }
        _ => false,
    }
}

/// [`same8`] for four bytes.
#[inline]
fn same4(a: Option<&[u8]>, c: Option<&[u8]>) -> bool {
    const CASE: u32 = 0x2020_2020;
    match (
        a.and_then(|a| a.first_chunk::<4>()),
        c.and_then(|c| c.first_chunk::<4>()),
    ) {
        (Some(a), Some(c)) => {
            let x = u32::from_le_bytes(*a);
            x | CASE == u32::from_le_bytes(*c) | CASE
                && !has_cr64(u64::from(x) | 0xFFFF_FFFF_0000_0000)
        }
        _ => false,
    }
}

/// Whether any byte of `x` is CR (the exact zero-byte test on `x ^ CR…CR`).
#[inline]
fn has_cr64(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let v = x ^ (ONES * u64::from(b'\r'));
    v.wrapping_sub(ONES) & !v & HIGH != 0
}

/// The only known full name with this length, first and last letter (lower case), else
/// [`HeaderName::Other`]. The `header_names_are_recognised` test checks it against the list.
fn candidate(len: usize, first: u8, last: u8) -> HeaderName {
    use HeaderName as H;
    match (len, first, last) {
        (2, b't', _) => H::To,
        (3, b'v', _) => H::Via,
        (4, b'f', _) => H::From,
        (4, b'c', _) => H::CSeq,
        (5, b'a', _) => H::Allow,
        (5, b'r', _) => H::Route,
        (5, b'e', _) => H::Event,
        (6, b'a', _) => H::Accept,
        (7, b'c', b'd') => H::CallId,
        (7, b'c', b't') => H::Contact,
        (7, b's', _) => H::Subject,
        (7, b'r', _) => H::Require,
        (7, b'w', _) => H::Warning,
        (7, b'e', _) => H::Expires,
        (8, b'r', _) => H::ReferTo,
        (8, b'i', _) => H::Identity,
        (9, b's', _) => H::Supported,
        (11, b'u', _) => H::Unsupported,
        (11, b'r', _) => H::ReferredBy,
        (12, b'm', _) => H::MaxForwards,
        (12, b'c', _) => H::ContentType,
        (12, b'r', _) => H::RecordRoute,
        (12, b'a', _) => H::AllowEvents,
        (13, b'p', _) => H::ProxyRequire,
        (14, b'c', _) => H::ContentLength,
        (14, b'r', _) => H::RejectContact,
        (14, b'a', _) => H::AcceptContact,
        (15, b's', _) => H::SessionExpires,
        (16, b'c', _) => H::ContentEncoding,
        (19, b'c', _) => H::ContentDisposition,
        (19, b'p', _) => H::PAssertedIdentity,
        (19, b'r', _) => H::RequestDisposition,
        _ => H::Other,
    }
}

impl HeaderName {
    /// Whether the header's grammar is a comma-separated list, so that values on one line
    /// are equivalent to several header lines (RFC 3261 §7.3.1).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Supported
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::Accept
                | HeaderName::Warning
                | HeaderName::PAssertedIdentity
                | HeaderName::ContentEncoding
                | HeaderName::AllowEvents
        )
    }
}

/// Header parameters (`;name=value` …), validated at parse time and looked up on demand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a str,
    loose: bool,
}

/// Media-type parameter values seen in the wild are not always tokens
/// (`type=application/sdp`, `boundary=----=_Part_1`): any visible character that cannot end
/// the value is taken.
fn is_loose_value(c: u8) -> bool {
    c.is_ascii_graphic() && !matches!(c, b';' | b',' | b'"')
}

/// Parses `*( SEMI generic-param )` at the cursor.
fn parse_params<'a>(c: &mut Cur<'a>) -> Result<Params<'a>, ParseError> {
    parse_params_mode(c, false)
}

fn parse_params_mode<'a>(c: &mut Cur<'a>, loose: bool) -> Result<Params<'a>, ParseError> {
    parse_params_find(c, loose, "").map(|(p, _)| p)
}

/// Parses parameters and, in the same walk, finds the first one named `want` (what
/// [`Params::get`] would return for it); an empty `want` finds nothing.
fn parse_params_find<'a>(
    c: &mut Cur<'a>,
    loose: bool,
    want: &str,
) -> Result<(Params<'a>, Option<Option<&'a str>>), ParseError> {
    let start = c.pos;
    let mut end = start;
    let mut found = None;
    while c.sep(b';') {
        let (name, value) = param(c, loose).map_err(|e| e.ctx("parameter"))?;
        if found.is_none() && !want.is_empty() && name.eq_ignore_ascii_case(want) {
            found = Some(value);
        }
        end = c.pos;
    }
    c.pos = end;
    Ok((
        Params {
            raw: c.s.get(start..end).unwrap_or(""),
            loose,
        },
        found,
    ))
}

fn param<'a>(c: &mut Cur<'a>, loose: bool) -> Result<(&'a str, Option<&'a str>), ParseError> {
    let name = c.token("parameter name")?;
    if c.sep(b'=') {
        let v = if c.peek() == Some(b'"') {
            c.quoted()?
        } else if loose {
            c.take_while(is_loose_value)
        } else {
            c.take_while(is_gen_value)
        };
        if v.is_empty() {
            return Err(c.err(ErrorKind::Expected("parameter value")));
        }
        Ok((name, Some(v)))
    } else {
        Ok((name, None))
    }
}

impl<'a> Params<'a> {
    /// Parameters in order as `(name, value)`; quoted values keep their quotes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let mut c = Cur::new(self.raw);
        let loose = self.loose;
        std::iter::from_fn(move || {
            if c.sep(b';') {
                param(&mut c, loose).ok()
            } else {
                None
            }
        })
    }

    /// A parameter by name (case-insensitive): `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The raw parameter section, as written (starting with `;`, or empty).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route,
/// Record-Route, P-Asserted-Identity, Refer-To …
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Option<&'a str>,
    uri: Uri<'a>,
    angle: bool,
    params: Params<'a>,
    /// The `tag` parameter, found while the parameters were checked.
    tag: Option<&'a str>,
}

/// A checked name-addr's parts as ranges inside its header value (see [`Rel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddrRec {
    display: Option<Rel>,
    uri: UriRec,
    angle: bool,
    params: Rel,
    tag: Option<Rel>,
}

impl AddrRec {
    /// The name-addr rebuilt from `base`, the value it was recorded from.
    #[inline]
    pub(crate) fn view<'a>(&self, base: &'a str) -> NameAddr<'a> {
        NameAddr {
            display: Rel::get_opt(self.display, base),
            uri: self.uri.view(base),
            angle: self.angle,
            params: Params {
                raw: self.params.get(base),
                loose: false,
            },
            tag: Rel::get_opt(self.tag, base),
        }
    }
}

impl<'a> NameAddr<'a> {
    /// Parses a single value (`From`/`To` style, nothing may follow).
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, ParseError> {
        let mut c = Cur::new(s);
        let v = Self::parse_cur(&mut c, true)?;
        c.expect_end()?;
        Ok(v)
    }

    pub(crate) fn parse_cur(c: &mut Cur<'a>, params: bool) -> Result<NameAddr<'a>, ParseError> {
        c.skip_lws();
        let start = c.pos;
        let mut display = None;
        if c.peek() == Some(b'"') {
            display = Some(c.quoted()?);
            c.skip_lws();
            if c.peek() != Some(b'<') {
                return Err(c.err(ErrorKind::Expected("'<' after display name")));
            }
        } else if c.peek() != Some(b'<') {
            // *(token LWS) then '<' makes a display name; anything else is an addr-spec.
            loop {
                if c.take_while(is_token).is_empty() {
                    break;
                }
                c.skip_lws();
            }
            if c.peek() == Some(b'<') {
                let d = super::scan::trim_lws(c.s.get(start..c.pos).unwrap_or(""));
                display = if d.is_empty() { None } else { Some(d) };
            } else {
                c.pos = start;
            }
        }
        let angle = c.eat(b'<');
        let uri = if angle {
            let ustart = c.pos;
            // One walk to the first `>` or whitespace: whitespace before the `>` is an error,
            // and so is no `>` at all (that error wins, as it did when the `>` was found first).
            let inner = c.take_while(|b| b != b'>' && !super::scan::is_lws(b));
            if !c.eat(b'>') {
                let rest = c.s.get(c.pos..).unwrap_or("");
                if super::scan::find_byte(rest, b'>').is_none() {
                    return Err(ParseError::new(
                        ErrorKind::Unterminated("<URI>"),
                        ustart - 1,
                    ));
                }
                return Err(
                    ParseError::new(ErrorKind::Expected("URI without whitespace"), c.pos)
                        .ctx("addr-spec"),
                );
            }
            Uri::parse_at(inner, ustart)?
        } else {
            let ustart = c.pos;
            let raw = c.take_while(|b| !matches!(b, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n'));
            if raw.is_empty() {
                return Err(c.err(ErrorKind::Expected("URI")));
            }
            if let Some(i) = raw.find(['?', '<', '>', '"']) {
                // RFC 3261 §20: a URI with headers (or these characters) must be in <>.
                return Err(
                    ParseError::new(ErrorKind::Expected("<> around this URI"), ustart + i)
                        .ctx("addr-spec"),
                );
            }
            Uri::parse_at(raw, ustart)?
        };
        let (params, tag) = if params {
            parse_params_find(c, false, "tag")?
        } else {
            (Params::default(), None)
        };
        Ok(NameAddr {
            display,
            uri,
            angle,
            params,
            tag: tag.flatten(),
        })
    }

    /// Records where the parts lie in `base` (the value this was parsed from).
    pub(crate) fn record(&self, base: &str) -> Option<AddrRec> {
        Some(AddrRec {
            display: Rel::of_opt(base, self.display)?,
            uri: self.uri.record(base)?,
            angle: self.angle,
            params: Rel::of(base, self.params.raw)?,
            tag: Rel::of_opt(base, self.tag)?,
        })
    }

    /// The display name as written (with quotes if quoted).
    pub fn display_raw(&self) -> Option<&'a str> {
        self.display
    }

    /// The display name with quotes and quoted-pairs removed.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(|d| {
            if d.starts_with('"') {
                Cow::Owned(unquote(d))
            } else {
                Cow::Borrowed(d)
            }
        })
    }

    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }

    /// Whether the URI was enclosed in `<…>`.
    pub fn has_angle_brackets(&self) -> bool {
        self.angle
    }

    /// Header parameters (after the URI).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.tag
    }
}

/// Walks a comma-separated list of `T`, rejecting empty items, handing each item to `each`.
/// The checks at parse time use it with no collection, so they allocate nothing.
fn visit_list<'a, T>(
    s: &'a str,
    mut one: impl FnMut(&mut Cur<'a>) -> Result<T, ParseError>,
    mut each: impl FnMut(T),
) -> Result<(), ParseError> {
    let mut c = Cur::new(s);
    loop {
        c.skip_lws();
        if c.peek() == Some(b',') || c.eof() {
            return Err(c.err(ErrorKind::Expected("list item")));
        }
        each(one(&mut c)?);
        if !c.sep(b',') {
            break;
        }
    }
    c.expect_end()
}

/// Parses a comma-separated list of `T`, rejecting empty items.
fn parse_list<'a, T>(
    s: &'a str,
    one: impl FnMut(&mut Cur<'a>) -> Result<T, ParseError>,
) -> Result<Vec<T>, ParseError> {
    let mut out = Vec::new();
    visit_list(s, one, |v| out.push(v))?;
    Ok(out)
}

/// Checks a list of name-addr/addr-spec values with parameters without collecting them.
pub(crate) fn check_name_addrs(s: &str) -> Result<(), ParseError> {
    visit_list(s, |c| NameAddr::parse_cur(c, true), drop)
}

/// Checks a Contact value (`*` or a list of addresses) without collecting it.
pub(crate) fn check_contacts(s: &str) -> Result<(), ParseError> {
    if super::scan::trim_lws(s) == "*" {
        return Ok(());
    }
    check_name_addrs(s).map_err(|e| e.ctx("Contact"))
}

/// Checks a token list (an empty value is an empty list) without collecting it.
pub(crate) fn check_tokens(s: &str) -> Result<(), ParseError> {
    if super::scan::trim_lws(s).is_empty() {
        return Ok(());
    }
    visit_list(s, |c| c.token("token"), drop)
}

/// Parses a list of name-addr/addr-spec values with parameters (Contact, Route …).
pub fn parse_name_addrs(s: &str) -> Result<Vec<NameAddr<'_>>, ParseError> {
    parse_list(s, |c| NameAddr::parse_cur(c, true))
}

/// One Via value (RFC 3261 §20.42).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    params: Params<'a>,
    /// The first `branch` and `rport` parameters, found while the parameters were checked.
    branch: Option<&'a str>,
    rport: Option<Option<u16>>,
}

/// A checked Via value's parts as ranges inside its header value (see [`Rel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ViaRec {
    protocol: Rel,
    version: Rel,
    transport: Rel,
    host: Rel,
    port: Option<u16>,
    params: Rel,
    branch: Option<Rel>,
    rport: Option<Option<u16>>,
}

impl ViaRec {
    /// The Via rebuilt from `base`, the value it was recorded from.
    #[inline]
    pub(crate) fn view<'a>(&self, base: &'a str) -> Via<'a> {
        Via {
            protocol: self.protocol.get(base),
            version: self.version.get(base),
            transport: self.transport.get(base),
            host: self.host.get(base),
            port: self.port,
            params: Params {
                raw: self.params.get(base),
                loose: false,
            },
            branch: Rel::get_opt(self.branch, base),
            rport: self.rport,
        }
    }
}

impl<'a> Via<'a> {
    /// Parses a Via header value (possibly several comma-separated values).
    pub fn parse_list(s: &'a str) -> Result<Vec<Via<'a>>, ParseError> {
        parse_list(s, Self::parse_cur).map_err(|e| e.ctx("Via"))
    }

    /// The first value of a Via header value, after checking the whole list (no `Vec`).
    pub(crate) fn parse_first(s: &'a str) -> Result<Via<'a>, ParseError> {
        let mut first = None;
        visit_list(s, Self::parse_cur, |v| {
            first.get_or_insert(v);
        })
        .map_err(|e| e.ctx("Via"))?;
        // visit_list calls `each` at least once or fails.
        first.ok_or_else(|| ParseError::new(ErrorKind::Expected("list item"), 0).ctx("Via"))
    }

    fn parse_cur(c: &mut Cur<'a>) -> Result<Via<'a>, ParseError> {
        let protocol = c
            .token("protocol name")
            .map_err(|e| e.ctx("sent-protocol"))?;
        if !c.sep(b'/') {
            return Err(c.err(ErrorKind::Expected("'/'")).ctx("sent-protocol"));
        }
        let version = c
            .token("protocol version")
            .map_err(|e| e.ctx("sent-protocol"))?;
        if !c.sep(b'/') {
            return Err(c.err(ErrorKind::Expected("'/'")).ctx("sent-protocol"));
        }
        let transport = c.token("transport").map_err(|e| e.ctx("sent-protocol"))?;
        let before = c.pos;
        c.skip_lws();
        if c.pos == before {
            return Err(c.err(ErrorKind::Expected("whitespace before sent-by")));
        }
        let hstart = c.pos;
        let host = if c.peek() == Some(b'[') {
            let h = c.take_while(|b| b != b']');
            if !c.eat(b']') {
                return Err(
                    ParseError::new(ErrorKind::Unterminated("IPv6 reference"), hstart)
                        .ctx("sent-by"),
                );
            }
            let h = c.s.get(hstart..hstart + h.len() + 1).unwrap_or(h);
            check_host(h, hstart).map_err(|e| e.ctx("sent-by"))?;
            h
        } else {
            // Every byte is a host character already: what `check_host` adds is the first
            // byte and the length (without walking the host a second time).
            let h = c.take_while(is_host_char);
            if h.is_empty() || matches!(h.as_bytes().first(), Some(b'-' | b'.')) {
                return Err(ParseError::new(ErrorKind::Host, hstart).ctx("sent-by"));
            }
            h
        };
        let mut port = None;
        if c.sep(b':') {
            let pstart = c.pos;
            let p = c.take_while(|b| b.is_ascii_digit());
            match digits_u64(p) {
                Some(v) if v <= u64::from(u16::MAX) => port = Some(v as u16),
                _ => return Err(ParseError::new(ErrorKind::Port, pstart).ctx("sent-by")),
            }
        }
        let pstart = c.pos;
        // The first rport and the first branch are checked (what `rport()` and `branch()`
        // read) and kept, in the walk that checks the parameters.
        let mut rport: Option<Option<u16>> = None;
        let mut branch: Option<Option<&'a str>> = None;
        let params_start = c.pos;
        let mut end = params_start;
        while c.sep(b';') {
            let (name, v) = param(c, false).map_err(|e| e.ctx("parameter"))?;
            end = c.pos;
            if rport.is_none() && name.eq_ignore_ascii_case("rport") {
                rport = Some(match v {
                    None => None,
                    Some(v) => match digits_u64(v) {
                        Some(n) if n <= u64::from(u16::MAX) => Some(n as u16),
                        _ => return Err(ParseError::new(ErrorKind::Port, pstart).ctx("rport")),
                    },
                });
            } else if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                if v.is_none_or(|b| b.starts_with('"')) {
                    return Err(ParseError::new(ErrorKind::Expected("token"), pstart).ctx("branch"));
                }
                branch = Some(v);
            }
        }
        c.pos = end;
        Ok(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params: Params {
                raw: c.s.get(params_start..end).unwrap_or(""),
                loose: false,
            },
            branch: branch.flatten(),
            rport,
        })
    }

    /// Records where the parts lie in `base` (the value this was parsed from).
    pub(crate) fn record(&self, base: &str) -> Option<ViaRec> {
        Some(ViaRec {
            protocol: Rel::of(base, self.protocol)?,
            version: Rel::of(base, self.version)?,
            transport: Rel::of(base, self.transport)?,
            host: Rel::of(base, self.host)?,
            port: self.port,
            params: Rel::of(base, self.params.raw)?,
            branch: Rel::of_opt(base, self.branch)?,
            rport: self.rport,
        })
    }

    /// Protocol name (`SIP`).
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }

    /// Protocol version (`2.0`).
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// Transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS` …).
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// sent-by host (IPv6 references keep their brackets).
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// All Via parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// Whether the branch carries the RFC 3261 magic cookie `z9hG4bK`.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with("z9hG4bK") && b.len() > 7)
    }

    /// The `received` parameter (IPv6 with or without brackets, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.rport
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (less than 2**31, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let (seq, m) = Self::parse_parts(s)?;
        Ok(CSeq {
            seq,
            method: Method::from_token(m),
        })
    }

    /// The number and the method token, as written.
    pub(crate) fn parse_parts(s: &str) -> Result<(u32, &str), ParseError> {
        let mut c = Cur::new(s);
        c.skip_lws();
        let n = c.take_while(|b| b.is_ascii_digit());
        let seq = match digits_u64(n) {
            Some(v) if v < 1 << 31 => v as u32,
            Some(_) | None if !n.is_empty() => {
                return Err(c.err(ErrorKind::Scalar("CSeq number")));
            }
            _ => return Err(c.err(ErrorKind::Expected("CSeq number"))),
        };
        let before = c.pos;
        c.skip_lws();
        if c.pos == before {
            return Err(c.err(ErrorKind::Expected("whitespace after CSeq number")));
        }
        let m = c.token("method")?;
        c.expect_end()?;
        Ok((seq, m))
    }
}

/// Call-ID: `word [ "@" word ]`.
pub(crate) fn check_call_id(s: &str) -> Result<(), ParseError> {
    use super::scan::is_word;
    // One walk to the first non-word byte: the end, or the `@` with a word on each side
    // (`@` is not a word character, so a second one fails the second walk).
    let b = s.as_bytes();
    let ok = match b.iter().position(|&c| !is_word(c)) {
        None => !b.is_empty(),
        Some(i) => {
            i > 0
                && b.get(i) == Some(&b'@')
                && b.get(i + 1..)
                    .is_some_and(|w| !w.is_empty() && w.iter().all(|&c| is_word(c)))
        }
    };
    if !ok {
        let i = s
            .bytes()
            .position(|c| !super::scan::is_word(c) && c != b'@')
            .unwrap_or(0);
        return Err(ParseError::new(ErrorKind::Expected("Call-ID word"), i));
    }
    Ok(())
}

/// Parses a header whose value is `1*DIGIT` no larger than `max`.
pub(crate) fn parse_number(s: &str, max: u64, what: &'static str) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        let i = s.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(0);
        return Err(ParseError::new(ErrorKind::Expected("digits"), i));
    }
    match digits_u64(s) {
        Some(v) if v <= max => Ok(v),
        _ => Err(ParseError::new(ErrorKind::Scalar(what), 0)),
    }
}

/// A media type (`Content-Type`) or a media range (`Accept`): `type/subtype;params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    ty: &'a str,
    subtype: &'a str,
    params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses one media type. SIP allows LWS around `/`, `;` and `=` (RFC 3261 §25.1), which
    /// the general-purpose `mime`/`mediatype` crates reject.
    pub fn parse(s: &'a str) -> Result<MediaType<'a>, ParseError> {
        let mut c = Cur::new(s);
        let m = Self::parse_cur(&mut c)?;
        c.expect_end()?;
        Ok(m)
    }

    fn parse_cur(c: &mut Cur<'a>) -> Result<MediaType<'a>, ParseError> {
        c.skip_lws();
        let ty = c.token("media type")?;
        if !c.sep(b'/') {
            return Err(c.err(ErrorKind::Expected("'/'")));
        }
        let subtype = c.token("media subtype")?;
        let params = parse_params_mode(c, true)?;
        Ok(MediaType {
            ty,
            subtype,
            params,
        })
    }

    /// Parses an Accept value: a possibly empty list of media ranges.
    pub fn parse_accept(s: &'a str) -> Result<Vec<MediaType<'a>>, ParseError> {
        if super::scan::trim_lws(s).is_empty() {
            return Ok(Vec::new());
        }
        parse_list(s, Self::parse_cur)
    }

    /// Top-level type as written.
    pub fn ty(&self) -> &'a str {
        self.ty
    }

    /// Subtype as written.
    pub fn subtype(&self) -> &'a str {
        self.subtype
    }

    /// Parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// A parameter's value with quotes removed (`boundary`, `charset` …).
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params.get(name).flatten().map(|v| {
            if v.starts_with('"') {
                Cow::Owned(unquote(v))
            } else {
                Cow::Borrowed(v)
            }
        })
    }

    /// `type/subtype` in lower case, without parameters.
    pub fn essence(&self) -> String {
        let mut s = String::with_capacity(self.ty.len() + self.subtype.len() + 1);
        s.push_str(self.ty);
        s.push('/');
        s.push_str(self.subtype);
        s.make_ascii_lowercase();
        s
    }

    /// Whether this is `ty/subtype` (case-insensitive).
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this media range (possibly with `*`) matches `ty/subtype`.
    pub fn matches(&self, ty: &str, subtype: &str) -> bool {
        (self.ty == "*" || self.ty.eq_ignore_ascii_case(ty))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

impl fmt::Display for MediaType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.ty, self.subtype, self.params.raw)
    }
}

/// Content-Disposition (RFC 3261 §20.11): a disposition type and parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disposition<'a> {
    ty: &'a str,
    params: Params<'a>,
}

impl<'a> Disposition<'a> {
    /// Parses a Content-Disposition value.
    pub fn parse(s: &'a str) -> Result<Disposition<'a>, ParseError> {
        let mut c = Cur::new(s);
        c.skip_lws();
        let ty = c.token("disposition type")?;
        let params = parse_params(&mut c)?;
        c.expect_end()?;
        Ok(Disposition { ty, params })
    }

    /// The disposition type as written (`recipient-list`, `session`, `render` …).
    pub fn ty(&self) -> &'a str {
        self.ty
    }

    /// Parameters (`handling` …).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Whether `handling=optional` is given (the default is required).
    pub fn is_optional(&self) -> bool {
        self.params
            .get("handling")
            .flatten()
            .is_some_and(|h| h.eq_ignore_ascii_case("optional"))
    }
}

/// One Warning value (RFC 3261 §20.43).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning<'a> {
    /// The three-digit warn-code.
    pub code: u16,
    /// The warn-agent (host[:port] or pseudonym).
    pub agent: &'a str,
    /// The warn-text with quotes removed.
    pub text: String,
}

impl<'a> Warning<'a> {
    /// Parses a Warning header value (a list).
    pub fn parse_list(s: &'a str) -> Result<Vec<Warning<'a>>, ParseError> {
        parse_list(s, |c| {
            let d = c.take_while(|b| b.is_ascii_digit());
            if d.len() != 3 {
                return Err(c.err(ErrorKind::Expected("three-digit warn-code")));
            }
            let code = d.parse().unwrap_or(0);
            if !c.eat(b' ') {
                return Err(c.err(ErrorKind::Expected("SP")));
            }
            let agent = c.take_while(|b| is_token(b) || matches!(b, b':' | b'[' | b']'));
            if agent.is_empty() || !c.eat(b' ') {
                return Err(c.err(ErrorKind::Expected("warn-agent")));
            }
            let text = unquote(c.quoted()?);
            Ok(Warning { code, agent, text })
        })
        .map_err(|e| e.ctx("Warning"))
    }
}

/// Parses a list of tokens (Require, Supported, Unsupported, Proxy-Require, Allow …).
/// An empty value gives an empty list (Supported may be empty).
pub fn parse_tokens(s: &str) -> Result<Vec<&str>, ParseError> {
    if super::scan::trim_lws(s).is_empty() {
        return Ok(Vec::new());
    }
    parse_list(s, |c| c.token("token"))
}

/// Contact: `*` or a list of addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contacts<'a> {
    /// `Contact: *` (REGISTER removal of all bindings).
    Star,
    /// The addresses in order.
    List(Vec<ContactValue<'a>>),
}

/// One Contact address with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactValue<'a>(pub NameAddr<'a>);

impl<'a> ContactValue<'a> {
    /// The address.
    pub fn addr(&self) -> &NameAddr<'a> {
        &self.0
    }

    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.0.uri()
    }

    /// The `expires` parameter; values above 2**32-1 saturate (RFC 3261 §20.19).
    pub fn expires(&self) -> Option<u32> {
        let v = self.0.params().get("expires").flatten()?;
        if !v.bytes().all(|c| c.is_ascii_digit()) || v.is_empty() {
            return None;
        }
        Some(digits_u64(v).map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32))
    }

    /// Whether the `isfocus` feature parameter is present (RFC 4579).
    pub fn is_focus(&self) -> bool {
        self.0.params().get("isfocus").is_some()
    }

    /// The `q` parameter as written.
    pub fn q(&self) -> Option<&'a str> {
        self.0.params().get("q").flatten()
    }
}

impl<'a> Contacts<'a> {
    /// Parses a Contact header value.
    pub fn parse(s: &'a str) -> Result<Contacts<'a>, ParseError> {
        if super::scan::trim_lws(s) == "*" {
            return Ok(Contacts::Star);
        }
        parse_list(s, |c| NameAddr::parse_cur(c, true).map(ContactValue))
            .map(Contacts::List)
            .map_err(|e| e.ctx("Contact"))
    }
}

/// Splits a list-valued header into its raw values (top-level commas only).
pub fn split_values(s: &str) -> impl Iterator<Item = &str> {
    split_commas(s).into_iter().map(|(_, v)| v)
}

mod plain;
#[cfg(test)]
mod tests;
