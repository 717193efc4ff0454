//! MSRP (RFC 4975): frames, an incremental decoder and chunk reassembly.
//!
//! Everything here is sans-IO: bytes in, frames out, no sockets and no clock. Randomness
//! (transaction ids, session ids) is an argument too.
//!
//! * [`Frame`] models a request or response; [`MsrpUri`] an MSRP URI with its RFC 4975 §6.1
//!   comparison.
//! * [`encode()`] writes a frame's exact wire bytes; [`response_to`], [`success_report`] and
//!   [`failure_report`] build the frames a receiver sends back.
//! * [`Decoder`] takes a TCP byte stream cut anywhere and yields frames or typed
//!   [`DecodeError`]s, within [`DecoderLimits`].
//! * [`Reassembler`] joins chunks of one message (by Message-ID and Byte-Range);
//!   [`Chunker`] cuts an outgoing message into chunks.
//!
//! Status codes to answer with: [`DecodeError::status_code`] (400, 413),
//! [`ReassemblyError::status_code`] (400, 413), [`check_content_type`] (415) and
//! [`Method::is_known`] (501 for anything else). 481 (unknown session) is the session
//! layer's decision.

mod chunk;
mod decode;
mod encode;
mod frame;
mod uri;

pub use chunk::{
    Chunker, Message, Reassembler, ReassemblyError, ReassemblyLimits, ReassemblyOutcome,
    UnsupportedMediaType, check_content_type,
};
pub use decode::{
    DecodeError, DecodeErrorKind, DecodeOneError, Decoder, DecoderLimits, ErrorContext, decode_one,
};
pub use encode::{
    EncodeError, body_contains_end_line, encode, encode_to_vec, failure_report, report_for,
    response_to, success_report, validate,
};
pub use frame::{
    Body, ByteRange, ContinuationFlag, FailureReport, Frame, FrameKind, Header, MessageId, Method,
    Status, StatusCode, SuccessReport, TransactionId, ValueError,
};
pub use uri::{DEFAULT_PORT, MsrpUri, Scheme, UriError, UriKey, session_id_from_random};
