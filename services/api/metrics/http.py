"""HTTP request metrics, kept in a registry of the app's own (not the process-wide
default), so two apps in one process - tests, `alur dev` - never share counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds; most requests take milliseconds, a diagram or report up to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Bounded label values: a scanner's odd verbs must not create new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A path no route matches is counted under this one value, never under its raw path.
UNMATCHED_ROUTE = "unmatched"


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "alur_http_requests",
            "HTTP requests by route template, method and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "alur_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.waiting = Gauge(
            "alur_http_requests_waiting",
            "Requests waiting for a turn (ALUR_API__MAX_CONCURRENT_REQUESTS are in progress).",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)
