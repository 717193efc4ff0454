//! Serialising frames to wire bytes, and building responses and REPORTs.

use memchr::memmem;

use super::frame::{
    ByteRange, ContinuationFlag, Frame, FrameKind, Method, Status, StatusCode, TransactionId,
    check_media_type,
};
use super::uri::is_token_char;
use crate::proto::decimal::decimal;

/// Why a [`Frame`] cannot be written as valid MSRP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// To-Path or From-Path is empty; RFC 4975 requires both on every frame.
    #[error("{0} is empty")]
    EmptyPath(&'static str),
    /// A header value, comment or Content-Type contains CR or LF, which would end the line.
    #[error("{0} contains CR or LF")]
    LineBreak(String),
    /// An extra header's name is not a token starting with a letter.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// An extra header uses a name that has a typed slot in [`Frame`]; it would be written
    /// twice.
    #[error("header {0} must be set through its Frame field")]
    ReservedHeader(String),
    /// The Content-Type is not `type/subtype[;params]`.
    #[error("invalid Content-Type {0:?}")]
    ContentType(String),
    /// The body contains the frame's own end-line; the sender must pick another transaction
    /// id (RFC 4975 §7.1).
    #[error("body contains the end-line of transaction {0}")]
    BodyContainsEndLine(TransactionId),
    /// A status code is above 999.
    #[error("status code {0} has more than three digits")]
    StatusCode(u16),
    /// A response's end-line flag is not `$`.
    #[error("responses always end with `$`")]
    ResponseFlag,
}

/// Header names that [`Frame`] keeps in typed fields.
pub(crate) const TYPED_HEADERS: [&str; 8] = [
    "To-Path",
    "From-Path",
    "Message-ID",
    "Byte-Range",
    "Success-Report",
    "Failure-Report",
    "Status",
    "Content-Type",
];

fn no_breaks(what: &str, s: &str) -> Result<(), EncodeError> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        Err(EncodeError::LineBreak(what.to_owned()))
    } else {
        Ok(())
    }
}

/// Whether `data`, followed by the CRLF and end-line the encoder appends, would show the
/// end-line of `tid` early: the decoder stops at the first `CRLF -------tid` followed by a
/// flag and CRLF.
pub fn body_contains_end_line(data: &[u8], tid: &TransactionId) -> bool {
    let mut pattern = Vec::with_capacity(9 + tid.as_str().len());
    pattern.extend_from_slice(b"\r\n-------");
    pattern.extend_from_slice(tid.as_str().as_bytes());
    let mut tail = Vec::with_capacity(data.len().min(pattern.len() + 2) + 2);
    // Only the suffix of the body can combine with the appended CRLF into a false end-line.
    let cut = data.len().saturating_sub(pattern.len() + 2);
    tail.extend_from_slice(data.get(cut..).unwrap_or_default());
    tail.extend_from_slice(b"\r\n");
    let finder = memmem::Finder::new(&pattern);
    let hit = |hay: &[u8], limit: usize| {
        finder.find_iter(hay).any(|p| {
            p < limit
                && hay
                    .get(p + pattern.len())
                    .is_some_and(|&f| ContinuationFlag::from_byte(f).is_some())
                && hay.get(p + pattern.len() + 1..p + pattern.len() + 3) == Some(b"\r\n")
        })
    };
    hit(data, data.len()) || hit(&tail, data.len() - cut)
}

/// Checks that `frame` can be written as valid MSRP.
pub fn validate(frame: &Frame) -> Result<(), EncodeError> {
    if frame.to_path.is_empty() {
        return Err(EncodeError::EmptyPath("To-Path"));
    }
    if frame.from_path.is_empty() {
        return Err(EncodeError::EmptyPath("From-Path"));
    }
    match &frame.kind {
        FrameKind::Request(_) => {}
        FrameKind::Response { code, comment } => {
            if code.0 > 999 {
                return Err(EncodeError::StatusCode(code.0));
            }
            if let Some(c) = comment {
                no_breaks("response comment", c)?;
            }
            if frame.flag != ContinuationFlag::End {
                return Err(EncodeError::ResponseFlag);
            }
        }
    }
    if let Some(s) = &frame.status {
        if s.namespace > 999 || s.code.0 > 999 {
            return Err(EncodeError::StatusCode(s.code.0.max(s.namespace)));
        }
        if let Some(c) = &s.comment {
            no_breaks("Status comment", c)?;
        }
    }
    for h in &frame.other_headers {
        let b = h.name.as_bytes();
        if !b.first().is_some_and(u8::is_ascii_alphabetic) || !b.iter().all(|&c| is_token_char(c)) {
            return Err(EncodeError::HeaderName(h.name.clone()));
        }
        if TYPED_HEADERS
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&h.name))
        {
            return Err(EncodeError::ReservedHeader(h.name.clone()));
        }
        no_breaks(&h.name, &h.value)?;
    }
    if let Some(body) = &frame.body {
        no_breaks("Content-Type", &body.content_type)?;
        check_media_type(&body.content_type)
            .map_err(|_| EncodeError::ContentType(body.content_type.clone()))?;
        if body_contains_end_line(&body.data, &frame.transaction_id) {
            return Err(EncodeError::BodyContainsEndLine(
                frame.transaction_id.clone(),
            ));
        }
    }
    Ok(())
}

/// Appends the wire form of `frame` to `dst`: start line, headers (Content-Type last), then
/// either CRLF, body, CRLF and the end-line, or the end-line right after the headers when
/// there is no body. Nothing is written when the frame is invalid.
pub fn encode(frame: &Frame, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
    validate(frame)?;
    // Copied piece by piece rather than through `write!`: every frame the relay sends is
    // written here, and the formatting machinery costs several times the copying.
    let tid = frame.transaction_id.as_str();
    dst.extend_from_slice(b"MSRP ");
    dst.extend_from_slice(tid.as_bytes());
    dst.push(b' ');
    match &frame.kind {
        FrameKind::Request(m) => dst.extend_from_slice(m.as_str().as_bytes()),
        FrameKind::Response { code, comment } => {
            put_three_digits(dst, code.0);
            if let Some(c) = comment {
                dst.push(b' ');
                dst.extend_from_slice(c.as_bytes());
            }
        }
    }
    dst.extend_from_slice(b"\r\n");
    put_path(dst, b"To-Path: ", &frame.to_path);
    put_path(dst, b"From-Path: ", &frame.from_path);
    if let Some(m) = &frame.message_id {
        put_header(dst, b"Message-ID: ", m.as_str());
    }
    if let Some(r) = &frame.byte_range {
        let mut num = [0u8; 20];
        dst.extend_from_slice(b"Byte-Range: ");
        dst.extend_from_slice(decimal(&mut num, r.start).as_bytes());
        dst.push(b'-');
        match r.end {
            Some(e) => dst.extend_from_slice(decimal(&mut num, e).as_bytes()),
            None => dst.push(b'*'),
        }
        dst.push(b'/');
        match r.total {
            Some(t) => dst.extend_from_slice(decimal(&mut num, t).as_bytes()),
            None => dst.push(b'*'),
        }
        dst.extend_from_slice(b"\r\n");
    }
    if let Some(s) = &frame.success_report {
        put_header(dst, b"Success-Report: ", s.as_str());
    }
    if let Some(f) = &frame.failure_report {
        put_header(dst, b"Failure-Report: ", f.as_str());
    }
    if let Some(s) = &frame.status {
        dst.extend_from_slice(b"Status: ");
        put_three_digits(dst, s.namespace);
        dst.push(b' ');
        put_three_digits(dst, s.code.0);
        if let Some(c) = &s.comment {
            dst.push(b' ');
            dst.extend_from_slice(c.as_bytes());
        }
        dst.extend_from_slice(b"\r\n");
    }
    for h in &frame.other_headers {
        dst.extend_from_slice(h.name.as_bytes());
        put_header(dst, b": ", &h.value);
    }
    if let Some(body) = &frame.body {
        dst.extend_from_slice(b"Content-Type: ");
        dst.extend_from_slice(body.content_type.as_bytes());
        dst.extend_from_slice(b"\r\n\r\n");
        dst.extend_from_slice(&body.data);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"-------");
    dst.extend_from_slice(tid.as_bytes());
    dst.push(frame.flag.as_byte());
    dst.extend_from_slice(b"\r\n");
    Ok(())
}

/// `name` (with its `: `), `value` and CRLF.
fn put_header(dst: &mut Vec<u8>, name: &[u8], value: &str) {
    dst.extend_from_slice(name);
    dst.extend_from_slice(value.as_bytes());
    dst.extend_from_slice(b"\r\n");
}

/// A path header: its URIs separated by one space.
fn put_path(dst: &mut Vec<u8>, name: &[u8], path: &[super::uri::MsrpUri]) {
    dst.extend_from_slice(name);
    for (i, u) in path.iter().enumerate() {
        if i > 0 {
            dst.push(b' ');
        }
        u.write_to(dst);
    }
    dst.extend_from_slice(b"\r\n");
}

/// `n` with at least three digits, as `{:03}` writes it (`7` is `007`).
fn put_three_digits(dst: &mut Vec<u8>, n: u16) {
    if n < 100 {
        dst.push(b'0');
    }
    if n < 10 {
        dst.push(b'0');
    }
    let mut num = [0u8; 20];
    dst.extend_from_slice(decimal(&mut num, u64::from(n)).as_bytes());
}

/// [`encode`] into a new vector.
pub fn encode_to_vec(frame: &Frame) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::with_capacity(256 + frame.data().len());
    encode(frame, &mut v)?;
    Ok(v)
}

/// The response to `request` (RFC 4975 §7.2): same transaction id, To-Path the first URI of
/// the request's From-Path (the previous hop), From-Path the first URI of its To-Path (this
/// hop), no body. `None` when `request` is a response, a REPORT (never answered) or lacks a
/// path. Whether to answer at all under Failure-Report `no`/`partial` is the caller's call.
pub fn response_to(request: &Frame, code: StatusCode, comment: Option<&str>) -> Option<Frame> {
    match request.method()? {
        Method::Report => return None,
        Method::Send | Method::Other(_) => {}
    }
    let to = request.from_path.first()?.clone();
    let from = request.to_path.first()?.clone();
    let comment = comment
        .map(str::to_owned)
        .or_else(|| code.default_comment().map(str::to_owned));
    Some(Frame {
        kind: FrameKind::Response { code, comment },
        ..Frame::request(
            request.transaction_id.clone(),
            Method::Send,
            vec![to],
            vec![from],
        )
    })
}

/// A REPORT about the message `send` (RFC 4975 §7.1.2-§7.1.4): To-Path the SEND's whole
/// From-Path (the originator last), From-Path the last URI of its To-Path (the receiver),
/// same Message-ID, the given Byte-Range and Status. `None` when `send` is not a SEND with a
/// Message-ID and both paths.
pub fn report_for(
    send: &Frame,
    transaction_id: TransactionId,
    byte_range: ByteRange,
    status: Status,
) -> Option<Frame> {
    if send.method()? != &Method::Send || send.from_path.is_empty() {
        return None;
    }
    let own = send.to_path.last()?.clone();
    let mut f = Frame::request(
        transaction_id,
        Method::Report,
        send.from_path.clone(),
        vec![own],
    );
    f.message_id = Some(send.message_id.clone()?);
    f.byte_range = Some(byte_range);
    f.status = Some(status);
    Some(f)
}

/// A success REPORT (`Status: 000 200 OK`) for the first `received` bytes of a message of
/// `received` bytes: `Byte-Range: 1-received/received`.
pub fn success_report(send: &Frame, transaction_id: TransactionId, received: u64) -> Option<Frame> {
    let range = ByteRange {
        start: 1,
        end: Some(received),
        total: Some(received),
    };
    report_for(send, transaction_id, range, Status::new(StatusCode::OK))
}

/// A failure REPORT with `code` for the chunk `send` (its own Byte-Range, or the whole body
/// when it has none).
pub fn failure_report(
    send: &Frame,
    transaction_id: TransactionId,
    code: StatusCode,
) -> Option<Frame> {
    let len = send.data().len() as u64;
    let range = send.byte_range.unwrap_or(ByteRange {
        start: 1,
        end: Some(len),
        total: Some(len),
    });
    report_for(send, transaction_id, range, Status::new(code))
}

#[cfg(test)]
mod tests {
    use super::super::frame::{Body, Header, MessageId};
    use super::*;

    /// The frame as the encoder wrote it with `write!` before it copied piece by piece.
    fn with_format(f: &Frame) -> Vec<u8> {
        let tid = f.transaction_id.as_str();
        let path = |p: &[super::super::uri::MsrpUri]| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut s = match &f.kind {
            FrameKind::Request(m) => format!("MSRP {tid} {}\r\n", m.as_str()),
            FrameKind::Response { code, comment } => match comment {
                Some(c) => format!("MSRP {tid} {:03} {c}\r\n", code.0),
                None => format!("MSRP {tid} {:03}\r\n", code.0),
            },
        };
        s += &format!("To-Path: {}\r\n", path(&f.to_path));
        s += &format!("From-Path: {}\r\n", path(&f.from_path));
        if let Some(m) = &f.message_id {
            s += &format!("Message-ID: {m}\r\n");
        }
        if let Some(r) = &f.byte_range {
            s += &format!("Byte-Range: {r}\r\n");
        }
        if let Some(x) = &f.success_report {
            s += &format!("Success-Report: {x}\r\n");
        }
        if let Some(x) = &f.failure_report {
            s += &format!("Failure-Report: {x}\r\n");
        }
        if let Some(x) = &f.status {
            s += &format!("Status: {x}\r\n");
        }
        for h in &f.other_headers {
            s += &format!("{}: {}\r\n", h.name, h.value);
        }
        let mut out = s.into_bytes();
        if let Some(b) = &f.body {
            out.extend_from_slice(format!("Content-Type: {}\r\n\r\n", b.content_type).as_bytes());
            out.extend_from_slice(&b.data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("-------{tid}").as_bytes());
        out.push(f.flag.as_byte());
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn frames_are_written_as_the_formatting_machinery_would() {
        let to: Vec<super::super::uri::MsrpUri> = [
            "msrp://relay.example:2856/r1;tcp",
            "msrps://bob@[2001:db8::1]/s;tcp;x=y;z",
        ]
        .iter()
        .map(|u| u.parse().unwrap())
        .collect();
        let from = vec!["msrp://192.0.2.1:65535/a+b=;tcp".parse().unwrap()];
        let tid = TransactionId::new("t1x").unwrap();
        let ranges = [
            (1, Some(5), Some(5)),
            (0, None, None),
            (u64::MAX, Some(u64::MAX), None),
            (18, None, Some(4096)),
        ];
        for (code, comment) in [(0u16, None), (7, Some("x y")), (42, None), (999, Some(""))] {
            let mut f = Frame::request(tid.clone(), Method::Send, to.clone(), from.clone());
            f.kind = FrameKind::Response {
                code: StatusCode(code),
                comment: comment.map(str::to_owned),
            };
            assert_eq!(encode_to_vec(&f).unwrap(), with_format(&f));
        }
        for (i, (start, end, total)) in ranges.into_iter().enumerate() {
            let mut f = Frame::request(
                tid.clone(),
                if i % 2 == 0 {
                    Method::Report
                } else {
                    Method::Other("AUTH".into())
                },
                to.clone(),
                from.clone(),
            );
            f.message_id = Some(MessageId::new("m-1").unwrap());
            f.byte_range = Some(ByteRange { start, end, total });
            f.success_report = Some(super::super::frame::SuccessReport::Yes);
            f.failure_report = Some(super::super::frame::FailureReport::Partial);
            f.status = Some(Status {
                namespace: [0, 5, 99, 123][i],
                code: StatusCode([200, 1, 48, 999][i]),
                comment: (i != 1).then(|| "Ok then".to_owned()),
            });
            f.other_headers = vec![Header {
                name: "X-Ext".into(),
                value: "v 1".into(),
            }];
            if i == 3 {
                f.body = Some(Body {
                    content_type: "text/plain;charset=utf-8".into(),
                    data: bytes::Bytes::from_static(b"hello"),
                });
                f.flag = ContinuationFlag::More;
            }
            assert_eq!(encode_to_vec(&f).unwrap(), with_format(&f));
        }
    }
}
