//! Which shard owns a SIP message: a pure function of its Call-ID.
//!
//! A server running N shards (N independent [`Endpoint`](crate::endpoint::Endpoint)s, one
//! per core) must hand every message of a call to the shard that holds the call. Requests,
//! responses, ACK, CANCEL and BYE of one call all carry the same Call-ID (RFC 3261 §8.1.1.4,
//! §12.2.1.1), so a stable hash of it picks the shard with no shared table. The Call-IDs the
//! server mints itself (invitee legs, forwarded MESSAGEs) are drawn until they hash to the
//! minting shard ([`Shard::owns`]), so the invitees' answers come back to it.
//!
//! MSRP is not steered here: each shard listens on its own MSRP port and names it in its
//! `a=path`, so a peer's MSRP connection reaches the right shard by address.
//!
//! No tokio and no clock: the IO layer, the endpoint and tests share this module.

/// This endpoint's place among the shards of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This shard's index, `0..count`.
    pub index: usize,
    /// How many shards run side by side (1: no sharding).
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether a message whose Call-ID is `call_id` is steered to this shard.
    pub fn owns(&self, call_id: &[u8]) -> bool {
        steer(call_id, self.count) == self.index
    }
}

/// The shard, in `0..n`, of a call with this Call-ID value. `n` of 0 or 1 gives 0.
///
/// FNV-1a over the bytes, then the splitmix64 finaliser so that every bit of the hash
/// depends on every byte (FNV's low bits alone are weak for short, similar ids), then a
/// multiply-shift into `0..n`. Fixed constants, so the result is the same in every process
/// and on every run: tests can predict it.
pub fn steer(call_id: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in call_id {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// The shard of a raw SIP message (datagram or one framed stream message): [`steer`] of its
/// Call-ID, or shard 0 when it has none (the owner of shard 0 answers or drops what cannot
/// be parsed, as a single endpoint would). A conference-state subscription's messages go by
/// [`conference_key`] instead.
pub fn steer_sip(msg: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    if let Some(key) = conference_key(msg) {
        return steer(key, n);
    }
    call_id(msg).map_or(0, |id| steer(id, n))
}

/// What steers the messages of a conference-state subscription (RFC 6665, RFC 4575): the
/// subscriber chose their Call-ID, so they go by what the server minted on its shard (drawn
/// until it steers there, as its Call-IDs are): a SUBSCRIBE by its To tag when it has one
/// (a refresh in the subscription's dialog), else by its Request-URI user (the session's
/// focus, `conf-…`); a response to the server's NOTIFY by its From tag. `None` for every
/// other message.
pub fn conference_key(msg: &[u8]) -> Option<&[u8]> {
    let end = memchr::memchr(b'\n', msg)?;
    let start = &msg[..end];
    if let Some(rest) = start.strip_prefix(b"SUBSCRIBE ") {
        if let Some(tag) = header(msg, b"to", b"t").and_then(tag_param) {
            return Some(tag);
        }
        let uri = rest.split(|&b| b == b' ').next()?;
        let colon = uri.iter().position(|&b| b == b':')?;
        let hier = &uri[colon + 1..];
        let at = hier.iter().position(|&b| b == b'@')?;
        return Some(&hier[..at]).filter(|u| !u.is_empty());
    }
    if start.starts_with(b"SIP/2.0 ") {
        let cseq = header(msg, b"cseq", b"")?;
        let method = cseq
            .split(|&b| b == b' ' || b == b'\t')
            .rfind(|w| !w.is_empty())?;
        if method == b"NOTIFY" {
            return header(msg, b"from", b"f").and_then(tag_param);
        }
    }
    None
}

/// The value of the first header `name` (or its compact form, when not empty) of the
/// header block, trimmed.
pub(crate) fn header<'m>(msg: &'m [u8], name: &[u8], compact: &[u8]) -> Option<&'m [u8]> {
    for line in header_lines(msg) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let n = trim(&line[..colon]);
        if n.eq_ignore_ascii_case(name) || (!compact.is_empty() && n.eq_ignore_ascii_case(compact))
        {
            return Some(trim(&line[colon + 1..]));
        }
    }
    None
}

/// The lines of a raw message's header block: after the start line, up to the first empty
/// line, each without its LF or CRLF. Every datagram of a sharded server is walked here
/// (Call-ID, and CSeq for responses), so the line ends and colons are found with `memchr`
/// rather than byte by byte (issue 11: ~1.5 k instructions per datagram before).
fn header_lines(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    // The start line is never a header.
    let mut rest = memchr::memchr(b'\n', msg).map_or(&[][..], |i| &msg[i + 1..]);
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let line = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                line
            }
            None => std::mem::take(&mut rest),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            rest = &[];
            return None;
        }
        Some(line)
    })
}

/// The `tag` parameter of a From/To value (after its `>` when it has a name-addr, so a URI
/// parameter is never taken for it).
pub(crate) fn tag_param(value: &[u8]) -> Option<&[u8]> {
    let params = match value.iter().rposition(|&b| b == b'>') {
        Some(gt) => &value[gt + 1..],
        None => value,
    };
    params.split(|&b| b == b';').skip(1).find_map(|p| {
        let p = trim(p);
        let eq = p.iter().position(|&b| b == b'=')?;
        trim(&p[..eq])
            .eq_ignore_ascii_case(b"tag")
            .then(|| trim(&p[eq + 1..]))
            .filter(|t| !t.is_empty())
    })
}

/// The value of the first `Call-ID` (or compact `i`) header of a raw SIP message, trimmed of
/// spaces and tabs; `None` when the header block has none.
///
/// Only the header block is read (up to the first empty line), and only as far as needed:
/// this runs on the IO thread for every message, before any parser.
pub fn call_id(msg: &[u8]) -> Option<&[u8]> {
    for line in header_lines(msg) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let v = trim(&line[colon + 1..]);
            return (!v.is_empty()).then_some(v);
        }
    }
    None
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:team@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
        From: <sip:alice@example.com>;tag=1\r\n\
        To: <sip:team@example.com>\r\n\
        Call-ID:   abc123@10.0.0.1 \r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn finds_the_call_id_in_any_spelling() {
        assert_eq!(call_id(INVITE), Some(&b"abc123@10.0.0.1"[..]));
        let compact = b"SIP/2.0 200 OK\r\nVia: x\r\ni:\tabc123@10.0.0.1\r\n\r\n";
        assert_eq!(call_id(compact), Some(&b"abc123@10.0.0.1"[..]));
        let upper = b"BYE sip:a SIP/2.0\nCALL-ID : abc123@10.0.0.1\n\n";
        assert_eq!(call_id(upper), Some(&b"abc123@10.0.0.1"[..]));
        // A header merely starting with "i" is not the compact form.
        let other = b"BYE sip:a SIP/2.0\r\nIdentity: x\r\nCall-ID: z\r\n\r\n";
        assert_eq!(call_id(other), Some(&b"z"[..]));
    }

    #[test]
    fn stops_at_the_end_of_the_header_block() {
        let in_body = b"MESSAGE sip:a SIP/2.0\r\nTo: <sip:a>\r\n\r\nCall-ID: in-the-body\r\n";
        assert_eq!(call_id(in_body), None);
        assert_eq!(call_id(b""), None);
        assert_eq!(call_id(b"garbage without lines"), None);
        assert_eq!(call_id(b"X\r\nCall-ID:   \r\n\r\n"), None, "empty value");
    }

    #[test]
    fn the_same_call_always_lands_on_the_same_shard() {
        // Every message of the call, whatever its spelling of the header, goes to one shard.
        let bye = b"BYE sip:x SIP/2.0\r\ni: abc123@10.0.0.1\r\n\r\n";
        let ok = b"SIP/2.0 200 OK\r\nCall-ID: abc123@10.0.0.1\r\n\r\n";
        for n in 1..9 {
            let s = steer_sip(INVITE, n);
            assert!(s < n);
            assert_eq!(steer_sip(bye, n), s);
            assert_eq!(steer_sip(ok, n), s);
            assert_eq!(steer(b"abc123@10.0.0.1", n), s);
        }
        // Fixed constants: the value is the same in every process.
        assert_eq!(steer(b"abc123@10.0.0.1", 1), 0);
        assert_eq!(steer_sip(b"no call id", 4), 0);
    }

    #[test]
    fn ids_spread_evenly_over_the_shards() {
        for n in [2usize, 3, 4, 8] {
            let mut counts = vec![0usize; n];
            let total = 40_000;
            for i in 0..total {
                counts[steer(format!("{i:x}@192.0.2.1").as_bytes(), n)] += 1;
            }
            let expect = total / n;
            for c in counts {
                assert!(
                    c.abs_diff(expect) < expect / 20,
                    "n={n}: {c} far from {expect}"
                );
            }
        }
    }

    #[test]
    fn a_subscription_goes_by_what_the_server_minted() {
        let initial = b"SUBSCRIBE sip:conf-7-ab12@192.0.2.1:5060 SIP/2.0\r\n\
            From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conf-7-ab12@192.0.2.1:5060>\r\n\
            Call-ID: chosen-by-the-client\r\nCSeq: 1 SUBSCRIBE\r\n\r\n";
        assert_eq!(conference_key(initial), Some(&b"conf-7-ab12"[..]));
        let refresh = b"SUBSCRIBE sip:conf-7-ab12@192.0.2.1 SIP/2.0\r\n\
            t: <sip:conf-7-ab12@192.0.2.1;tag=no>;tag=ourtag\r\ni: x\r\n\r\n";
        assert_eq!(conference_key(refresh), Some(&b"ourtag"[..]));
        let notify_ok = b"SIP/2.0 200 OK\r\nFrom: <sip:conf-7-ab12@h>;tag=ourtag;x=1\r\n\
            To: <sip:alice@example.com>;tag=a1\r\nCall-ID: chosen\r\nCSeq: 3 NOTIFY\r\n\r\n";
        assert_eq!(conference_key(notify_ok), Some(&b"ourtag"[..]));
        for n in 2..5 {
            assert_eq!(steer_sip(initial, n), steer(b"conf-7-ab12", n));
            assert_eq!(steer_sip(notify_ok, n), steer(b"ourtag", n));
        }
        // Everything else still goes by Call-ID.
        assert_eq!(conference_key(INVITE), None);
        let bye_ok = b"SIP/2.0 200 OK\r\nFrom: <sip:a>;tag=x\r\nCSeq: 2 BYE\r\n\r\n";
        assert_eq!(conference_key(bye_ok), None);
        assert_eq!(
            conference_key(b"SUBSCRIBE sip:nouser SIP/2.0\r\n\r\n"),
            None
        );
    }

    #[test]
    fn owns_agrees_with_steer() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for i in 0..100 {
            let id = format!("{i}@h");
            let owners: Vec<_> = shards.iter().filter(|s| s.owns(id.as_bytes())).collect();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].index, steer(id.as_bytes(), 3));
        }
        assert!(Shard::default().owns(b"anything"));
    }

    /// The byte-by-byte walk `header` and `call_id` did before they used `memchr`: the
    /// reference their results must equal.
    fn header_by_bytes<'m>(msg: &'m [u8], name: &[u8], compact: &[u8]) -> Option<&'m [u8]> {
        let mut lines = msg.split(|&b| b == b'\n');
        lines.next()?;
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                return None;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let n = trim(&line[..colon]);
            if n.eq_ignore_ascii_case(name)
                || (!compact.is_empty() && n.eq_ignore_ascii_case(compact))
            {
                return Some(trim(&line[colon + 1..]));
            }
        }
        None
    }

    #[test]
    fn header_lines_agree_with_the_byte_walk() {
        let msgs: &[&[u8]] = &[
            INVITE,
            b"",
            b"\n",
            b"INVITE sip:a SIP/2.0",
            b"INVITE sip:a SIP/2.0\r\n",
            b"INVITE sip:a SIP/2.0\r\nCall-ID: x",
            b"INVITE sip:a SIP/2.0\nno colon\n i : y \n\nCall-ID: body\n",
            b"SIP/2.0 200 OK\r\nVia: a\r\n\r\nCall-ID: body\r\n",
            b"SIP/2.0 200 OK\r\n\r\r\nCall-ID: z\r\n\r\n",
            b"SIP/2.0 200 OK\r\nCSeq:\t7 NOTIFY \r\nf: <sip:x>;tag=9\r\nCall-ID:\r\n\r\n",
            b"BYE sip:a SIP/2.0\r\nX: a:b\r\n:\r\ncall-id:q\r\n",
        ];
        for m in msgs {
            for (name, compact) in [
                (&b"call-id"[..], &b"i"[..]),
                (b"cseq", b""),
                (b"from", b"f"),
                (b"x", b""),
            ] {
                assert_eq!(
                    header(m, name, compact),
                    header_by_bytes(m, name, compact),
                    "{:?} {:?}",
                    String::from_utf8_lossy(m),
                    String::from_utf8_lossy(name)
                );
            }
            let by_bytes = header_by_bytes(m, b"call-id", b"i").filter(|v| !v.is_empty());
            assert_eq!(call_id(m), by_bytes, "{:?}", String::from_utf8_lossy(m));
        }
    }
}
