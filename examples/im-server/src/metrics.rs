//! Prometheus metrics (`/metrics`, the OpenMetrics text format written by
//! `prometheus-client`) and `/health`, served on the XCAP listener.
//!
//! What is counted is what the application sees while the endpoints run: initial requests
//! the endpoint asked the application a machine for (by method, before admission control),
//! XCAP requests by status, the groups (by source) and the REGISTER bindings at scrape time.
//! The endpoints' own counters (`Endpoint::stats`, `live_sessions`) are only reachable once
//! the driver hands the endpoints back, so they are logged at shutdown, not exported here.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::groups::SharedGroups;
use crate::router::Router;

/// Labels of `xcap_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct XcapLabels {
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: String,
}

/// Labels of `initial_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// SIP method.
    pub method: String,
}

/// Labels of `groups`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `store` (managed over XCAP) or `folder`.
    pub source: String,
}

/// The server's metrics. Counters are atomics: workers bump them without locks.
pub struct Metrics {
    registry: Registry,
    /// XCAP requests by method and status.
    pub xcap_requests: Family<XcapLabels, Counter>,
    /// SIP initial requests given a machine, by method.
    pub initial_requests: Family<MethodLabels, Counter>,
    groups: Family<SourceLabels, Gauge>,
    bindings: Gauge,
    sources: Option<(SharedGroups, Router)>,
}

impl Metrics {
    /// Metrics registered under the `imserver` prefix. `sources` gives the gauges read at
    /// scrape time.
    pub fn new(sources: Option<(SharedGroups, Router)>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("imserver");
        let xcap_requests = Family::<XcapLabels, Counter>::default();
        registry.register(
            "xcap_requests",
            "XCAP requests by method and status",
            xcap_requests.clone(),
        );
        let initial_requests = Family::<MethodLabels, Counter>::default();
        registry.register(
            "initial_requests",
            "SIP initial requests given a machine (before admission control), by method",
            initial_requests.clone(),
        );
        let groups = Family::<SourceLabels, Gauge>::default();
        registry.register("groups", "Pre-defined groups by source", groups.clone());
        let bindings = Gauge::default();
        registry.register(
            "register_bindings",
            "REGISTER bindings in the location table",
            bindings.clone(),
        );
        Arc::new(Metrics {
            registry,
            xcap_requests,
            initial_requests,
            groups,
            bindings,
            sources,
        })
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        if let Some((groups, router)) = &self.sources {
            let set = |source: &str, n: usize| {
                self.groups
                    .get_or_create(&SourceLabels {
                        source: source.to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            };
            set("store", groups.managed().len());
            set("folder", groups.snapshot().len());
            let n = router
                .locations
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            self.bindings.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
