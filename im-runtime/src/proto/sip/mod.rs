//! SIP messages (RFC 3261): zero-copy parsing, typed header access and serialisation.
