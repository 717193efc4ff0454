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

mod cli;
mod file;
mod parse;
mod print;
mod tests;

pub use cli::{Cli, Command, UserCommand};
use file::*;
pub use parse::*;

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

/// Size limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest SIP message in octets (513 Message Too Large over it).
    pub max_message_size: usize,
    /// Largest request sent to an invitee over UDP; a larger one goes over TCP (RFC 3261
    /// §18.1.1), over UDP again only when the TCP connect fails (0: never switch).
    pub max_udp_request: usize,
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
    /// Time from the first byte of a message head to its end.
    pub head_timeout: Duration,
    /// Time a connection may stay silent before its first byte.
    pub idle_timeout: Duration,
    /// Time an accepted SIP connection that nothing uses (no session, no registration made
    /// over it) may stay silent before it is closed (zero: never).
    pub conn_idle_timeout: Duration,
    /// Time an input may wait in a worker's queue before new sessions are shed with 503
    /// (zero: never), when every input for `overload_interval` waited that long.
    pub overload_delay: Duration,
    /// Time every input must wait more than `overload_delay` before new sessions are shed;
    /// one input that waits less ends it, so a lone spike sheds nothing (zero: one late
    /// input is enough).
    pub overload_interval: Duration,
    /// Receive buffer asked for each SIP UDP socket, in octets (0: the system's default).
    /// A datagram that finds it full is dropped unseen and costs its call a 500 ms
    /// retransmission; a larger one turns a burst into a wait the overload measure sheds.
    pub udp_recv_buffer: usize,
    /// Conference-state subscriptions (RFC 4575) one subscriber may hold at once, per
    /// worker; more get 403 with a Warning (0: none).
    pub max_subscriptions_per_user: usize,
    /// Conference-state subscriptions one session may have at once (403 beyond; 0: none).
    pub max_subscriptions_per_session: usize,
    /// Most page-mode copies kept (in the store) for one recipient with no registration;
    /// 0 keeps none (extension ext-dr.6).
    pub offline_max_per_user: usize,
    /// How long a kept copy waits for its recipient to register before it fails.
    pub offline_max_age: Duration,
    /// The longest a session may live; then the runtime tears down what is left (CANCEL
    /// and BYE every leg and the originator): a safety net under the spec's own timers.
    pub session_lifetime: Duration,
    /// How long an MSRP connection may stay unbound, how long after its ACK the
    /// originator's MSRP session may take to bind, and how long a copy's SEND may wait for
    /// its response, before the machines hear `msrp closed`.
    pub msrp_idle: Duration,
    /// How long a copy that asked its invitee for a success REPORT (the spec's `deliver {
    /// success-report yes }`) waits for it before the leg hears `msrp failed` 408.
    pub msrp_report_wait: Duration,
    /// Most `<entry>` elements one recipient list may hold (counted as written, before
    /// any de-duplication); more: `list.too_large`.
    pub max_list_entries: usize,
    /// Largest recipient-list document in octets; larger: `list.too_large`.
    pub max_list_size: usize,
    /// Deepest element nesting of a recipient list (the root is depth 1).
    pub max_list_depth: usize,
    /// Most XML nodes (elements, text, comments) of a recipient list.
    pub max_list_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_udp_request: 1300, // not a SIP status: octets (RFC 3261 §18.1.1)
            max_recipients: 100,   // not a SIP status: a count of recipients
            max_msrp_chunk: 64 * 1024,
            max_msrp_message: 1 << 20,
            max_sessions: 1000,
            max_sip_connections: 1024,
            max_msrp_connections: 1024,
            max_connections_per_source: 64,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            conn_idle_timeout: IoLimits::default().conn_idle_timeout,
            overload_delay: IoLimits::default().overload_delay,
            overload_interval: IoLimits::default().overload_interval,
            udp_recv_buffer: IoLimits::default().udp_recv_buffer,
            max_subscriptions_per_user: 16,
            max_subscriptions_per_session: 4,
            offline_max_per_user: 100, // not a SIP status: a count of kept copies
            offline_max_age: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(300),
            msrp_idle: Duration::from_secs(30),
            msrp_report_wait: Duration::from_secs(30),
            max_list_entries: 1000,
            max_list_size: 64 * 1024,
            max_list_depth: 16,
            max_list_nodes: 8192,
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
    /// Send a sender its delivery notifications about one message aggregated in one
    /// message (`config.aggregate_imdns`, ext-dr.7); RFC 5438 leaves it to local policy.
    pub aggregate_imdns: bool,
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
            aggregate_imdns: false,
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
        if let Some(v) = file.aggregate_imdns {
            self.aggregate_imdns = v;
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
        if let Some(v) = &l.udp_recv_buffer {
            self.limits.udp_recv_buffer = count("limits.udp_recv_buffer", v)?;
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
        if let Some(v) = &l.offline_max_per_user {
            self.limits.offline_max_per_user = count("limits.offline_max_per_user", v)?;
        }
        if let Some(v) = &l.offline_max_age {
            self.limits.offline_max_age = val(src, "limits.offline_max_age", v, parse_duration(v))?;
        }
        if let Some(v) = &l.max_sessions {
            self.limits.max_sessions = count("limits.max_sessions", v)?;
        }
        if let Some(v) = &l.max_subscriptions_per_user {
            self.limits.max_subscriptions_per_user = count("limits.max_subscriptions_per_user", v)?;
        }
        if let Some(v) = &l.max_subscriptions_per_session {
            self.limits.max_subscriptions_per_session =
                count("limits.max_subscriptions_per_session", v)?;
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
        if let Some(v) = &l.conn_idle_timeout {
            self.limits.conn_idle_timeout =
                val(src, "limits.conn_idle_timeout", v, parse_duration(v))?;
        }
        if let Some(v) = &l.overload_delay {
            self.limits.overload_delay = val(src, "limits.overload_delay", v, parse_duration(v))?;
        }
        if let Some(v) = &l.overload_interval {
            self.limits.overload_interval =
                val(src, "limits.overload_interval", v, parse_duration(v))?;
        }
        if let Some(v) = &l.session_lifetime {
            self.limits.session_lifetime =
                val(src, "limits.session_lifetime", v, parse_duration(v))?;
        }
        if let Some(v) = &l.msrp_idle {
            self.limits.msrp_idle = val(src, "limits.msrp_idle", v, parse_duration(v))?;
        }
        if let Some(v) = &l.msrp_report_wait {
            self.limits.msrp_report_wait =
                val(src, "limits.msrp_report_wait", v, parse_duration(v))?;
        }
        if let Some(v) = &l.max_list_entries {
            self.limits.max_list_entries = count("limits.max_list_entries", v)?;
        }
        if let Some(v) = &l.max_list_size {
            self.limits.max_list_size = count("limits.max_list_size", v)?;
        }
        if let Some(v) = &l.max_list_depth {
            self.limits.max_list_depth = count("limits.max_list_depth", v)?;
        }
        if let Some(v) = &l.max_list_nodes {
            self.limits.max_list_nodes = count("limits.max_list_nodes", v)?;
        }
        if let Some(v) = &l.max_udp_request {
            self.limits.max_udp_request = count("limits.max_udp_request", v)?;
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
        if let Some(v) = cli.udp_recv_buffer {
            self.limits.udp_recv_buffer = us(v);
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
        if let Some(v) = cli.max_subscriptions_per_user {
            self.limits.max_subscriptions_per_user = us(v);
        }
        if let Some(v) = cli.max_subscriptions_per_session {
            self.limits.max_subscriptions_per_session = us(v);
        }
        if let Some(v) = cli.offline_max_per_user {
            self.limits.offline_max_per_user = us(v);
        }
        if let Some(v) = cli.offline_max_age {
            self.limits.offline_max_age = v;
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
        if let Some(v) = cli.overload_delay {
            self.limits.overload_delay = v;
        }
        if let Some(v) = cli.overload_interval {
            self.limits.overload_interval = v;
        }
        if let Some(v) = cli.idle_timeout {
            self.limits.idle_timeout = v;
        }
        if let Some(v) = cli.conn_idle_timeout {
            self.limits.conn_idle_timeout = v;
        }
        if let Some(v) = cli.session_lifetime {
            self.limits.session_lifetime = v;
        }
        if let Some(v) = cli.msrp_idle {
            self.limits.msrp_idle = v;
        }
        if let Some(v) = cli.msrp_report_wait {
            self.limits.msrp_report_wait = v;
        }
        if let Some(v) = cli.max_list_entries {
            self.limits.max_list_entries = us(v);
        }
        if let Some(v) = cli.max_list_size {
            self.limits.max_list_size = us(v);
        }
        if let Some(v) = cli.max_list_depth {
            self.limits.max_list_depth = us(v);
        }
        if let Some(v) = cli.max_list_nodes {
            self.limits.max_list_nodes = us(v);
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
        if let Some(v) = cli.aggregate_imdns {
            self.aggregate_imdns = v;
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
        for (key, d) in [
            ("limits.session_lifetime", l.session_lifetime),
            ("limits.msrp_idle", l.msrp_idle),
            ("limits.msrp_report_wait", l.msrp_report_wait),
        ] {
            if d.is_zero() {
                return bad(key, &"0", "must be longer than zero");
            }
        }
        // The smallest list worth reading: `<resource-lists><list><entry uri=…/>` is three
        // levels and a handful of nodes; below these no list with one entry fits.
        for (key, n, min) in [
            ("limits.max_list_entries", l.max_list_entries, 1),
            ("limits.max_list_size", l.max_list_size, 64),
            ("limits.max_list_depth", l.max_list_depth, 3),
            ("limits.max_list_nodes", l.max_list_nodes, 4),
        ] {
            if n < min {
                return bad(key, &n, &format!("must be at least {min}"));
            }
        }
        if u32::try_from(l.max_list_nodes).is_err() {
            return bad(
                "limits.max_list_nodes",
                &l.max_list_nodes,
                "must be at most 4294967295",
            );
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
            aggregate_imdns: self.aggregate_imdns,
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
            conn_idle_timeout: self.limits.conn_idle_timeout,
            overload_delay: self.limits.overload_delay,
            overload_interval: self.limits.overload_interval,
            udp_recv_buffer: self.limits.udp_recv_buffer,
            max_sip_message: self.limits.max_message_size,
            handshake_timeout: self
                .tls
                .handshake_timeout
                .unwrap_or(IoLimits::default().handshake_timeout),
            ..IoLimits::default()
        }
    }

    /// The recipient-list limits the endpoint reads lists with (`[limits] max_list_*`); a
    /// list over one reaches the specs as `list.too_large`.
    pub fn list_limits(&self) -> im_runtime::proto::body::resource_lists::Limits {
        let l = &self.limits;
        im_runtime::proto::body::resource_lists::Limits {
            max_bytes: l.max_list_size,
            max_depth: l.max_list_depth,
            // validate() keeps it within u32.
            max_nodes: u32::try_from(l.max_list_nodes).unwrap_or(u32::MAX),
            max_entries: l.max_list_entries,
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
}
