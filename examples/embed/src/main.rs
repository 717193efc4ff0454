//! `imspec-embed-example [--sip ADDR] [--group GROUP=MEMBER,MEMBER…]…`: runs the example
//! application on SIP over UDP and TCP at ADDR (default 127.0.0.1:5070; port 0 picks a free
//! one) and prints `listening on ADDR` once bound. Ctrl-C stops it.

use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::io::{Bind, Driver, IoLimits};
use imspec_embed_example::BotApp;
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: imspec-embed-example [--sip ADDR] [--group GROUP=MEMBER,MEMBER...]...";

fn main() -> ExitCode {
    let mut sip: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5070));
    let mut app = BotApp::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let result = match (a.as_str(), value) {
            ("--sip", Some(v)) => v.parse().map(|v| sip = v).map_err(|e| format!("{e}")),
            ("--group", Some(v)) => app.groups.add_spec(&v).map_err(|e| e.to_string()),
            _ => Err(USAGE.to_owned()),
        };
        if let Err(e) = result {
            eprintln!("imspec-embed-example: {a}: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("imspec-embed-example: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve(sip, app))
}

async fn serve(sip: SocketAddr, app: BotApp) -> ExitCode {
    let bind = Bind {
        sip_udp: vec![sip],
        sip_tcp: vec![sip],
        msrp_tcp: Vec::new(),
    };
    let driver = match Driver::bind(&bind, IoLimits::default()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("imspec-embed-example: cannot bind {sip}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bound = driver.local().sip_udp.first().copied().unwrap_or(sip);
    // This example speaks page mode only, so no MSRP address is bound; the endpoint still
    // wants one to advertise, and the SIP one is never used for media here.
    let cfg = EndpointConfig::new(bound, bound);
    println!("listening on {bound}");
    let core = driver
        .run(Endpoint::new(cfg, app), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    println!("stopped; {:?}", core.stats());
    ExitCode::SUCCESS
}
