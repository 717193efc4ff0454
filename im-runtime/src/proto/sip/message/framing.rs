//! What sits around a message rather than in it: the stream framing (Content-Length, RFC
//! 3261 §18.3) and the salvage of a request too broken to parse, so it can still be answered.

use super::*;

/// Collects Via/From/To/Call-ID/CSeq raw values from something that looks like a request,
/// tolerating everything but a missing Via (without one there is nowhere to answer).
pub(super) fn salvage(buf: &[u8], error: &ParseError) -> Option<Salvage> {
    let skip = buf
        .iter()
        .take_while(|&&c| c == b'\r' || c == b'\n')
        .count();
    let b = buf.get(skip..).unwrap_or_default();
    if b.get(..4).is_none_or(|v| v.eq_ignore_ascii_case(b"SIP/")) {
        return None;
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut pos = match next_lf(b, 0) {
        Some(lf) => lf + 1,
        None => return None,
    };
    while pos < b.len() {
        let lf = next_lf(b, pos).unwrap_or(b.len());
        let end = line_end(b, lf, pos);
        let line = String::from_utf8_lossy(b.get(pos..end).unwrap_or_default());
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            lines.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        pos = lf + 1;
    }
    let mut s = Salvage::default();
    for (n, v) in lines {
        let v = trim_lws(&v).to_owned();
        match HeaderName::from_name(&n) {
            HeaderName::Via => s.via.push(v),
            HeaderName::From if s.from.is_none() => s.from = Some(v),
            HeaderName::To if s.to.is_none() => s.to = Some(v),
            HeaderName::CallId if s.call_id.is_none() => s.call_id = Some(v),
            HeaderName::CSeq if s.cseq.is_none() => s.cseq = Some(v),
            _ => {}
        }
    }
    if s.via.is_empty() {
        return None;
    }
    // Warning text is a quoted-string: keep it printable ASCII without quotes/backslashes.
    s.warning = error
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    Some(s)
}

/// What [`frame`] found at the front of a stream buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The buffer does not yet hold a complete message.
    NeedMore,
    /// Skip `skip` octets (CRLF keep-alives, RFC 5626 §3.5.1), then the next `len` octets
    /// are one complete message.
    Message {
        /// Leading CRLF octets to discard.
        skip: usize,
        /// Length of the message after them.
        len: usize,
    },
    /// Only keep-alive CRLFs so far: discard `skip` octets.
    KeepAlive {
        /// Octets to discard.
        skip: usize,
    },
}

/// Content-Length framing for stream transports (RFC 3261 §18.3): how many bytes of `buf`
/// make the next complete message. `limit` caps a message's total size; a header section
/// or declared length beyond it is an error (the connection should be closed).
pub fn frame(buf: &[u8], limit: usize) -> Result<Frame, ParseError> {
    let skip = buf
        .iter()
        .take_while(|&&c| c == b'\r' || c == b'\n')
        .count();
    let b = buf.get(skip..).unwrap_or_default();
    if b.is_empty() {
        return Ok(if skip == 0 {
            Frame::NeedMore
        } else {
            Frame::KeepAlive { skip }
        });
    }
    let mut pos = 0;
    let mut cl: Option<usize> = None;
    let head_end = loop {
        let Some(lf) = next_lf(b, pos) else {
            if b.len() > limit {
                return Err(ParseError::new(ErrorKind::TooLarge { limit }, skip + limit));
            }
            return Ok(Frame::NeedMore);
        };
        let end = line_end(b, lf, pos);
        if end == pos && pos > 0 {
            break lf + 1;
        }
        let line = b.get(pos..end).unwrap_or_default();
        let name_len = line.iter().take_while(|&&c| is_token(c)).count();
        let mut i = name_len;
        while matches!(line.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if pos > 0
            && name_len > 0
            && line.get(i) == Some(&b':')
            && HeaderName::from_bytes(line.get(..name_len).unwrap_or_default())
                == HeaderName::ContentLength
        {
            let v = std::str::from_utf8(line.get(i + 1..).unwrap_or_default()).unwrap_or("");
            let n = parse_number(v.trim(), u32::MAX as u64, "Content-Length")
                .map_err(|e| e.in_header("Content-Length", skip + pos + i + 1))?;
            if cl.is_some_and(|c| c != n as usize) {
                return Err(ParseError::new(
                    ErrorKind::DuplicateContentLength,
                    skip + pos,
                ));
            }
            cl = Some(n as usize);
        }
        pos = lf + 1;
        if pos > limit {
            return Err(ParseError::new(ErrorKind::TooLarge { limit }, skip + limit));
        }
    };
    let Some(n) = cl else {
        return Err(ParseError::new(
            ErrorKind::MissingContentLength,
            skip + head_end,
        ));
    };
    let len = head_end
        .checked_add(n)
        .filter(|&l| l <= limit)
        .ok_or_else(|| ParseError::new(ErrorKind::TooLarge { limit }, skip))?;
    if b.len() < len {
        return Ok(Frame::NeedMore);
    }
    Ok(Frame::Message { skip, len })
}
