//! Chunking (RFC 4975 §5.1, §7.1.1, §7.3.1): reassembling received chunks into messages
//! and cutting outgoing messages into chunks.

use std::collections::HashMap;

use bytes::Bytes;

use super::frame::TransactionId;
use super::frame::{Body, ByteRange, ContinuationFlag, Frame, MessageId, Method, StatusCode};

/// Limits of the [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest message, in bytes (the `a=max-size` one advertises).
    pub max_message_bytes: u64,
    /// Most messages being reassembled at once.
    pub max_messages_in_progress: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_message_bytes: 16 * 1024 * 1024,
            max_messages_in_progress: 16,
        }
    }
}

/// Why a chunk cannot be added to its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// The frame is not a SEND request.
    #[error("not a SEND request")]
    NotSend,
    /// The SEND has no Message-ID.
    #[error("SEND without Message-ID")]
    NoMessageId,
    /// A chunk without Byte-Range arrived while the message already had chunks.
    #[error("message {0}: chunk without Byte-Range after other chunks")]
    MissingByteRange(MessageId),
    /// The Byte-Range end does not match the body length.
    #[error("message {message_id}: Byte-Range {range} does not fit a {len}-byte body")]
    RangeMismatch {
        /// The message.
        message_id: MessageId,
        /// The range as written.
        range: String,
        /// The body length.
        len: u64,
    },
    /// The chunk's total disagrees with an earlier chunk, or bytes lie past the total.
    #[error("message {0}: inconsistent total size")]
    TotalMismatch(MessageId),
    /// The message would be larger than [`ReassemblyLimits::max_message_bytes`].
    #[error("message {message_id} larger than {limit} bytes")]
    TooLarge {
        /// The message.
        message_id: MessageId,
        /// The limit in force.
        limit: u64,
    },
    /// More than [`ReassemblyLimits::max_messages_in_progress`] messages are open.
    #[error("too many messages in progress (limit {0})")]
    TooManyMessages(usize),
}

impl ReassemblyError {
    /// The status a SEND with this fault is answered with: 413 for the size limits, 400 for
    /// inconsistent chunks (RFC 4975 §10).
    pub fn status_code(&self) -> StatusCode {
        match self {
            ReassemblyError::TooLarge { .. } | ReassemblyError::TooManyMessages(_) => {
                StatusCode::STOP_SENDING
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A message put back together, or what had arrived of an aborted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its Message-ID.
    pub message_id: MessageId,
    /// The Content-Type of its first chunk with a body; `None` for an empty SEND.
    pub content_type: Option<String>,
    /// The bytes. For an aborted message, missing ranges are zero-filled; see `received`.
    pub data: Bytes,
    /// Byte ranges received, 0-based half-open, sorted and merged.
    pub received: Vec<(u64, u64)>,
}

/// What one chunk did to its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassemblyOutcome {
    /// More chunks are needed; `received` bytes have arrived so far.
    Incomplete {
        /// The message.
        message_id: MessageId,
        /// Bytes received (duplicates counted once).
        received: u64,
    },
    /// The message is complete.
    Complete(Message),
    /// The sender aborted the message (`#` flag); this is what had arrived.
    Aborted(Message),
}

#[derive(Debug, Default)]
struct Partial {
    content_type: Option<String>,
    total: Option<u64>,
    data: Vec<u8>,
    ranges: Vec<(u64, u64)>,
}

impl Partial {
    fn add_range(&mut self, start: u64, end: u64) {
        if start == end {
            return;
        }
        self.ranges.push((start, end));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;
    }

    fn received(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    fn into_message(self, message_id: MessageId) -> Message {
        Message {
            message_id,
            content_type: self.content_type,
            data: Bytes::from(self.data),
            received: self.ranges,
        }
    }
}

/// Reassembles chunked SENDs, per Message-ID, from Byte-Range.
///
/// Chunks may arrive out of order, overlap or repeat (later bytes overwrite earlier ones).
/// The total may be `*` until the last chunk; a message is complete when its total is known
/// (from any chunk's total, or from the end of the `$` chunk) and every byte up to it has
/// arrived. A `#` chunk ends the message as aborted.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    messages: HashMap<MessageId, Partial>,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            messages: HashMap::new(),
        }
    }

    /// Messages still waiting for chunks.
    pub fn in_progress(&self) -> usize {
        self.messages.len()
    }

    /// Drops every unfinished message (e.g. when the connection closed) and returns what had
    /// arrived of each.
    pub fn abort_all(&mut self) -> Vec<Message> {
        self.messages
            .drain()
            .map(|(id, p)| p.into_message(id))
            .collect()
    }

    /// Adds the chunk `frame` (a SEND). On error the message's partial state is dropped, as
    /// the session answers the chunk with an error and the sender stops (RFC 4975 §7.3.1).
    pub fn handle_chunk(&mut self, frame: &Frame) -> Result<ReassemblyOutcome, ReassemblyError> {
        if frame.method() != Some(&Method::Send) {
            return Err(ReassemblyError::NotSend);
        }
        let id = frame
            .message_id
            .clone()
            .ok_or(ReassemblyError::NoMessageId)?;
        let result = self.add(&id, frame);
        if result.is_err() {
            self.messages.remove(&id);
        }
        result
    }

    fn add(&mut self, id: &MessageId, frame: &Frame) -> Result<ReassemblyOutcome, ReassemblyError> {
        let data = frame.data();
        let len = data.len() as u64;
        let range = match frame.byte_range {
            Some(r) => r,
            // Without Byte-Range the chunk is the whole message (RFC 4975 §7.3.1).
            None if self.messages.contains_key(id) => {
                return Err(ReassemblyError::MissingByteRange(id.clone()));
            }
            None => ByteRange {
                start: 1,
                end: Some(len),
                total: (frame.flag != ContinuationFlag::More).then_some(len),
            },
        };
        // A Byte-Range start of 0 (only possible in a frame built by hand) or near u64::MAX
        // (`Byte-Range: 18446744073709551615-*/*` from the wire) must not wrap: the slice
        // below relies on `start <= end`.
        let start = range.start.checked_sub(1);
        let Some((start, end)) = start.and_then(|s| Some((s, s.checked_add(len)?))) else {
            return Err(ReassemblyError::TooLarge {
                message_id: id.clone(),
                limit: self.limits.max_message_bytes,
            });
        };
        if range.end.is_some_and(|e| e != end) {
            return Err(ReassemblyError::RangeMismatch {
                message_id: id.clone(),
                range: range.to_string(),
                len,
            });
        }
        let limit = self.limits.max_message_bytes;
        if end > limit || range.total.is_some_and(|t| t > limit) {
            return Err(ReassemblyError::TooLarge {
                message_id: id.clone(),
                limit,
            });
        }
        if !self.messages.contains_key(id)
            && self.messages.len() >= self.limits.max_messages_in_progress
        {
            return Err(ReassemblyError::TooManyMessages(
                self.limits.max_messages_in_progress,
            ));
        }
        let partial = self.messages.entry(id.clone()).or_default();
        let mut total = partial.total;
        for t in [
            range.total,
            (frame.flag == ContinuationFlag::End).then_some(end),
        ]
        .into_iter()
        .flatten()
        {
            match total {
                Some(old) if old != t => return Err(ReassemblyError::TotalMismatch(id.clone())),
                _ => total = Some(t),
            }
        }
        if total.is_some_and(|t| end > t || partial.ranges.last().is_some_and(|r| r.1 > t)) {
            return Err(ReassemblyError::TotalMismatch(id.clone()));
        }
        partial.total = total;
        if partial.content_type.is_none() {
            partial.content_type = frame.body.as_ref().map(|b| b.content_type.clone());
        }
        // `end <= limit`, which the caller chose to fit in memory.
        let (s, e) = (start as usize, end as usize);
        if partial.data.len() < e {
            partial.data.resize(e, 0);
        }
        // `s <= e` (checked add above), `e <= data.len()` after the resize, and `e - s` is
        // `len`, the length of `data`: neither the slice nor the copy can panic.
        #[allow(clippy::indexing_slicing)]
        partial.data[s..e].copy_from_slice(data);
        partial.add_range(start, end);

        if frame.flag == ContinuationFlag::Aborted {
            let p = self.messages.remove(id).unwrap_or_default();
            return Ok(ReassemblyOutcome::Aborted(p.into_message(id.clone())));
        }
        let done = match partial.total {
            Some(0) => true,
            Some(t) => partial.ranges == [(0, t)],
            None => false,
        };
        if done {
            let p = self.messages.remove(id).unwrap_or_default();
            return Ok(ReassemblyOutcome::Complete(p.into_message(id.clone())));
        }
        Ok(ReassemblyOutcome::Incomplete {
            message_id: id.clone(),
            received: partial.received(),
        })
    }
}

/// Cuts one outgoing message into SEND chunks of at most `chunk_size` body bytes, each with
/// its Byte-Range (`start-end/total`) and flag (`+`, `$` on the last).
#[derive(Debug, Clone)]
pub struct Chunker {
    template: Frame,
    content_type: String,
    data: Bytes,
    chunk_size: usize,
    offset: usize,
    done: bool,
}

impl Chunker {
    /// `template` supplies To-Path, From-Path, Message-ID, report headers and extra headers;
    /// its body, Byte-Range and flag are replaced in every chunk. A `chunk_size` of 0 counts
    /// as 1. An empty message gives one chunk `1-0/0` with an empty body.
    pub fn new(template: Frame, content_type: String, data: Bytes, chunk_size: usize) -> Self {
        Chunker {
            template,
            content_type,
            data,
            chunk_size: chunk_size.max(1),
            offset: 0,
            done: false,
        }
    }

    /// Bytes not yet put in a chunk.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.offset
    }

    /// The next chunk under transaction id `tid`, `None` once the last chunk was produced.
    pub fn next_chunk(&mut self, tid: TransactionId) -> Option<Frame> {
        if self.done {
            return None;
        }
        let total = self.data.len();
        let end = (self.offset + self.chunk_size).min(total);
        let last = end == total;
        // The last chunk takes the template and Content-Type rather than copies: nothing
        // is cut after it (`abort` then gives `None`), and most messages are one chunk.
        let (mut f, content_type) = if last {
            (self.template.take(), std::mem::take(&mut self.content_type))
        } else {
            (self.template.clone(), self.content_type.clone())
        };
        f.transaction_id = tid;
        f.byte_range = Some(ByteRange {
            start: self.offset as u64 + 1,
            end: Some(end as u64),
            total: Some(total as u64),
        });
        f.body = Some(Body {
            content_type,
            data: self.data.slice(self.offset..end),
        });
        f.flag = if last {
            ContinuationFlag::End
        } else {
            ContinuationFlag::More
        };
        self.offset = end;
        self.done = last;
        Some(f)
    }

    /// A final empty chunk with flag `#` that aborts the message after what was sent, or
    /// `None` if the last chunk already went out.
    pub fn abort(&mut self, tid: TransactionId) -> Option<Frame> {
        if self.done {
            return None;
        }
        self.done = true;
        let mut f = self.template.clone();
        f.transaction_id = tid;
        f.byte_range = Some(ByteRange {
            start: self.offset as u64 + 1,
            end: Some(self.offset as u64),
            total: Some(self.data.len() as u64),
        });
        f.body = Some(Body {
            content_type: self.content_type.clone(),
            data: Bytes::new(),
        });
        f.flag = ContinuationFlag::Aborted;
        Some(f)
    }
}

/// A media type outside the accepted list: answered 415 (RFC 4975 §7.3.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("media type {0} is not accepted")]
pub struct UnsupportedMediaType(pub String);

impl UnsupportedMediaType {
    /// Always [`StatusCode::UNSUPPORTED_MEDIA_TYPE`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    }
}

/// Checks `content_type` (parameters ignored, case-insensitive) against an `a=accept-types`
/// list, where `*` accepts everything and `type/*` a whole type.
pub fn check_content_type(
    content_type: &str,
    accept_types: &[&str],
) -> Result<(), UnsupportedMediaType> {
    let main = content_type.split(';').next().unwrap_or("").trim();
    let (ty, _) = main.split_once('/').unwrap_or((main, ""));
    let ok = accept_types.iter().any(|a| {
        let a = a.trim();
        a == "*"
            || a.eq_ignore_ascii_case(main)
            || a.strip_suffix("/*")
                .is_some_and(|t| t.eq_ignore_ascii_case(ty))
    });
    if ok {
        Ok(())
    } else {
        Err(UnsupportedMediaType(content_type.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let acc = ["message/cpim", "text/*"];
        assert!(check_content_type("message/CPIM", &acc).is_ok());
        assert!(check_content_type("text/plain;charset=utf-8", &acc).is_ok());
        assert_eq!(
            check_content_type("image/png", &acc)
                .unwrap_err()
                .status_code(),
            StatusCode(415)
        );
        assert!(check_content_type("image/png", &["*"]).is_ok());
    }
}
