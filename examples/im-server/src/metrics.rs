//! Prometheus metrics (`/metrics`, the OpenMetrics text format written by
//! `prometheus-client`) and `/health`, served on the XCAP listener.
//!
//! What is counted is what the application sees while the endpoints run: initial requests
//! the endpoint asked the application a machine for (by method, before admission control),
//! XCAP requests by status, the groups (by source) and the REGISTER bindings at scrape time;
//! and, once [`Metrics::attach`] is given the endpoints' live handles
//! (`Endpoint::live_stats`), the runtime's own figures summed over the workers at scrape
//! time: sessions started/ended/live, legs by outcome, responses by status and by the spec
//! rule that chose them, MSRP bytes, the INVITE→2xx and message→last-copy latency
//! histograms, the driver's connection counters and its own initial-INVITE latency
//! (arrival to final response sent, by outcome); and, once [`Metrics::allocator`] is given
//! a reader, the allocator's own byte counts (`allocator_bytes`: what the program holds
//! against what is resident, so that memory kept after a peak can be told apart as live
//! data or the allocator's retention).

use std::sync::{Arc, OnceLock};

use im_runtime::endpoint::{LegOutcome, LiveSnapshot, LiveStats};
use im_runtime::io::IoStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

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

/// Reads the allocator's byte counts at scrape time: (kind, bytes) pairs.
pub type AllocatorReader = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// Labels of `allocator_bytes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// What the count is (the allocator's own name for it, e.g. `allocated`, `resident`).
    pub kind: &'static str,
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
    runtime: Arc<OnceLock<RuntimeSources>>,
    alloc: Family<KindLabels, Gauge>,
    alloc_reader: OnceLock<AllocatorReader>,
}

/// The runtime's live handles, read at each scrape.
#[derive(Debug)]
struct RuntimeSources {
    endpoints: Vec<Arc<LiveStats>>,
    io: Option<Arc<IoStats>>,
}

/// Encodes the runtime's figures at scrape time (nothing is copied between scrapes).
#[derive(Debug)]
struct RuntimeCollector(Arc<OnceLock<RuntimeSources>>);

/// Labels of `responses`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    status: String,
    procedure: String,
    clause: String,
    rule: String,
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let v = i64::try_from(v).unwrap_or(i64::MAX);
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some(src) = self.0.get() else {
            return Ok(());
        };
        let mut s = LiveSnapshot::default();
        for ep in &src.endpoints {
            s.merge(&ep.snapshot());
        }
        counter(
            &mut e,
            "sessions_started",
            "Sessions started",
            s.sessions_started,
        )?;
        counter(&mut e, "sessions_ended", "Sessions ended", s.sessions_ended)?;
        gauge(
            &mut e,
            "sessions_live",
            "Sessions in progress",
            s.sessions_live(),
        )?;
        {
            let mut fam = e.encode_descriptor(
                "legs",
                "Invitee legs and MESSAGE copies by outcome",
                None,
                MetricType::Counter,
            )?;
            for o in LegOutcome::ALL {
                ConstCounter::new(s.legs(o))
                    .encode(fam.encode_family(&[("outcome", o.as_str())])?)?;
            }
        }
        {
            let mut fam = e.encode_descriptor(
                "responses",
                "SIP responses sent (first transmissions), by status and by the spec rule \
                 that chose them (procedure=runtime: the runtime answered by itself)",
                None,
                MetricType::Counter,
            )?;
            for (k, n) in &s.responses {
                let labels = ResponseLabels {
                    status: k.status.to_string(),
                    procedure: k.procedure.to_owned(),
                    clause: k.clause.to_owned(),
                    rule: k.rule.to_owned(),
                };
                ConstCounter::new(*n).encode(fam.encode_family(&labels)?)?;
            }
        }
        {
            let mut fam = e.encode_descriptor(
                "msrp_bytes",
                "MSRP message bytes received from originators and delivered to invitees",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(s.msrp_bytes_received)
                .encode(fam.encode_family(&[("direction", "received")])?)?;
            ConstCounter::new(s.msrp_bytes_delivered)
                .encode(fam.encode_family(&[("direction", "delivered")])?)?;
        }
        for (name, help, h) in [
            (
                "invite_to_ok_seconds",
                "Originator INVITE received to its 2xx sent",
                &s.invite_to_ok,
            ),
            (
                "message_to_last_copy_seconds",
                "Originator message received to its last copy confirmed",
                &s.message_to_last_copy,
            ),
        ] {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
            m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets_with_inf(), None)?;
        }
        if let Some(io) = &src.io {
            counter(
                &mut e,
                "connections_accepted",
                "TCP connections accepted and served",
                io.accepted(),
            )?;
            counter(
                &mut e,
                "connections_refused",
                "TCP connections closed at once (a budget or the per-source limit was full)",
                io.refused_budget() + io.refused_per_source(),
            )?;
            let l = io.invite_latency();
            let mut m = e.encode_descriptor(
                "invite_final_seconds",
                "Initial INVITE over UDP: arrival (kernel receive stamp) to its final response \
                 sent, by outcome (accepted: 2xx; rejected: any other final status)",
                None,
                MetricType::Histogram,
            )?;
            for (outcome, h) in [("accepted", l.accepted()), ("rejected", l.rejected())] {
                m.encode_family(&[("outcome", outcome)])?
                    .encode_histogram::<NoLabelSet>(
                        h.sum_seconds,
                        h.count,
                        &h.buckets_with_inf(),
                        None,
                    )?;
            }
        }
        Ok(())
    }
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
        let alloc = Family::<KindLabels, Gauge>::default();
        registry.register(
            "allocator_bytes",
            "The allocator's byte counts at scrape time, by kind (when the binary's allocator \
             reports them)",
            alloc.clone(),
        );
        let runtime = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(RuntimeCollector(runtime.clone())));
        Arc::new(Metrics {
            runtime,
            registry,
            xcap_requests,
            initial_requests,
            groups,
            bindings,
            sources,
            alloc,
            alloc_reader: OnceLock::new(),
        })
    }

    /// Exports the allocator's byte counts from now on, read by `reader` at each scrape.
    /// Only the first call counts.
    pub fn allocator(&self, reader: AllocatorReader) {
        let _ = self.alloc_reader.set(reader);
    }

    /// Exports the runtime's figures from now on: the endpoints' live handles (one per
    /// worker, taken before the driver runs) and the driver's connection counters. Only
    /// the first call counts.
    pub fn attach(&self, endpoints: Vec<Arc<LiveStats>>, io: Option<Arc<IoStats>>) {
        let _ = self.runtime.set(RuntimeSources { endpoints, io });
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
        if let Some(read) = self.alloc_reader.get() {
            for (kind, n) in read() {
                self.alloc
                    .get_or_create(&KindLabels { kind })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_counts_are_read_at_each_scrape() {
        let m = Metrics::new(None);
        assert!(!m.encode().contains("imserver_allocator_bytes{"));
        let n = Arc::new(std::sync::atomic::AtomicU64::new(5));
        let r = n.clone();
        m.allocator(Box::new(move || {
            vec![
                ("allocated", r.load(std::sync::atomic::Ordering::Relaxed)),
                ("resident", 7),
            ]
        }));
        let text = m.encode();
        assert!(
            text.contains("imserver_allocator_bytes{kind=\"allocated\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("imserver_allocator_bytes{kind=\"resident\"} 7"),
            "{text}"
        );
        n.store(9, std::sync::atomic::Ordering::Relaxed);
        assert!(
            m.encode()
                .contains("imserver_allocator_bytes{kind=\"allocated\"} 9")
        );
    }
}
