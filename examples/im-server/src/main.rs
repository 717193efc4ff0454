//! `im-server`: parses flags and the configuration file, loads the groups folder, binds the
//! sockets and runs the imspec runtime on them.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use im_runtime::io::Driver;
use im_server::config::{Cli, ServerConfig};
use im_server::groups::GroupStore;
use im_server::router::{LocationTable, Router};

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
    // What the endpoint needs, ready for it: `cfg.machine_config()` (Env::config), `groups`
    // (Env::directory; call `groups.reload_if_changed(now)` per initial request),
    // `router` (Env::router; call `router.set_now(now)` before machines run and feed REGISTER
    // into `router.locations`), `cfg.timer_config()`, `cfg.limits`, `cfg.is_trusted(peer)`,
    // `cfg.advertised_host(bound)` and `local` (the bound addresses).
    let _machine_config = cfg.machine_config();
    let _timers = cfg.timer_config();
    let _ = (&groups, &router);

    // ===== RUNTIME START (lead: wire the endpoint here) ====================================
    // Replace this block with:
    //   let core = <endpoint>::new(cfg.machine_config(), groups, router, cfg.timer_config(),
    //                              cfg.limits.clone(), local, …);
    //   driver.run(core, shutdown_signal()).await;
    //   ExitCode::SUCCESS
    drop(driver);
    eprintln!(
        "im-server: configuration loaded and sockets bound, but the runtime endpoint is not \
         wired into this binary yet (issue 5); exiting.\n\nresolved configuration:\n{}",
        cfg.to_toml()
    );
    let _ = shutdown_signal;
    ExitCode::from(3)
    // ===== RUNTIME END =====================================================================
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
