//! [`super::facts`] without the general model: one walk over the lines that checks what
//! `sdp-types` checks and builds [`SdpFacts`] straight from the text.
//!
//! The general parser allocates every field of every line (origin, times, each attribute)
//! and the facts are then copied out of it; an MSRP offer or answer costs ~45 allocations
//! that way. Here only what the facts keep is allocated. The rules are `sdp-types` 0.3.1's
//! (`Session::parse`): a body this walk accepts gives the same facts as the general parser
//! (the `sdp` fuzz target and the unit tests compare them), and anything it refuses goes to
//! the general parser, which then gives the error.

use super::msrp::{Direction, MsrpAttributes, is_msrp};
use crate::machine::{SdpFacts, SdpMedia};

/// RFC 8866 §9 token characters, as `sdp-types` checks nettype and addrtype.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| {
        matches!(
            b,
            0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e
        )
    })
}

/// Space-separated fields with runs of spaces taken as one separator (`split(' ')` without
/// the empty pieces, walked by bytes: the fields are short, where a char searcher per field
/// costs more than the walk).
fn fields(v: &str) -> Fields<'_> {
    Fields(v)
}

/// The iterator of [`fields`].
struct Fields<'a>(&'a str);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.0.as_bytes();
        let start = b.iter().position(|&c| c != b' ')?;
        let len = b
            .get(start..)?
            .iter()
            .position(|&c| c == b' ')
            .unwrap_or(b.len() - start);
        let field = self.0.get(start..start + len)?;
        self.0 = self.0.get(start + len..).unwrap_or("");
        Some(field)
    }
}

/// `s` split at its first `b` (an ASCII byte, so both sides are on char boundaries).
fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
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
    match split_byte(v, b':') {
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
    // `splitn(4, ' ')`: single spaces separate, the fourth piece is the rest.
    let (media, rest) = split_byte(v, b' ')?;
    let (port_part, rest) = split_byte(rest, b' ')?;
    let (port, num) = match split_byte(port_part, b'/') {
        Some((p, n)) => (p, Some(n)),
        None => (port_part, None),
    };
    let port = port.parse::<u16>().ok()?;
    if num.is_some_and(|n| n.parse::<u16>().is_err()) {
        return None;
    }
    let (proto, fmt) = split_byte(rest, b' ')?;
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
fn lines(text: &str) -> Lines<'_> {
    Lines(text)
}

/// The iterator of [`lines`]: each line's end found with `memchr`, and NUL or CR inside it
/// with one `memchr2` (a body is a dozen short lines, read for every offer and answer).
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = Option<(u8, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.0.is_empty() {
                return None;
            }
            let l = match memchr::memchr(b'\n', self.0.as_bytes()) {
                Some(i) => {
                    let l = self.0.get(..i).unwrap_or("");
                    self.0 = self.0.get(i + 1..).unwrap_or("");
                    // One CR before the LF is the line end's; only with an LF.
                    l.strip_suffix('\r').unwrap_or(l)
                }
                None => std::mem::take(&mut self.0),
            };
            if l.is_empty() {
                continue;
            }
            if memchr::memchr2(0, b'\r', l.as_bytes()).is_some() {
                return Some(None);
            }
            return Some(match l.as_bytes() {
                [k, b'=', ..] if *k != b'=' => l.get(2..).map(|v| (*k, v)),
                _ => None,
            });
        }
    }
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

/// Collects the facts' media sections, borrowed, for [`SdpMedia::new`] to build each in one
/// allocation at the end.
struct FactsSink<'a>(Vec<(MediaLine<'a>, Vec<Attribute<'a>>)>);

/// An `a=` line's name and value (`None` for a flag), borrowed from the text.
type Attribute<'a> = (&'a str, Option<&'a str>);

impl<'a> Sink<'a> for FactsSink<'a> {
    fn media(&mut self, m: MediaLine<'a>) {
        self.0.push((m, Vec::new()));
    }

    fn attribute(&mut self, name: &'a str, value: Option<&'a str>) {
        if let Some((_, attributes)) = self.0.last_mut() {
            attributes.push((name, value));
        }
    }
}

/// The facts of `text`, or `None` when `sdp-types` would refuse it.
pub(super) fn facts(text: &str) -> Option<SdpFacts> {
    let mut sink = FactsSink(Vec::new());
    let walked = walk(text, &mut sink)?;
    let media = sink
        .0
        .into_iter()
        .map(|(m, mut attributes)| {
            // RFC 4566 §6: a session-level direction applies to media sections without
            // their own (what `facts_from_session` adds).
            if let Some(d) = walked.session_direction
                && !attributes
                    .iter()
                    .any(|(n, _)| Direction::from_attr(n).is_some())
            {
                attributes.push((d, None));
            }
            SdpMedia::new(m.media, m.port, m.proto, m.fmt, &attributes)
        })
        .collect();
    Some(SdpFacts {
        connection: walked.connection.map(str::to_owned),
        media,
        raw: text.to_owned(),
    })
}

/// Keeps the attributes of the first MSRP media section with a port, borrowed.
#[derive(Default)]
struct MsrpSink<'a> {
    /// The chosen section's attributes, once it has been found.
    chosen: Option<Vec<(&'a str, Option<&'a str>)>>,
    /// The current section is the chosen one.
    in_chosen: bool,
}

impl<'a> Sink<'a> for MsrpSink<'a> {
    fn media(&mut self, m: MediaLine<'a>) {
        self.in_chosen = self.chosen.is_none() && m.port != 0 && is_msrp(m.media, m.proto);
        if self.in_chosen {
            self.chosen = Some(Vec::new());
        }
    }

    fn attribute(&mut self, name: &'a str, value: Option<&'a str>) {
        if self.in_chosen
            && let Some(a) = self.chosen.as_mut()
        {
            a.push((name, value));
        }
    }
}

/// The MSRP attributes of the first MSRP media section with a port in `text` (`Some(None)`
/// when there is none), read during the walk without building the facts; `None` when
/// `sdp-types` would refuse the body. The same as [`MsrpAttributes::from_media`] of that
/// section of [`facts`]: a session-level direction stands for a missing media-level one in
/// both.
pub(super) fn msrp_media(text: &str) -> Option<Option<MsrpAttributes>> {
    let mut sink = MsrpSink::default();
    let walked = walk(text, &mut sink)?;
    Some(
        sink.chosen
            .map(|attrs| MsrpAttributes::read(attrs, walked.session_direction.map(|d| (d, None)))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line and field walks read what the `str` splits they replace read.
    #[test]
    fn the_byte_walks_split_as_the_str_splits_did() {
        let old_lines = |text: &str| -> Vec<Option<(u8, String)>> {
            text.split_inclusive('\n')
                .filter_map(|l| {
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
                        [k, b'=', ..] if *k != b'=' => Some(l.get(2..).map(|v| (*k, v.to_owned()))),
                        _ => Some(None),
                    }
                })
                .collect()
        };
        let texts = [
            "",
            "\n",
            "\r\n",
            "v=0",
            "v=0\r\n",
            "v=0\n\n\r\nm=x\r",
            "v=0\r\na=x\ry\r\n",
            "v=0\r\na=\0\r\n",
            "v=0\r\r\n",
            "\r\nv=0\r\n=x\r\nab=c\r\nk=\r\n",
            "a=é\r\nb=ü=\n",
        ];
        for t in texts {
            let new: Vec<_> = lines(t)
                .map(|l| l.map(|(k, v)| (k, v.to_owned())))
                .collect();
            assert_eq!(new, old_lines(t), "{t:?}");
        }
        for v in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "  a  b\tc   d ",
            "é  ü",
            "a b",
            "\ta b",
            " \t ",
        ] {
            let old: Vec<&str> = v.split(' ').filter(|p| !p.is_empty()).collect();
            assert_eq!(fields(v).collect::<Vec<_>>(), old, "{v:?}");
        }
        for v in [
            "message 1 TCP/MSRP *",
            "m 1/2 p  f g",
            "m 1 p",
            "m  1 p f",
            "m 1 p ",
        ] {
            let old = {
                let mut f = v.splitn(4, ' ');
                (f.next(), f.next(), f.next(), f.next())
            };
            let new = media_line(v);
            if let Some(m) = new {
                assert_eq!(
                    (Some(m.media), Some(m.proto), Some(m.fmt)),
                    (old.0, old.2, old.3)
                );
            } else {
                assert!(
                    old.3.is_none()
                        || old
                            .1
                            .and_then(|p| p.split('/').next()?.parse::<u16>().ok())
                            .is_none(),
                    "{v:?}"
                );
            }
        }
    }
}
