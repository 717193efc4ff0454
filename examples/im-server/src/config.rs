//! Server configuration: built-in defaults, overridden by a TOML file (`--config FILE`),
//! overridden by command-line flags.
//!
//! Every value goes through the same parser whether it comes from the file or a flag, so the
//! two accept the same spellings. [`ServerConfig`] is the validated result; it hands out the
//! runtime's pieces: [`ServerConfig::machine_config`] (what specs see as `config.*`),
//! [`ServerConfig::bind`] and [`ServerConfig::io_limits`] (the tokio driver) and
//! [`ServerConfig::timer_config`] (the transaction layer).
//!
//! Relative paths in the TOML file are resolved against the file's directory, relative paths
//! on the command line against the working directory.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use im_runtime::io::{Bind, IoLimits};
use im_runtime::machine::{self, Uri};
use im_runtime::proto::transaction::TimerConfig;
use serde::Deserialize;

use crate::uri::{parse_uri, split_hostport};
use crate::users::UserEntry;
use im_runtime::proto::digest::{Algorithm, StoredHa1};

/// Default SIP port (UDP and TCP).
pub const DEFAULT_SIP_PORT: u16 = 5060;
/// Default MSRP port (TCP).
pub const DEFAULT_MSRP_PORT: u16 = 2855;
/// Default SIP-over-TLS port (RFC 3261 §19.1.2: `sips:` defaults to 5061).
pub const DEFAULT_SIPS_PORT: u16 = 5061;
/// Most workers (shards) a server may run; the IO layer tags connection ids with the shard
/// in 15 bits, and far fewer cores exist anyway.
pub const MAX_WORKERS: usize = 1024;
/// The example groups shipped beside the crate; the default groups folder.
pub const DEFAULT_GROUPS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/groups");

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

    /// Put a=tb-granted in SDP answers (OMA "SDP Extensions"): --tb-granted or
    /// --tb-granted=false. [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tb_granted: Option<bool>,

    /// Largest SIP message accepted, in octets (K/KiB/M/MiB suffixes allowed); larger ones
    /// get 513. [default: 64KiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_message_size: Option<u64>,

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

    /// Time an accepted TCP connection has, from its first byte, to complete the head of its
    /// first message; then it is closed. [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub head_timeout: Option<Duration>,

    /// Time an accepted TCP connection may stay open without sending its first byte; then it
    /// is closed. [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

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

/// Size limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest SIP message in octets (513 Message Too Large over it).
    pub max_message_size: usize,
    /// Most recipients of an ad-hoc list or group explosion.
    pub max_recipients: usize,
    /// Largest MSRP chunk in octets.
    pub max_msrp_chunk: usize,
    /// Largest whole MSRP message in octets (`a=max-size`).
    pub max_msrp_message: u64,
    /// Most concurrent sessions.
    pub max_sessions: usize,
    /// Most SIP-over-TCP connections open at once.
    pub max_sip_connections: usize,
    /// Most MSRP connections open at once.
    pub max_msrp_connections: usize,
    /// Most accepted connections from one IP address.
    pub max_connections_per_source: usize,
    /// Time from a connection's first byte to the end of its first message head.
    pub head_timeout: Duration,
    /// Time a connection may stay silent before its first byte.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_recipients: 100, // not a SIP status: a count of recipients
            max_msrp_chunk: 64 * 1024,
            max_msrp_message: 1 << 20,
            max_sessions: 1000,
            max_sip_connections: 1024,
            max_msrp_connections: 1024,
            max_connections_per_source: 64,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Protocol timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RFC 3261 T1.
    pub t1: Duration,
    /// RFC 3261 T2.
    pub t2: Duration,
    /// RFC 3261 T4.
    pub t4: Duration,
    /// How long an invitee leg may stay unanswered.
    pub invite_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            invite_timeout: Duration::from_secs(32),
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// SIP listen addresses.
    pub sip: Vec<SocketAddr>,
    /// Listen for SIP over UDP on [`ServerConfig::sip`].
    pub sip_udp: bool,
    /// Listen for SIP over TCP on [`ServerConfig::sip`].
    pub sip_tcp: bool,
    /// MSRP listen address.
    pub msrp: SocketAddr,
    /// The domain this server is authoritative for.
    pub domain: String,
    /// The conference-factory URI.
    pub conference_factory: Uri,
    /// The folder of group documents.
    pub groups_dir: PathBuf,
    /// How often the groups folder is checked for changes.
    pub groups_poll: Duration,
    /// The XCAP listen address; `None`: no XCAP server.
    pub xcap: Option<SocketAddr>,
    /// The XCAP root path (starts with `/`, no trailing `/`, or empty for the server root).
    pub xcap_root: String,
    /// The embedded store file; `None`: no store (groups come from the folder only).
    pub store: Option<PathBuf>,
    /// The PostgreSQL store's URL, instead of `store`.
    pub store_url: Option<String>,
    /// How often a shared store is polled for the other servers' writes.
    pub store_refresh: Duration,
    /// The advertised host, when it differs from the bound address.
    pub advertise: Option<String>,
    /// The outbound proxy for invitees with a host name.
    pub outbound_proxy: Option<SocketAddr>,
    /// Hosts whose P-Asserted-Identity is trusted.
    pub trusted_hosts: Vec<IpAddr>,
    /// MSRP `accept-types`.
    pub accept_types: Vec<String>,
    /// MSRP `accept-wrapped-types`.
    pub accept_wrapped_types: Vec<String>,
    /// Put `a=tb-granted` in answers.
    pub tb_granted: bool,
    /// Size and count limits.
    pub limits: Limits,
    /// Protocol timers.
    pub timers: Timers,
    /// Log filter (EnvFilter syntax).
    pub log: String,
    /// Worker threads (shards); `None`: one per core ([`ServerConfig::worker_count`]).
    pub workers: Option<usize>,
    /// TLS; off unless a certificate and key are configured.
    pub tls: TlsConfig,
    /// Authentication and authorisation.
    pub auth: Auth,
    /// Users from the configuration (`[[users]]`); the embedded defaults are the demo
    /// users ([`crate::users::DEMO_USERS`]).
    pub users: Vec<UserEntry>,
}

/// Authentication and authorisation settings (`[auth]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// Digest authentication of requests from hosts that are not trusted.
    pub enabled: bool,
    /// The realm; `None`: the domain.
    pub realm: Option<String>,
    /// How long a nonce is accepted (then `stale=true`).
    pub nonce_lifetime: Duration,
    /// Whether authenticated users may invite recipients outside the domain.
    pub allow_external_recipients: bool,
    /// The shortest REGISTER interval accepted (423 with Min-Expires below it).
    pub min_register_expires: Duration,
    /// The digest algorithms offered, most preferred first.
    pub algorithms: Vec<Algorithm>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            enabled: true,
            realm: None,
            nonce_lifetime: Duration::from_secs(300),
            allow_external_recipients: false,
            min_register_expires: Duration::from_secs(60),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

/// The `[tls]` table: SIP over TLS (RFC 3261 §26.2) and MSRP over TLS (RFC 4975 §14).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig {
    /// Certificate chain (PEM, leaf first).
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
    /// CA roots (PEM) trusted by outgoing TLS connections; `None`: the Web PKI roots.
    pub ca: Option<PathBuf>,
    /// SIP-over-TLS listen address; `None` with a certificate: the first SIP IP, port 5061.
    pub sip: Option<SocketAddr>,
    /// MSRP-over-TLS listen address of worker 0 (worker i: port plus i); `None` with a
    /// certificate: the MSRP IP, port 0.
    pub msrp: Option<SocketAddr>,
    /// Handshake timeout of accepted TLS connections; `None`: the IO layer's 5 s.
    pub handshake_timeout: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let domain = "example.com".to_owned();
        let mc = machine::Config::default();
        ServerConfig {
            sip: vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                DEFAULT_SIP_PORT,
            )],
            sip_udp: true,
            sip_tcp: true,
            msrp: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_MSRP_PORT),
            conference_factory: factory_for(&domain),
            domain,
            groups_dir: PathBuf::from(DEFAULT_GROUPS_DIR),
            groups_poll: Duration::from_secs(2),
            xcap: None,
            xcap_root: "/xcap".to_owned(),
            store: None,
            store_url: None,
            store_refresh: Duration::from_secs(1),
            advertise: None,
            outbound_proxy: None,
            trusted_hosts: Vec::new(),
            accept_types: mc.accept_types,
            accept_wrapped_types: mc.accept_wrapped_types,
            tb_granted: false,
            limits: Limits::default(),
            timers: Timers::default(),
            log: "info".to_owned(),
            workers: None,
            tls: TlsConfig::default(),
            auth: Auth::default(),
            users: crate::users::demo_users(),
        }
    }
}

fn factory_for(domain: &str) -> Uri {
    // The domain was validated as a host name, so this URI always parses; the fallback keeps
    // the function total anyway.
    parse_uri(&format!("sip:conference-factory@{domain}")).unwrap_or_default()
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types.
    #[error("config file {path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said (with line and column).
        message: String,
    },
    /// One value is out of range or malformed.
    #[error("{source_name}: invalid {key} {value:?}: {reason}")]
    Invalid {
        /// Where the value came from (`config file X`, `command line`, `defaults`).
        source_name: String,
        /// The key (`limits.max_recipients`, `--sip` …).
        key: String,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

impl ConfigError {
    fn invalid(src: &str, key: &str, value: impl fmt::Display, reason: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            source_name: src.to_owned(),
            key: key.to_owned(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The TOML file's shape. Every key is optional; unknown keys are an error so that a typo
/// does not silently fall back to a default.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    domain: Option<String>,
    conference_factory: Option<String>,
    groups: Option<PathBuf>,
    groups_poll: Option<String>,
    xcap: Option<String>,
    xcap_root: Option<String>,
    store: Option<PathBuf>,
    store_url: Option<String>,
    store_refresh: Option<String>,
    advertise: Option<String>,
    outbound_proxy: Option<String>,
    trusted_hosts: Option<Vec<String>>,
    log: Option<String>,
    workers: Option<SizeValue>,
    #[serde(default)]
    sip: FileSip,
    #[serde(default)]
    msrp: FileMsrp,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    timers: FileTimers,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    auth: FileAuth,
    users: Option<Vec<FileUser>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    sip: Option<String>,
    msrp: Option<String>,
    handshake_timeout: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    enabled: Option<bool>,
    realm: Option<String>,
    nonce_lifetime: Option<String>,
    allow_external_recipients: Option<bool>,
    min_register_expires: Option<String>,
    algorithms: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileUser {
    user: String,
    realm: Option<String>,
    md5: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileSip {
    listen: Option<Vec<String>>,
    udp: Option<bool>,
    tcp: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileMsrp {
    listen: Option<String>,
    accept_types: Option<Vec<String>>,
    accept_wrapped_types: Option<Vec<String>>,
    tb_granted: Option<bool>,
}

/// A size written as a number of octets or as text with a unit (`"64KiB"`).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum SizeValue {
    Int(i64),
    Text(String),
}

impl SizeValue {
    fn parse(&self) -> Result<u64, String> {
        match self {
            SizeValue::Int(n) => u64::try_from(*n).map_err(|_| "must not be negative".to_owned()),
            SizeValue::Text(s) => parse_size(s),
        }
    }
}

impl fmt::Display for SizeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeValue::Int(n) => write!(f, "{n}"),
            SizeValue::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_message_size: Option<SizeValue>,
    max_recipients: Option<SizeValue>,
    max_msrp_chunk: Option<SizeValue>,
    max_msrp_message: Option<SizeValue>,
    max_sessions: Option<SizeValue>,
    max_sip_connections: Option<SizeValue>,
    max_msrp_connections: Option<SizeValue>,
    max_connections_per_source: Option<SizeValue>,
    head_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileTimers {
    t1: Option<String>,
    t2: Option<String>,
    t4: Option<String>,
    invite_timeout: Option<String>,
}

impl ServerConfig {
    /// Builds the configuration from parsed flags, reading `--config` when given.
    pub fn load(cli: &Cli) -> Result<ServerConfig, ConfigError> {
        let mut cfg = ServerConfig::default();
        // The factory follows the domain unless someone sets it explicitly.
        let mut factory_set = false;
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let base = path.parent().unwrap_or(Path::new("."));
            factory_set |= cfg.apply_toml(&text, path, base)?;
        }
        factory_set |= cfg.apply_flags(cli);
        if !factory_set {
            cfg.conference_factory = factory_for(&cfg.domain);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies the keys of a TOML document; relative paths are taken against `base`.
    /// Returns whether the conference factory was set.
    fn apply_toml(&mut self, text: &str, path: &Path, base: &Path) -> Result<bool, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let src = format!("config file {}", path.display());
        let src = src.as_str();
        fn val<T>(src: &str, key: &str, v: &str, r: Result<T, String>) -> Result<T, ConfigError> {
            r.map_err(|reason| ConfigError::invalid(src, key, v, reason))
        }
        if let Some(v) = &file.domain {
            self.domain = val(src, "domain", v, parse_domain(v))?;
        }
        let factory_set = file.conference_factory.is_some();
        if let Some(v) = &file.conference_factory {
            self.conference_factory = val(src, "conference_factory", v, parse_sip_uri(v))?;
        }
        if let Some(v) = &file.groups {
            self.groups_dir = base.join(v);
        }
        if let Some(v) = &file.groups_poll {
            self.groups_poll = val(src, "groups_poll", v, parse_duration(v))?;
        }
        if let Some(v) = &file.xcap {
            self.xcap = Some(val(src, "xcap", v, parse_http_addr(v))?);
        }
        if let Some(v) = &file.xcap_root {
            self.xcap_root = val(src, "xcap_root", v, parse_xcap_root(v))?;
        }
        if let Some(v) = &file.store {
            self.store = Some(base.join(v));
        }
        if let Some(v) = &file.store_url {
            self.store_url = Some(val(src, "store_url", v, parse_store_url(v))?);
        }
        if let Some(v) = &file.store_refresh {
            self.store_refresh = val(src, "store_refresh", v, parse_duration(v))?;
        }
        if let Some(v) = &file.advertise {
            self.advertise = Some(val(src, "advertise", v, parse_host(v))?);
        }
        if let Some(v) = &file.outbound_proxy {
            self.outbound_proxy = Some(val(src, "outbound_proxy", v, parse_sip_addr(v))?);
        }
        if let Some(list) = &file.trusted_hosts {
            self.trusted_hosts = list
                .iter()
                .map(|v| val(src, "trusted_hosts", v, parse_ip(v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = &file.log {
            self.log = val(src, "log", v, parse_log_filter(v))?;
        }
        if let Some(v) = &file.workers {
            let n = v
                .parse()
                .map_err(|reason| ConfigError::invalid(src, "workers", v, reason))?;
            self.workers = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(list) = &file.sip.listen {
            self.sip = list
                .iter()
                .map(|v| val(src, "sip.listen", v, parse_sip_addr(v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.sip.udp {
            self.sip_udp = v;
        }
        if let Some(v) = file.sip.tcp {
            self.sip_tcp = v;
        }
        if let Some(v) = &file.msrp.listen {
            self.msrp = val(src, "msrp.listen", v, parse_msrp_addr(v))?;
        }
        if let Some(list) = &file.msrp.accept_types {
            self.accept_types = list
                .iter()
                .map(|v| val(src, "msrp.accept_types", v, parse_media_type(v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = &file.msrp.accept_wrapped_types {
            self.accept_wrapped_types = list
                .iter()
                .map(|v| val(src, "msrp.accept_wrapped_types", v, parse_media_type(v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.msrp.tb_granted {
            self.tb_granted = v;
        }
        let t = &file.tls;
        for (slot, v) in [
            (&mut self.tls.cert, &t.cert),
            (&mut self.tls.key, &t.key),
            (&mut self.tls.ca, &t.ca),
        ] {
            if let Some(v) = v {
                *slot = Some(base.join(v));
            }
        }
        if let Some(v) = &t.sip {
            self.tls.sip = Some(val(src, "tls.sip", v, parse_sips_addr(v))?);
        }
        if let Some(v) = &t.msrp {
            self.tls.msrp = Some(val(src, "tls.msrp", v, parse_msrp_addr(v))?);
        }
        if let Some(v) = &t.handshake_timeout {
            self.tls.handshake_timeout =
                Some(val(src, "tls.handshake_timeout", v, parse_duration(v))?);
        }
        let l = &file.limits;
        let size = |key: &str, v: &SizeValue| {
            v.parse()
                .map_err(|reason| ConfigError::invalid(src, key, v, reason))
        };
        let count = |key: &str, v: &SizeValue| {
            let n = size(key, v)?;
            usize::try_from(n).map_err(|_| ConfigError::invalid(src, key, v, "too large"))
        };
        if let Some(v) = &l.max_message_size {
            self.limits.max_message_size = count("limits.max_message_size", v)?;
        }
        if let Some(v) = &l.max_recipients {
            self.limits.max_recipients = count("limits.max_recipients", v)?;
        }
        if let Some(v) = &l.max_msrp_chunk {
            self.limits.max_msrp_chunk = count("limits.max_msrp_chunk", v)?;
        }
        if let Some(v) = &l.max_msrp_message {
            self.limits.max_msrp_message = size("limits.max_msrp_message", v)?;
        }
        if let Some(v) = &l.max_sessions {
            self.limits.max_sessions = count("limits.max_sessions", v)?;
        }
        if let Some(v) = &l.max_sip_connections {
            self.limits.max_sip_connections = count("limits.max_sip_connections", v)?;
        }
        if let Some(v) = &l.max_msrp_connections {
            self.limits.max_msrp_connections = count("limits.max_msrp_connections", v)?;
        }
        if let Some(v) = &l.max_connections_per_source {
            self.limits.max_connections_per_source = count("limits.max_connections_per_source", v)?;
        }
        if let Some(v) = &l.head_timeout {
            self.limits.head_timeout = val(src, "limits.head_timeout", v, parse_duration(v))?;
        }
        if let Some(v) = &l.idle_timeout {
            self.limits.idle_timeout = val(src, "limits.idle_timeout", v, parse_duration(v))?;
        }
        let t = &file.timers;
        for (key, v, slot) in [
            ("timers.t1", &t.t1, &mut self.timers.t1),
            ("timers.t2", &t.t2, &mut self.timers.t2),
            ("timers.t4", &t.t4, &mut self.timers.t4),
            (
                "timers.invite_timeout",
                &t.invite_timeout,
                &mut self.timers.invite_timeout,
            ),
        ] {
            if let Some(v) = v {
                *slot = val(src, key, v, parse_duration(v))?;
            }
        }
        let a = &file.auth;
        if let Some(v) = a.enabled {
            self.auth.enabled = v;
        }
        if let Some(v) = &a.realm {
            self.auth.realm = Some(val(src, "auth.realm", v, parse_domain(v))?);
        }
        if let Some(v) = &a.nonce_lifetime {
            self.auth.nonce_lifetime = val(src, "auth.nonce_lifetime", v, parse_duration(v))?;
        }
        if let Some(v) = a.allow_external_recipients {
            self.auth.allow_external_recipients = v;
        }
        if let Some(v) = &a.min_register_expires {
            self.auth.min_register_expires =
                val(src, "auth.min_register_expires", v, parse_duration(v))?;
        }
        if let Some(list) = &a.algorithms {
            self.auth.algorithms = list
                .iter()
                .map(|v| val(src, "auth.algorithms", v, parse_algorithm(v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = &file.users {
            // Any `users` in a file replaces the demo users: their passwords are public.
            self.users = list
                .iter()
                .map(|u| {
                    let lower = |v: &Option<String>| v.as_ref().map(|s| s.to_ascii_lowercase());
                    let e = UserEntry {
                        user: u.user.clone(),
                        realm: u.realm.clone(),
                        ha1: StoredHa1 {
                            md5: lower(&u.md5),
                            sha256: lower(&u.sha256),
                        },
                    };
                    let ok = !e.user.is_empty()
                        && (e.ha1.md5.is_some() || e.ha1.sha256.is_some())
                        && e.ha1.md5.as_deref().is_none_or(|h| crate::users::valid_ha1(h, 32))
                        && e.ha1
                            .sha256
                            .as_deref()
                            .is_none_or(|h| crate::users::valid_ha1(h, 64));
                    if ok {
                        Ok(e)
                    } else {
                        Err(ConfigError::invalid(
                            src,
                            "users",
                            &u.user,
                            "needs a user name and md5 (32 hex digits) and/or sha256 (64 hex digits)",
                        ))
                    }
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(factory_set)
    }

    /// Applies the flags that were given. Returns whether the conference factory was set.
    fn apply_flags(&mut self, cli: &Cli) -> bool {
        if !cli.sip.is_empty() {
            self.sip = cli.sip.clone();
        }
        if cli.no_udp {
            self.sip_udp = false;
        }
        if cli.no_tcp {
            self.sip_tcp = false;
        }
        if let Some(v) = cli.msrp {
            self.msrp = v;
        }
        if let Some(v) = &cli.domain {
            self.domain = v.clone();
        }
        if let Some(v) = &cli.conference_factory {
            self.conference_factory = v.clone();
        }
        if let Some(v) = &cli.groups {
            self.groups_dir = v.clone();
        }
        if let Some(v) = cli.groups_poll {
            self.groups_poll = v;
        }
        if let Some(v) = cli.xcap {
            self.xcap = Some(v);
        }
        if let Some(v) = &cli.xcap_root {
            self.xcap_root = v.clone();
        }
        if let Some(v) = &cli.store {
            self.store = Some(v.clone());
        }
        if let Some(v) = &cli.store_url {
            self.store_url = Some(v.clone());
        }
        if let Some(v) = cli.store_refresh {
            self.store_refresh = v;
        }
        if let Some(v) = &cli.advertise {
            self.advertise = Some(v.clone());
        }
        if let Some(v) = cli.outbound_proxy {
            self.outbound_proxy = Some(v);
        }
        if !cli.trusted_hosts.is_empty() {
            self.trusted_hosts = cli.trusted_hosts.clone();
        }
        if !cli.accept_types.is_empty() {
            self.accept_types = cli.accept_types.clone();
        }
        if !cli.accept_wrapped_types.is_empty() {
            self.accept_wrapped_types = cli.accept_wrapped_types.clone();
        }
        if let Some(v) = cli.tb_granted {
            self.tb_granted = v;
        }
        // Flag values went through parse_size/parse_count already; saturate on 32-bit.
        let us = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(v) = cli.max_message_size {
            self.limits.max_message_size = us(v);
        }
        if let Some(v) = cli.max_recipients {
            self.limits.max_recipients = us(v);
        }
        if let Some(v) = cli.max_msrp_chunk {
            self.limits.max_msrp_chunk = us(v);
        }
        if let Some(v) = cli.max_msrp_message {
            self.limits.max_msrp_message = v;
        }
        if let Some(v) = cli.max_sessions {
            self.limits.max_sessions = us(v);
        }
        if let Some(v) = cli.max_sip_connections {
            self.limits.max_sip_connections = us(v);
        }
        if let Some(v) = cli.max_msrp_connections {
            self.limits.max_msrp_connections = us(v);
        }
        if let Some(v) = cli.max_connections_per_source {
            self.limits.max_connections_per_source = us(v);
        }
        if let Some(v) = cli.head_timeout {
            self.limits.head_timeout = v;
        }
        if let Some(v) = cli.idle_timeout {
            self.limits.idle_timeout = v;
        }
        if let Some(v) = cli.t1 {
            self.timers.t1 = v;
        }
        if let Some(v) = cli.t2 {
            self.timers.t2 = v;
        }
        if let Some(v) = cli.t4 {
            self.timers.t4 = v;
        }
        if let Some(v) = cli.invite_timeout {
            self.timers.invite_timeout = v;
        }
        if let Some(v) = &cli.log {
            self.log = v.clone();
        }
        if let Some(v) = cli.workers {
            self.workers = Some(us(v));
        }
        for (slot, v) in [
            (&mut self.tls.cert, &cli.tls_cert),
            (&mut self.tls.key, &cli.tls_key),
            (&mut self.tls.ca, &cli.tls_ca),
        ] {
            if v.is_some() {
                slot.clone_from(v);
            }
        }
        if cli.sip_tls.is_some() {
            self.tls.sip = cli.sip_tls;
        }
        if cli.msrp_tls.is_some() {
            self.tls.msrp = cli.msrp_tls;
        }
        if cli.handshake_timeout.is_some() {
            self.tls.handshake_timeout = cli.handshake_timeout;
        }
        if cli.no_auth {
            self.auth.enabled = false;
        }
        if !cli.auth_algorithms.is_empty() {
            self.auth.algorithms = cli.auth_algorithms.clone();
        }
        if cli.allow_external_recipients {
            self.auth.allow_external_recipients = true;
        }
        cli.conference_factory.is_some()
    }

    /// Checks what single values cannot: combinations and ranges.
    fn validate(&self) -> Result<(), ConfigError> {
        let src = "configuration";
        let bad = |key: &str, v: &dyn fmt::Display, why: &str| {
            Err(ConfigError::invalid(src, key, v, why))
        };
        if self.sip.is_empty() {
            return bad("sip.listen", &"[]", "at least one SIP address is needed");
        }
        if let (Some(_), Some(u)) = (&self.store, &self.store_url) {
            return bad("store_url", u, "set store or store_url, not both");
        }
        if let (Some(a), None, None) = (self.xcap, &self.store, &self.store_url) {
            return bad(
                "xcap",
                &a,
                "XCAP keeps its documents in the store: set store too",
            );
        }
        if !self.sip_udp && !self.sip_tcp {
            return bad(
                "sip.udp/sip.tcp",
                &"false/false",
                "SIP needs UDP or TCP (or both)",
            );
        }
        if self.advertise.is_none() {
            let unspecified = self
                .sip
                .iter()
                .chain(std::iter::once(&self.msrp))
                .find(|a| a.ip().is_unspecified());
            if let Some(a) = unspecified {
                return bad(
                    "advertise",
                    &"(none)",
                    &format!("listening on {a} needs --advertise: peers cannot reach 0.0.0.0/::"),
                );
            }
        }
        let l = &self.limits;
        for (key, n, min) in [
            ("limits.max_message_size", l.max_message_size, 1024),
            ("limits.max_recipients", l.max_recipients, 1),
            ("limits.max_msrp_chunk", l.max_msrp_chunk, 256), // not a SIP status: octets
            ("limits.max_sessions", l.max_sessions, 1),
            ("limits.max_sip_connections", l.max_sip_connections, 1),
            ("limits.max_msrp_connections", l.max_msrp_connections, 1),
            (
                "limits.max_connections_per_source",
                l.max_connections_per_source,
                1,
            ),
        ] {
            if n < min {
                return bad(key, &n, &format!("must be at least {min}"));
            }
        }
        if l.max_message_size > 16 << 20 {
            return bad(
                "limits.max_message_size",
                &l.max_message_size,
                "must be at most 16MiB",
            );
        }
        if l.max_msrp_message == 0 {
            return bad("limits.max_msrp_message", &0, "must be at least 1");
        }
        let t = &self.timers;
        for (key, d) in [
            ("timers.t1", t.t1),
            ("timers.t2", t.t2),
            ("timers.t4", t.t4),
            ("timers.invite_timeout", t.invite_timeout),
        ] {
            if d.is_zero() {
                return bad(key, &"0", "must be longer than zero");
            }
        }
        if t.t2 < t.t1 {
            return bad(
                "timers.t2",
                &format_duration(t.t2),
                &format!("must not be shorter than T1 ({})", format_duration(t.t1)),
            );
        }
        if self.accept_types.is_empty() {
            return bad("msrp.accept_types", &"[]", "at least one type is needed");
        }
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            return bad(
                "tls.cert/tls.key",
                &"one of them",
                "TLS needs both or neither",
            );
        }
        if tls.cert.is_none()
            && let Some(a) = tls.sip.or(tls.msrp)
        {
            return bad(
                "tls.sip/tls.msrp",
                &a,
                "a TLS listener needs tls.cert and tls.key",
            );
        }
        if tls.handshake_timeout.is_some_and(|d| d.is_zero()) {
            return bad("tls.handshake_timeout", &"0", "must be longer than zero");
        }
        if self.auth.algorithms.is_empty() {
            return bad("auth.algorithms", &"[]", "at least one algorithm is needed");
        }
        if self.auth.nonce_lifetime < Duration::from_secs(1) {
            return bad(
                "auth.nonce_lifetime",
                &format_duration(self.auth.nonce_lifetime),
                "must be at least 1s",
            );
        }
        if self.auth.min_register_expires.as_secs() > 86_400 {
            return bad(
                "auth.min_register_expires",
                &format_duration(self.auth.min_register_expires),
                "must be at most 1d (the longest registration granted)",
            );
        }
        if let Some(n) = self.workers
            && !(1..=MAX_WORKERS).contains(&n)
        {
            return bad(
                "workers",
                &n,
                &format!("must be between 1 and {MAX_WORKERS}"),
            );
        }
        Ok(())
    }

    /// How many workers (shards) to run: the configured number, else one per core.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
                .min(MAX_WORKERS)
        })
    }

    /// Whether TLS listeners run (a certificate and key are configured).
    pub fn tls_on(&self) -> bool {
        self.tls.cert.is_some() && self.tls.key.is_some()
    }

    /// The SIP-over-TLS listen address, when TLS is on.
    pub fn sip_tls_listen(&self) -> Option<SocketAddr> {
        let first = self
            .sip
            .first()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
        self.tls_on().then(|| {
            self.tls
                .sip
                .unwrap_or(SocketAddr::new(first, DEFAULT_SIPS_PORT))
        })
    }

    /// The MSRP-over-TLS listen address of each worker, when TLS is on (as
    /// [`ServerConfig::msrp_listen`]).
    pub fn msrp_tls_listen(&self, workers: usize) -> Vec<SocketAddr> {
        if !self.tls_on() {
            return Vec::new();
        }
        let base = self.tls.msrp.unwrap_or(SocketAddr::new(self.msrp.ip(), 0));
        (0..workers)
            .map(|i| {
                let port = match base.port() {
                    0 => 0,
                    p => p.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)),
                };
                SocketAddr::new(base.ip(), port)
            })
            .collect()
    }

    /// The MSRP listen address of each worker: worker `i` listens on the configured port
    /// plus `i` (port 0 stays 0: a free port each). Each worker names its own port in
    /// `a=path`, so MSRP connections reach the worker that holds the session.
    pub fn msrp_listen(&self, workers: usize) -> Vec<SocketAddr> {
        (0..workers)
            .map(|i| {
                let port = match self.msrp.port() {
                    0 => 0,
                    p => p.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)),
                };
                SocketAddr::new(self.msrp.ip(), port)
            })
            .collect()
    }

    /// What specs see as `config.*`.
    pub fn machine_config(&self) -> machine::Config {
        machine::Config {
            domain: self.domain.clone(),
            conference_factory: self.conference_factory.clone(),
            accept_types: self.accept_types.clone(),
            accept_wrapped_types: self.accept_wrapped_types.clone(),
            max_size: Some(self.limits.max_msrp_message),
            tb_granted: self.tb_granted,
            allow_external_recipients: self.auth.allow_external_recipients,
            max_recipients: self.limits.max_recipients,
            invite_timeout: self.timers.invite_timeout,
        }
    }

    /// The sockets the tokio driver binds.
    pub fn bind(&self) -> Bind {
        Bind {
            sip_udp: if self.sip_udp {
                self.sip.clone()
            } else {
                Vec::new()
            },
            sip_tcp: if self.sip_tcp {
                self.sip.clone()
            } else {
                Vec::new()
            },
            msrp_tcp: vec![self.msrp],
        }
    }

    /// The tokio driver's limits. The datagram buffer is always the UDP maximum so that an
    /// oversized message reaches the core whole and is answered 513, not truncated by the OS
    /// into a parse error.
    pub fn io_limits(&self) -> IoLimits {
        IoLimits {
            max_datagram: 65_535,
            max_sip_connections: self.limits.max_sip_connections,
            max_msrp_connections: self.limits.max_msrp_connections,
            max_connections_per_source: self.limits.max_connections_per_source,
            head_timeout: self.limits.head_timeout,
            idle_timeout: self.limits.idle_timeout,
            max_sip_message: self.limits.max_message_size,
            handshake_timeout: self
                .tls
                .handshake_timeout
                .unwrap_or(IoLimits::default().handshake_timeout),
            ..IoLimits::default()
        }
    }

    /// RFC 3261 timer values for the transaction layer.
    pub fn timer_config(&self) -> TimerConfig {
        TimerConfig {
            t1: self.timers.t1,
            t2: self.timers.t2,
            t4: self.timers.t4,
            // RFC 3261 §17.1.1.2: at least 32 s on unreliable transports, and never shorter
            // than the 64·T1 window in which a final response may still be retransmitted.
            timer_d: Duration::from_secs(32).max(self.timers.t1.saturating_mul(64)),
        }
    }

    /// The host to advertise for a socket bound to `bound`: the configured one, else the
    /// bound IP (IPv6 in brackets, as in a SIP URI).
    pub fn advertised_host(&self, bound: SocketAddr) -> String {
        match &self.advertise {
            Some(h) => h.clone(),
            None => match bound.ip() {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
        }
    }

    /// The Digest realm: the configured one, else the domain.
    pub fn realm(&self) -> &str {
        self.auth.realm.as_deref().unwrap_or(&self.domain)
    }

    /// Whether a request from `peer` may assert the originator with P-Asserted-Identity.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusted_hosts.contains(&peer)
    }

    /// The configuration as a TOML document in the file's shape (for `--print-config`).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml_quote(s);
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let addrs: Vec<String> = self.sip.iter().map(|a| a.to_string()).collect();
        let trusted: Vec<String> = self.trusted_hosts.iter().map(|a| a.to_string()).collect();
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("domain = {}", q(&self.domain)));
        line(format!(
            "conference_factory = {}",
            q(&self.conference_factory.raw)
        ));
        line(format!(
            "groups = {}",
            q(&self.groups_dir.display().to_string())
        ));
        line(format!(
            "groups_poll = {}",
            q(&format_duration(self.groups_poll))
        ));
        match self.xcap {
            Some(a) => line(format!("xcap = {}", q(&a.to_string()))),
            None => line("# xcap: off".to_owned()),
        }
        line(format!("xcap_root = {}", q(&self.xcap_root)));
        match &self.store {
            Some(p) => line(format!("store = {}", q(&p.display().to_string()))),
            None => line("# store: none".to_owned()),
        }
        match &self.store_url {
            Some(u) => line(format!("store_url = {}", q(u))),
            None => line("# store_url: none".to_owned()),
        }
        line(format!(
            "store_refresh = {}",
            q(&format_duration(self.store_refresh))
        ));
        match &self.advertise {
            Some(a) => line(format!("advertise = {}", q(a))),
            None => line("# advertise: the bound address".to_owned()),
        }
        match self.outbound_proxy {
            Some(a) => line(format!("outbound_proxy = {}", q(&a.to_string()))),
            None => line("# outbound_proxy: none".to_owned()),
        }
        line(format!("trusted_hosts = {}", list(&trusted)));
        line(format!("log = {}", q(&self.log)));
        match self.workers {
            Some(n) => line(format!("workers = {n}")),
            None => line("# workers: one per core".to_owned()),
        }
        if self.users.is_empty() {
            // A top-level key: it must come before the first table.
            line("users = []".to_owned());
        }
        line(String::new());
        line("[sip]".to_owned());
        line(format!("listen = {}", list(&addrs)));
        line(format!("udp = {}", self.sip_udp));
        line(format!("tcp = {}", self.sip_tcp));
        line(String::new());
        line("[msrp]".to_owned());
        line(format!("listen = {}", q(&self.msrp.to_string())));
        line(format!("accept_types = {}", list(&self.accept_types)));
        line(format!(
            "accept_wrapped_types = {}",
            list(&self.accept_wrapped_types)
        ));
        line(format!("tb_granted = {}", self.tb_granted));
        line(String::new());
        let l = &self.limits;
        line("[limits]".to_owned());
        line(format!("max_message_size = {}", l.max_message_size));
        line(format!("max_recipients = {}", l.max_recipients));
        line(format!("max_msrp_chunk = {}", l.max_msrp_chunk));
        line(format!("max_msrp_message = {}", l.max_msrp_message));
        line(format!("max_sessions = {}", l.max_sessions));
        line(format!("max_sip_connections = {}", l.max_sip_connections));
        line(format!("max_msrp_connections = {}", l.max_msrp_connections));
        line(format!(
            "max_connections_per_source = {}",
            l.max_connections_per_source
        ));
        line(format!(
            "head_timeout = {}",
            q(&format_duration(l.head_timeout))
        ));
        line(format!(
            "idle_timeout = {}",
            q(&format_duration(l.idle_timeout))
        ));
        line(String::new());
        let t = &self.timers;
        line("[timers]".to_owned());
        line(format!("t1 = {}", q(&format_duration(t.t1))));
        line(format!("t2 = {}", q(&format_duration(t.t2))));
        line(format!("t4 = {}", q(&format_duration(t.t4))));
        line(format!(
            "invite_timeout = {}",
            q(&format_duration(t.invite_timeout))
        ));
        line(String::new());
        let tls = &self.tls;
        line("[tls]".to_owned());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| q(&p.display().to_string()));
        match path(&tls.cert) {
            Some(p) => line(format!("cert = {p}")),
            None => line("# cert: none (TLS off)".to_owned()),
        }
        if let Some(p) = path(&tls.key) {
            line(format!("key = {p}"));
        }
        match path(&tls.ca) {
            Some(p) => line(format!("ca = {p}")),
            None => line("# ca: the Web PKI roots".to_owned()),
        }
        if let Some(a) = tls.sip {
            line(format!("sip = {}", q(&a.to_string())));
        }
        if let Some(a) = tls.msrp {
            line(format!("msrp = {}", q(&a.to_string())));
        }
        if let Some(d) = tls.handshake_timeout {
            line(format!("handshake_timeout = {}", q(&format_duration(d))));
        }
        line(String::new());
        let a = &self.auth;
        line("[auth]".to_owned());
        line(format!("enabled = {}", a.enabled));
        match &a.realm {
            Some(r) => line(format!("realm = {}", q(r))),
            None => line("# realm: the domain".to_owned()),
        }
        line(format!(
            "nonce_lifetime = {}",
            q(&format_duration(a.nonce_lifetime))
        ));
        line(format!(
            "allow_external_recipients = {}",
            a.allow_external_recipients
        ));
        line(format!(
            "min_register_expires = {}",
            q(&format_duration(a.min_register_expires))
        ));
        let algs: Vec<String> = a.algorithms.iter().map(|x| x.as_str().to_owned()).collect();
        line(format!("algorithms = {}", list(&algs)));
        // HA1 values, not passwords; printed so the output loads back as the same config.
        for u in &self.users {
            line(String::new());
            line("[[users]]".to_owned());
            line(format!("user = {}", q(&u.user)));
            if let Some(r) = &u.realm {
                line(format!("realm = {}", q(r)));
            }
            if let Some(h) = &u.ha1.md5 {
                line(format!("md5 = {}", q(h)));
            }
            if let Some(h) = &u.ha1.sha256 {
                line(format!("sha256 = {}", q(h)));
            }
        }
        s
    }
}

fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a socket address, defaulting the port when only an IP is given
/// (`127.0.0.1`, `127.0.0.1:5070`, `::1`, `[::1]:5070`).
fn parse_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "expected IP or IP:PORT (IPv6 as [addr]:port), e.g. 127.0.0.1:{default_port}; host \
         names are not resolved here"
    ))
}

/// Parses a SIP address (port 5060 when omitted).
pub fn parse_sip_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_SIP_PORT)
}

/// Parses a SIP-over-TLS listen address; a bare IP gets port 5061.
pub fn parse_sips_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_SIPS_PORT)
}

/// Parses an MSRP address (port 2855 when omitted).
pub fn parse_msrp_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_MSRP_PORT)
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_owned())
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_token(s).ok_or_else(|| "must be SHA-256 or MD5".to_owned())
}

fn parse_domain(s: &str) -> Result<String, String> {
    match split_hostport(s.trim()) {
        Ok((host, None)) => Ok(host),
        Ok((_, Some(_))) => Err("a domain has no port".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    // A bare IPv6 address becomes a bracketed reference, the form URIs and Via carry.
    if let Ok(std::net::IpAddr::V6(a)) = s.parse::<IpAddr>() {
        return Ok(format!("[{a}]"));
    }
    match split_hostport(s) {
        Ok((host, None)) => Ok(host),
        Ok((_, Some(_))) => Err("give the host only; advertised ports are the bound ones".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_sip_uri(s: &str) -> Result<Uri, String> {
    let u = parse_uri(s).map_err(|e| e.to_string())?;
    if u.scheme != "sip" && u.scheme != "sips" {
        return Err("must be a sip: or sips: URI".to_owned());
    }
    if u.user.is_empty() {
        return Err("must have a user part (sip:name@domain)".to_owned());
    }
    Ok(u)
}

fn parse_media_type(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let ok_token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&c))
    };
    match t.split_once('/') {
        Some((a, b)) if ok_token(a) && ok_token(b) => Ok(t),
        _ if t == "*" => Ok(t),
        _ => Err("expected a media type like text/plain (or *)".to_owned()),
    }
}

fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a log filter: {e}"))
}

fn parse_count(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// Parses a size: an integer with an optional unit `K`/`KiB` (1024) or `M`/`MiB` (1024²),
/// also `KB`/`MB` (taken as the binary units too; nobody means 1000 here).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a number, optionally with K/KiB/M/MiB".to_owned())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => return Err(format!("unknown unit {other:?} (use K, KiB, M or MiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| "too large".to_owned())
}

/// Parses a duration: an integer with unit `ms`, `s`, `m` or `h` (`500ms`, `4s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a number with a unit: 500ms, 4s, 2m, 1h".to_owned())?;
    let d = match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "" => return Err("a unit is required: ms, s, m or h".to_owned()),
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    d.ok_or_else(|| "too large".to_owned())
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses an HTTP listen address (`IP:PORT`).
pub fn parse_http_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|e| format!("not an IP:PORT address ({e})"))
}

/// Parses the PostgreSQL store URL (`postgres://` or `postgresql://`; the rest is checked
/// when the server connects).
pub fn parse_store_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_owned())
    } else {
        Err("expected a postgres:// or postgresql:// URL".to_owned())
    }
}

/// Parses an XCAP root path: empty or `/`-led, without a trailing `/`, query or `~~`.
pub fn parse_xcap_root(s: &str) -> Result<String, String> {
    let t = s.trim_end_matches('/');
    if !t.is_empty() && !t.starts_with('/') {
        return Err("must be a path starting with /".to_owned());
    }
    if t.contains(['?', '#', '~', ' ']) {
        return Err("must be a plain path (no ?, #, ~ or spaces)".to_owned());
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["im-server"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).expect("flags parse")
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn load_with(text: &str, args: &[&str]) -> Result<ServerConfig, ConfigError> {
        let f = toml_file(text);
        let mut c = cli(args);
        c.config = Some(f.path().to_owned());
        ServerConfig::load(&c)
    }

    #[test]
    fn defaults() {
        let c = ServerConfig::load(&cli(&[])).unwrap();
        assert_eq!(c.sip, vec!["127.0.0.1:5060".parse().unwrap()]);
        assert!(c.sip_udp && c.sip_tcp);
        assert_eq!(c.msrp, "127.0.0.1:2855".parse().unwrap());
        assert_eq!(c.domain, "example.com");
        assert_eq!(
            c.conference_factory.raw,
            "sip:conference-factory@example.com"
        );
        assert_eq!(c.groups_dir, Path::new(DEFAULT_GROUPS_DIR));
        assert!(c.groups_dir.ends_with("examples/im-server/groups"));
        assert_eq!(c.outbound_proxy, None);
        assert!(!c.tb_granted);
        assert_eq!(c.machine_config(), machine::Config::default());
        let b = c.bind();
        assert_eq!(b.sip_udp, c.sip);
        assert_eq!(b.sip_tcp, c.sip);
        assert_eq!(b.msrp_tcp, vec![c.msrp]);
        assert_eq!(c.timer_config(), TimerConfig::default());
        assert_eq!(c.advertised_host(c.sip[0]), "127.0.0.1");
    }

    #[test]
    fn toml_overrides_defaults() {
        let c = load_with(
            r#"
            domain = "im.example.org"
            groups = "my-groups"
            advertise = "203.0.113.7"
            outbound_proxy = "192.0.2.1"
            trusted_hosts = ["192.0.2.1", "::1"]
            [sip]
            listen = ["127.0.0.1:5070", "[::1]:5070"]
            udp = false
            [msrp]
            listen = "127.0.0.1"
            tb_granted = true
            accept_types = ["Text/Plain"]
            [limits]
            max_recipients = 7
            max_message_size = "32KiB"
            [timers]
            t1 = "100ms"
            invite_timeout = "10s"
            "#,
            &[],
        )
        .unwrap();
        assert_eq!(c.domain, "im.example.org");
        // The factory follows the domain when not set explicitly.
        assert_eq!(
            c.conference_factory.raw,
            "sip:conference-factory@im.example.org"
        );
        assert!(c.groups_dir.ends_with("my-groups"));
        assert!(c.groups_dir.is_absolute(), "relative to the file's folder");
        assert_eq!(c.advertise.as_deref(), Some("203.0.113.7"));
        assert_eq!(c.outbound_proxy, Some("192.0.2.1:5060".parse().unwrap()));
        assert_eq!(c.trusted_hosts.len(), 2);
        assert!(c.is_trusted("::1".parse().unwrap()));
        assert!(!c.is_trusted("192.0.2.2".parse().unwrap()));
        assert_eq!(c.sip.len(), 2);
        assert!(!c.sip_udp && c.sip_tcp);
        assert!(c.bind().sip_udp.is_empty());
        assert_eq!(c.msrp.port(), DEFAULT_MSRP_PORT);
        assert!(c.tb_granted);
        assert_eq!(c.accept_types, vec!["text/plain"]);
        assert_eq!(c.limits.max_recipients, 7);
        assert_eq!(c.limits.max_message_size, 32 * 1024);
        assert_eq!(c.timers.t1, Duration::from_millis(100));
        assert_eq!(c.timers.t2, Duration::from_secs(4), "untouched default");
        let m = c.machine_config();
        assert_eq!(m.max_recipients, 7);
        assert!(m.tb_granted);
        assert_eq!(m.invite_timeout, Duration::from_secs(10));
        assert_eq!(c.advertised_host(c.sip[0]), "203.0.113.7");
    }

    #[test]
    fn flags_override_toml() {
        let c = load_with(
            r#"
            domain = "file.example"
            conference_factory = "sip:factory@file.example"
            [sip]
            listen = ["127.0.0.1:5070"]
            [msrp]
            tb_granted = true
            [limits]
            max_recipients = 7
            [timers]
            t1 = "100ms"
            "#,
            &[
                "--domain",
                "flag.example",
                "--sip",
                "127.0.0.1:0",
                "--sip",
                "[::1]",
                "--tb-granted=false",
                "--max-recipients",
                "3",
                "--t1",
                "200ms",
                "--no-tcp",
                "--groups",
                "g",
            ],
        )
        .unwrap();
        assert_eq!(c.domain, "flag.example");
        // Set in the file, so a later --domain does not move it.
        assert_eq!(c.conference_factory.raw, "sip:factory@file.example");
        assert_eq!(
            c.sip,
            vec![
                "127.0.0.1:0".parse().unwrap(),
                "[::1]:5060".parse().unwrap()
            ]
        );
        assert!(!c.tb_granted);
        assert_eq!(c.limits.max_recipients, 3);
        assert_eq!(c.timers.t1, Duration::from_millis(200));
        assert!(c.sip_udp && !c.sip_tcp);
        assert_eq!(c.groups_dir, Path::new("g"), "flag paths stay as given");
    }

    #[test]
    fn flags_alone() {
        let c = ServerConfig::load(&cli(&[
            "--tb-granted",
            "--outbound-proxy",
            "[2001:db8::1]:5080",
            "--advertise",
            "2001:db8::2",
            "--accept-types",
            "text/plain,message/cpim",
            "--max-msrp-message",
            "2M",
            "--conference-factory",
            "sips:conf@example.net",
            "--log",
            "im_server=debug",
        ]))
        .unwrap();
        assert!(c.tb_granted);
        assert_eq!(
            c.outbound_proxy,
            Some("[2001:db8::1]:5080".parse().unwrap())
        );
        assert_eq!(c.advertise.as_deref(), Some("[2001:db8::2]"));
        assert_eq!(c.accept_types, vec!["text/plain", "message/cpim"]);
        assert_eq!(c.machine_config().max_size, Some(2 << 20));
        assert_eq!(c.conference_factory.scheme, "sips");
        assert_eq!(c.log, "im_server=debug");
    }

    #[test]
    fn bad_flags_are_clap_errors() {
        for args in [
            &["--sip", "localhost:5060"][..],
            &["--sip", "127.0.0.1:70000"],
            &["--msrp", "nonsense"],
            &["--t1", "5"],
            &["--t1", "5 fortnights"],
            &["--max-recipients", "-1"],
            &["--max-message-size", "12XB"],
            &["--conference-factory", "http://x"],
            &["--conference-factory", "sip:example.com"],
            &["--domain", "exa mple.com"],
            &["--domain", "example.com:5060"],
            &["--advertise", "203.0.113.7:5060"],
            &["--trusted-host", "proxy.example.com"],
            &["--accept-types", "text"],
            &["--tb-granted=maybe"],
            &["--unknown-flag"],
        ] {
            let mut v = vec!["im-server"];
            v.extend_from_slice(args);
            let err = Cli::try_parse_from(&v).expect_err(&format!("{args:?} must fail"));
            let msg = err.to_string();
            assert!(
                msg.contains("error"),
                "{args:?} gave an unhelpful message: {msg}"
            );
        }
    }

    #[test]
    fn bad_toml_values_name_file_and_key() {
        for (text, key) in [
            ("domain = \"a b\"", "domain"),
            ("[sip]\nlisten = [\"host:1\"]", "sip.listen"),
            ("[limits]\nmax_recipients = -5", "limits.max_recipients"),
            ("[limits]\nmax_recipients = 0", "limits.max_recipients"),
            (
                "[limits]\nmax_message_size = \"1Q\"",
                "limits.max_message_size",
            ),
            ("[timers]\nt1 = \"0ms\"", "timers.t1"),
            ("[timers]\nt1 = \"5s\"\nt2 = \"1s\"", "timers.t2"),
            ("[timers]\nt4 = \"fast\"", "timers.t4"),
            ("outbound_proxy = \"proxy\"", "outbound_proxy"),
            ("log = \"[[[\"", "log"),
            ("[msrp]\naccept_types = []", "msrp.accept_types"),
            ("[sip]\nudp = false\ntcp = false", "sip.udp/sip.tcp"),
            ("[sip]\nlisten = [\"0.0.0.0\"]", "advertise"),
            ("workers = 0", "workers"),
            ("workers = 5000", "workers"),
            ("workers = -1", "workers"),
            ("store_url = \"mysql://x\"", "store_url"),
            (
                "store = \"s.redb\"\nstore_url = \"postgres://h/db\"",
                "store_url",
            ),
            ("store_refresh = \"often\"", "store_refresh"),
        ] {
            let err = load_with(text, &[]).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn store_url_key_and_flags() {
        let c = load_with(
            "store_url = \"postgres://imspec@127.0.0.1:5432/im\"\nxcap = \"127.0.0.1:8080\"",
            &["--store-refresh", "250ms"],
        )
        .unwrap();
        assert_eq!(
            c.store_url.as_deref(),
            Some("postgres://imspec@127.0.0.1:5432/im")
        );
        assert_eq!(c.store_refresh, Duration::from_millis(250));
        let back = load_with(&c.to_toml(), &[]).unwrap();
        assert_eq!(back.store_url, c.store_url);
        assert_eq!(back.store_refresh, c.store_refresh);
        let c = load_with("", &["--store-url", "postgresql://h/db"]).unwrap();
        assert_eq!(c.store_url.as_deref(), Some("postgresql://h/db"));
        assert_eq!(c.store_refresh, Duration::from_secs(1));
    }

    #[test]
    fn workers_key_flag_and_msrp_ports() {
        let c = load_with("", &[]).unwrap();
        assert_eq!(c.workers, None);
        assert!(c.worker_count() >= 1, "one per core by default");
        let c = load_with("workers = 3", &[]).unwrap();
        assert_eq!((c.workers, c.worker_count()), (Some(3), 3));
        let c = load_with("workers = 3", &["--workers", "1"]).unwrap();
        assert_eq!(c.worker_count(), 1, "the flag beats the file");
        let c = load_with("[msrp]\nlisten = \"127.0.0.1:2900\"", &[]).unwrap();
        let ports: Vec<u16> = c.msrp_listen(3).iter().map(|a| a.port()).collect();
        assert_eq!(ports, [2900, 2901, 2902]);
        let c = load_with("[msrp]\nlisten = \"127.0.0.1:0\"", &[]).unwrap();
        assert!(c.msrp_listen(2).iter().all(|a| a.port() == 0));
    }

    #[test]
    fn toml_syntax_and_unknown_keys() {
        let err = load_with("domain = ", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err}");
        let err = load_with("domian = \"x\"", &[]).unwrap_err().to_string();
        assert!(err.contains("domian"), "{err}");
        let err = load_with("[limits]\nmax_recipient = 3", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_recipient"), "{err}");
        let err = load_with("domain = 5", &[]).unwrap_err().to_string();
        assert!(err.contains("string"), "{err}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let mut c = cli(&[]);
        c.config = Some(PathBuf::from("/nonexistent/im-server.toml"));
        let err = ServerConfig::load(&c).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/im-server.toml"));
    }

    #[test]
    fn unspecified_bind_with_advertise_is_fine() {
        let c = ServerConfig::load(&cli(&[
            "--sip",
            "0.0.0.0:0",
            "--msrp",
            "0.0.0.0:0",
            "--advertise",
            "sip.example.com",
        ]))
        .unwrap();
        assert_eq!(c.advertised_host(c.sip[0]), "sip.example.com");
    }

    #[test]
    fn print_config_round_trips() {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        let c = ServerConfig::load(&cli(&[
            "--outbound-proxy",
            "192.0.2.1",
            "--advertise",
            "203.0.113.9",
            "--trusted-host",
            "192.0.2.1",
            "--t1",
            "250ms",
        ]))
        .unwrap();
        std::fs::write(f.path(), c.to_toml()).unwrap();
        let mut again = cli(&[]);
        again.config = Some(f.path().to_owned());
        assert_eq!(ServerConfig::load(&again).unwrap(), c);
    }

    /// `[tls]`: off by default; paths resolved beside the file; listen defaults (5061, free
    /// MSRP ports, port + worker index); flags override the file; `--print-config` round
    /// trips; half a configuration is refused.
    #[test]
    fn tls_table_flags_and_checks() {
        let d = ServerConfig::default();
        assert!(!d.tls_on());
        assert_eq!(d.sip_tls_listen(), None);
        assert!(d.msrp_tls_listen(2).is_empty());
        let text = "[tls]\ncert = \"chain.pem\"\nkey = \"key.pem\"\n\
                    msrp = \"127.0.0.1:2865\"\nhandshake_timeout = \"2s\"\n";
        let cfg = load_with(text, &[]).unwrap();
        let cert = cfg.tls.cert.clone().unwrap();
        assert!(
            cert.is_absolute() && cert.ends_with("chain.pem"),
            "{cert:?}"
        );
        assert!(cfg.tls_on());
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(cfg.sip_tls_listen(), Some(sa("127.0.0.1:5061")));
        assert_eq!(
            cfg.msrp_tls_listen(2),
            [sa("127.0.0.1:2865"), sa("127.0.0.1:2866")]
        );
        assert_eq!(cfg.io_limits().handshake_timeout, Duration::from_secs(2));
        let cfg = load_with(
            text,
            &[
                "--sip-tls",
                "127.0.0.2",
                "--tls-ca",
                "/r.pem",
                "--msrp-tls",
                "127.0.0.1:0",
            ],
        )
        .unwrap();
        assert_eq!(cfg.sip_tls_listen(), Some(sa("127.0.0.2:5061")));
        assert_eq!(cfg.tls.ca, Some(PathBuf::from("/r.pem")));
        assert_eq!(
            cfg.msrp_tls_listen(2),
            [sa("127.0.0.1:0"), sa("127.0.0.1:0")]
        );
        let again = toml_file(&cfg.to_toml());
        let mut c = cli(&[]);
        c.config = Some(again.path().to_owned());
        assert_eq!(ServerConfig::load(&c).unwrap(), cfg);
        for (text, flags, key) in [
            ("[tls]\ncert = \"c.pem\"\n", &[][..], "tls.cert/tls.key"),
            ("", &["--sip-tls", "127.0.0.1"][..], "tls.sip/tls.msrp"),
            (
                "",
                &[
                    "--tls-cert",
                    "c",
                    "--tls-key",
                    "k",
                    "--handshake-timeout",
                    "0s",
                ][..],
                "tls.handshake_timeout",
            ),
        ] {
            let err = load_with(text, flags).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn shipped_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("im-server.toml");
        let mut c = cli(&[]);
        c.config = Some(path);
        let cfg = ServerConfig::load(&c).unwrap();
        // The example documents the defaults: loading it changes nothing that matters.
        let d = ServerConfig::default();
        assert_eq!(cfg.sip, d.sip);
        assert_eq!(cfg.machine_config(), d.machine_config());
        assert_eq!(cfg.limits, d.limits);
        assert_eq!(cfg.timers, d.timers);
        assert_eq!(
            cfg.groups_dir.canonicalize().unwrap(),
            d.groups_dir.canonicalize().unwrap()
        );
    }

    #[test]
    fn auth_keys_flags_and_users() {
        let d = ServerConfig::default();
        assert!(d.auth.enabled);
        assert_eq!(d.users, crate::users::demo_users());
        assert_eq!(d.realm(), "example.com");
        let c = load_with(
            "domain = \"ims.example.org\"\n\
             [auth]\nalgorithms = [\"MD5\"]\nnonce_lifetime = \"30s\"\n\
             allow_external_recipients = true\n\
             [[users]]\nuser = \"zoe\"\nmd5 = \"0123456789ABCDEF0123456789abcdef\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.auth.algorithms, vec![Algorithm::Md5]);
        assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(30));
        assert!(c.auth.allow_external_recipients);
        assert!(c.machine_config().allow_external_recipients);
        assert_eq!(c.realm(), "ims.example.org");
        // A file's users replace the demo users; HA1 values are kept in lower case.
        assert_eq!(c.users.len(), 1);
        assert_eq!(
            c.users[0].ha1.md5.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let none = load_with("users = []\n", &[]).unwrap();
        assert!(none.users.is_empty());
        let off = load_with("", &["--no-auth", "--auth-algorithm", "SHA-256"]).unwrap();
        assert!(!off.auth.enabled);
        assert_eq!(off.auth.algorithms, vec![Algorithm::Sha256]);
        for bad in [
            "[[users]]\nuser = \"x\"\n",
            "[[users]]\nuser = \"x\"\nmd5 = \"xyz\"\n",
            "[[users]]\nuser = \"x\"\npassword = \"secret\"\n",
            "[auth]\nalgorithms = [\"MD5-sess\"]\n",
            "[auth]\nalgorithms = []\n",
            "[auth]\nnonce_lifetime = \"0s\"\n",
        ] {
            assert!(load_with(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2 M"), Ok(2 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615M").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("18446744073709551615h").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(4)), "4s");
    }
}
