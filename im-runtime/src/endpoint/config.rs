//! The endpoint's configuration and counters.

use super::*;

/// Everything the endpoint needs besides the application.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// What specs see as `config.*`.
    pub spec: Config,
    /// The SIP address put in Via and Contact (may differ from the bound one).
    pub sip_advertised: SocketAddr,
    /// The MSRP address put in `c=`, `m=` and `a=path`.
    pub msrp_advertised: SocketAddr,
    /// The SIP-over-TLS address put in Via and in `sips:` Contacts of dialogs that came over
    /// TLS; `None`: no TLS.
    pub sip_tls_advertised: Option<SocketAddr>,
    /// The MSRP-over-TLS address put in `m=` and `msrps:` paths when the offer is
    /// `TCP/TLS/MSRP`; `None`: such offers get 488.
    pub msrp_tls_advertised: Option<SocketAddr>,
    /// Hosts whose P-Asserted-Identity is trusted. Their requests are not challenged:
    /// such a host (a Kamailio front) authenticated the user itself.
    pub trusted_hosts: Vec<IpAddr>,
    /// Digest authentication (RFC 3261 §22) of REGISTER and of every initial request that
    /// reaches a machine, from hosts not in `trusted_hosts`. `None`: off, and every request
    /// counts as authenticated (`request.authenticated` is true), as before it existed.
    pub auth: Option<crate::proto::digest::Verifier>,
    /// Registrar: the shortest registration accepted; a shorter non-zero one gets 423 with
    /// Min-Expires (RFC 3261 §10.3 step 7).
    pub min_register_expires: u32,
    /// Registrar: the longest registration granted; a longer one is shortened to it.
    pub max_register_expires: u32,
    /// Registrar: the interval of a contact with neither an `expires` parameter nor an
    /// Expires header (RFC 3261 §10.2.1.1 lets the registrar choose).
    pub default_register_expires: u32,
    /// What the server supports (420/415/406 decisions).
    pub policy: Policy,
    /// Transaction timers (T1, T2, T4, D).
    pub timers: TimerConfig,
    /// Largest SIP message accepted (bigger: 513 on UDP; on TCP 413 when the header
    /// section fits and the body is too big, then the connection is closed).
    pub max_message_size: usize,
    /// Largest invitee INVITE sent over UDP, in octets: a larger one goes over TCP (RFC 3261
    /// §18.1.1 says 1300, a 1500-octet MTU less room for headers a proxy may add), and over
    /// UDP again only when the TCP connect fails (`endpoint/route_leg.rs`). 0: never switch,
    /// what [`EndpointConfig::new`] sets, since an embedder may have no TCP listener for the
    /// Contact to name; im-server sets 1300 (`[limits] max_udp_request`).
    pub max_udp_request: usize,
    /// Contacts registered over a connection (TCP, TLS) and reached over it, and destinations
    /// that refused TCP lately; share one table among the endpoints (workers) of a server
    /// (`endpoint/route_leg.rs`).
    pub peer_transports: PeerTransports,
    /// Most live sessions at once; a new one beyond gets 503 with Retry-After. A session
    /// stops counting once its calls are over, even while its last transactions linger.
    pub max_sessions: usize,
    /// Most SIP transactions (server and client) the endpoint holds before it sheds new
    /// sessions with 503: a load signal that rises before latency does, so the sessions
    /// already accepted keep being served.
    pub max_transactions: usize,
    /// The `Retry-After` of a 503 from admission.
    pub retry_after: Duration,
    /// How long a session may live at most before it is torn down.
    pub session_lifetime: Duration,
    /// How long an MSRP connection may stay unbound (no session named by a first SEND, or
    /// our connect not completed), how long after the ACK the originator's MSRP session
    /// may take to bind, and how long a copy's SEND may wait for its response (RFC 4975
    /// §7.1.1's transaction timeout), before it is given up (the machines then hear `msrp
    /// closed`). A bound leg waiting for the originator's message is not timed by it.
    pub msrp_idle: Duration,
    /// How long a copy sent with `Success-Report: yes` (the spec's `deliver { success-report
    /// yes }`) may wait for the invitee's success REPORT, from its first chunk, before the
    /// leg hears `msrp failed` with 408 (RFC 4975 §7.1.2 leaves the wait to the sender; 408
    /// is the status §7.1.1 gives a transaction that timed out).
    pub msrp_report_wait: Duration,
    /// Body parsing limits.
    pub body_limits: BodyLimits,
    /// MSRP decoder limits.
    pub msrp_limits: msrp::DecoderLimits,
    /// Largest chunk the server sends.
    pub msrp_chunk_size: usize,
    /// Seed of the id generator (tags, branches, Call-IDs, MSRP ids). The IO layer passes
    /// real randomness; tests pass a fixed value.
    pub seed: u64,
    /// This endpoint's shard: the Call-IDs it mints steer back to it ([`crate::steer`]).
    pub shard: crate::steer::Shard,
    /// Conference-state subscriptions (RFC 4575) one subscriber identity may hold at once,
    /// over all sessions; one more gets 403 with a Warning naming the limit.
    pub max_subscriptions_per_user: usize,
    /// Conference-state subscriptions one session may have at once (403 beyond).
    pub max_subscriptions_per_session: usize,
    /// The longest subscription granted, in seconds; also the grant when SUBSCRIBE has no
    /// Expires (RFC 4575 §3.7 suggests 3600). A session ends its subscriptions anyway.
    pub max_subscription_expires: u32,
}

impl EndpointConfig {
    /// A configuration with the defaults of design.md for the given advertised addresses.
    pub fn new(sip_advertised: SocketAddr, msrp_advertised: SocketAddr) -> Self {
        let policy = Policy {
            // Only the extensions the server implements (RFC 5366, RFC 5365): a tag here
            // is advertised in OPTIONS and accepted in Require.
            supported: vec![
                "recipient-list-invite".into(),
                "recipient-list-message".into(),
            ],
            ..Policy::default()
        };
        EndpointConfig {
            spec: Config::default(),
            sip_advertised,
            msrp_advertised,
            sip_tls_advertised: None,
            msrp_tls_advertised: None,
            trusted_hosts: Vec::new(),
            auth: None,
            min_register_expires: 60,
            max_register_expires: 86_400,
            default_register_expires: 3600,
            policy,
            timers: TimerConfig::default(),
            max_message_size: 64 * 1024,
            max_udp_request: 0,
            peer_transports: PeerTransports::default(),
            max_sessions: 10_000,
            max_transactions: 200_000,
            retry_after: Duration::from_secs(5),
            session_lifetime: Duration::from_secs(300),
            msrp_idle: Duration::from_secs(30),
            msrp_report_wait: Duration::from_secs(30),
            body_limits: BodyLimits::default(),
            msrp_limits: msrp::DecoderLimits::default(),
            msrp_chunk_size: 2048,
            seed: 0x5eed_1234_abcd_ef01,
            shard: crate::steer::Shard::default(),
            max_subscriptions_per_user: 16,
            max_subscriptions_per_session: 4,
            max_subscription_expires: 3600,
        }
    }

    /// The `Retry-After` value of a 503 (RFC 3261 §20.33: whole seconds), never 0, which
    /// a client could read as "retry at once".
    pub fn retry_after_header(&self) -> String {
        self.retry_after.as_secs().max(1).to_string()
    }
}

/// Counters, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handed to a machine as initial requests.
    pub initial_requests: u64,
    /// Error responses sent before any machine ran (parse errors, 420, 501 …).
    pub rejected: u64,
    /// Invitee INVITEs sent.
    pub invites_sent: u64,
    /// Messages delivered to invitees over MSRP.
    pub delivered: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// New sessions refused with 503 by admission (limits reached or shutting down).
    pub shed: u64,
    /// Requests answered with a Digest challenge (401).
    pub challenged: u64,
}
