//! The TOML file's shape, as serde reads it; [`super::ServerConfig`] validates it.

use super::*;

/// The TOML file's shape. Every key is optional; unknown keys are an error so that a typo
/// does not silently fall back to a default.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) domain: Option<String>,
    pub(super) conference_factory: Option<String>,
    pub(super) groups: Option<PathBuf>,
    pub(super) groups_poll: Option<String>,
    pub(super) xcap: Option<String>,
    pub(super) xcap_root: Option<String>,
    pub(super) store: Option<PathBuf>,
    pub(super) store_url: Option<String>,
    pub(super) store_refresh: Option<String>,
    pub(super) advertise: Option<String>,
    pub(super) outbound_proxy: Option<String>,
    pub(super) trusted_hosts: Option<Vec<String>>,
    pub(super) log: Option<String>,
    pub(super) workers: Option<SizeValue>,
    pub(super) aggregate_imdns: Option<bool>,
    #[serde(default)]
    pub(super) sip: FileSip,
    #[serde(default)]
    pub(super) msrp: FileMsrp,
    #[serde(default)]
    pub(super) limits: FileLimits,
    #[serde(default)]
    pub(super) timers: FileTimers,
    #[serde(default)]
    pub(super) tls: FileTls,
    #[serde(default)]
    pub(super) auth: FileAuth,
    pub(super) users: Option<Vec<FileUser>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) ca: Option<PathBuf>,
    pub(super) sip: Option<String>,
    pub(super) msrp: Option<String>,
    pub(super) handshake_timeout: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAuth {
    pub(super) enabled: Option<bool>,
    pub(super) realm: Option<String>,
    pub(super) nonce_lifetime: Option<String>,
    pub(super) allow_external_recipients: Option<bool>,
    pub(super) min_register_expires: Option<String>,
    pub(super) algorithms: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct FileUser {
    pub(super) user: String,
    pub(super) realm: Option<String>,
    pub(super) md5: Option<String>,
    pub(super) sha256: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSip {
    pub(super) listen: Option<Vec<String>>,
    pub(super) udp: Option<bool>,
    pub(super) tcp: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMsrp {
    pub(super) listen: Option<String>,
    pub(super) accept_types: Option<Vec<String>>,
    pub(super) accept_wrapped_types: Option<Vec<String>>,
    pub(super) tb_granted: Option<bool>,
}

/// A size written as a number of octets or as text with a unit (`"64KiB"`).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Int(i64),
    Text(String),
}

impl SizeValue {
    pub(super) fn parse(&self) -> Result<u64, String> {
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
pub(super) struct FileLimits {
    pub(super) max_message_size: Option<SizeValue>,
    pub(super) udp_recv_buffer: Option<SizeValue>,
    pub(super) max_recipients: Option<SizeValue>,
    pub(super) max_msrp_chunk: Option<SizeValue>,
    pub(super) max_msrp_message: Option<SizeValue>,
    pub(super) max_sessions: Option<SizeValue>,
    pub(super) max_subscriptions_per_user: Option<SizeValue>,
    pub(super) max_subscriptions_per_session: Option<SizeValue>,
    pub(super) max_sip_connections: Option<SizeValue>,
    pub(super) max_msrp_connections: Option<SizeValue>,
    pub(super) max_connections_per_source: Option<SizeValue>,
    pub(super) head_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) conn_idle_timeout: Option<String>,
    pub(super) overload_delay: Option<String>,
    pub(super) overload_interval: Option<String>,
    pub(super) offline_max_per_user: Option<SizeValue>,
    pub(super) offline_max_age: Option<String>,
    pub(super) session_lifetime: Option<String>,
    pub(super) msrp_idle: Option<String>,
    pub(super) msrp_report_wait: Option<String>,
    pub(super) max_list_entries: Option<SizeValue>,
    pub(super) max_list_size: Option<SizeValue>,
    pub(super) max_list_depth: Option<SizeValue>,
    pub(super) max_list_nodes: Option<SizeValue>,
    pub(super) max_udp_request: Option<SizeValue>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTimers {
    pub(super) t1: Option<String>,
    pub(super) t2: Option<String>,
    pub(super) t4: Option<String>,
    pub(super) invite_timeout: Option<String>,
}
