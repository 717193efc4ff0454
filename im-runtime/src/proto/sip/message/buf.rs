//! A message's bytes as text when they are UTF-8, so that header values are read without
//! checking them again.

use bytes::Bytes;
use bytestring::ByteString;

use super::Span;

/// A message's bytes, and whether they are known to be UTF-8.
///
/// Every header value an accessor reads is a `str` slice of the message. A parsed message
/// is checked once, whole ([`Buf::Text`]), so that a value is then sliced without checking
/// it again: checking each value as it was read was a twentieth of a group session's
/// instructions (~32 k: a message's top Via, CSeq and To are read several times each).
#[derive(Clone)]
pub(super) enum Buf {
    /// Every byte is UTF-8.
    Text(ByteString),
    /// Not known to be: a body that is not UTF-8, a message cut inside a character, or one
    /// a builder wrote (its few values read cost less than checking the whole). Each value
    /// is checked when read.
    Raw(Bytes),
}

impl Buf {
    pub(super) fn bytes(&self) -> &Bytes {
        match self {
            Buf::Text(t) => t.as_bytes(),
            Buf::Raw(b) => b,
        }
    }

    pub(super) fn into_bytes(self) -> Bytes {
        match self {
            Buf::Text(t) => t.into_bytes(),
            Buf::Raw(b) => b,
        }
    }

    /// The text at `s`; empty when it is not UTF-8 or not on character boundaries (no
    /// span the parser records is either: they start and end next to ASCII delimiters).
    pub(super) fn str_at(&self, s: Span) -> &str {
        match self {
            Buf::Text(t) => t.get(s.range()).unwrap_or(""),
            Buf::Raw(b) => b
                .get(s.range())
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or(""),
        }
    }
}
