//! [`super::facts`] without the general model: one walk over the lines that checks what
//! `sdp-types` checks and builds [`SdpFacts`] straight from the text.
//!
//! The general parser allocates every field of every line (origin, times, each attribute)
//! and the facts are then copied out of it; an MSRP offer or answer costs ~45 allocations
//! that way. Here only what the facts keep is allocated. The rules are `sdp-types` 0.3.1's
//! (`Session::parse`): a body this walk accepts gives the same facts as the general parser
//! (the `sdp` fuzz target and the unit tests compare them), and anything it refuses goes to
//! the general parser, which then gives the error.

use super::msrp::Direction;
use crate::machine::{SdpAttribute, SdpFacts, SdpMedia};

/// RFC 8866 §9 token characters, as `sdp-types` checks nettype and addrtype.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| {
        matches!(
            b,
            0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e
        )
    })
}

/// Space-separated fields with runs of spaces taken as one separator.
fn fields(v: &str) -> impl Iterator<Item = &str> {
    v.split(' ').filter(|p| !p.is_empty())
}

fn u64_ok(s: Option<&str>) -> bool {
    s.is_some_and(|s| s.parse::<u64>().is_ok())
}

/// `sdp-types`' typed time (`1d`, `3h`, `10m`, `7s`, `60`): its value when it parses.
fn typed_time(s: &str) -> Option<u64> {
    let (num, factor) = match s.as_bytes().last()? {
        b'd' => (s.get(..s.len() - 1)?, 86_400),
        b'h' => (s.get(..s.len() - 1)?, 3_600),
        b'm' => (s.get(..s.len() - 1)?, 60),
        b's' => (s.get(..s.len() - 1)?, 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(factor)
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
fn origin_ok(v: &str) -> bool {
    let mut f = fields(v);
    f.next().is_some()
        && f.next().is_some()
        && u64_ok(f.next())
        && f.next().is_some_and(is_token)
        && f.next().is_some_and(is_token)
        && f.next().is_some()
        && f.next().is_none()
}

/// `c=<nettype> <addrtype> <connection-address>`: the address when the line is valid.
fn connection(v: &str) -> Option<&str> {
    let mut f = fields(v);
    if !(f.next().is_some_and(is_token) && f.next().is_some_and(is_token)) {
        return None;
    }
    let addr = f.next()?;
    f.next().is_none().then_some(addr)
}

/// `b=<bwtype>:<bandwidth>`
fn bandwidth_ok(v: &str) -> bool {
    let mut f = v.split(':');
    f.next().is_some() && u64_ok(f.next()) && f.next().is_none()
}

/// `t=<start-time> <stop-time>`
fn time_ok(v: &str) -> bool {
    let mut f = fields(v);
    u64_ok(f.next()) && u64_ok(f.next()) && f.next().is_none()
}

/// `r=<repeat interval> <active duration> <offsets from start-time>`
fn repeat_ok(v: &str) -> bool {
    let mut f = fields(v);
    f.next().and_then(typed_time).is_some()
        && f.next().and_then(typed_time).is_some()
        && f.all(|o| typed_time(o).is_some())
}

/// `z=<adjustment time> <offset> …`
fn zones_ok(v: &str) -> bool {
    let mut f = fields(v);
    while let Some(adj) = f.next() {
        if adj.parse::<u64>().is_err() {
            return false;
        }
        let Some(off) = f.next() else { return false };
        let (neg, mag) = match off.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, off),
        };
        let Some(t) = typed_time(mag) else {
            return false;
        };
        let t = i128::from(t);
        if i64::try_from(if neg { -t } else { t }).is_err() {
            return false;
        }
    }
    true
}

/// `a=<attribute>[:<value>]`
fn attribute(v: &str) -> (&str, Option<&str>) {
    match v.split_once(':') {
        Some((n, val)) => (n, Some(val)),
        None => (v, None),
    }
}

/// An `m=` line's fields, borrowed from the text.
#[derive(Clone, Copy, Debug)]
pub(super) struct MediaLine<'a> {
    /// `<media>`.
    pub media: &'a str,
    /// `<port>` (without the number of ports).
    pub port: u16,
    /// `<proto>`.
    pub proto: &'a str,
    /// `<fmt> …`: the rest of the line as `sdp-types` keeps it (runs of spaces included).
    pub fmt: &'a str,
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> …`
fn media_line(v: &str) -> Option<MediaLine<'_>> {
    let mut f = v.splitn(4, ' ');
    let media = f.next()?;
    let port_part = f.next()?;
    let (port, num) = match port_part.split_once('/') {
        Some((p, n)) => (p, Some(n)),
        None => (port_part, None),
    };
    let port = port.parse::<u16>().ok()?;
    if num.is_some_and(|n| n.parse::<u16>().is_err()) {
        return None;
    }
    let proto = f.next()?;
    let fmt = f.next()?;
    Some(MediaLine {
        media,
        port,
        proto,
        fmt,
    })
}

/// What a walk reports besides the media sections: the session-level `c=` address and the
/// first session-level direction attribute's name.
pub(super) struct Walked<'a> {
    /// The session-level `c=` address.
    pub connection: Option<&'a str>,
    /// The first session-level `a=sendonly|recvonly|sendrecv|inactive` (any case).
    pub session_direction: Option<&'a str>,
}

/// Receives the media sections of a walk, in order.
pub(super) trait Sink<'a> {
    /// An `m=` line: a new media section starts.
    fn media(&mut self, m: MediaLine<'a>);
    /// An `a=` line of the current media section.
    fn attribute(&mut self, name: &'a str, value: Option<&'a str>);
}

/// The lines as `sdp-types` sees them: split at LF, one CRLF or LF removed, empty lines
/// skipped; `None` for a line it refuses (NUL or CR inside, no `=` right after one key byte).
fn lines(text: &str) -> impl Iterator<Item = Option<(u8, &str)>> {
    text.split_inclusive('\n').filter_map(|l| {
        let l = match l.strip_suffix('\n') {
            Some(l) => l.strip_suffix('\r').unwrap_or(l),
            None => l,
        };
        if l.is_empty() {
            return None;
        }
        if l.bytes().any(|b| b == 0 || b == b'\r') {
            return Some(None);
        }
        match l.as_bytes() {
            [k, b'=', ..] if *k != b'=' => Some(l.get(2..).map(|v| (*k, v))),
            _ => Some(None),
        }
    })
}

/// Walks `text` with `sdp-types`' rules, reporting its media sections to `sink`; `None` when
/// `sdp-types` would refuse it (what the sink got by then means nothing).
pub(super) fn walk<'a>(text: &'a str, sink: &mut impl Sink<'a>) -> Option<Walked<'a>> {
    let mut lines = lines(text);
    match lines.next() {
        Some(Some((b'v', "0"))) => {}
        _ => return None,
    }
    // Keys that may appear once per session (o s i u c z k) and per media section (i k).
    let mut once = [false; 7];
    let mut connection_addr = None;
    let mut session_direction: Option<&str> = None;
    let mut have_time = false;
    let mut in_media = false;
    let mut media_once = [false; 2];
    for line in lines {
        let (key, v) = line?;
        if key == b'm' {
            sink.media(media_line(v)?);
            in_media = true;
            media_once = [false; 2];
            continue;
        }
        if in_media {
            match key {
                b'i' | b'k' => {
                    let slot = media_once.get_mut(usize::from(key == b'k'))?;
                    if std::mem::replace(slot, true) {
                        return None;
                    }
                }
                b'c' => {
                    connection(v)?;
                }
                b'b' if !bandwidth_ok(v) => return None,
                b'a' => {
                    let (name, value) = attribute(v);
                    sink.attribute(name, value);
                }
                _ => {}
            }
            continue;
        }
        let slot = match key {
            b'o' => Some(0),
            b's' => Some(1),
            b'i' => Some(2),
            b'u' => Some(3),
            b'c' => Some(4),
            b'z' => Some(5),
            b'k' => Some(6),
            _ => None,
        };
        if let Some(i) = slot
            && std::mem::replace(once.get_mut(i)?, true)
        {
            return None;
        }
        match key {
            b'o' if !origin_ok(v) => return None,
            b'c' => connection_addr = Some(connection(v)?),
            b'b' if !bandwidth_ok(v) => return None,
            b't' => {
                if !time_ok(v) {
                    return None;
                }
                have_time = true;
            }
            b'r' if !have_time || !repeat_ok(v) => return None,
            b'z' if !zones_ok(v) => return None,
            b'a' => {
                let (name, _) = attribute(v);
                if session_direction.is_none() && Direction::from_attr(name).is_some() {
                    session_direction = Some(name);
                }
            }
            _ => {}
        }
    }
    Some(Walked {
        connection: connection_addr,
        session_direction,
    })
}

/// Builds the facts' media sections.
struct FactsSink(Vec<SdpMedia>);

impl<'a> Sink<'a> for FactsSink {
    fn media(&mut self, m: MediaLine<'a>) {
        self.0.push(SdpMedia {
            media: m.media.to_owned(),
            port: m.port,
            proto: m.proto.to_owned(),
            formats: m.fmt.split_ascii_whitespace().map(str::to_owned).collect(),
            attributes: Vec::new(),
        });
    }

    fn attribute(&mut self, name: &'a str, value: Option<&'a str>) {
        if let Some(m) = self.0.last_mut() {
            m.attributes.push(SdpAttribute {
                name: name.to_owned(),
                value: value.map(str::to_owned),
            });
        }
    }
}

/// The facts of `text`, or `None` when `sdp-types` would refuse it.
pub(super) fn facts(text: &str) -> Option<SdpFacts> {
    let mut sink = FactsSink(Vec::new());
    let walked = walk(text, &mut sink)?;
    let mut media = sink.0;
    // RFC 4566 §6: a session-level direction applies to media sections without their own
    // (what `facts_from_session` adds).
    if let Some(d) = walked.session_direction {
        for m in &mut media {
            if !m
                .attributes
                .iter()
                .any(|a| Direction::from_attr(&a.name).is_some())
            {
                m.attributes.push(SdpAttribute {
                    name: d.to_owned(),
                    value: None,
                });
            }
        }
    }
    Some(SdpFacts {
        connection: walked.connection.map(str::to_owned),
        media,
        raw: text.to_owned(),
    })
}
