//! Message bodies: `multipart/mixed` (RFC 2046) and resource lists (RFC 4826, RFC 5364).
