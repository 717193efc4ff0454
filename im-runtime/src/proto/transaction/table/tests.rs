use std::net::SocketAddr;
use std::time::Duration;

use super::*;

#[derive(Debug)]
struct Builder;

impl MessageBuilder for Builder {
    fn response(&mut self, _: &TsxMessage, status: u16) -> Option<Bytes> {
        Some(Bytes::from(status.to_string()))
    }
    fn ack(&mut self, _: &TsxMessage, _: &TsxMessage) -> Option<Bytes> {
        Some(Bytes::from_static(b"ACK"))
    }
    fn cancel(&mut self, _: &TsxMessage) -> Option<Bytes> {
        Some(Bytes::from_static(b"CANCEL"))
    }
}

/// xorshift64*: a fixed, dependency-free stream so failures replay by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What the index must hold: every live transaction's own deadline, read afresh, and
/// for a lingering one with a grid, that deadline rounded up onto the grid (checked to
/// lie within one step after the machine's own deadline).
fn brute_force(t: &Transactions<Builder>) -> Vec<(Instant, u64, Role, TsxKey)> {
    let grid = t.config.linger_grid;
    let file = |d: Instant, lingering: bool| {
        if !lingering || grid.is_zero() {
            return d;
        }
        let epoch = t.grid_epoch.expect("a lingering deadline set the epoch");
        let filed = round_up(d, epoch, grid);
        assert!(
            filed >= d && filed - d < grid,
            "{filed:?} off the grid of {d:?}"
        );
        let off = if filed >= epoch {
            filed - epoch
        } else {
            epoch - filed
        };
        assert_eq!(off.as_nanos() % grid.as_nanos(), 0);
        filed
    };
    let servers = t.servers.iter().filter_map(|(k, e)| {
        let d = file(e.tsx.deadline()?, e.tsx.lingering());
        Some((d, e.seq, Role::Server, k.clone()))
    });
    let clients = t.clients.iter().filter_map(|(k, e)| {
        let d = file(e.tsx.deadline()?, e.tsx.lingering());
        Some((d, e.seq, Role::Client, k.clone()))
    });
    let mut all: Vec<_> = servers.chain(clients).collect();
    all.sort_by_key(|(d, seq, _, _)| (*d, *seq));
    all
}

fn indexed(t: &Transactions<Builder>) -> Vec<(Instant, u64, Role, TsxKey)> {
    t.timers
        .iter()
        .map(|(&(d, seq), (role, key))| (d, seq, *role, key.clone()))
        .collect()
}

fn message(method: Method, branch: u64, status: Option<u16>) -> TsxMessage {
    let key = TsxKey::from_branch(&method, &format!("z9hG4bK{branch}"), "h.example");
    match status {
        None => TsxMessage::request(key, method, Bytes::from_static(b"req")),
        Some(s) => TsxMessage::response(key, method, s, Bytes::from_static(b"resp")),
    }
}

/// After a peak the tables give their memory back: 20,000 OPTIONS answered over UDP
/// linger (Timer J), then expire, and the server table shrinks to a small capacity.
#[test]
fn tables_shrink_once_a_peak_has_lingered_out() {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let t0 = Instant::now();
    let mut t = Transactions::new(TransactionsConfig::default(), Builder);
    let peer = Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    };
    for b in 0..20_000u64 {
        let m = message(Method::Options, b, None);
        let key = m.key.clone();
        t.handle_request(t0, m, peer).unwrap();
        t.reply(t0, &key, 200).unwrap();
    }
    assert_eq!(t.servers.len(), 20_000);
    let peak = t.servers.capacity();
    assert!(peak >= 20_000);
    // Still lingering halfway: nothing shrinks while the table is in use.
    t.handle_timeout(t0 + Duration::from_secs(16));
    assert_eq!(t.servers.capacity(), peak);
    t.handle_timeout(t0 + Duration::from_secs(40));
    assert!(t.servers.is_empty());
    assert!(
        t.servers.capacity() <= 2048,
        "{} slots kept after the peak of {peak}",
        t.servers.capacity()
    );
}

/// Random mixes of every input kind over a few hundred transactions (UDP and TCP, both
/// roles, INVITE and not, CANCEL, transport errors, time jumps); after each input the
/// index must equal a fresh scan, and `poll_timeout` its minimum.
#[test]
fn timer_index_matches_brute_force_scan_after_mixed_operations() {
    mixed_operations(Duration::ZERO, true);
    mixed_operations(Duration::ZERO, false);
}

/// The same mix with lingering deadlines on a 1 s grid (and an odd 700 ms one, so
/// that grid points and T1 multiples do not coincide).
#[test]
fn timer_index_with_linger_grid_matches_brute_force_scan() {
    mixed_operations(Duration::from_secs(1), true);
    mixed_operations(Duration::from_millis(700), true);
    mixed_operations(Duration::from_secs(1), false);
}

fn mixed_operations(linger_grid: Duration, linger_non_invite_clients: bool) {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let t0 = Instant::now();
    let methods = [Method::Invite, Method::Options, Method::Message];
    let statuses = [100, 180, 200, 404, 487, 503];
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let config = TransactionsConfig {
            linger_grid,
            linger_non_invite_clients,
            ..TransactionsConfig::default()
        };
        let mut t = Transactions::new(config, Builder);
        let mut now = t0;
        let mut max_live = 0;
        for _ in 0..3_000 {
            let branch = rng.below(400);
            let method = methods[rng.below(3) as usize].clone();
            let status = statuses[rng.below(6) as usize];
            let peer = Peer {
                addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
                reliable: rng.below(4) == 0,
            };
            let role = if rng.below(2) == 0 {
                Role::Server
            } else {
                Role::Client
            };
            // Errors (unknown transaction, wrong state …) are part of the mix: the
            // index must survive rejected inputs too.
            let _ = match rng.below(10) {
                0 | 1 => t.handle_request(now, message(method, branch, None), peer),
                2 => t
                    .send_request(now, message(method, branch, None), peer)
                    .map(|_| ()),
                3 | 4 => t.handle_response(now, message(method, branch, Some(status))),
                5 => t.reply(now, &message(method, branch, None).key, status),
                6 => t.handle_request(now, message(Method::Ack, branch, None), peer),
                7 => {
                    let key = message(Method::Invite, branch, None).key;
                    match rng.below(2) {
                        0 => t.cancel(now, &key).map(|_| ()),
                        _ => t.handle_request(now, message(Method::Cancel, branch, None), peer),
                    }
                }
                8 => t.handle_transport_error(role, &message(method, branch, None).key),
                _ => {
                    now += Duration::from_millis(rng.below(4_000));
                    t.handle_timeout(now);
                    Ok(())
                }
            };
            while t.poll_transmit().is_some() {}
            while t.poll_event().is_some() {}
            let scan = brute_force(&t);
            assert_eq!(indexed(&t), scan, "seed {seed}");
            assert_eq!(t.poll_timeout(), scan.first().map(|s| s.0), "seed {seed}");
            // The index shares the table's keys: no second copy kept alive by it.
            for (role, key) in t.timers.values() {
                let stored = match role {
                    Role::Server => t.servers.get_key_value(key).map(|(k, _)| k),
                    Role::Client => t.clients.get_key_value(key).map(|(k, _)| k),
                }
                .expect("indexed transactions are live");
                assert!(stored.shares(key), "seed {seed}");
            }
            max_live = max_live.max(t.len());
        }
        // The mix must really have built a crowded table and let it drain again.
        assert!(max_live >= 100, "seed {seed}: only {max_live} live");
        now += Duration::from_secs(120);
        t.handle_timeout(now);
        now += Duration::from_secs(120);
        t.handle_timeout(now);
        let scan = brute_force(&t);
        assert_eq!(indexed(&t), scan, "seed {seed}");
    }
}

/// Whether the transaction still holds its request (client or server side).
fn holds_request(t: &Transactions<Builder>, role: Role, key: &TsxKey) -> bool {
    match role {
        Role::Server => t.servers.get(key).unwrap().tsx.request().is_some(),
        Role::Client => match &t.clients.get(key).unwrap().tsx {
            ClientTsx::Invite { tsx, .. } => tsx.request().is_some(),
            ClientTsx::NonInvite(tsx) => tsx.request().is_some(),
        },
    }
}

/// Once a transaction has its final response nothing is built from or retransmitted of
/// its request, so it lets the request go, while it still absorbs what RFC 3261 and RFC
/// 6026 ask: retransmitted 2xx go up, retransmitted non-2xx are ACKed again, and a
/// retransmitted request gets the final response again.
#[test]
fn transactions_let_their_request_go_with_the_final_response() {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let now = Instant::now();
    let udp = Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    };
    let mut t = Transactions::new(TransactionsConfig::default(), Builder);
    let drain = |t: &mut Transactions<Builder>| {
        let sent: Vec<Bytes> = std::iter::from_fn(|| t.poll_transmit())
            .map(|x| x.bytes)
            .collect();
        let events: Vec<Event> = std::iter::from_fn(|| t.poll_event()).collect();
        (sent, events)
    };

    // INVITE client, 2xx: Accepted holds no request; a retransmitted 2xx still goes up.
    let k = t
        .send_request(now, message(Method::Invite, 1, None), udp)
        .unwrap();
    assert!(holds_request(&t, Role::Client, &k));
    t.handle_response(now, message(Method::Invite, 1, Some(200)))
        .unwrap();
    assert_eq!(t.state(Role::Client, &k), Some(TsxState::Accepted));
    assert!(!holds_request(&t, Role::Client, &k));
    drain(&mut t);
    t.handle_response(now, message(Method::Invite, 1, Some(200)))
        .unwrap();
    let (_, events) = drain(&mut t);
    assert!(matches!(events.as_slice(), [Event::Response { .. }]));

    // INVITE client, non-2xx: the ACK is kept and sent again for a retransmission.
    let k = t
        .send_request(now, message(Method::Invite, 2, None), udp)
        .unwrap();
    drain(&mut t);
    t.handle_response(now, message(Method::Invite, 2, Some(486)))
        .unwrap();
    assert!(!holds_request(&t, Role::Client, &k));
    let (sent, _) = drain(&mut t);
    assert_eq!(sent, [Bytes::from_static(b"ACK")]);
    t.handle_response(now, message(Method::Invite, 2, Some(486)))
        .unwrap();
    let (sent, events) = drain(&mut t);
    assert_eq!(sent, [Bytes::from_static(b"ACK")]);
    assert!(events.is_empty());

    // Non-INVITE client: Completed holds no request.
    let k = t
        .send_request(now, message(Method::Message, 3, None), udp)
        .unwrap();
    t.handle_response(now, message(Method::Message, 3, Some(200)))
        .unwrap();
    assert_eq!(t.state(Role::Client, &k), Some(TsxState::Completed));
    assert!(!holds_request(&t, Role::Client, &k));

    // INVITE server: after the 2xx no request; `reply` says so, `respond` still
    // passes a 2xx retransmission through, a retransmitted INVITE is absorbed.
    t.handle_request(now, message(Method::Invite, 4, None), udp)
        .unwrap();
    let k = message(Method::Invite, 4, None).key;
    assert!(holds_request(&t, Role::Server, &k));
    t.reply(now, &k, 200).unwrap();
    assert!(!holds_request(&t, Role::Server, &k));
    drain(&mut t);
    assert_eq!(
        t.reply(now, &k, 200),
        Err(TsxError::InvalidState {
            state: TsxState::Accepted
        })
    );
    t.respond(now, &k, 200, Bytes::from_static(b"200 again"))
        .unwrap();
    t.handle_request(now, message(Method::Invite, 4, None), udp)
        .unwrap();
    let (sent, events) = drain(&mut t);
    assert_eq!(sent, [Bytes::from_static(b"200 again")]);
    assert!(events.is_empty());

    // Non-INVITE server: after the final response the retransmission gets it again.
    t.handle_request(now, message(Method::Message, 5, None), udp)
        .unwrap();
    let k = message(Method::Message, 5, None).key;
    t.reply(now, &k, 202).unwrap();
    assert!(!holds_request(&t, Role::Server, &k));
    drain(&mut t);
    t.handle_request(now, message(Method::Message, 5, None), udp)
        .unwrap();
    let (sent, _) = drain(&mut t);
    assert_eq!(sent, [Bytes::from_static(b"202")]);
}

/// One session's worth of lingering work every 50 ms (20/s) for 15 s: a MESSAGE
/// answered 200 (Timer J) and an INVITE sent and answered 200 (Timer M), UDP. Returns
/// the number of timer wake-ups the driver made, and for every transaction the time
/// it ended minus the time RFC 3261/6026 ask it to linger (64·T1 from its final
/// response).
fn drive_lingering_sessions(linger_grid: Duration) -> (usize, Vec<Duration>) {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let t0 = Instant::now();
    let config = TransactionsConfig {
        linger_grid,
        ..TransactionsConfig::default()
    };
    let linger = config.timers.t1_x64();
    let mut t = Transactions::new(config, Builder);
    let peer = Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    };
    const SESSIONS: u64 = 300;
    let arrival = |i: u64| t0 + Duration::from_millis(50 * i);
    let mut rfc_end = std::collections::HashMap::new();
    let mut late = Vec::new();
    let mut wakeups = 0;
    let mut next = 0;
    loop {
        let timer = t.poll_timeout();
        let now = match (timer, next < SESSIONS) {
            (Some(at), true) if at < arrival(next) => {
                wakeups += 1;
                t.handle_timeout(at);
                at
            }
            (_, true) => {
                let now = arrival(next);
                let msg = message(Method::Message, next, None);
                t.handle_request(now, msg.clone(), peer).unwrap();
                t.reply(now, &msg.key, 200).unwrap();
                rfc_end.insert((Role::Server, msg.key), now + linger);
                let inv = message(Method::Invite, 10_000 + next, None);
                t.send_request(now, inv.clone(), peer).unwrap();
                let ok = message(Method::Invite, 10_000 + next, Some(200));
                t.handle_response(now, ok).unwrap();
                rfc_end.insert((Role::Client, inv.key), now + linger);
                next += 1;
                now
            }
            (Some(at), false) => {
                wakeups += 1;
                t.handle_timeout(at);
                at
            }
            (None, false) => break,
        };
        while t.poll_transmit().is_some() {}
        while let Some(event) = t.poll_event() {
            if let Event::Terminated { key, role } = event {
                let due = rfc_end.remove(&(role, key)).expect("one end each");
                assert!(now >= due, "ended {:?} early", due - now);
                late.push(now - due);
            }
        }
    }
    assert!(rfc_end.is_empty() && t.is_empty());
    (wakeups, late)
}

/// Lingering clean-ups of sessions spread over time share wake-ups on the grid, end
/// no earlier than the RFCs ask, and at most one grid step later.
#[test]
fn linger_grid_batches_clean_up_wake_ups() {
    let (exact, late) = drive_lingering_sessions(Duration::ZERO);
    // One wake-up per session: its two transactions fall due at the same instant.
    assert_eq!(exact, 300);
    assert!(late.iter().all(|d| d.is_zero()));
    let grid = Duration::from_secs(1);
    let (batched, late) = drive_lingering_sessions(grid);
    // 15 s of arrivals over a 1 s grid: 15 or 16 grid points.
    assert!((15..=16).contains(&batched), "{batched} wake-ups");
    assert_eq!(late.len(), 600);
    assert!(late.iter().all(|d| *d < grid), "{late:?}");
    assert!(late.iter().any(|d| *d > grid / 2), "nothing was deferred");
}

/// Timers that send or report something keep their exact deadlines on a grid.
#[test]
fn linger_grid_leaves_retransmissions_and_timeouts_exact() {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let t0 = Instant::now();
    let config = TransactionsConfig {
        linger_grid: Duration::from_secs(1),
        ..TransactionsConfig::default()
    };
    let t1 = config.timers.t1;
    let mut t = Transactions::new(config, Builder);
    let peer = Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    };
    // A lingering transaction first, so the grid has an epoch off T1's multiples.
    let start = t0 + Duration::from_millis(130);
    let msg = message(Method::Message, 1, None);
    t.handle_request(t0, msg.clone(), peer).unwrap();
    t.reply(t0, &msg.key, 200).unwrap();
    // Timer A (INVITE client) doubles from T1, exactly.
    let inv = message(Method::Invite, 2, None);
    t.send_request(start, inv, peer).unwrap();
    assert_eq!(t.poll_timeout(), Some(start + t1));
    t.handle_timeout(start + t1);
    assert_eq!(t.poll_timeout(), Some(start + t1 * 3));
    // Timer G (INVITE server, non-2xx final) at T1 after the response, exactly.
    let at = start + t1 * 3;
    t.handle_timeout(at);
    let sinv = message(Method::Invite, 3, None);
    t.handle_request(at, sinv.clone(), peer).unwrap();
    t.reply(at, &sinv.key, 486).unwrap();
    assert_eq!(t.poll_timeout(), Some(at + t1));
    // Timer E (non-INVITE client) likewise.
    let opt = message(Method::Options, 4, None);
    let later = at + Duration::from_millis(10);
    t.send_request(later, opt, peer).unwrap();
    let mut deadlines: Vec<Instant> = t.timers.keys().map(|(d, _)| *d).collect();
    deadlines.sort();
    assert!(deadlines.contains(&(later + t1)), "{deadlines:?}");
    assert!(deadlines.contains(&(at + t1)));
}

/// `round_up` as it was computed in u128 nanoseconds throughout.
fn round_up_u128(d: Instant, epoch: Instant, step: Duration) -> Instant {
    let step_ns = step.as_nanos();
    if d >= epoch {
        let k = (d - epoch).as_nanos().div_ceil(step_ns);
        let rounded = Duration::from_nanos(u64::try_from(k * step_ns).unwrap_or(u64::MAX));
        epoch.checked_add(rounded).unwrap_or(d)
    } else {
        let m = (epoch - d).as_nanos() / step_ns;
        epoch - Duration::from_nanos(u64::try_from(m * step_ns).unwrap_or(0))
    }
}

#[test]
fn round_up_in_u64_agrees_with_u128_arithmetic() {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let base = Instant::now() + Duration::from_secs(3600);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u64 {
        let step = Duration::from_nanos(1 + next() % 2_000_000_000);
        // Offsets around multiples of the step, on both sides of the epoch.
        let k = next() % 50;
        let jitter = next() % 3;
        let off = (k * step.as_nanos() as u64)
            .saturating_add(jitter)
            .saturating_sub(1);
        let epoch = base + Duration::from_nanos(next() % 1_000_000);
        let d = if i % 2 == 0 {
            epoch + Duration::from_nanos(off)
        } else {
            epoch - Duration::from_nanos(off.min(3_000_000_000_000))
        };
        assert_eq!(
            round_up(d, epoch, step),
            round_up_u128(d, epoch, step),
            "step {step:?} off {off}"
        );
        assert!(round_up(d, epoch, step) >= d);
    }
}

/// A non-INVITE client transaction over UDP, with and without its Completed state (Timer
/// K): the TU sees the same one response and the wire the same nothing for the answer's
/// retransmissions, provisional or final, whether the transaction lingers to absorb them
/// or has ended and the table drops them as matching nothing. Without the linger the
/// transaction is gone with its final response, as over a reliable transport.
#[test]
fn a_non_invite_client_may_end_at_its_final_response() {
    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    let now = Instant::now();
    let udp = Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    };
    let mut seen = Vec::new();
    for linger in [true, false] {
        let config = TransactionsConfig {
            linger_non_invite_clients: linger,
            ..TransactionsConfig::default()
        };
        let mut t = Transactions::new(config, Builder);
        let mut log = Vec::new();
        let mut step = |t: &mut Transactions<Builder>, what: &str| {
            let sent: Vec<Bytes> = std::iter::from_fn(|| t.poll_transmit())
                .map(|x| x.bytes)
                .collect();
            // Terminated comes when the transaction ends: that moment is what differs.
            let events: Vec<String> = std::iter::from_fn(|| t.poll_event())
                .filter(|e| !matches!(e, Event::Terminated { .. }))
                .map(|e| match e {
                    Event::Response { message } => format!("response {:?}", message.status),
                    other => format!("{other:?}"),
                })
                .collect();
            log.push(format!("{what}: sent {sent:?}, events {events:?}"));
        };
        for (branch, finals) in [(1, 200), (2, 404)] {
            let k = t
                .send_request(now, message(Method::Message, branch, None), udp)
                .unwrap();
            step(&mut t, "sent");
            t.handle_response(now, message(Method::Message, branch, Some(180)))
                .unwrap();
            step(&mut t, "180");
            t.handle_response(now, message(Method::Message, branch, Some(finals)))
                .unwrap();
            let ended = std::iter::from_fn(|| t.poll_event()).collect::<Vec<_>>();
            assert!(matches!(ended.first(), Some(Event::Response { .. })));
            assert_eq!(
                ended.get(1),
                (!linger)
                    .then(|| Event::Terminated {
                        key: k.clone(),
                        role: Role::Client,
                    })
                    .as_ref(),
                "linger {linger}"
            );
            assert_eq!(
                t.state(Role::Client, &k),
                linger.then_some(TsxState::Completed)
            );
            for again in [finals, 180, finals] {
                t.handle_response(now, message(Method::Message, branch, Some(again)))
                    .unwrap();
                step(&mut t, "again");
            }
        }
        // Timer K: T4 later the lingering transactions end too; no timer is left.
        assert_eq!(t.is_empty(), !linger);
        t.handle_timeout(now + Duration::from_secs(6));
        assert!(t.is_empty() && t.poll_timeout().is_none());
        seen.push(log);
    }
    assert_eq!(seen.first(), seen.get(1));
    assert_eq!(seen.first().map(Vec::len), Some(10));
}
