//! One-pass readers for the usual forms of the headers every message carries (Via, From,
//! To): no error paths, `None` for anything else, which the general walk of `mod.rs` then
//! reads, errors included. Whatever they accept, the general walk accepts with the same
//! result (`tests.rs` and the `sip_message` fuzz target compare them). Every message
//! received and every request we build has these headers; the general walk, written for
//! every form the grammar allows, cost ~1.5 k instructions for a Via and ~1.4 k for a
//! name-addr.

use super::{NameAddr, Params, Via};
use crate::proto::sip::scan::{digits_u64, is_gen_value, is_lws, is_token};
use crate::proto::sip::uri::{Uri, is_host_char};

/// The end of the run of bytes of `b` from `from` that `f` accepts.
#[inline]
fn run(b: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    let rest = b.get(from..).unwrap_or_default();
    from + rest.iter().position(|&c| !f(c)).unwrap_or(rest.len())
}

/// `*( ";" token [ "=" 1*gen-value-char ] )` from `pos` to the end of `s`, in the plain form
/// of the one-pass readers ([`Via::parse_plain`], [`NameAddr::parse_plain`]): no whitespace,
/// no quotes. Each parameter goes to `each`; `None` for anything else, or when `each`
/// refuses one, so that the general walk ([`super::param`]) reads it and gives its
/// error. What this accepts, that walk accepts with the same names and values.
#[inline]
fn plain_params<'a>(
    s: &'a str,
    mut pos: usize,
    mut each: impl FnMut(&'a str, Option<&'a str>) -> Option<()>,
) -> Option<()> {
    let b = s.as_bytes();
    while pos < b.len() {
        if b.get(pos) != Some(&b';') {
            return None;
        }
        let n_end = run(b, pos + 1, is_token);
        let name = s.get(pos + 1..n_end).filter(|n| !n.is_empty())?;
        let value = if b.get(n_end) == Some(&b'=') {
            pos = run(b, n_end + 1, is_gen_value);
            Some(s.get(n_end + 1..pos).filter(|v| !v.is_empty())?)
        } else {
            pos = n_end;
            None
        };
        if !matches!(b.get(pos), None | Some(b';')) {
            return None;
        }
        each(name, value)?;
    }
    Some(())
}

impl<'a> Via<'a> {
    /// `SIP/2.0/<transport>`, one space, a hostname or IPv4 host, an optional port, then
    /// plain parameters ([`plain_params`]); `None` for anything else (an IPv6 reference,
    /// folds, a list, a quoted value, a bad rport or branch …), which [`Via::parse_first`]
    /// reads.
    pub(crate) fn parse_plain(s: &'a str) -> Option<Via<'a>> {
        let b = s.as_bytes();
        if !b.starts_with(b"SIP/2.0/") {
            return None;
        }
        let t_end = run(b, 8, is_token);
        if t_end == 8 || b.get(t_end) != Some(&b' ') {
            return None;
        }
        let h_start = t_end + 1;
        let h_end = run(b, h_start, is_host_char);
        if h_end == h_start || matches!(b.get(h_start), Some(b'-' | b'.')) {
            return None;
        }
        let mut params_start = h_end;
        let mut port = None;
        if b.get(h_end) == Some(&b':') {
            params_start = run(b, h_end + 1, |c| c.is_ascii_digit());
            port = Some(
                digits_u64(s.get(h_end + 1..params_start)?).filter(|&v| v <= u64::from(u16::MAX))?
                    as u16,
            );
        }
        let mut rport: Option<Option<u16>> = None;
        let mut branch: Option<&'a str> = None;
        plain_params(s, params_start, |name, value| {
            // The first rport and the first branch, read as `parse_cur` reads them; what it
            // refuses is left to it.
            if rport.is_none() && name.eq_ignore_ascii_case("rport") {
                rport = Some(match value {
                    None => None,
                    Some(v) => Some(digits_u64(v).filter(|&n| n <= u64::from(u16::MAX))? as u16),
                });
            } else if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                branch = Some(value?);
            }
            Some(())
        })?;
        Some(Via {
            protocol: s.get(..3)?,
            version: s.get(4..7)?,
            transport: s.get(8..t_end)?,
            host: s.get(h_start..h_end)?,
            port,
            params: Params {
                raw: s.get(params_start..)?,
                loose: false,
            },
            branch,
            rport,
        })
    }
}

impl<'a> NameAddr<'a> {
    /// `<URI>` with no whitespace inside, after no display name, a quoted one of plain
    /// characters (`"Alice" <…>`: no quoted-pair, no fold, no control byte) or one of
    /// tokens and spaces (`Bob Smith <…>`), then plain parameters ([`plain_params`]);
    /// `None` for anything else (an addr-spec without `<>`, a fold, whitespace after the
    /// `>`, a URI that does not parse …), which [`NameAddr::parse`] reads. The URI is read
    /// by the same [`Uri::parse_at`]. Display names are common in what phones send (and
    /// the general walk cost ~1.5 k instructions more for each).
    pub(crate) fn parse_plain(s: &'a str) -> Option<NameAddr<'a>> {
        let b = s.as_bytes();
        let (display, open) = match *b.first()? {
            b'<' => (None, 0),
            b'"' => {
                // What `Cur::quoted` takes, less its escapes and folds: every byte but the
                // quote, the backslash and controls other than HTAB.
                let close = run(b, 1, |c| {
                    c != b'"' && c != b'\\' && (c >= 0x20 || c == b'\t')
                });
                if b.get(close) != Some(&b'"') {
                    return None;
                }
                let open = run(b, close + 1, |c| c == b' ' || c == b'\t');
                (Some(s.get(..=close)?), open)
            }
            c if is_token(c) => {
                // `*(token LWS)` as the general walk reads it, the trailing blanks trimmed.
                let open = run(b, 0, |c| is_token(c) || c == b' ' || c == b'\t');
                let d = s.get(..open)?.trim_end_matches([' ', '\t']);
                (Some(d), open)
            }
            _ => return None,
        };
        if b.get(open) != Some(&b'<') {
            return None;
        }
        let close = run(b, open + 1, |c| c != b'>' && !is_lws(c));
        if b.get(close) != Some(&b'>') {
            return None;
        }
        let uri = Uri::parse_at(s.get(open + 1..close)?, open + 1).ok()?;
        let params_start = close + 1;
        let mut tag: Option<Option<&'a str>> = None;
        plain_params(s, params_start, |name, value| {
            if tag.is_none() && name.eq_ignore_ascii_case("tag") {
                tag = Some(value);
            }
            Some(())
        })?;
        Some(NameAddr {
            display,
            uri,
            angle: true,
            params: Params {
                raw: s.get(params_start..)?,
                loose: false,
            },
            tag: tag.flatten(),
        })
    }
}
