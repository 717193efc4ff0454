//! `--print-config`: the configuration written back as a TOML document in the file's shape,
//! which `--config` reads back to the same values.

use super::*;

impl ServerConfig {
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
            q(self.conference_factory.raw())
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
        line(format!("aggregate_imdns = {}", self.aggregate_imdns));
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
        line(format!("udp_recv_buffer = {}", l.udp_recv_buffer));
        line(format!("max_recipients = {}", l.max_recipients));
        line(format!("max_msrp_chunk = {}", l.max_msrp_chunk));
        line(format!("max_msrp_message = {}", l.max_msrp_message));
        line(format!("max_sessions = {}", l.max_sessions));
        line(format!(
            "max_subscriptions_per_user = {}",
            l.max_subscriptions_per_user
        ));
        line(format!(
            "max_subscriptions_per_session = {}",
            l.max_subscriptions_per_session
        ));
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
        line(format!(
            "conn_idle_timeout = {}",
            q(&format_duration(l.conn_idle_timeout))
        ));
        line(format!(
            "overload_delay = {}",
            q(&format_duration(l.overload_delay))
        ));
        line(format!(
            "overload_interval = {}",
            q(&format_duration(l.overload_interval))
        ));
        line(format!("offline_max_per_user = {}", l.offline_max_per_user));
        line(format!(
            "offline_max_age = {}",
            q(&format_duration(l.offline_max_age))
        ));
        line(format!(
            "session_lifetime = {}",
            q(&format_duration(l.session_lifetime))
        ));
        line(format!("msrp_idle = {}", q(&format_duration(l.msrp_idle))));
        line(format!(
            "msrp_report_wait = {}",
            q(&format_duration(l.msrp_report_wait))
        ));
        line(format!("max_list_entries = {}", l.max_list_entries));
        line(format!("max_list_size = {}", l.max_list_size));
        line(format!("max_list_depth = {}", l.max_list_depth));
        line(format!("max_list_nodes = {}", l.max_list_nodes));
        line(format!("max_udp_request = {}", l.max_udp_request));
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
