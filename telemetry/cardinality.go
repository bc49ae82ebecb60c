package telemetry

import sdkmetric "go.opentelemetry.io/otel/sdk/metric"

// CardinalityLimit is the most attribute sets (series) one instrument keeps
// per collection in otel mode, set explicitly rather than left to the SDK
// default (2000, or OTEL_GO_X_CARDINALITY_LIMIT). Measurements with a new
// attribute set beyond it are aggregated into one set carrying
// otel.metric.overflow=true (otel_metric_overflow="true" in Prometheus), which
// keeps totals right and is alerted on (BulwarkMetricCardinalityOverflow in
// grafana/prometheus/rules).
//
// The bound is chosen from what the middleware can produce: route is one of
// the route table's patterns or "unmatched" (about 10), method one of 9
// standard methods or "_OTHER", status_code one of the codes the service
// answers (about 15). The combinations that occur are a few hundred; 1000
// leaves room while keeping the worst case of one histogram (1000 sets × 14
// buckets) far from what hurts Prometheus. Raw paths, request IDs and
// client-chosen methods never become attributes, so reaching the limit
// means a bug that put an unbounded value in a tag.
const CardinalityLimit = 1000

// MeterProviderOptions returns the options every bulwark meter provider is
// built with (the cardinality limit); Setup uses them, and tests that build
// their own provider should too.
func MeterProviderOptions() []sdkmetric.Option {
	return []sdkmetric.Option{sdkmetric.WithCardinalityLimit(CardinalityLimit)}
}
