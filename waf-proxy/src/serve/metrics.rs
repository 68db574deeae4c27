//! The Prometheus metrics served at the admin listener's `/metrics`.

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use waf_core::profile::Profile;

use super::live::ProfileSeries;

/// Every metric the proxy keeps, in its own registry (nothing global, so tests can run several
/// proxies in one process if they want).
pub struct Metrics {
    registry: Registry,
    /// Requests by site and by what the WAF did (`pass`, `blocked`, `detected`, `flagged`,
    /// `limited`, `rejected`, `misdirected`).
    pub requests: IntCounterVec,
    /// Rule matches by site and rule id.
    pub rule_matches: IntCounterVec,
    /// Time spent in the engine per request.
    pub inspection_seconds: HistogramVec,
    /// Requests profiled rule by rule (`profile_every`), by site.
    pub profiled_requests: IntCounterVec,
    /// In profiled requests: time spent evaluating each rule, by site and rule id.
    pub rule_seconds: CounterVec,
    /// In profiled requests: how often each rule was evaluated, by site and rule id.
    pub rule_evaluations: IntCounterVec,
    /// Upstream connection or protocol failures by site.
    pub upstream_errors: IntCounterVec,
    /// HTTP/1 connections closed because a request head did not end in time.
    pub head_timeouts: IntCounter,
    /// TLS handshakes failed and request heads cut short, by kind (see `client_faults`).
    pub client_faults: IntCounterVec,
    /// Open client connections, every protocol.
    pub client_connections: IntGauge,
    /// Connections closed unread: their client held `max_connections_per_client` already.
    pub connections_refused: IntCounterVec,
    /// Requests over a rate limit, by site and limit (answered 429, or only logged in
    /// detect-only mode).
    pub rate_limited: IntCounterVec,
    /// Requests a full rate limit let through uncounted, by site and limit.
    pub rate_limit_uncounted: IntCounterVec,
    /// Clients each rate limit counts at its last sweep, by site and limit.
    pub rate_limit_clients: IntGaugeVec,
    /// Ruleset reloads by result (`success`, `failure`).
    pub reloads: IntCounterVec,
    /// Rules in each site's loaded ruleset.
    pub ruleset_rules: IntGaugeVec,
    /// 1 for each site's loaded ruleset version (a hash of its rule files and settings).
    pub ruleset_info: IntGaugeVec,
    /// How many rulesets have been loaded since start (1 after start).
    pub ruleset_generation: IntGauge,
}

impl Metrics {
    /// Registers every metric. The names and labels are fixed, so this fails only on a
    /// programming error (a duplicate or invalid name), which the first test run catches.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let requests = counter(
            "waf_requests_total",
            "Requests by site and WAF action.",
            &["site", "action"],
        )?;
        let rule_matches = counter(
            "waf_rule_matches_total",
            "Rule matches by site and rule id.",
            &["site", "rule"],
        )?;
        let profiled_requests = counter(
            "waf_profiled_requests_total",
            "Requests whose rules were timed one by one, by site.",
            &["site"],
        )?;
        let rule_evaluations = counter(
            "waf_rule_evaluations_total",
            "Evaluations of each rule in profiled requests, by site and rule id.",
            &["site", "rule"],
        )?;
        let rule_seconds = CounterVec::new(
            Opts::new(
                "waf_rule_seconds_total",
                "Time spent evaluating each rule in profiled requests, by site and rule id.",
            ),
            &["site", "rule"],
        )?;
        registry.register(Box::new(rule_seconds.clone()))?;
        let upstream_errors = counter(
            "waf_upstream_errors_total",
            "Failed upstream connections and exchanges by site.",
            &["site"],
        )?;
        let head_timeouts = IntCounter::new(
            "waf_request_head_timeouts_total",
            "HTTP/1 connections closed because a request head was not complete within limits.header_timeout_ms.",
        )?;
        registry.register(Box::new(head_timeouts.clone()))?;
        let client_faults = counter(
            "waf_client_faults_total",
            "Client faults counted rather than logged one by one, by kind: tls_handshake (failed, or not complete within limits.header_timeout_ms), request_head (the client left, or was cut off, in the middle of a request head), abandoned (the client closed or reset its connection, or its HTTP/2 stream, after the head: in its body, while it waited, or before its answer was written), malformed_body (broken chunked encoding, answered 400), malformed_head (a request head that does not parse, answered 400 by the HTTP server before inspection).",
            &["kind"],
        )?;
        let client_connections = IntGauge::new(
            "waf_client_connections",
            "Open client connections, every protocol (TLS ones from before their handshake).",
        )?;
        registry.register(Box::new(client_connections.clone()))?;
        let connections_refused = counter(
            "waf_connections_refused_total",
            "Client connections closed unread, by the limit they were over: max_connections_per_client (their client held that many already) or max_connections (the proxy did).",
            &["limit"],
        )?;
        let rate_limited = counter(
            "waf_rate_limited_total",
            "Requests over a rate limit, by site and limit.",
            &["site", "limit"],
        )?;
        let rate_limit_uncounted = counter(
            "waf_rate_limit_uncounted_total",
            "Requests a rate limit let through uncounted because it counted max_clients clients already, by site and limit.",
            &["site", "limit"],
        )?;
        let reloads = counter(
            "waf_ruleset_reloads_total",
            "Ruleset reloads by result.",
            &["result"],
        )?;
        // Inspection takes microseconds to a few milliseconds: buckets from 10 µs to 100 ms.
        let inspection_seconds = HistogramVec::new(
            HistogramOpts::new(
                "waf_inspection_duration_seconds",
                "Time the engine spent on one request.",
            )
            .buckets(prometheus::exponential_buckets(1e-5, 2.5, 11)?),
            &["site"],
        )?;
        registry.register(Box::new(inspection_seconds.clone()))?;
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let ruleset_rules = gauge(
            "waf_ruleset_rules",
            "Rules in the site's loaded ruleset.",
            &["site"],
        )?;
        let ruleset_info = gauge(
            "waf_ruleset_info",
            "The site's loaded ruleset version (value 1).",
            &["site", "version"],
        )?;
        let rate_limit_clients = gauge(
            "waf_rate_limit_clients",
            "Clients a rate limit counts (those still short of a full budget), by site and limit.",
            &["site", "limit"],
        )?;
        let ruleset_generation =
            IntGauge::new("waf_ruleset_generation", "Rulesets loaded since start.")?;
        registry.register(Box::new(ruleset_generation.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            rule_matches,
            inspection_seconds,
            profiled_requests,
            rule_seconds,
            rule_evaluations,
            upstream_errors,
            head_timeouts,
            client_faults,
            client_connections,
            connections_refused,
            rate_limited,
            rate_limit_uncounted,
            rate_limit_clients,
            reloads,
            ruleset_rules,
            ruleset_info,
            ruleset_generation,
        })
    }

    /// Adds a profiled request of `site` to the per-rule series: the rules it evaluated, each
    /// with its evaluation and its time.
    ///
    /// `series` keeps each rule's two series once looked up, by the rule's place in `profile`
    /// (the site's program's order): looking a series up by its labels hashes them and takes a
    /// lock, and doing that twice for each of the CRS's 250 rules cost about 30 µs per
    /// profiled request, more than profiling the rules did. A rule gets its series the first
    /// time a profiled request evaluates it, so rules never evaluated show none.
    pub fn record_profile(&self, site: &str, series: &ProfileSeries, profile: &Profile) {
        self.profiled_requests.with_label_values(&[site]).inc();
        let series = series.get_or_init(|| {
            (0..profile.rules().len())
                .map(|_| std::sync::OnceLock::new())
                .collect()
        });
        for (cost, rule_series) in profile.rules().iter().zip(series.iter()) {
            if cost.evaluations() == 0 {
                continue;
            }
            let (evaluations, seconds) = rule_series.get_or_init(|| {
                let rule = cost.id().to_string();
                (
                    self.rule_evaluations.with_label_values(&[site, &rule]),
                    self.rule_seconds.with_label_values(&[site, &rule]),
                )
            });
            evaluations.inc_by(cost.evaluations());
            seconds.inc_by(cost.time().as_secs_f64());
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which registration rules out.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new().unwrap();
        m.requests.with_label_values(&["login", "blocked"]).inc();
        m.inspection_seconds
            .with_label_values(&["login"])
            .observe(0.0002);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains("waf_requests_total{action=\"blocked\",site=\"login\"} 1"),
            "{text}"
        );
        assert!(text.contains("waf_inspection_duration_seconds_count{site=\"login\"} 1"));
    }
}
