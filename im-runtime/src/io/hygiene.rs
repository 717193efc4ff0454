//! The timeouts of an accepted connection's reader (issue 14, connection hygiene).
//!
//! One timer per accepted connection, armed for whichever rule applies now:
//! * before the first byte of the first message: [`IoLimits::idle_timeout`];
//! * while a message head is incomplete: [`IoLimits::head_timeout`] from its first byte;
//!   SIP streams are followed from head to head (Content-Length skips each body), so every
//!   head is timed, not only the first; MSRP streams only up to their first head (after it
//!   the connection is bound to a session or closed by the endpoint's `msrp_idle`);
//! * on a SIP connection between messages: [`IoLimits::conn_idle_timeout`] after its last
//!   byte, while no core uses it ([`Output::ConnUse`](crate::transport::Output::ConnUse)).
//!
//! A SIP connection a core opened ([`Watch::outgoing`]) owes us no first message: only the
//! head and conn-idle rules apply to it.
//!
//! The conn-idle check is lazy: reads only note their time, and the timer, when it fires,
//! re-arms itself for the real deadline, so a busy connection costs no timer resets.

use super::{HeadWatch, IoLimits, IoStats, bump, now};
use crate::transport::StreamKind;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// The timeouts an accepted connection is held to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) idle: Duration,
    pub(super) head: Duration,
    /// Zero: no conn-idle rule.
    pub(super) conn_idle: Duration,
}

impl Timeouts {
    pub(super) fn of(l: &IoLimits) -> Self {
        Timeouts {
            idle: l.idle_timeout,
            head: l.head_timeout,
            conn_idle: l.conn_idle_timeout,
        }
    }

    /// For a connection we open of `kind`: SIP ones only, when the conn-idle rule is on.
    pub(super) fn outgoing(kind: StreamKind, l: &IoLimits) -> Option<Self> {
        (kind.protocol() == StreamKind::Sip && !l.conn_idle_timeout.is_zero()).then(|| Self::of(l))
    }
}

/// How many cores use an accepted SIP connection ([`Output::ConnUse`]), and when the last
/// one stopped. Shared by the connection's reader and every driver loop.
///
/// [`Output::ConnUse`]: crate::transport::Output::ConnUse
#[derive(Debug, Default)]
pub(super) struct Users {
    count: AtomicUsize,
    released: Mutex<Option<Instant>>,
}

impl Users {
    /// One core starts (`true`) or stops using the connection.
    pub(super) fn set(&self, in_use: bool) {
        if in_use {
            self.count.fetch_add(1, Ordering::Relaxed);
        } else if self.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            *self.released.lock().unwrap_or_else(|e| e.into_inner()) = Some(now());
        }
    }

    fn in_use(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    fn released(&self) -> Option<Instant> {
        *self.released.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the timer is armed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// No byte of a first message yet.
    Silent,
    /// A message head is incomplete.
    Head,
    /// Between messages on a SIP connection.
    Unused,
    /// Nothing (an MSRP connection past its first head, or no conn-idle rule).
    Never,
}

/// An accepted connection's reader-side timeouts.
pub(super) struct Watch {
    t: Timeouts,
    /// Still waiting for the complete head of the first message (and so evictable).
    first: bool,
    msrp: Option<HeadWatch>,
    sip: Option<SipHeads>,
    users: Option<std::sync::Arc<Users>>,
    last_read: Instant,
    why: Why,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Watch {
    pub(super) fn new(
        kind: StreamKind,
        t: Timeouts,
        users: Option<std::sync::Arc<Users>>,
        cap: usize,
    ) -> Self {
        let (msrp, sip) = match kind.protocol() {
            StreamKind::Msrp => (
                Some(HeadWatch {
                    kind,
                    buf: Vec::new(),
                    cap,
                }),
                None,
            ),
            _ => (None, Some(SipHeads::new(cap))),
        };
        Watch {
            t,
            first: true,
            msrp,
            sip,
            users,
            last_read: now(),
            why: Why::Silent,
            timer: Some(Box::pin(tokio::time::sleep(t.idle))),
        }
    }

    /// The watch of a SIP connection we opened: no first-message or eviction rules (we
    /// spoke first), the conn-idle rule from the start, and every head timed as on an
    /// accepted one.
    pub(super) fn outgoing(t: Timeouts, users: Option<std::sync::Arc<Users>>, cap: usize) -> Self {
        Watch {
            t,
            first: false,
            msrp: None,
            sip: Some(SipHeads::new(cap)),
            users,
            last_read: now(),
            why: Why::Unused,
            timer: Some(Box::pin(tokio::time::sleep(t.conn_idle))),
        }
    }

    fn arm(&mut self, why: Why, after: Duration) {
        self.why = why;
        self.timer = match why {
            Why::Never => None,
            _ => Some(Box::pin(tokio::time::sleep(after))),
        };
    }

    /// Between messages: the conn-idle rule, when there is one.
    fn between(&mut self) {
        if self.users.is_some() && !self.t.conn_idle.is_zero() {
            if self.why != Why::Unused {
                self.arm(Why::Unused, self.t.conn_idle);
            }
        } else {
            self.arm(Why::Never, Duration::ZERO);
        }
    }

    /// Takes the bytes just read; true when they completed the first message's head (the
    /// caller takes the connection off the eviction list).
    pub(super) fn read(&mut self, data: &[u8]) -> bool {
        self.last_read = now();
        let first = self.first;
        if let Some(w) = &mut self.msrp {
            let was = w.started();
            if w.complete(data) {
                self.msrp = None;
                self.first = false;
                self.arm(Why::Never, Duration::ZERO);
            } else if !was && w.started() {
                self.arm(Why::Head, self.t.head);
            }
        } else if let Some(s) = &mut self.sip {
            let f = s.feed(data);
            if f.completed {
                self.first = false;
            }
            if f.fresh {
                self.arm(Why::Head, self.t.head);
            } else if !f.pending && !self.first {
                self.between();
            }
        }
        first && !self.first
    }

    /// Whether nothing is left to time (an MSRP connection past its first head).
    pub(super) fn finished(&self) -> bool {
        self.msrp.is_none() && self.sip.is_none()
    }

    /// Resolves when the timer fires (never when none is armed).
    pub(super) async fn expired(&mut self) {
        match &mut self.timer {
            Some(t) => t.as_mut().await,
            None => std::future::pending::<()>().await,
        }
    }

    /// The timer fired: true when the connection must be closed (counted and logged), else
    /// the timer is re-armed.
    pub(super) fn fired(&mut self, stats: &IoStats, peer: std::net::SocketAddr) -> bool {
        let (c, what) = match self.why {
            Why::Silent => (&stats.closed_idle_timeout, "idle"),
            Why::Head => (&stats.closed_head_timeout, "head"),
            Why::Never => return false,
            Why::Unused => {
                let users = self.users.as_deref();
                if users.is_some_and(Users::in_use) {
                    // In use: look again one period later (lazy; see the module docs).
                    self.arm(Why::Unused, self.t.conn_idle);
                    return false;
                }
                let since = users
                    .and_then(Users::released)
                    .map_or(self.last_read, |r| r.max(self.last_read));
                let left = (since + self.t.conn_idle).saturating_duration_since(now());
                if !left.is_zero() {
                    self.timer = Some(Box::pin(tokio::time::sleep(left)));
                    return false;
                }
                (&stats.closed_conn_idle, "unused")
            }
        };
        if let Some(k) = bump(c) {
            tracing::info!(%peer, closed = k, "{what} timeout: closing connection");
        }
        true
    }
}

/// Follows a SIP byte stream from head to head: each head is found by its blank line and
/// each body skipped by its Content-Length, without keeping more than an incomplete head.
struct SipHeads {
    phase: Phase,
    /// The incomplete head so far (only when it spans reads).
    head: Vec<u8>,
    /// Past this many bytes without a head, stop following: the core's own size limits
    /// deal with the message (answered 513/413 or closed).
    cap: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before a message: CRLF keep-alives are skipped.
    Between,
    Head,
    /// Body bytes still to skip.
    Body(usize),
    /// Unframeable or too long: the core closes such a stream; nothing more to time.
    Lost,
}

/// What one read did to the heads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fed {
    /// A head was completed (or given up on as too long).
    completed: bool,
    /// A head is incomplete after the read.
    pending: bool,
    /// That incomplete head began in this read: its clock starts now.
    fresh: bool,
}

impl SipHeads {
    fn new(cap: usize) -> Self {
        SipHeads {
            phase: Phase::Between,
            head: Vec::new(),
            cap,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Fed {
        let mut f = Fed {
            pending: self.phase == Phase::Head,
            ..Fed::default()
        };
        while !data.is_empty() {
            match self.phase {
                Phase::Lost => break,
                Phase::Body(left) => {
                    let k = left.min(data.len());
                    data = data.get(k..).unwrap_or_default();
                    self.phase = if left > k {
                        Phase::Body(left - k)
                    } else {
                        Phase::Between
                    };
                }
                Phase::Between => {
                    let lead = data
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    data = data.get(lead..).unwrap_or_default();
                    if !data.is_empty() {
                        self.phase = Phase::Head;
                        f.pending = true;
                        f.fresh = true;
                    }
                }
                Phase::Head => {
                    let (end, rest) = if self.head.is_empty() {
                        match blank_line(data, 0) {
                            Some(e) => (Some(content_length(data.get(..e).unwrap_or_default())), e),
                            None => {
                                self.head.extend_from_slice(data);
                                (None, data.len())
                            }
                        }
                    } else {
                        let from = self.head.len().saturating_sub(2);
                        let old = self.head.len();
                        self.head.extend_from_slice(data);
                        match blank_line(&self.head, from) {
                            Some(e) => {
                                let cl = content_length(self.head.get(..e).unwrap_or_default());
                                self.head.clear();
                                (Some(cl), e.saturating_sub(old))
                            }
                            None => (None, data.len()),
                        }
                    };
                    data = data.get(rest..).unwrap_or_default();
                    match end {
                        Some(cl) => {
                            self.head.clear();
                            f.completed = true;
                            f.pending = false;
                            f.fresh = false;
                            self.phase = match cl {
                                Some(0) => Phase::Between,
                                Some(n) => Phase::Body(n),
                                None => Phase::Lost,
                            };
                        }
                        None if self.head.len() > self.cap => {
                            self.head = Vec::new();
                            f.completed = true;
                            f.pending = false;
                            f.fresh = false;
                            self.phase = Phase::Lost;
                        }
                        None => {}
                    }
                }
            }
        }
        f
    }
}

/// The end of the head in `b` (just past its blank line), searching from `from`.
fn blank_line(b: &[u8], from: usize) -> Option<usize> {
    let tail = b.get(from..)?;
    let crlf = memchr::memmem::find(tail, b"\n\r\n").map(|i| i + 3);
    let lf = memchr::memmem::find(tail, b"\n\n").map(|i| i + 2);
    let e = match (crlf, lf) {
        (Some(x), Some(y)) => x.min(y),
        (x, y) => x.or(y)?,
    };
    Some(from + e)
}

/// The head's Content-Length (0 when absent: the core refuses such a stream message and
/// closes); `None` when it is not a number.
fn content_length(head: &[u8]) -> Option<usize> {
    let mut n = 0;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        // As the core's framing reads it: the name starts the line (a folded line is not
        // a header of its own).
        let name = name.trim_ascii_end();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = std::str::from_utf8(value.get(1..)?).ok()?;
            n = v.trim().parse().ok()?;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(completed: bool, pending: bool, fresh: bool) -> Fed {
        Fed {
            completed,
            pending,
            fresh,
        }
    }

    #[test]
    fn every_head_is_followed_across_reads() {
        let mut s = SipHeads::new(1024);
        // Keep-alives start nothing.
        assert_eq!(s.feed(b"\r\n\r\n"), fed(false, false, false));
        // A whole message with a body, then half of a second head.
        let m = b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n\r\nhelloOPTIONS sip:a SIP/2.0\r\nVia";
        assert_eq!(s.feed(m), fed(true, true, true));
        // More of the same head: still pending, its clock not restarted.
        assert_eq!(
            s.feed(b": x\r\nContent-Length: 3\r\n"),
            fed(false, true, false)
        );
        // The head ends across the read boundary; its body comes split.
        assert_eq!(s.feed(b"\r"), fed(false, true, false));
        assert_eq!(s.feed(b"\nab"), fed(true, false, false));
        assert_eq!(s.phase, Phase::Body(1));
        assert_eq!(s.feed(b"c\r\n\r\nB"), fed(false, true, true));
        assert_eq!(s.feed(b"YE x SIP/2.0\n\n"), fed(true, false, false));
        assert_eq!(s.phase, Phase::Between);
    }

    #[test]
    fn a_head_too_long_or_unframeable_is_given_up() {
        let mut s = SipHeads::new(16);
        assert_eq!(
            s.feed(b"OPTIONS sip:a SIP/2.0\r\n"),
            fed(true, false, false)
        );
        assert_eq!(s.phase, Phase::Lost);
        let mut s = SipHeads::new(1024);
        assert_eq!(
            s.feed(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n"),
            fed(true, false, false)
        );
        assert_eq!(s.phase, Phase::Lost);
        assert_eq!(s.feed(b"OPTIONS"), fed(false, false, false));
    }
}
