//! The command line (clap).

use super::*;

/// Command-line flags. Each one overrides the same key of the `--config` file, which
/// overrides the built-in default.
#[derive(Parser, Clone, Debug, Default, PartialEq)]
#[command(
    name = "im-server",
    version,
    about = "OMA SIMPLE IM server: pager-mode MSRP sessions to ad-hoc and pre-defined groups",
    long_about = "OMA SIMPLE IM server: pager-mode MSRP sessions to ad-hoc and pre-defined \
                  groups.\n\nPrecedence: command-line flags override the --config TOML \
                  file, which overrides the built-in defaults. See im-server.toml beside the \
                  crate for every key."
)]
pub struct Cli {
    /// TOML configuration file (see im-server.toml for every key). Relative paths inside it
    /// are resolved against the file's own directory.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// SIP listen address, used for both UDP and TCP. Repeatable. A bare IP gets port 5060;
    /// port 0 picks a free port. [default: 127.0.0.1:5060]
    #[arg(long = "sip", value_name = "ADDR", value_parser = parse_sip_addr)]
    pub sip: Vec<SocketAddr>,

    /// Do not listen for SIP over UDP.
    #[arg(long)]
    pub no_udp: bool,

    /// Do not listen for SIP over TCP.
    #[arg(long)]
    pub no_tcp: bool,

    /// MSRP listen address (TCP). A bare IP gets port 2855. [default: 127.0.0.1:2855]
    #[arg(long, value_name = "ADDR", value_parser = parse_msrp_addr)]
    pub msrp: Option<SocketAddr>,

    /// The domain this server is authoritative for. [default: example.com]
    #[arg(long, value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Option<String>,

    /// Conference-factory URI for ad-hoc groups. [default: sip:conference-factory@DOMAIN]
    #[arg(long, value_name = "URI", value_parser = parse_sip_uri)]
    pub conference_factory: Option<Uri>,

    /// Folder of OMA list-service group documents (*.xml). [default: the groups/ folder
    /// shipped beside the crate]
    #[arg(long, value_name = "DIR")]
    pub groups: Option<PathBuf>,

    /// How often the groups folder is checked for changed files, e.g. 2s or 500ms, by a
    /// background thread (at least every 100ms). [default: 2s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub groups_poll: Option<Duration>,

    /// Serve XCAP group management (RFC 4825, `org.openmobilealliance.groups`) on this
    /// address, e.g. 127.0.0.1:8080. Needs `--store` or `--store-url`. [default: off]
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr)]
    pub xcap: Option<SocketAddr>,

    /// The XCAP root path under which the application usages live. [default: /xcap]
    #[arg(long, value_name = "PATH", value_parser = parse_xcap_root)]
    pub xcap_root: Option<String>,

    /// The embedded store file (redb) holding groups created over XCAP; it survives
    /// restarts. [default: none]
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,

    /// A PostgreSQL store shared by several servers, instead of `--store`:
    /// `postgres://user@host:port/db`. [default: none]
    #[arg(long, value_name = "URL", value_parser = parse_store_url)]
    pub store_url: Option<String>,

    /// How often a shared store (`--store-url`) is polled for the groups and registrations
    /// written by the other servers. [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub store_refresh: Option<Duration>,

    /// Address advertised in Contact, Via, c= and a=path when it differs from the bound one
    /// (NAT, a 0.0.0.0 bind): an IP address or a host name. [default: the bound address]
    #[arg(long, value_name = "HOST", value_parser = parse_host)]
    pub advertise: Option<String>,

    /// Send requests to invitees whose host is not an IP literal through this proxy
    /// (IP[:port], port 5060 by default). [default: none; use the REGISTER location table]
    #[arg(long, value_name = "ADDR", value_parser = parse_sip_addr)]
    pub outbound_proxy: Option<SocketAddr>,

    /// Host whose P-Asserted-Identity is trusted as the originator's identity. Repeatable.
    /// Requests from other hosts are identified by From. [default: none]
    #[arg(long = "trusted-host", value_name = "IP", value_parser = parse_ip)]
    pub trusted_hosts: Vec<IpAddr>,

    /// MSRP accept-types, comma separated. [default: message/cpim,text/plain]
    #[arg(long, value_name = "TYPES", value_delimiter = ',', value_parser = parse_media_type)]
    pub accept_types: Vec<String>,

    /// MSRP accept-wrapped-types, comma separated. [default: text/plain,message/imdn+xml]
    #[arg(long, value_name = "TYPES", value_delimiter = ',', value_parser = parse_media_type)]
    pub accept_wrapped_types: Vec<String>,

    /// Send a sender its delivery notifications (RFC 5438 IMDNs) about one page-mode
    /// message aggregated in one SIP MESSAGE (multipart/mixed) once every copy has its
    /// outcome, instead of one per recipient: --aggregate-imdns or --aggregate-imdns=false.
    /// [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub aggregate_imdns: Option<bool>,

    /// Put a=tb-granted in SDP answers (OMA "SDP Extensions"): --tb-granted or
    /// --tb-granted=false. [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tb_granted: Option<bool>,

    /// Largest SIP message accepted, in octets (K/KiB/M/MiB suffixes allowed); larger ones
    /// get 513. [default: 64KiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_message_size: Option<u64>,

    /// Receive buffer asked for each SIP UDP socket, in octets (K/KiB/M/MiB suffixes
    /// allowed; 0: the system's default). A datagram that finds it full is dropped unseen;
    /// Linux caps it at net.core.rmem_max unless the server has CAP_NET_ADMIN (a warning
    /// says what was granted). [default: 4MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub udp_recv_buffer: Option<u64>,

    /// Most recipients in an ad-hoc list or group explosion; more get 403 with a Warning.
    /// [default: 100]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_recipients: Option<u64>,

    /// Largest MSRP chunk accepted, in octets. [default: 64KiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_msrp_chunk: Option<u64>,

    /// Largest whole MSRP message, in octets; advertised as a=max-size. [default: 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_msrp_message: Option<u64>,

    /// Most concurrent sessions; more get 503 (Service Unavailable) with Retry-After.
    /// [default: 1000]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_sessions: Option<u64>,

    /// Most conference-state subscriptions (RFC 4575) one subscriber may hold at once, per
    /// worker; more get 403 with a Warning. [default: 16]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_subscriptions_per_user: Option<u64>,

    /// Most conference-state subscriptions one session may have at once; more get 403 with
    /// a Warning. [default: 4]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_subscriptions_per_session: Option<u64>,
    /// Most page-mode copies kept in the store for one group member with no registration,
    /// sent when it registers; 0 keeps none (the copy fails at once). Needs a store.
    /// [default: 100]
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub offline_max_per_user: Option<u64>,

    /// How long a kept copy waits for its recipient to register; then it fails (a `failed`
    /// IMDN when the sender asked for negative delivery). [default: 168h, 7 days]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub offline_max_age: Option<Duration>,

    /// Most SIP-over-TCP connections open at once; more are closed at once. [default: 1024]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_sip_connections: Option<u64>,

    /// Most MSRP connections open at once; more are closed at once. [default: 1024]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_msrp_connections: Option<u64>,

    /// Most accepted TCP connections (SIP and MSRP) from one IP address; more are closed at
    /// once. [default: 64]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_connections_per_source: Option<u64>,

    /// Time a SIP or MSRP input may wait in a worker's queue before the worker sheds new
    /// sessions with 503 (Retry-After) until the backlog drains, when every input for
    /// --overload-interval waited that long; 0s turns this off. [default: 20ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub overload_delay: Option<Duration>,

    /// Time every input must wait more than --overload-delay before new sessions are shed;
    /// one input that waits less ends it, so a lone spike sheds nothing; 0s acts on one
    /// late input. [default: 100ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub overload_interval: Option<Duration>,

    /// Time an accepted TCP connection has, from the first byte of a message head, to
    /// complete the head; then it is closed. [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub head_timeout: Option<Duration>,

    /// Time an accepted TCP connection may stay open without sending its first byte; then it
    /// is closed. [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Time an accepted SIP connection that nothing uses (no session reached over it, no
    /// registration made over it) may stay silent between messages; then it is closed.
    /// 0s turns this off. [default: 2m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub conn_idle_timeout: Option<Duration>,

    /// The longest a session may live; then whatever is left of it (pending invitations,
    /// dialogs, the originator's) is cancelled and ended. [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub session_lifetime: Option<Duration>,

    /// How long an MSRP connection may stay unbound, and how long the originator has after
    /// its ACK to bind its MSRP session, before the session hears `msrp closed`.
    /// [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub msrp_idle: Option<Duration>,

    /// How long a copy that asked its invitee for a success REPORT (RFC 4975 §7.1.2) waits
    /// for it before the leg hears `msrp failed` 408. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub msrp_report_wait: Option<Duration>,

    /// Most entries one recipient list may hold; the specs answer a longer one (413 with a
    /// Warning). [default: 1000]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_list_entries: Option<u64>,

    /// Largest recipient-list document, in octets. [default: 64KiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_list_size: Option<u64>,

    /// Deepest element nesting of a recipient list. [default: 16]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_list_depth: Option<u64>,

    /// Most XML nodes of a recipient list. [default: 8192]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_list_nodes: Option<u64>,

    /// RFC 3261 T1 (round-trip estimate). [default: 500ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub t1: Option<Duration>,

    /// RFC 3261 T2 (longest retransmit interval). [default: 4s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub t2: Option<Duration>,

    /// RFC 3261 T4 (longest time a message stays in the network). [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub t4: Option<Duration>,

    /// How long an invitee leg may ring before it is cancelled. [default: 32s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub invite_timeout: Option<Duration>,

    /// Worker threads, each running its own endpoint (shard): SIP is steered to a shard by a
    /// hash of the Call-ID, and each shard listens on its own MSRP port (the `--msrp` port
    /// plus its index). 1 runs everything on one thread. [default: one per core]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub workers: Option<u64>,

    /// Log filter in tracing-subscriber EnvFilter syntax (RUST_LOG overrides the default,
    /// this flag overrides RUST_LOG). [default: info]
    #[arg(long, value_name = "FILTER", value_parser = parse_log_filter)]
    pub log: Option<String>,

    /// TLS certificate chain (PEM, leaf first). With --tls-key it turns TLS on: SIP over TLS
    /// on --sip-tls and MSRP over TLS on --msrp-tls. [default: no TLS]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// CA roots (PEM) that outgoing TLS connections trust. [default: the Web PKI roots]
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// SIP-over-TLS listen address. A bare IP gets port 5061. [default with a certificate:
    /// the first SIP address's IP, port 5061]
    #[arg(long, value_name = "ADDR", value_parser = parse_sips_addr)]
    pub sip_tls: Option<SocketAddr>,

    /// MSRP-over-TLS listen address; worker i listens on its port plus i (port 0: free
    /// ports). [default with a certificate: the MSRP address's IP, port 0]
    #[arg(long, value_name = "ADDR", value_parser = parse_msrp_addr)]
    pub msrp_tls: Option<SocketAddr>,

    /// How long an accepted TLS connection may take to finish its handshake. [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,

    /// Print the resolved configuration (TOML) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Load the configuration and the groups folder, report problems and exit.
    #[arg(long)]
    pub check: bool,

    /// Turn Digest authentication off: every request is accepted from anyone, as from a
    /// trusted host (logs a warning at start-up). For tests and closed networks only.
    #[arg(long)]
    pub no_auth: bool,

    /// Digest algorithm to offer, most preferred first; repeatable: `SHA-256`, `MD5`.
    /// [default: SHA-256, MD5] Clients that read only the first challenge and know only MD5
    /// (SIPp 3.6) need `--auth-algorithm MD5`.
    #[arg(long = "auth-algorithm", value_name = "ALG", value_parser = parse_algorithm)]
    pub auth_algorithms: Vec<Algorithm>,

    /// Let authenticated users of the domain invite recipients outside it (ad-hoc lists
    /// and exploded MESSAGEs); by default a list naming one gets 403.
    #[arg(long)]
    pub allow_external_recipients: bool,

    /// A maintenance command instead of running the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Maintenance commands.
#[derive(clap::Subcommand, Clone, Debug, PartialEq)]
pub enum Command {
    /// Manage the users the server authenticates.
    #[command(subcommand)]
    User(UserCommand),
}

/// `im-server user …`.
#[derive(clap::Subcommand, Clone, Debug, PartialEq)]
pub enum UserCommand {
    /// Add (or replace) a user: stores the HA1 values (MD5, SHA-256) of a password read
    /// from standard input (a prompt when it is a terminal), never the password itself.
    Add {
        /// The address-of-record, `user@realm` or `sip:user@realm` (the realm is the
        /// domain the server authenticates, `example.com` by default).
        aor: String,
        /// The store file (default: the configuration's `store`).
        #[arg(long, value_name = "FILE")]
        store: Option<PathBuf>,
    },
}
