//! MSRP (RFC 4975): frames, an incremental decoder and chunk reassembly.
