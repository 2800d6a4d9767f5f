//! The counters and the scrape-time figures, written in the Prometheus text
//! format through prometheus-client (one collector, encoded per scrape).

use std::fmt::Error;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::{ANSWERS, BODIES, CLASSES, Metrics, OUTCOMES, Outcome, RouteKind, Upstream, get};

/// The `Content-Type` of the answer (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Figures read when a scrape comes.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub fetch: FetchFigures,
    pub process: super::ProcessFigures,
    /// Unix seconds.
    pub started_at: u64,
    pub requests_in_flight: u64,
}

/// What the fetch layer knows at scrape time.
#[derive(Debug, Clone, Default)]
pub struct FetchFigures {
    pub quota: Vec<QuotaRow>,
    pub downloads_in_flight: u64,
    /// `None` when the cache could not be read.
    pub cache: Option<CacheFigures>,
    pub max_size: Option<u64>,
}

/// The last rate-limit figures seen for one registry and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub registry: String,
    pub identity: String,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub window_secs: Option<u64>,
    /// Unix seconds.
    pub seen_at: u64,
    /// Manifest GETs held back after a 429.
    pub held: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheFigures {
    pub bytes: u64,
    pub blobs: u64,
}

/// The whole answer to a scrape.
pub fn encode(metrics: &Arc<Metrics>, scrape: Scrape) -> Result<String, Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition {
        metrics: Arc::clone(metrics),
        scrape,
    }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Exposition {
    metrics: Arc<Metrics>,
    scrape: Scrape,
}

/// One family: its descriptor, then a sample per label set.
fn family<'a, L: EncodeLabelSet + 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, Value)>,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(&labels)?;
        match value {
            Value::Counter(n) => sample.encode_counter::<NoLabelSet, u64, u64>(&n, None)?,
            Value::Gauge(n) => sample.encode_gauge(&n)?,
        }
    }
    Ok(())
}

enum Value {
    Counter(u64),
    Gauge(u64),
}

type Labels<const N: usize> = [(&'static str, String); N];

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), Error> {
        let m = &self.metrics;
        let s = &self.scrape;
        let bytes = Unit::Bytes;

        let mut requests: Vec<(Labels<3>, Value)> = Vec::new();
        for (r, route) in RouteKind::ALL.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                for (o, outcome) in Outcome::ALL.iter().enumerate() {
                    let n = get(&m.requests[(r * CLASSES.len() + c) * OUTCOMES + o]);
                    if n > 0 {
                        let labels = [
                            ("route", route.as_str().to_string()),
                            ("status", class.to_string()),
                            ("cache", outcome.as_str().to_string()),
                        ];
                        requests.push((labels, Value::Counter(n)));
                    }
                }
            }
        }
        family(
            &mut e,
            "dpx_requests",
            "Client requests answered, by route, status class and cache outcome.",
            None,
            MetricType::Counter,
            requests,
        )?;

        let mut sent: Vec<(Labels<2>, Value)> = Vec::new();
        for (r, route) in RouteKind::ALL.iter().enumerate() {
            for (o, outcome) in Outcome::ALL.iter().enumerate() {
                let n = get(&m.sent[r * OUTCOMES + o]);
                if n > 0 {
                    let labels = [
                        ("route", route.as_str().to_string()),
                        ("cache", outcome.as_str().to_string()),
                    ];
                    sent.push((labels, Value::Counter(n)));
                }
            }
        }
        family(
            &mut e,
            "dpx_response",
            "Response body bytes sent to clients, by route and cache outcome (hit, revalidated, stale, reserve, rate_limited: from the cache).",
            Some(&bytes),
            MetricType::Counter,
            sent,
        )?;
        let from_cache: u64 = RouteKind::ALL
            .iter()
            .enumerate()
            .flat_map(|(r, _)| {
                Outcome::ALL
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.is_cached())
                    .map(move |(o, _)| get(&m.sent[r * OUTCOMES + o]))
            })
            .fold(0u64, u64::saturating_add);
        single(
            &mut e,
            "dpx_served_from_cache",
            "Response body bytes sent to clients from the cache.",
            Some(&bytes),
            Value::Counter(from_cache),
        )?;

        {
            let mut metric = e.encode_descriptor(
                "dpx_request_duration",
                "Time from a client request's head to the end of its response body, by route.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (r, route) in RouteKind::ALL.iter().enumerate() {
                let (sum, count, buckets) = m.latency[r].snapshot();
                if count > 0 {
                    let labels = [("route", route.as_str())];
                    metric
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        single(
            &mut e,
            "dpx_requests_in_flight",
            "Client requests being answered now.",
            None,
            Value::Gauge(s.requests_in_flight),
        )?;

        let mut upstream: Vec<(Labels<2>, Value)> = Vec::new();
        for (k, kind) in Upstream::ALL.iter().enumerate() {
            for (a, answer) in ANSWERS.iter().enumerate() {
                let n = get(&m.upstream[k * ANSWERS.len() + a]);
                // The successes always, so a rate of pulls has a series from the start.
                if n > 0 || a == 0 {
                    let labels = [
                        ("kind", kind.as_str().to_string()),
                        ("answer", answer.to_string()),
                    ];
                    upstream.push((labels, Value::Counter(n)));
                }
            }
        }
        family(
            &mut e,
            "dpx_upstream_requests",
            "Requests sent to upstream registries, by kind (manifest_get is what Docker Hub counts as a pull) and answer (status class, 401, 429, unreachable, error).",
            None,
            MetricType::Counter,
            upstream,
        )?;
        family(
            &mut e,
            "dpx_upstream_received",
            "Manifest and blob body bytes received from upstream registries.",
            Some(&bytes),
            MetricType::Counter,
            BODIES.iter().enumerate().map(|(i, body)| {
                (
                    [("kind", body.to_string())],
                    Value::Counter(get(&m.upstream_bytes[i])),
                )
            }),
        )?;
        single(
            &mut e,
            "dpx_downloads_in_flight",
            "Blob downloads from upstream under way.",
            None,
            Value::Gauge(s.fetch.downloads_in_flight),
        )?;

        self.quota(&mut e)?;
        self.cache(&mut e)?;
        self.process(&mut e)?;
        Ok(())
    }
}

/// A family with one sample and no labels.
fn single(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Value,
) -> Result<(), Error> {
    let kind = match value {
        Value::Counter(_) => MetricType::Counter,
        Value::Gauge(_) => MetricType::Gauge,
    };
    let mut metric = e.encode_descriptor(name, help, unit, kind)?;
    match value {
        Value::Counter(n) => metric.encode_counter::<NoLabelSet, u64, u64>(&n, None),
        Value::Gauge(n) => metric.encode_gauge(&n),
    }
}

impl Exposition {
    fn quota(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let rows = &self.scrape.fetch.quota;
        let labels = |q: &QuotaRow| -> Labels<2> {
            [
                ("registry", q.registry.clone()),
                ("identity", q.identity.clone()),
            ]
        };
        let gauge = |e: &mut DescriptorEncoder,
                     name: &str,
                     help: &str,
                     unit: Option<&Unit>,
                     value: fn(&QuotaRow) -> Option<u64>| {
            family(
                e,
                name,
                help,
                unit,
                MetricType::Gauge,
                rows.iter()
                    .filter_map(|q| Some((labels(q), Value::Gauge(value(q)?)))),
            )
        };
        gauge(
            e,
            "dpx_quota_limit",
            "The pull limit per window the registry last announced, by registry and identity.",
            None,
            |q| q.limit,
        )?;
        gauge(
            e,
            "dpx_quota_remaining",
            "The pulls left in the window when the registry last said, by registry and identity.",
            None,
            |q| q.remaining,
        )?;
        gauge(
            e,
            "dpx_quota_window",
            "The length of the rate-limit window the registry announced.",
            Some(&Unit::Seconds),
            |q| q.window_secs,
        )?;
        gauge(
            e,
            "dpx_quota_observed_timestamp",
            "When the quota figures were last seen (Unix time).",
            Some(&Unit::Seconds),
            |q| Some(q.seen_at),
        )?;
        gauge(
            e,
            "dpx_quota_hold",
            "1 while manifest GETs are held back after a 429, else 0.",
            None,
            |q| Some(u64::from(q.held)),
        )
    }

    fn cache(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let f = &self.scrape.fetch;
        if let Some(c) = f.cache {
            single(
                e,
                "dpx_cache",
                "Bytes of the blobs in the cache.",
                Some(&Unit::Bytes),
                Value::Gauge(c.bytes),
            )?;
            single(
                e,
                "dpx_cache_blobs",
                "Blobs in the cache.",
                None,
                Value::Gauge(c.blobs),
            )?;
        }
        if let Some(max) = f.max_size {
            single(
                e,
                "dpx_cache_max",
                "The cache's size budget ([cache] max_size).",
                Some(&Unit::Bytes),
                Value::Gauge(max),
            )?;
        }
        let m = &self.metrics;
        family(
            &mut *e,
            "dpx_cache_evictions",
            "Cache entries evicted to keep within max_size, by kind.",
            None,
            MetricType::Counter,
            ["tag", "manifest", "blob"]
                .iter()
                .zip(&m.evicted)
                .map(|(kind, n)| ([("kind", kind.to_string())], Value::Counter(get(n)))),
        )?;
        single(
            e,
            "dpx_cache_evicted",
            "Bytes evicted to keep within max_size.",
            Some(&Unit::Bytes),
            Value::Counter(get(&m.evicted_bytes)),
        )
    }

    fn process(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let p = &self.scrape.process;
        let figures = [
            (
                "process_resident_memory",
                "Resident memory size.",
                Some(Unit::Bytes),
                p.resident_bytes,
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                None,
                p.open_fds,
            ),
            (
                "process_max_fds",
                "The limit of open file descriptors.",
                None,
                p.max_fds,
            ),
            (
                "process_start_time",
                "When the process started (Unix time).",
                Some(Unit::Seconds),
                Some(self.scrape.started_at),
            ),
        ];
        for (name, help, unit, value) in figures {
            if let Some(v) = value {
                single(e, name, help, unit.as_ref(), Value::Gauge(v))?;
            }
        }
        let mut info = e.encode_descriptor(
            "dpx_build",
            "The dpx version serving.",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])
    }
}
