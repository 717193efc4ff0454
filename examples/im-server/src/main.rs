//! `im-server`: parses flags and the configuration file, loads the groups folder, binds the
//! sockets and runs the imspec runtime on them.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::io::Driver;
use im_server::app::ServerApp;
use im_server::config::{Cli, ServerConfig};
use im_server::groups::GroupStore;
use im_server::router::{LocationTable, Router};
use std::net::SocketAddr;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match ServerConfig::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("im-server: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", cfg.to_toml());
        return ExitCode::SUCCESS;
    }
    let (groups, report) = GroupStore::open(&cfg.groups_dir, cfg.groups_poll, startup_time());
    if cli.check {
        for p in &report.problems {
            eprintln!("{}: {}", p.file.display(), p.reason);
        }
        println!(
            "configuration ok; {} group(s) in {}, {} problem(s)",
            groups.len(),
            groups.dir().display(),
            report.problems.len()
        );
        return if report.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    init_logging(&cli, &cfg);
    let router = Router::new(
        cfg.outbound_proxy,
        LocationTable::new(cfg.limits.max_sessions.saturating_mul(10)),
    );

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("im-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve(cfg, groups, router))
}

async fn serve(cfg: ServerConfig, groups: GroupStore, router: Router) -> ExitCode {
    let driver = match Driver::bind(&cfg.bind(), cfg.io_limits()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("im-server: cannot bind {:?}: {e}", cfg.bind());
            return ExitCode::FAILURE;
        }
    };
    let local = driver.local().clone();
    tracing::info!(
        sip_udp = ?local.sip_udp,
        sip_tcp = ?local.sip_tcp,
        msrp = ?local.msrp_tcp,
        advertise = %cfg.advertised_host(local.msrp_tcp.first().copied().unwrap_or(cfg.msrp)),
        domain = %cfg.domain,
        groups = groups.len(),
        "im-server bound"
    );
    let sip_bound = local
        .sip_udp
        .first()
        .or(local.sip_tcp.first())
        .copied()
        .unwrap_or(cfg.sip[0]);
    let msrp_bound = local.msrp_tcp.first().copied().unwrap_or(cfg.msrp);
    let mut ep = EndpointConfig::new(advertised(&cfg, sip_bound), advertised(&cfg, msrp_bound));
    ep.spec = cfg.machine_config();
    ep.trusted_hosts = cfg.trusted_hosts.clone();
    ep.timers = cfg.timer_config();
    ep.max_message_size = cfg.limits.max_message_size;
    ep.max_sessions = cfg.limits.max_sessions;
    ep.msrp_chunk_size = cfg.limits.max_msrp_chunk;
    ep.msrp_limits.max_body_bytes = cfg.limits.max_msrp_chunk.max(ep.msrp_limits.max_body_bytes);
    ep.seed = random_seed();
    let app = ServerApp { groups, router };
    let core = Endpoint::new(ep, app);
    let core = driver.run(core, shutdown_signal()).await;
    tracing::info!(
        live_sessions = core.live_sessions(),
        stats = ?core.stats(),
        "im-server stopped"
    );
    ExitCode::SUCCESS
}

/// The address to advertise for a socket bound to `bound`: `--advertise` when it is an IP
/// literal, else the bound address. (A host name would need the endpoint to carry names in
/// Via/Contact/`a=path`; it advertises IP addresses only for now.)
fn advertised(cfg: &ServerConfig, bound: SocketAddr) -> SocketAddr {
    let host = cfg.advertised_host(bound);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, bound.port()),
        Err(_) => {
            tracing::warn!(%host, "advertised host is not an IP literal; advertising the bound address");
            bound
        }
    }
}

/// Per-process randomness for tags, branches and MSRP ids, from the standard library's
/// randomly keyed hasher (no extra dependency; ids need unpredictability, not a CSPRNG).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// The one clock read outside the runtime's IO layer: the first groups load happens before
/// the driver (and its clock) runs.
#[allow(clippy::disallowed_methods)]
fn startup_time() -> Instant {
    Instant::now()
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, for the driver's graceful shutdown.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--log` beats `RUST_LOG`, which beats the configuration's `log` key.
fn init_logging(cli: &Cli, cfg: &ServerConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = match (&cli.log, std::env::var("RUST_LOG")) {
        (Some(f), _) => EnvFilter::try_new(f),
        (None, Ok(env)) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(&cfg.log),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
