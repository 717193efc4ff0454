//! `im-server`: parses flags and the configuration file, loads the groups folder, binds the
//! sockets and runs the imspec runtime on them.

mod allocator;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use im_runtime::endpoint::{Endpoint, EndpointConfig, Stats};
use im_runtime::io::{Driver, TlsSetup};
use im_runtime::steer::Shard;
use im_server::app::ServerApp;
use im_server::config::{Cli, Command, ServerConfig, UserCommand};
use im_server::groups::{GroupStore, SharedGroups};
use im_server::metrics::Metrics;
use im_server::offline::OfflineBox;
use im_server::router::{LocationTable, Router};
use im_server::store::{BindingWriter, PgStore, RedbStore, Refresher, Store, unix_now};
use im_server::users::{SharedUsers, Users};
use im_server::xcap::Xcap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How long a PostgreSQL store call may wait for the database.
const PG_TIMEOUT: Duration = Duration::from_secs(5);

/// jemalloc as the server's allocator: like mimalloc (used before) it costs a fraction of
/// glibc's `malloc`/`free` per block (the server makes ~1,000 small allocations per group
/// session; glibc was ~20 % of its user-space instructions, docs/performance.md
/// "Whole-process profile"), and unlike mimalloc it gives freed memory back to the
/// system while the server is idle: its background thread purges dirty pages on a timer
/// (`background_thread`, set in `main`), where mimalloc frees a page only when the thread
/// that owns it allocates again, which an idle worker never does (docs/performance.md
/// "Allocator that returns memory at idle"). Only this binary: the library crates leave
/// the choice to their users.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's byte counts (`stats.*`, refreshed by advancing its epoch): `allocated` is what
/// the program holds, `active` the pages its blocks occupy (the difference is
/// fragmentation), `resident` what is in RAM (active pages, dirty pages not purged yet,
/// metadata), `metadata` jemalloc's own, `retained` address space kept unmapped. Empty when
/// the counts cannot be read.
fn allocator_bytes() -> Vec<(&'static str, u64)> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if epoch::advance().is_err() {
        return Vec::new();
    }
    let read = |r: tikv_jemalloc_ctl::Result<usize>| r.ok().map(|n| n as u64);
    [
        ("allocated", read(stats::allocated::read())),
        ("active", read(stats::active::read())),
        ("resident", read(stats::resident::read())),
        ("metadata", read(stats::metadata::read())),
        ("retained", read(stats::retained::read())),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match ServerConfig::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("im-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::User(UserCommand::Add { aor, store })) = &cli.command {
        return user_add(&cfg, aor, store.as_deref());
    }
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
    // Freed memory goes back to the system on jemalloc's own thread (dirty pages decay over
    // ~10 s), so an idle server shrinks back after a peak without allocating again.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(
            error = %e,
            "jemalloc background purging is off: freed memory returns to the system only \
             as the server allocates"
        );
    }
    let router = Router::new(
        cfg.outbound_proxy,
        LocationTable::new(cfg.limits.max_sessions.saturating_mul(10)),
    );
    let groups = SharedGroups::start(groups);
    let metrics = Metrics::new(Some((groups.clone(), router.clone())));
    metrics.allocator(Box::new(allocator_bytes));
    let mut app = ServerApp {
        groups,
        router,
        metrics,
        bindings: None,
        users: SharedUsers::new(Users::from_config(&cfg.users, &cfg.domain)),
        offline: None,
    };
    match start_store(&cfg, &app) {
        Ok(Some((w, offline))) => {
            app.bindings = Some(w);
            app.offline = offline;
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("im-server: {e}");
            return ExitCode::FAILURE;
        }
    }
    if cfg.auth.enabled {
        if cfg.users == im_server::users::demo_users() {
            tracing::warn!(
                "the demo users (alice, bob, carol, dave, erin, frank; passwords <user>-demo) \
                 are enabled: set `users` in a configuration file for real ones"
            );
        }
        tracing::info!(
            realm = cfg.realm(),
            users = app.users.len(),
            "Digest authentication on"
        );
    } else {
        tracing::warn!(
            "authentication is OFF (--no-auth / auth.enabled = false): anyone may register as \
             anyone and use the server as a relay"
        );
    }
    let workers = cfg.worker_count();
    // One worker keeps everything on the calling thread, as a single endpoint always ran;
    // more get a thread each, with one endpoint (shard) per thread.
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(allocator::tidy_on_park)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .on_thread_park(allocator::tidy_on_park)
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("im-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve(cfg, app, workers))
}

/// Opens the store (when configured), publishes its groups and starts the XCAP server
/// (when configured). Runs before the SIP runtime so a bad store or a taken port stops the
/// start-up.
#[allow(clippy::type_complexity)]
fn start_store(
    cfg: &ServerConfig,
    app: &ServerApp,
) -> Result<Option<(BindingWriter, Option<Arc<OfflineBox>>)>, String> {
    let (store, name): (Arc<dyn Store>, String) = match (&cfg.store, &cfg.store_url) {
        (Some(path), _) => (
            Arc::new(RedbStore::open(path).map_err(|e| format!("{}: {e}", path.display()))?),
            path.display().to_string(),
        ),
        (None, Some(url)) => (
            Arc::new(PgStore::connect(url, PG_TIMEOUT).map_err(|e| format!("store_url: {e}"))?),
            "PostgreSQL".to_owned(),
        ),
        (None, None) => return Ok(None),
    };
    let n = app
        .users
        .reload(store.as_ref())
        .map_err(|e| format!("{name}: {e}"))?;
    tracing::info!(users = n, "users read from the store");
    restore_bindings(store.as_ref(), &app.router);
    let writer = BindingWriter::start(store.clone())
        .map_err(|e| format!("cannot start the bindings writer: {e}"))?;
    let mut xcap = Xcap::new(&cfg.xcap_root, store.clone(), app.groups.clone())
        .with_metrics(app.metrics.clone());
    if cfg.auth.enabled {
        // The same users as SIP, with a verifier of its own: HTTP nonces are not SIP ones.
        let verifier =
            im_runtime::proto::digest::Verifier::new(cfg.realm(), nonce_secret(), startup_time())
                .with_lifetime(cfg.auth.nonce_lifetime)
                .with_algorithms(cfg.auth.algorithms.clone());
        xcap = xcap.with_auth(im_server::xcap::XcapAuth::new(verifier, app.users.clone()));
    }
    let xcap = Arc::new(xcap);
    let n = xcap.publish().map_err(|e| e.to_string())?;
    tracing::info!(store = %name, groups = n, "store opened");
    if store.is_shared() {
        Refresher::start(
            store.clone(),
            &app.router,
            xcap.clone(),
            Some(app.users.clone()),
            cfg.store_refresh,
        )
        .map_err(|e| format!("cannot start the store refresher: {e}"))?;
    }
    if let Some(addr) = cfg.xcap {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot bind XCAP {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        im_server::xcap::spawn(listener, xcap).map_err(|e| format!("cannot start XCAP: {e}"))?;
        tracing::info!(xcap = %bound, root = %cfg.xcap_root, "XCAP server listening");
    }
    let offline = if cfg.limits.offline_max_per_user == 0 {
        None
    } else {
        let o = OfflineBox::open(
            store.clone(),
            cfg.limits.offline_max_per_user,
            cfg.limits.offline_max_age,
            startup_time(),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        tracing::info!(
            kept = o.len(),
            max_per_user = cfg.limits.offline_max_per_user,
            max_age = ?cfg.limits.offline_max_age,
            "page-mode copies for offline members are kept in the store"
        );
        Some(Arc::new(o))
    };
    Ok(Some((writer, offline)))
}

/// Puts the stored bindings that have not expired back in the location table, for what is
/// left of their time.
fn restore_bindings(store: &dyn Store, router: &Router) {
    let rows = match store.bindings() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot read the stored bindings: {e}");
            return;
        }
    };
    let now = startup_time();
    let wall = unix_now();
    let mut table = router.locations.write().unwrap_or_else(|e| e.into_inner());
    let mut restored = 0;
    for (aor, contact, expires_at) in rows {
        let left = expires_at.saturating_sub(wall);
        let Ok(uri) = im_server::uri::parse_uri(&aor) else {
            continue;
        };
        if left == 0 {
            // Expired while the server was down: forget it in the store too.
            let _ = store.put_binding(&aor, contact, 0);
            continue;
        }
        if left > 0
            && table
                .register(&uri, contact, Duration::from_secs(left), now)
                .is_ok()
        {
            restored += 1;
        }
    }
    tracing::info!(restored, "stored bindings restored");
}

async fn serve(cfg: ServerConfig, app: ServerApp, workers: usize) -> ExitCode {
    let mut bind = cfg.bind();
    bind.msrp_tcp = cfg.msrp_listen(workers);
    let mut bound = Driver::bind(&bind, cfg.io_limits()).await;
    if bound.is_err() && workers > 1 && cfg.msrp.port() != 0 {
        // The ports after the configured MSRP port may be taken: the other workers then
        // take free ones (each advertises its own in a=path, so any port works).
        for a in bind.msrp_tcp.iter_mut().skip(1) {
            a.set_port(0);
        }
        bound = Driver::bind(&bind, cfg.io_limits()).await;
        if bound.is_ok() {
            tracing::warn!(
                msrp = %cfg.msrp,
                "MSRP ports after the configured one are taken; the other workers listen on free ports"
            );
        }
    }
    let mut driver = match bound {
        Ok(d) => d,
        Err(e) => {
            eprintln!("im-server: cannot bind {bind:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = bind_tls(&cfg, workers, &mut driver).await {
        eprintln!("im-server: {e}");
        return ExitCode::FAILURE;
    }
    let local = driver.local().clone();
    tracing::info!(
        sip_udp = ?local.sip_udp,
        sip_tcp = ?local.sip_tcp,
        msrp = ?local.msrp_tcp,
        sip_tls = ?local.sip_tls,
        msrp_tls = ?local.msrp_tls,
        advertise = %cfg.advertised_host(local.msrp_tcp.first().copied().unwrap_or(cfg.msrp)),
        domain = %cfg.domain,
        groups = app.groups.snapshot().len(),
        workers,
        "im-server bound"
    );
    let sip_bound = local
        .sip_udp
        .first()
        .or(local.sip_tcp.first())
        .copied()
        .unwrap_or(cfg.sip[0]);
    let seed = random_seed();
    // One verifier for every worker: a nonce minted by one is accepted by all, and a
    // replayed nc is caught whichever worker the replay reaches.
    let verifier = cfg.auth.enabled.then(|| {
        im_runtime::proto::digest::Verifier::new(cfg.realm(), nonce_secret(), startup_time())
            .with_lifetime(cfg.auth.nonce_lifetime)
            .with_algorithms(cfg.auth.algorithms.clone())
    });
    // One table of registration connections for all workers (`route_leg.rs`).
    let flows = im_runtime::endpoint::PeerTransports::default();
    let cores: Vec<Endpoint<ServerApp>> = (0..workers)
        .map(|index| {
            let msrp_bound = local.msrp_tcp.get(index).copied().unwrap_or(cfg.msrp);
            let mut ep =
                EndpointConfig::new(advertised(&cfg, sip_bound), advertised(&cfg, msrp_bound));
            ep.spec = cfg.machine_config();
            ep.sip_tls_advertised = local.sip_tls.first().map(|a| advertised(&cfg, *a));
            ep.msrp_tls_advertised = local.msrp_tls.get(index).map(|a| advertised(&cfg, *a));
            ep.trusted_hosts = cfg.trusted_hosts.clone();
            ep.auth = verifier.clone();
            ep.min_register_expires =
                u32::try_from(cfg.auth.min_register_expires.as_secs()).unwrap_or(u32::MAX);
            ep.timers = cfg.timer_config();
            ep.max_message_size = cfg.limits.max_message_size;
            // Without a TCP listener a TCP leg's Contact would lead nowhere: stay on UDP.
            ep.peer_transports = flows.clone();
            ep.max_udp_request = if cfg.sip_tcp {
                cfg.limits.max_udp_request
            } else {
                0
            };
            // The limit is the server's: each worker admits its share of it.
            ep.max_sessions = cfg.limits.max_sessions.div_ceil(workers);
            ep.max_subscriptions_per_user = cfg.limits.max_subscriptions_per_user;
            ep.max_subscriptions_per_session = cfg.limits.max_subscriptions_per_session;
            ep.msrp_chunk_size = cfg.limits.max_msrp_chunk;
            ep.session_lifetime = cfg.limits.session_lifetime;
            ep.msrp_idle = cfg.limits.msrp_idle;
            ep.msrp_report_wait = cfg.limits.msrp_report_wait;
            ep.body_limits.lists = cfg.list_limits();
            ep.msrp_limits.max_body_bytes =
                cfg.limits.max_msrp_chunk.max(ep.msrp_limits.max_body_bytes);
            // Distinct id streams per worker, so tags and branches never repeat across them.
            ep.seed = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ep.shard = Shard {
                index,
                count: workers,
            };
            Endpoint::new(ep, app.clone())
        })
        .collect();
    app.metrics.attach(
        cores.iter().map(|c| c.live_stats()).collect(),
        Some(driver.stats()),
    );
    let cores = if workers == 1 {
        let core = cores.into_iter().next().expect("one worker");
        vec![driver.run(core, shutdown_signal()).await]
    } else {
        driver.run_sharded(cores, shutdown_signal()).await
    };
    let mut stats = Stats::default();
    for c in &cores {
        let s = c.stats();
        stats.initial_requests += s.initial_requests;
        stats.rejected += s.rejected;
        stats.invites_sent += s.invites_sent;
        stats.delivered += s.delivered;
        stats.sessions_ended += s.sessions_ended;
        stats.challenged += s.challenged;
    }
    tracing::info!(
        live_sessions = cores.iter().map(|c| c.live_sessions()).sum::<usize>(),
        stats = ?stats,
        "im-server stopped"
    );
    ExitCode::SUCCESS
}

/// Reads the certificate, key and CA roots and binds the TLS listeners, when TLS is on. A CA
/// file alone (no certificate) still gives outgoing connections their roots.
async fn bind_tls(cfg: &ServerConfig, workers: usize, driver: &mut Driver) -> Result<(), String> {
    let t = &cfg.tls;
    if !cfg.tls_on() && t.ca.is_none() {
        return Ok(());
    }
    let identity = t.cert.as_deref().zip(t.key.as_deref());
    let setup = TlsSetup::from_files(identity, t.ca.as_deref()).map_err(|e| format!("TLS: {e}"))?;
    let sip: Vec<SocketAddr> = cfg.sip_tls_listen().into_iter().collect();
    let msrp = cfg.msrp_tls_listen(workers);
    driver
        .bind_tls(&sip, &msrp, setup)
        .await
        .map_err(|e| format!("cannot bind TLS {sip:?} {msrp:?}: {e}"))
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

/// The per-process key that authenticates nonces: 32 bytes from the OS's random source.
/// A nonce is only as unforgeable as this key, so the fallback (no /dev/urandom) mixes
/// several randomly keyed hashers and says so in the log.
fn nonce_secret() -> [u8; 32] {
    use std::io::Read;
    let mut key = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .is_ok()
    {
        return key;
    }
    tracing::warn!("no /dev/urandom: the nonce key comes from the standard library's hasher keys");
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u64(random_seed());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

/// `im-server user add AOR`: reads the password (a prompt on a terminal, else the first line
/// of standard input) and stores the user's HA1 values, in the store file (`--store` after
/// `add`, else the configuration's `store`) or the PostgreSQL store (`--store-url` before
/// `user`, or `store_url` in the configuration), where running servers pick it up.
fn user_add(cfg: &ServerConfig, aor: &str, store: Option<&std::path::Path>) -> ExitCode {
    let id = aor
        .strip_prefix("sips:")
        .or_else(|| aor.strip_prefix("sip:"))
        .unwrap_or(aor);
    let (user, realm) = match id.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() && !r.is_empty() => (u, r),
        _ => (id, cfg.realm()),
    };
    if user.is_empty() || user.contains(['/', ' ', ':']) {
        eprintln!("im-server: {aor:?} is not user@realm");
        return ExitCode::from(2);
    }
    enum Where<'a> {
        File(&'a std::path::Path),
        Url(&'a str),
    }
    let place = match (store.or(cfg.store.as_deref()), cfg.store_url.as_deref()) {
        (Some(path), _) => Where::File(path),
        (None, Some(url)) => Where::Url(url),
        (None, None) => {
            eprintln!(
                "im-server: user add needs a store (--store FILE after `add`, --store-url URL \
                 before `user`, or `store`/`store_url` in --config)"
            );
            return ExitCode::from(2);
        }
    };
    let password = {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            let first = rpassword::prompt_password(format!("password for {user}@{realm}: "));
            let again = rpassword::prompt_password("again: ");
            match (first, again) {
                (Ok(a), Ok(b)) if a == b => a,
                (Ok(_), Ok(_)) => {
                    eprintln!("im-server: the passwords differ");
                    return ExitCode::FAILURE;
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("im-server: cannot read the password: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("im-server: cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("im-server: empty password");
        return ExitCode::FAILURE;
    }
    let (store, name): (Box<dyn Store>, String) = match place {
        Where::File(path) => match RedbStore::open(path) {
            Ok(s) => (Box::new(s), path.display().to_string()),
            Err(e) => {
                // A running server holds the file's lock: say what to do.
                eprintln!(
                    "im-server: {}: {e} (a server using this store file must be stopped \
                     first)",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        },
        Where::Url(url) => match PgStore::connect(url, PG_TIMEOUT) {
            Ok(s) => (Box::new(s), "PostgreSQL".to_owned()),
            Err(e) => {
                eprintln!("im-server: store_url: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match im_server::users::add(store.as_ref(), user, realm, &password) {
        Ok(()) => {
            println!("user {user}@{realm} stored in {name}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("im-server: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A clock read outside the runtime's IO layer (the other is `allocator::tidy_on_park`): the
/// first groups load happens before the driver (and its clock) runs.
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
