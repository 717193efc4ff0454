//! SDP (RFC 8866) and the offer/answer rules for MSRP media (RFC 3264, RFC 4975, RFC 6135).
