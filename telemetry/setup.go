package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Telemetry modes (TELEMETRY_MODE).
const (
	ModeNoop = "noop"
	ModeLog  = "log"
	ModeOTel = "otel"
)

// DefaultServiceName is service.name when neither OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES nor Config.ServiceName sets it.
const DefaultServiceName = "bulwark"

// OTLP protocols accepted in OTEL_EXPORTER_OTLP_PROTOCOL and its
// signal-specific variants.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
	// DefaultProtocol is the OTLP protocol when none is set: the
	// OpenTelemetry specification's default. Point the endpoint at the
	// collector's OTLP/HTTP port (4318), or set the protocol to grpc for
	// port 4317.
	DefaultProtocol = ProtocolHTTPProtobuf
)

// Environment variables read by ConfigFromEnv (TELEMETRY_*) and, through
// Config.Getenv, by Setup (the standard OTEL_* ones; EnvVars lists them all).
// The OTLP exporters and the SDK still read the other standard variables
// themselves from the process environment: headers, timeouts, TLS
// certificates, compression, OTEL_BSP_* / OTEL_BLRP_* batching, span and log
// record limits, OTEL_METRICS_EXEMPLAR_FILTER.
const (
	EnvMode                 = "TELEMETRY_MODE"
	EnvSampleRate           = "TELEMETRY_SAMPLE_RATE"
	EnvSemConv              = "TELEMETRY_SEMCONV"
	EnvOTLPEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPMetricsEndpoint  = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	EnvOTLPTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPLogsEndpoint     = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
	EnvOTLPProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPMetricsProtocol  = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	EnvOTLPTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvOTLPLogsProtocol     = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
	EnvLogsExporter         = "OTEL_LOGS_EXPORTER"
	EnvTracesSampler        = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	EnvServiceName          = "OTEL_SERVICE_NAME"
	EnvResourceAttributes   = "OTEL_RESOURCE_ATTRIBUTES"
	EnvMetricExportInterval = "OTEL_METRIC_EXPORT_INTERVAL"
)

// EnvVars returns the names of every variable ConfigFromEnv and Setup read
// (TELEMETRY_* and the OTEL_* ones), in a stable order.
func EnvVars() []string {
	return []string{
		EnvMode, EnvSampleRate, EnvSemConv,
		EnvOTLPEndpoint, EnvOTLPMetricsEndpoint, EnvOTLPTracesEndpoint, EnvOTLPLogsEndpoint,
		EnvOTLPProtocol, EnvOTLPMetricsProtocol, EnvOTLPTracesProtocol, EnvOTLPLogsProtocol,
		EnvLogsExporter, EnvTracesSampler, EnvTracesSamplerArg,
		EnvServiceName, EnvResourceAttributes, EnvMetricExportInterval,
	}
}

const (
	defaultSampleRate          = 1.0
	attrServiceName            = "service.name"
	attrServiceVersion         = "service.version"
	logMsgTelemetryInitialised = "telemetry initialised"
)

// Config selects and tunes the telemetry stack. The zero value is noop mode.
type Config struct {
	// Mode is ModeNoop (also when empty), ModeLog or ModeOTel.
	Mode string
	// SampleRate (0..1) is, in log mode, the share of requests whose metric
	// lines are written and, in otel mode, the ratio of the parent-based
	// trace sampler (unless OTEL_TRACES_SAMPLER is set). Metrics are never
	// sampled in otel mode. Note that the zero value means "none";
	// ConfigFromEnv defaults it to 1.
	SampleRate float64
	// SemConv asks the HTTP middleware to record, besides the contract's
	// metrics, the stable OpenTelemetry http.server.request.duration
	// (SemConvInstruments). Setup creates that instrument in otel mode; the
	// caller passes the flag on to the middleware.
	SemConv bool
	// ServiceName is service.name unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES sets it (the environment wins). Empty means
	// DefaultServiceName.
	ServiceName string
	// ServiceVersion is service.version unless the environment sets it.
	ServiceVersion string
	// Stdout receives the stdoutmetric output in otel mode when no OTLP
	// metrics endpoint is set. Nil means os.Stdout.
	Stdout io.Writer
	// RequestID returns the request ID of a request context ("" if none).
	// Log mode hashes it to decide sampling. May be nil (the trace ID is
	// then used).
	RequestID func(context.Context) string
	// MetricInterval is the metric export interval in otel mode. Zero means
	// OTEL_METRIC_EXPORT_INTERVAL (milliseconds) or the SDK default of 60s.
	MetricInterval time.Duration
	// Getenv returns the standard OTEL_* variables that Setup honours (see
	// EnvVars; the rest are read by the SDK itself). Nil means none is set.
	// Setup reads no environment variable any other way.
	Getenv func(string) string
}

// ConfigFromEnv reads TELEMETRY_MODE (noop|log|otel, case-insensitive,
// default noop), TELEMETRY_SAMPLE_RATE (a number in [0, 1], default 1) and
// TELEMETRY_SEMCONV (true|false, default false) through getenv, keeps getenv
// as Config.Getenv for the OTEL_* variables, and validates the result with
// Validate: an error here is exactly an error Setup would return. The error
// names the variable and what is wrong with it. Other fields are left zero.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = noEnv
	}
	cfg := Config{Mode: ModeNoop, SampleRate: defaultSampleRate, Getenv: getenv}
	if v := strings.TrimSpace(getenv(EnvMode)); v != "" {
		m, err := parseMode(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvMode, err)
		}
		cfg.Mode = m
	}
	if v := strings.TrimSpace(getenv(EnvSampleRate)); v != "" {
		r, err := parseRate(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvSampleRate, err)
		}
		cfg.SampleRate = r
	}
	if v := strings.TrimSpace(getenv(EnvSemConv)); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvSemConv, err)
		}
		cfg.SemConv = b
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func noEnv(string) string { return "" }

func parseMode(s string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case "", ModeNoop:
		return ModeNoop, nil
	case ModeLog, ModeOTel:
		return m, nil
	}
	return "", fmt.Errorf("must be one of %s, %s, %s; got %q", ModeNoop, ModeLog, ModeOTel, s)
}

func parseRate(s string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !validRate(r) {
		return 0, fmt.Errorf("must be a number from 0 to 1; got %q", s)
	}
	return r, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false; got %q", s)
}

func validRate(r float64) bool { return !math.IsNaN(r) && r >= 0 && r <= 1 }

// Provider is the telemetry stack built by Setup. Its fields are ready to
// use (never nil, except LogHandler). Call Shutdown once the server has
// stopped serving.
type Provider struct {
	// Mode is the mode in effect (ModeNoop, ModeLog or ModeOTel).
	Mode string
	// SemConv is Config.SemConv outside noop mode: whether the middleware
	// should also record http.server.request.duration.
	SemConv bool
	// Telemetry records metrics in the configured mode.
	Telemetry Telemetry
	// TracerProvider is the SDK provider in otel mode and the OTel no-op one
	// otherwise.
	TracerProvider trace.TracerProvider
	// MeterProvider is the SDK provider in otel mode and the OTel no-op one
	// otherwise.
	MeterProvider metric.MeterProvider
	// Propagator is W3C trace context plus W3C baggage, in every mode. It
	// is not installed globally: pass it to otelhttp (WithPropagators) or
	// call otel.SetTextMapPropagator yourself.
	Propagator propagation.TextMapPropagator
	// LogHandler, in otel mode with an OTLP logs endpoint (and
	// OTEL_LOGS_EXPORTER not "none"), is an slog handler (the otelslog
	// bridge) that sends each record over OTLP with the trace and span IDs
	// of the context it was logged with. Nil otherwise. Fan it out next to
	// the stdout handler (slog.NewMultiHandler); it has no level of its own.
	LogHandler slog.Handler

	sdkTP *sdktrace.TracerProvider
	sdkMP *sdkmetric.MeterProvider
	sdkLP *sdklog.LoggerProvider

	once sync.Once
	err  error
}

// ForceFlush exports every finished span, log record and the current
// metrics now, without stopping anything. It is a no-op outside otel mode.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	var errs []error
	if p.sdkTP != nil {
		errs = append(errs, wrap("flush traces", p.sdkTP.ForceFlush(ctx)))
	}
	if p.sdkLP != nil {
		errs = append(errs, wrap("flush logs", p.sdkLP.ForceFlush(ctx)))
	}
	if p.sdkMP != nil {
		errs = append(errs, wrap("flush metrics", p.sdkMP.ForceFlush(ctx)))
	}
	return errors.Join(errs...)
}

// Shutdown flushes every finished span and log record and the final
// metrics, then stops the providers and their exporters, bounded by ctx's
// deadline. Only the first call does anything; later calls return its
// result. It is a no-op outside otel mode. Spans still open at Shutdown are
// not exported, and records logged after it are dropped, so call it after
// the HTTP server has finished its requests.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		errs := []error{p.ForceFlush(ctx)}
		if p.sdkTP != nil {
			errs = append(errs, wrap("shut down traces", p.sdkTP.Shutdown(ctx)))
		}
		if p.sdkLP != nil {
			errs = append(errs, wrap("shut down logs", p.sdkLP.Shutdown(ctx)))
		}
		if p.sdkMP != nil {
			errs = append(errs, wrap("shut down metrics", p.sdkMP.Shutdown(ctx)))
		}
		p.err = errors.Join(errs...)
	})
	return p.err
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("telemetry: %s: %w", what, err)
}

// NewPropagator returns the W3C trace context + baggage propagator that
// Setup puts in Provider.Propagator.
func NewPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Validate reports, without starting anything, every error Setup would
// return for cfg: the mode and sample rate and, in otel mode, each OTEL_*
// variable read through cfg.Getenv. Setup runs the same check first, so a
// configuration that passes Validate is one Setup accepts (save for
// failures of the exporters themselves).
func (cfg Config) Validate() error {
	_, err := resolve(cfg)
	return err
}

// settings is cfg resolved against the environment: everything Setup
// decides before it starts anything.
type settings struct {
	mode     string
	metrics  signalExport
	traces   signalExport
	logs     signalExport
	sampler  sdktrace.Sampler
	samplerS string // for the start-up log line
	resAttrs []attribute.KeyValue
	interval time.Duration
}

// signalExport is where one signal goes: endpoint "" means no OTLP export.
type signalExport struct {
	endpoint    string // full URL handed to the exporter
	protocol    string
	protocolKey string // the variable the protocol came from, for errors
}

func (e signalExport) String() string {
	if e.endpoint == "" {
		return "none"
	}
	return "otlp " + e.protocol + " " + redactedURL(e.endpoint)
}

// resolve validates cfg and reads the OTEL_* variables through cfg.Getenv.
// It is the one validation shared by Validate (hence -check-config) and
// Setup.
func resolve(cfg Config) (settings, error) {
	mode, err := parseMode(cfg.Mode)
	if err != nil {
		return settings{}, fmt.Errorf("telemetry: mode: %w", err)
	}
	if !validRate(cfg.SampleRate) {
		return settings{}, fmt.Errorf("telemetry: sample rate must be from 0 to 1, got %v", cfg.SampleRate)
	}
	st := settings{mode: mode}
	if mode != ModeOTel {
		return st, nil // the OTEL_* variables are not read outside otel mode
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = noEnv
	}
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }

	if st.metrics, err = resolveSignal(env, "metrics", EnvOTLPMetricsEndpoint, EnvOTLPMetricsProtocol); err != nil {
		return settings{}, err
	}
	if st.traces, err = resolveSignal(env, "traces", EnvOTLPTracesEndpoint, EnvOTLPTracesProtocol); err != nil {
		return settings{}, err
	}
	switch v := strings.ToLower(env(EnvLogsExporter)); v {
	case "", "otlp":
		if st.logs, err = resolveSignal(env, "logs", EnvOTLPLogsEndpoint, EnvOTLPLogsProtocol); err != nil {
			return settings{}, err
		}
	case "none":
	default:
		return settings{}, fmt.Errorf("telemetry: %s: must be otlp or none; got %q", EnvLogsExporter, v)
	}
	if st.sampler, st.samplerS, err = resolveSampler(env, cfg.SampleRate); err != nil {
		return settings{}, err
	}
	if st.resAttrs, err = resolveResource(env, cfg); err != nil {
		return settings{}, err
	}
	st.interval = cfg.MetricInterval
	if v := env(EnvMetricExportInterval); v != "" && st.interval == 0 {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
			return settings{}, fmt.Errorf("telemetry: %s: must be a number of milliseconds from 1 to 86400000; got %q", EnvMetricExportInterval, v)
		}
		st.interval = time.Duration(ms) * time.Millisecond
	}
	return st, nil
}

// resolveSignal applies the OTel rules for one signal: the signal's own
// endpoint variable is used as is; the generic OTEL_EXPORTER_OTLP_ENDPOINT
// is a base URL to which OTLP/HTTP appends /v1/<signal>. The protocol is
// the signal's own variable, else the generic one, else DefaultProtocol.
func resolveSignal(env func(string) string, signal, endpointKey, protocolKey string) (signalExport, error) {
	e := signalExport{protocol: DefaultProtocol, protocolKey: EnvOTLPProtocol}
	for _, k := range []string{protocolKey, EnvOTLPProtocol} {
		if v := env(k); v != "" {
			e.protocol, e.protocolKey = strings.ToLower(v), k
			break
		}
	}
	key, raw := endpointKey, env(endpointKey)
	if raw == "" {
		key, raw = EnvOTLPEndpoint, env(EnvOTLPEndpoint)
	}
	if raw == "" {
		return e, nil // not exported over OTLP
	}
	if e.protocol != ProtocolHTTPProtobuf && e.protocol != ProtocolGRPC {
		return e, fmt.Errorf("telemetry: %s: unsupported OTLP protocol %q (want %s or %s)", e.protocolKey, e.protocol, ProtocolHTTPProtobuf, ProtocolGRPC)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := raw
		if strings.Contains(raw, "@") {
			shown = redactedURL(raw) // may hold a password
		}
		return e, fmt.Errorf("telemetry: %s: must be an http:// or https:// URL with a host; got %q", key, shown)
	}
	if key == EnvOTLPEndpoint && e.protocol == ProtocolHTTPProtobuf {
		u = u.JoinPath("v1", signal)
	}
	e.endpoint = u.String()
	return e, nil
}

// resolveSampler returns the trace sampler: OTEL_TRACES_SAMPLER (with
// OTEL_TRACES_SAMPLER_ARG) when set, else
// ParentBased(TraceIDRatioBased(rate)). An unknown sampler or a bad ratio is
// an error, so a typo stops start-up instead of falling back silently.
func resolveSampler(env func(string) string, rate float64) (sdktrace.Sampler, string, error) {
	name := strings.ToLower(env(EnvTracesSampler))
	if name == "" {
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate)), fmt.Sprintf("parentbased_traceidratio(%v)", rate), nil
	}
	ratio := 1.0
	if arg := env(EnvTracesSamplerArg); arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := parseRate(arg)
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: %s: %w", EnvTracesSamplerArg, err)
		}
		ratio = r
	}
	desc := name + " (" + EnvTracesSampler + ")"
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), desc, nil
	case "always_off":
		return sdktrace.NeverSample(), desc, nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), fmt.Sprintf("%s(%v) (%s)", name, ratio, EnvTracesSampler), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), desc, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), desc, nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), fmt.Sprintf("%s(%v) (%s)", name, ratio, EnvTracesSampler), nil
	}
	return nil, "", fmt.Errorf("telemetry: %s: unsupported sampler %q (want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)",
		EnvTracesSampler, name)
}

// resolveResource returns the resource attributes, later ones winning:
// service.name (cfg.ServiceName or DefaultServiceName) and service.version
// (cfg.ServiceVersion), then OTEL_RESOURCE_ATTRIBUTES (comma-separated
// key=value, values percent-decoded, as the OTel specification has it),
// then OTEL_SERVICE_NAME.
func resolveResource(env func(string) string, cfg Config) ([]attribute.KeyValue, error) {
	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String(attrServiceName, name)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String(attrServiceVersion, cfg.ServiceVersion))
	}
	if v := env(EnvResourceAttributes); v != "" {
		for _, pair := range strings.Split(v, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("telemetry: %s: want comma-separated key=value pairs; got %q", EnvResourceAttributes, pair)
			}
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("telemetry: %s: value of %s is not percent-encoded correctly", EnvResourceAttributes, k)
			}
			attrs = append(attrs, attribute.String(k, dec))
		}
	}
	if v := env(EnvServiceName); v != "" {
		attrs = append(attrs, attribute.String(attrServiceName, v))
	}
	return attrs, nil
}

// redactedURL hides a password in a URL before it is printed.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	return u.Redacted()
}

// Setup builds the telemetry stack for cfg. logger (slog.Default() when nil)
// is where log mode writes its lines and where Setup logs one INFO line
// describing what it set up; build it on NewContextHandler.
//
// In noop and log mode the tracer and meter providers are the OTel no-op
// ones and Shutdown does nothing. In otel mode Setup reads, through
// cfg.Getenv (and no other way):
//
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource, over
//     service.name (cfg.ServiceName, default "bulwark") and service.version
//     (cfg.ServiceVersion).
//   - OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_{METRICS,TRACES,
//     LOGS}_ENDPOINT per signal: when set, that signal is exported over
//     OTLP. Otherwise metrics are written to cfg.Stdout by stdoutmetric;
//     traces are sampled and given IDs (so logs still carry
//     trace_id/span_id) but not exported anywhere; logs stay on stdout only.
//   - OTEL_EXPORTER_OTLP_PROTOCOL, or the per-signal variant (which wins):
//     "http/protobuf" (default, as in the OTel specification) or "grpc".
//     "http/json" is not supported and is an error.
//   - OTEL_LOGS_EXPORTER: "otlp" (default) or "none" (logs stay on stdout
//     only, e.g. where an agent already ships stdout).
//   - OTEL_TRACES_SAMPLER (+ OTEL_TRACES_SAMPLER_ARG): when set, it wins
//     over cfg.SampleRate; an unknown sampler or a bad ratio is an error.
//     When unset the sampler is ParentBased(TraceIDRatioBased(cfg.SampleRate)).
//   - OTEL_METRIC_EXPORT_INTERVAL (milliseconds) unless cfg.MetricInterval
//     is set.
//
// In otel mode the meter provider also carries the Go runtime and process
// metrics (RuntimeMetrics) and a per-instrument cardinality limit
// (CardinalityLimit; MeterProviderOptions).
//
// Setup never sets the OTel globals (otel.SetTracerProvider,
// otel.SetMeterProvider, otel.SetTextMapPropagator); the caller decides.
// On error nothing is left running.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (*Provider, error) {
	if logger == nil {
		logger = slog.Default()
	}
	st, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		Mode:           st.mode,
		SemConv:        cfg.SemConv && st.mode != ModeNoop, // nothing to record it into in noop mode
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     NewPropagator(),
	}
	switch st.mode {
	case ModeNoop:
		p.Telemetry = Noop()
		logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised, slog.String("mode", st.mode))
		return p, nil
	case ModeLog:
		p.Telemetry = NewLog(logger, cfg.SampleRate, cfg.RequestID)
		logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised,
			slog.String("mode", st.mode), slog.Float64("sample_rate", cfg.SampleRate), slog.Bool("semconv", cfg.SemConv))
		return p, nil
	}
	if err := setupOTel(ctx, cfg, st, p); err != nil {
		// Stop whatever was started; the setup error is what matters.
		_ = p.Shutdown(ctx)
		return nil, err
	}
	logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised,
		slog.String("mode", st.mode),
		slog.String("metrics_exporter", st.metrics.String()),
		slog.String("traces_exporter", st.traces.String()),
		slog.String("logs_exporter", st.logs.String()),
		slog.String("trace_sampler", st.samplerS),
		slog.Bool("semconv", cfg.SemConv),
		slog.Int("cardinality_limit", CardinalityLimit))
	return p, nil
}

func setupOTel(ctx context.Context, cfg Config, st settings, p *Provider) error {
	res, err := resource.New(ctx, resource.WithAttributes(st.resAttrs...), resource.WithTelemetrySDK())
	if err != nil {
		return fmt.Errorf("telemetry: resource: %w", err)
	}

	// Metrics.
	mexp, err := newMetricExporter(ctx, st.metrics, cfg.Stdout)
	if err != nil {
		return err
	}
	readerOpts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithProducer(NewGCPauseProducer())}
	if st.interval > 0 {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(st.interval))
	}
	mpOpts := append(MeterProviderOptions(),
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, readerOpts...)),
	)
	p.sdkMP = sdkmetric.NewMeterProvider(mpOpts...)
	p.MeterProvider = p.sdkMP
	if err := RuntimeMetrics(p.sdkMP); err != nil {
		return err
	}

	// Traces.
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(st.sampler)}
	if st.traces.endpoint != "" {
		texp, err := newTraceExporter(ctx, st.traces)
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(texp))
	}
	p.sdkTP = sdktrace.NewTracerProvider(tpOpts...)
	p.TracerProvider = p.sdkTP

	// Logs.
	if st.logs.endpoint != "" {
		lexp, err := newLogExporter(ctx, st.logs)
		if err != nil {
			return err
		}
		p.sdkLP = sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp)))
		p.LogHandler = otelslog.NewHandler(MeterName, otelslog.WithLoggerProvider(p.sdkLP), otelslog.WithVersion(cfg.ServiceVersion))
	}

	var extra []InstrumentSpec
	if cfg.SemConv {
		extra = SemConvInstruments()
	}
	p.Telemetry, err = NewOTel(p.sdkMP, extra...)
	return err
}

func newMetricExporter(ctx context.Context, e signalExport, stdout io.Writer) (sdkmetric.Exporter, error) {
	if e.endpoint == "" {
		if stdout == nil {
			stdout = os.Stdout
		}
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		return exp, wrap("stdout metric exporter", err)
	}
	if e.protocol == ProtocolGRPC {
		exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(e.endpoint))
		return exp, wrap("OTLP/gRPC metric exporter", err)
	}
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(e.endpoint))
	return exp, wrap("OTLP/HTTP metric exporter", err)
}

func newTraceExporter(ctx context.Context, e signalExport) (sdktrace.SpanExporter, error) {
	if e.protocol == ProtocolGRPC {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(e.endpoint))
		return exp, wrap("OTLP/gRPC trace exporter", err)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(e.endpoint))
	return exp, wrap("OTLP/HTTP trace exporter", err)
}

func newLogExporter(ctx context.Context, e signalExport) (sdklog.Exporter, error) {
	if e.protocol == ProtocolGRPC {
		exp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpointURL(e.endpoint))
		return exp, wrap("OTLP/gRPC log exporter", err)
	}
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(e.endpoint))
	return exp, wrap("OTLP/HTTP log exporter", err)
}
