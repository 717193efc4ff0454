//! The server's own latency for initial INVITEs: from the request's arrival (the kernel's
//! receive stamp, [`super::kstamp`], where there is one) to its final response leaving the
//! socket.
//!
//! The endpoint's `invite_to_ok` histogram starts when the endpoint sees the request, so it
//! misses the time the datagram waited in the socket buffer and in the loop's queue, which is
//! where latency goes under overload; and a load generator on the same cores measures its
//! own scheduling too (SIPp read 548 ms p99 at twice the sustainable rate, issue 11). This
//! measure is taken where the datagrams go in and out, so it holds neither error. Only SIP
//! over UDP is watched: a stream carries messages in pieces that the IO layer does not frame
//! when one core runs.
//!
//! A request is recognised by a cheap scan of its start line and headers (no parser: this
//! runs on the loop for every datagram): an `INVITE` without a To tag starts a record keyed
//! by its Call-ID and top Via branch; the first final response with that key and CSeq method
//! `INVITE` ends it. Retransmissions of either are not counted again.

use crate::endpoint::{Histogram, HistogramSnapshot};
use crate::shrink::ShrinkIdle;
use crate::steer::{call_id, header, tag_param};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a request's record is kept: past Timer B / Timer H (64 × T1 = 32 s) no final
/// response or retransmission of it is expected any more.
const KEEP: Duration = Duration::from_secs(64);

/// How long after the oldest record is due the loop wakes to drop the records an idle
/// server would otherwise keep: under load the records go as new INVITEs arrive, so no
/// extra wake-up happens; once idle, a few wake-ups clear them all.
const TIDY_SLACK: Duration = Duration::from_secs(5);

/// Most records held at once per loop; over it, new INVITEs are not timed (a flood of
/// INVITEs never answered must not grow memory without bound).
const MAX_RECORDS: usize = 1 << 17;

/// Initial INVITE arrival to final response sent, summed over every driver loop; read with
/// [`super::IoStats::invite_latency`].
#[derive(Debug, Default)]
pub struct InviteLatency {
    accepted: Histogram,
    rejected: Histogram,
}

impl InviteLatency {
    /// Initial INVITEs answered with a 2xx.
    pub fn accepted(&self) -> HistogramSnapshot {
        self.accepted.snapshot()
    }

    /// Initial INVITEs answered with a final response other than 2xx (a 503 when shedding
    /// load, for instance).
    pub fn rejected(&self) -> HistogramSnapshot {
        self.rejected.snapshot()
    }
}

#[derive(Clone, Copy)]
enum State {
    /// Arrived at this instant (the kernel's stamp), not answered yet.
    Waiting(Instant),
    /// Answered: its retransmissions and those of its response are not counted again.
    Answered,
}

/// One loop's records of initial INVITEs in progress.
pub(super) struct Tracker {
    records: HashMap<Vec<u8>, (State, Instant)>,
    /// Keys in arrival order with their arrival, so that old records go without a scan.
    order: VecDeque<(Instant, Vec<u8>)>,
}

impl Tracker {
    pub(super) fn new() -> Self {
        Tracker {
            records: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// A datagram the core is about to get, which arrived at `at`.
    pub(super) fn received(&mut self, data: &[u8], at: Instant) {
        if !data.starts_with(b"INVITE ") {
            return;
        }
        if header(data, b"to", b"t").and_then(tag_param).is_some() {
            return;
        }
        let Some(key) = key(data) else {
            return;
        };
        self.expire(at);
        if self.records.len() >= MAX_RECORDS || self.records.contains_key(&key) {
            return;
        }
        self.order.push_back((at, key.clone()));
        self.records.insert(key, (State::Waiting(at), at));
    }

    /// Drops the records older than [`KEEP`] at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front()
            && now.saturating_duration_since(*t) > KEEP
        {
            if let Some((t, k)) = self.order.pop_front()
                && self.records.get(&k).is_some_and(|(_, since)| *since == t)
            {
                self.records.remove(&k);
            }
        }
    }

    /// When the loop should call [`Tracker::tidy`]: a little after the oldest record is
    /// due; `None` with no record.
    pub(super) fn tidy_at(&self) -> Option<Instant> {
        self.order.front().map(|(t, _)| *t + KEEP + TIDY_SLACK)
    }

    /// Drops the records that are due and gives back the capacity a peak left (the records
    /// of the last 64 s of a busy period are tens of MiB at 1,000 INVITEs/s, and without
    /// new INVITEs nothing else would drop them).
    pub(super) fn tidy(&mut self, now: Instant) {
        self.expire(now);
        self.records.shrink_idle();
        self.order.shrink_idle();
    }

    /// A datagram the core sent; `now` is read only when it ends a record.
    pub(super) fn sent(&mut self, data: &[u8], stats: &InviteLatency, now: fn() -> Instant) {
        if self.records.is_empty() {
            return;
        }
        let Some(status) = final_status(data) else {
            return;
        };
        let invite = header(data, b"cseq", b"").is_some_and(|v| {
            v.split(|&b| b == b' ' || b == b'\t')
                .rfind(|w| !w.is_empty())
                .is_some_and(|m| m == b"INVITE")
        });
        if !invite {
            return;
        }
        let Some(key) = key(data) else {
            return;
        };
        let Some((state, _)) = self.records.get_mut(&key) else {
            return;
        };
        if let State::Waiting(at) = *state {
            *state = State::Answered;
            let d = now().saturating_duration_since(at);
            if (200..300).contains(&status) {
                stats.accepted.observe(d);
            } else {
                stats.rejected.observe(d);
            }
        }
    }
}

/// The status of a final response, `None` for a request or a provisional response.
fn final_status(data: &[u8]) -> Option<u16> {
    let code = data.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    let code = std::str::from_utf8(code).ok()?.parse::<u16>().ok()?;
    (200..700).contains(&code).then_some(code)
}

/// Call-ID and top Via branch: what a request and its responses share (RFC 3261 §17.2.3).
fn key(data: &[u8]) -> Option<Vec<u8>> {
    let id = call_id(data)?;
    let via = header(data, b"via", b"v")?;
    // The top Via is the first value of the first Via header.
    let top = via.split(|&b| b == b',').next()?;
    let branch = top.split(|&b| b == b';').skip(1).find_map(|p| {
        let eq = p.iter().position(|&b| b == b'=')?;
        p[..eq]
            .trim_ascii()
            .eq_ignore_ascii_case(b"branch")
            .then(|| p[eq + 1..].trim_ascii())
    })?;
    let mut k = Vec::with_capacity(id.len() + 1 + branch.len());
    k.extend_from_slice(id);
    k.push(b' ');
    k.extend_from_slice(branch);
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(to_tag: &str, branch: &str) -> Vec<u8> {
        format!(
            "INVITE sip:team@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}, SIP/2.0/UDP 192.0.2.9\r\n\
             From: <sip:a@example.com>;tag=f\r\nTo: <sip:team@example.com>{to_tag}\r\n\
             Call-ID: c1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn response(status: &str, method: &str, branch: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {status}\r\n\
             v: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch={branch}\r\n\
             From: <sip:a@example.com>;tag=f\r\nTo: <sip:team@example.com>;tag=t\r\n\
             i: c1@192.0.2.1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[allow(clippy::disallowed_methods)]
    fn clock() -> Instant {
        Instant::now()
    }

    #[test]
    fn an_initial_invite_is_timed_once_to_its_final_response() {
        let stats = InviteLatency::default();
        let mut t = Tracker::new();
        let at = clock() - Duration::from_millis(30);
        t.received(&invite("", "z9hG4bKa"), at);
        // A retransmission keeps the first arrival.
        t.received(&invite("", "z9hG4bKa"), clock());
        t.sent(&response("100 Trying", "INVITE", "z9hG4bKa"), &stats, clock);
        t.sent(&response("200 OK", "CANCEL", "z9hG4bKa"), &stats, clock);
        t.sent(&response("200 OK", "INVITE", "z9hG4bKother"), &stats, clock);
        assert_eq!(
            stats.accepted().count,
            0,
            "provisional, CANCEL and other branch"
        );
        t.sent(&response("200 OK", "INVITE", "z9hG4bKa"), &stats, clock);
        // The 2xx retransmitted, and the INVITE again: neither counts.
        t.sent(&response("200 OK", "INVITE", "z9hG4bKa"), &stats, clock);
        t.received(&invite("", "z9hG4bKa"), clock());
        t.sent(&response("200 OK", "INVITE", "z9hG4bKa"), &stats, clock);
        let s = stats.accepted();
        assert_eq!(s.count, 1);
        assert_eq!(s.buckets[5], 1, "30 ms is in the 50 ms bucket: {s:?}");
        assert_eq!(stats.rejected().count, 0);
    }

    #[test]
    fn rejections_are_apart_and_re_invites_are_not_timed() {
        let stats = InviteLatency::default();
        let mut t = Tracker::new();
        t.received(&invite(";tag=t", "z9hG4bKre"), clock());
        t.sent(&response("200 OK", "INVITE", "z9hG4bKre"), &stats, clock);
        t.received(&invite("", "z9hG4bKb"), clock());
        t.sent(
            &response("503 Service Unavailable", "INVITE", "z9hG4bKb"),
            &stats,
            clock,
        );
        assert_eq!(stats.accepted().count, 0);
        assert_eq!(stats.rejected().count, 1);
        assert_eq!(stats.rejected().buckets[0], 1);
    }

    #[test]
    fn old_records_go() {
        let stats = InviteLatency::default();
        let mut t = Tracker::new();
        let old = clock() - Duration::from_secs(100);
        t.received(&invite("", "z9hG4bKold"), old);
        t.received(&invite("", "z9hG4bKnew"), clock());
        assert_eq!(t.records.len(), 1, "the 100 s old record is gone");
        assert_eq!(t.order.len(), 1);
        t.sent(&response("200 OK", "INVITE", "z9hG4bKold"), &stats, clock);
        assert_eq!(stats.accepted().count, 0);
    }

    #[test]
    fn an_idle_loop_drops_its_records_and_their_capacity() {
        let stats = InviteLatency::default();
        let mut t = Tracker::new();
        assert_eq!(t.tidy_at(), None);
        let start = clock();
        for i in 0..5000 {
            let at = start + Duration::from_millis(i);
            t.received(&invite("", &format!("z9hG4bKpeak{i}")), at);
            t.sent(
                &response("200 OK", "INVITE", &format!("z9hG4bKpeak{i}")),
                &stats,
                clock,
            );
        }
        assert_eq!(stats.accepted().count, 5000);
        let peak = t.records.capacity();
        // Not due yet: kept (retransmissions still expected).
        let due = t.tidy_at().expect("records held");
        assert!(due >= start + KEEP, "{:?}", due - start);
        t.tidy(start + Duration::from_secs(10));
        assert_eq!(t.records.len(), 5000);
        // No INVITE comes again; the loop's tidy-up at the time it asked for drops them all
        // (they arrived within 5 s) and the tables' capacity with them.
        t.tidy(due);
        assert_eq!((t.records.len(), t.order.len()), (0, 0));
        assert_eq!(t.tidy_at(), None);
        assert!(
            t.records.capacity() < peak / 8,
            "{} of {peak}",
            t.records.capacity()
        );
        assert!(t.order.capacity() < 1000, "{}", t.order.capacity());
    }
}
