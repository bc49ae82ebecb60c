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
// [Setup] builds the whole stack from a [Config], which carries every setting,
// the standard OTEL_* variables included (through Config.Getenv; the package
// never calls os.Getenv): resource, MeterProvider (OTLP or stdout, with the
// Go runtime and process metrics and an explicit per-instrument
// [CardinalityLimit]), TracerProvider (OTLP or no exporter), sampler, W3C
// propagator and, with an OTLP logs endpoint, a LoggerProvider whose slog
// handler (the otelslog bridge) sends log records with their trace and span
// IDs. [Config.Validate] is the same check Setup starts with, so a
// configuration check (cmd/api -check-config) refuses exactly what Setup
// would. Setup never sets the OpenTelemetry globals; the caller owns the
// returned [Provider] and must call its Shutdown, which flushes every pending
// span, log record and metric.
//
// [SemConvInstruments] is the stable http.server.request.duration that the
// HTTP middleware records as well when TELEMETRY_SEMCONV is set.
//
// The package has no package-level mutable state and no init functions.
package telemetry
