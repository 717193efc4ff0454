//! Unit tests of the configuration.
#![cfg(test)]

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
        c.conference_factory.raw(),
        "sip:conference-factory@example.com"
    );
    assert_eq!(c.groups_dir, Path::new(DEFAULT_GROUPS_DIR));
    assert!(c.groups_dir.ends_with("examples/im-server/groups"));
    assert_eq!(c.outbound_proxy, None);
    assert!(!c.tb_granted);
    assert!(!c.aggregate_imdns);
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
        aggregate_imdns = true
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
        c.conference_factory.raw(),
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
    assert!(c.aggregate_imdns);
    assert!(c.machine_config().aggregate_imdns);
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
    assert_eq!(c.conference_factory.raw(), "sip:factory@file.example");
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
    assert_eq!(c.conference_factory.scheme(), "sips");
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

#[test]
fn offline_bounds_from_the_file_and_flags() {
    let d = ServerConfig::default();
    assert_eq!(d.limits.offline_max_per_user, 100);
    assert_eq!(d.limits.offline_max_age, Duration::from_secs(7 * 24 * 3600));
    let text = "[limits]\noffline_max_per_user = 5\noffline_max_age = \"2h\"\n";
    let c = load_with(text, &[]).unwrap();
    assert_eq!(c.limits.offline_max_per_user, 5);
    assert_eq!(c.limits.offline_max_age, Duration::from_secs(7200));
    // Flags beat the file; 0 turns keeping off.
    let c = load_with(
        text,
        &["--offline-max-per-user", "0", "--offline-max-age", "90s"],
    )
    .unwrap();
    assert_eq!(c.limits.offline_max_per_user, 0);
    assert_eq!(c.limits.offline_max_age, Duration::from_secs(90));
    // What --print-config writes reads back the same.
    let back = load_with(&c.to_toml(), &[]).unwrap();
    assert_eq!(back.limits, c.limits);
    let err = load_with("[limits]\noffline_max_age = \"soon\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.offline_max_age"), "{err}");
}

/// `limits.conn_idle_timeout` (issue 14): 2 minutes by default, from the file, from the
/// flag over the file, into the driver's limits, and through `--print-config`.
#[test]
fn conn_idle_timeout_key_flag_and_print() {
    let d = ServerConfig::load(&cli(&[])).unwrap();
    assert_eq!(d.limits.conn_idle_timeout, Duration::from_secs(120));
    assert_eq!(d.io_limits().conn_idle_timeout, Duration::from_secs(120));
    let c = load_with("[limits]\nconn_idle_timeout = \"45s\"\n", &[]).unwrap();
    assert_eq!(c.io_limits().conn_idle_timeout, Duration::from_secs(45));
    assert!(c.to_toml().contains("conn_idle_timeout = \"45s\""));
    let c = load_with(
        "[limits]\nconn_idle_timeout = \"45s\"\n",
        &["--conn-idle-timeout", "0s"],
    )
    .unwrap();
    assert_eq!(c.io_limits().conn_idle_timeout, Duration::ZERO);
    let err = load_with("[limits]\nconn_idle_timeout = \"idle\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.conn_idle_timeout"), "{err}");
}

/// `limits.overload_interval` (issue 11): shedding needs every input late for 100 ms by
/// default; from the file, from the flag over the file, into the driver's limits, and
/// through `--print-config`.
#[test]
fn overload_interval_key_flag_and_print() {
    let d = ServerConfig::load(&cli(&[])).unwrap();
    assert_eq!(d.io_limits().overload_interval, Duration::from_millis(100));
    assert_eq!(d.io_limits().overload_delay, Duration::from_millis(20));
    let c = load_with("[limits]\noverload_interval = \"250ms\"\n", &[]).unwrap();
    assert_eq!(c.io_limits().overload_interval, Duration::from_millis(250));
    assert!(c.to_toml().contains("overload_interval = \"250ms\""));
    let back = load_with(&c.to_toml(), &[]).unwrap();
    assert_eq!(back.limits, c.limits);
    let c = load_with(
        "[limits]\noverload_interval = \"250ms\"\n",
        &["--overload-interval", "0s"],
    )
    .unwrap();
    assert_eq!(c.io_limits().overload_interval, Duration::ZERO);
    let err = load_with("[limits]\noverload_interval = \"soon\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.overload_interval"), "{err}");
}

/// `limits.udp_recv_buffer` (issue 11): 4 MiB by default; from the file (with a size
/// suffix), from the flag over the file, into the driver's limits, through
/// `--print-config`; 0 leaves the system's default.
#[test]
fn udp_recv_buffer_key_flag_and_print() {
    let d = ServerConfig::load(&cli(&[])).unwrap();
    assert_eq!(d.io_limits().udp_recv_buffer, 4 << 20);
    let c = load_with("[limits]\nudp_recv_buffer = \"8MiB\"\n", &[]).unwrap();
    assert_eq!(c.io_limits().udp_recv_buffer, 8 << 20);
    assert!(c.to_toml().contains("udp_recv_buffer = 8388608"));
    let back = load_with(&c.to_toml(), &[]).unwrap();
    assert_eq!(back.limits, c.limits);
    let c = load_with(
        "[limits]\nudp_recv_buffer = \"8MiB\"\n",
        &["--udp-recv-buffer", "0"],
    )
    .unwrap();
    assert_eq!(c.io_limits().udp_recv_buffer, 0);
    let err = load_with("[limits]\nudp_recv_buffer = \"big\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.udp_recv_buffer"), "{err}");
}

/// Issue 12: the session lifetime, the MSRP idle limit and the recipient-list limits were
/// runtime constants; now `[limits]` keys and flags, written by `--print-config`, handed to
/// the endpoint, and checked.
#[test]
fn session_msrp_and_list_limits_from_the_file_and_flags() {
    let d = ServerConfig::default();
    assert_eq!(d.limits.session_lifetime, Duration::from_secs(300));
    assert_eq!(d.limits.msrp_idle, Duration::from_secs(30));
    // The defaults are the runtime's own, so a server without the keys behaves as before.
    assert_eq!(
        d.list_limits(),
        im_runtime::proto::body::resource_lists::Limits::default()
    );
    let text = "[limits]\nsession_lifetime = \"2m\"\nmsrp_idle = \"5s\"\n\
                max_list_entries = 20\nmax_list_size = \"8KiB\"\nmax_list_depth = 4\n\
                max_list_nodes = 100\n";
    let c = load_with(text, &[]).unwrap();
    assert_eq!(c.limits.session_lifetime, Duration::from_secs(120));
    assert_eq!(c.limits.msrp_idle, Duration::from_secs(5));
    let l = c.list_limits();
    assert_eq!(
        (l.max_entries, l.max_bytes, l.max_depth, l.max_nodes),
        (20, 8192, 4, 100)
    );
    // Flags beat the file.
    let c = load_with(
        text,
        &[
            "--session-lifetime",
            "90s",
            "--msrp-idle",
            "1s",
            "--max-list-entries",
            "2",
            "--max-list-size",
            "1KiB",
            "--max-list-depth",
            "3",
            "--max-list-nodes",
            "50",
        ],
    )
    .unwrap();
    assert_eq!(c.limits.session_lifetime, Duration::from_secs(90));
    assert_eq!(c.limits.msrp_idle, Duration::from_secs(1));
    let l = c.list_limits();
    assert_eq!(
        (l.max_entries, l.max_bytes, l.max_depth, l.max_nodes),
        (2, 1024, 3, 50)
    );
    // What --print-config writes reads back the same.
    let printed = c.to_toml();
    assert!(printed.contains("session_lifetime = \"90s\""), "{printed}");
    assert!(printed.contains("max_list_entries = 2\n"), "{printed}");
    let back = load_with(&printed, &[]).unwrap();
    assert_eq!(back.limits, c.limits);
    // Zero durations and lists too small to hold one entry are refused, naming the key.
    for (text, key) in [
        (
            "[limits]\nsession_lifetime = \"0s\"\n",
            "limits.session_lifetime",
        ),
        ("[limits]\nmsrp_idle = \"0ms\"\n", "limits.msrp_idle"),
        (
            "[limits]\nmax_list_entries = 0\n",
            "limits.max_list_entries",
        ),
        ("[limits]\nmax_list_depth = 2\n", "limits.max_list_depth"),
        ("[limits]\nmax_list_size = 10\n", "limits.max_list_size"),
        (
            "[limits]\nmax_list_nodes = 5000000000\n",
            "limits.max_list_nodes",
        ),
        ("[limits]\nmsrp_idle = \"soon\"\n", "limits.msrp_idle"),
    ] {
        let err = load_with(text, &[]).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}
