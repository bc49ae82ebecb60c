// Package telemetry is bulwark's vendor-neutral metrics interface and its
// OpenTelemetry wiring.
//
// The [Telemetry] interface has two methods, Counter and Histogram, and three
// implementations selected by TELEMETRY_MODE:
//
//   - [Noop] ("noop", the default) does nothing and allocates nothing.
//   - [NewLog] ("log") writes one structured slog line per emission, with the
//     message "metric.counter" or "metric.histogram" and the attributes name,
//     value and one attribute per tag. TELEMETRY_SAMPLE_RATE is the share of
//     requests whose lines are written; the decision is a deterministic hash
//     of the request ID (or trace ID), so one request is all-or-nothing.
//   - [NewOTel] ("otel") records into OpenTelemetry meter instruments, created
//     once per metric name and reused. The unit, description and histogram
//     buckets of the known metrics live in one table, [KnownInstruments].
//
// [NewContextHandler] wraps an slog.Handler so that every record logged with a
// context carries request_id, trace_id and span_id.
//
// [Setup] builds the whole stack from a [Config] and the standard OTEL_*
// environment variables: resource, MeterProvider (OTLP or stdout),
// TracerProvider (OTLP or no exporter), sampler and W3C propagator. It never
// sets the OpenTelemetry globals; the caller owns the returned [Provider] and
// must call its Shutdown, which flushes every pending span and metric.
//
// The package has no package-level mutable state and no init functions.
package telemetry
