package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
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

// Environment variables that Setup and ConfigFromEnv read themselves. The
// OTLP exporters and the SDK read the other standard OTEL_* variables
// (headers, timeouts, insecure, compression, OTEL_METRIC_EXPORT_INTERVAL,
// OTEL_TRACES_SAMPLER_ARG, span limits, ...) directly.
const (
	EnvMode                 = "TELEMETRY_MODE"
	EnvSampleRate           = "TELEMETRY_SAMPLE_RATE"
	EnvOTLPEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPMetricsEndpoint  = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	EnvOTLPTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPMetricsProtocol  = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	EnvOTLPTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesSampler        = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	EnvServiceName          = "OTEL_SERVICE_NAME"
	EnvResourceAttributes   = "OTEL_RESOURCE_ATTRIBUTES"
	EnvMetricExportInterval = "OTEL_METRIC_EXPORT_INTERVAL"
)

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
}

// ConfigFromEnv reads TELEMETRY_MODE (noop|log|otel, case-insensitive,
// default noop) and TELEMETRY_SAMPLE_RATE (a number in [0, 1], default 1)
// through getenv (os.Getenv when nil). An error names the variable and what
// is wrong with it. Fields other than Mode and SampleRate are left zero.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := Config{Mode: ModeNoop, SampleRate: defaultSampleRate}
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
	return cfg, nil
}

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

func validRate(r float64) bool { return !math.IsNaN(r) && r >= 0 && r <= 1 }

// Provider is the telemetry stack built by Setup. Its fields are ready to
// use (never nil). Call Shutdown once the server has stopped serving.
type Provider struct {
	// Mode is the mode in effect (ModeNoop, ModeLog or ModeOTel).
	Mode string
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

	sdkTP *sdktrace.TracerProvider
	sdkMP *sdkmetric.MeterProvider

	once sync.Once
	err  error
}

// ForceFlush exports every finished span and the current metrics now,
// without stopping anything. It is a no-op outside otel mode.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	var errs []error
	if p.sdkTP != nil {
		errs = append(errs, wrap("flush traces", p.sdkTP.ForceFlush(ctx)))
	}
	if p.sdkMP != nil {
		errs = append(errs, wrap("flush metrics", p.sdkMP.ForceFlush(ctx)))
	}
	return errors.Join(errs...)
}

// Shutdown flushes every finished span and the final metrics, then stops
// the providers and their exporters, bounded by ctx's deadline. Only the
// first call does anything; later calls return its result. It is a no-op
// outside otel mode. Spans still open at Shutdown are not exported, so call
// it after the HTTP server has finished its requests.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		errs := []error{p.ForceFlush(ctx)}
		if p.sdkTP != nil {
			errs = append(errs, wrap("shut down traces", p.sdkTP.Shutdown(ctx)))
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

// Setup builds the telemetry stack for cfg. logger (slog.Default() when nil)
// is where log mode writes its lines and where Setup logs one INFO line
// describing what it set up; build it on NewContextHandler.
//
// In noop and log mode the tracer and meter providers are the OTel no-op
// ones and Shutdown does nothing. In otel mode Setup reads, besides what
// the SDK and exporters read themselves:
//
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource, over
//     service.name (cfg.ServiceName, default "bulwark") and service.version
//     (cfg.ServiceVersion).
//   - OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT /
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT per signal: when set, that signal is
//     exported over OTLP. Otherwise metrics are written to cfg.Stdout by
//     stdoutmetric, and traces are sampled and given IDs (so logs still
//     carry trace_id/span_id) but not exported anywhere.
//   - OTEL_EXPORTER_OTLP_PROTOCOL, or the _METRICS_/_TRACES_ variant (which
//     wins): "http/protobuf" (default, as in the OTel specification) or
//     "grpc". "http/json" is not supported and is an error.
//   - OTEL_TRACES_SAMPLER (+ OTEL_TRACES_SAMPLER_ARG): when set, it wins
//     over cfg.SampleRate and is applied by the SDK; an unknown sampler or a
//     bad ratio is an error. When unset the sampler is
//     ParentBased(TraceIDRatioBased(cfg.SampleRate)).
//   - OTEL_METRIC_EXPORT_INTERVAL (read by the SDK) unless
//     cfg.MetricInterval is set.
//
// Setup never sets the OTel globals (otel.SetTracerProvider,
// otel.SetMeterProvider, otel.SetTextMapPropagator); the caller decides.
// On error nothing is left running.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (*Provider, error) {
	if logger == nil {
		logger = slog.Default()
	}
	mode, err := parseMode(cfg.Mode)
	if err != nil {
		return nil, fmt.Errorf("telemetry: mode: %w", err)
	}
	if !validRate(cfg.SampleRate) {
		return nil, fmt.Errorf("telemetry: sample rate must be from 0 to 1, got %v", cfg.SampleRate)
	}
	p := &Provider{
		Mode:           mode,
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     NewPropagator(),
	}
	switch mode {
	case ModeNoop:
		p.Telemetry = Noop()
		logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised, slog.String("mode", mode))
		return p, nil
	case ModeLog:
		p.Telemetry = NewLog(logger, cfg.SampleRate, cfg.RequestID)
		logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised,
			slog.String("mode", mode), slog.Float64("sample_rate", cfg.SampleRate))
		return p, nil
	}
	if err := setupOTel(ctx, cfg, p); err != nil {
		// Stop whatever was started; the setup error is what matters.
		_ = p.Shutdown(ctx)
		return nil, err
	}
	sampler := fmt.Sprintf("parentbased_traceidratio(%v)", cfg.SampleRate)
	if s := strings.TrimSpace(os.Getenv(EnvTracesSampler)); s != "" {
		sampler = s + " (" + EnvTracesSampler + ")"
	}
	logger.LogAttrs(ctx, slog.LevelInfo, logMsgTelemetryInitialised,
		slog.String("mode", mode),
		slog.String("metrics_exporter", exporterName(metricsEndpointSet(), metricsProtocol())),
		slog.String("traces_exporter", exporterName(tracesEndpointSet(), tracesProtocol())),
		slog.String("trace_sampler", sampler))
	return p, nil
}

func exporterName(otlp bool, protocol string) string {
	if !otlp {
		return "none"
	}
	return "otlp " + protocol
}

func setupOTel(ctx context.Context, cfg Config, p *Provider) error {
	// Check the protocols before anything is started.
	if metricsEndpointSet() {
		if proto := metricsProtocol(); !validProtocol(proto) {
			return protocolError(EnvOTLPMetricsProtocol, proto)
		}
	}
	if tracesEndpointSet() {
		if proto := tracesProtocol(); !validProtocol(proto) {
			return protocolError(EnvOTLPTracesProtocol, proto)
		}
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return err
	}
	sampler, err := samplerOption(cfg.SampleRate)
	if err != nil {
		return err
	}

	// Metrics.
	mexp, err := newMetricExporter(ctx, cfg.Stdout)
	if err != nil {
		return err
	}
	var readerOpts []sdkmetric.PeriodicReaderOption
	if cfg.MetricInterval > 0 {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(cfg.MetricInterval))
	}
	p.sdkMP = sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, readerOpts...)),
	)
	p.MeterProvider = p.sdkMP

	// Traces.
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if sampler != nil {
		tpOpts = append(tpOpts, sdktrace.WithSampler(sampler))
	}
	if tracesEndpointSet() {
		texp, err := newTraceExporter(ctx)
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(texp))
	}
	p.sdkTP = sdktrace.NewTracerProvider(tpOpts...)
	p.TracerProvider = p.sdkTP

	p.Telemetry, err = NewOTel(p.sdkMP)
	return err
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String(attrServiceName, name)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String(attrServiceVersion, cfg.ServiceVersion))
	}
	// Later options win: the environment overrides the defaults above.
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource from %s/%s: %w", EnvServiceName, EnvResourceAttributes, err)
	}
	return res, nil
}

// samplerOption returns the sampler to configure, or nil when
// OTEL_TRACES_SAMPLER is set (the SDK then applies it). The environment is
// validated here so that a typo stops start-up instead of silently falling
// back to the SDK default.
func samplerOption(rate float64) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv(EnvTracesSampler)))
	if name == "" {
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate)), nil
	}
	switch name {
	case "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil, nil
	case "traceidratio", "parentbased_traceidratio":
		if arg := strings.TrimSpace(os.Getenv(EnvTracesSamplerArg)); arg != "" {
			if _, err := parseRate(arg); err != nil {
				return nil, fmt.Errorf("telemetry: %s: %w", EnvTracesSamplerArg, err)
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("telemetry: %s: unsupported sampler %q (want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)",
		EnvTracesSampler, name)
}

func envSet(keys ...string) bool {
	for _, k := range keys {
		if strings.TrimSpace(os.Getenv(k)) != "" {
			return true
		}
	}
	return false
}

func metricsEndpointSet() bool { return envSet(EnvOTLPMetricsEndpoint, EnvOTLPEndpoint) }
func tracesEndpointSet() bool  { return envSet(EnvOTLPTracesEndpoint, EnvOTLPEndpoint) }

func metricsProtocol() string { return protocolFor(EnvOTLPMetricsProtocol) }
func tracesProtocol() string  { return protocolFor(EnvOTLPTracesProtocol) }

// protocolFor returns the raw protocol value: the signal-specific variable,
// else the generic one, else DefaultProtocol.
func protocolFor(signalKey string) string {
	for _, k := range []string{signalKey, EnvOTLPProtocol} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return strings.ToLower(v)
		}
	}
	return DefaultProtocol
}

func validProtocol(p string) bool { return p == ProtocolHTTPProtobuf || p == ProtocolGRPC }

func protocolError(signalKey, got string) error {
	key := EnvOTLPProtocol
	if strings.TrimSpace(os.Getenv(signalKey)) != "" {
		key = signalKey
	}
	return fmt.Errorf("telemetry: %s: unsupported OTLP protocol %q (want %s or %s)", key, got, ProtocolHTTPProtobuf, ProtocolGRPC)
}

func newMetricExporter(ctx context.Context, stdout io.Writer) (sdkmetric.Exporter, error) {
	if !metricsEndpointSet() {
		if stdout == nil {
			stdout = os.Stdout
		}
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		return exp, wrap("stdout metric exporter", err)
	}
	switch proto := metricsProtocol(); proto {
	case ProtocolHTTPProtobuf:
		exp, err := otlpmetrichttp.New(ctx)
		return exp, wrap("OTLP/HTTP metric exporter", err)
	case ProtocolGRPC:
		exp, err := otlpmetricgrpc.New(ctx)
		return exp, wrap("OTLP/gRPC metric exporter", err)
	default:
		return nil, protocolError(EnvOTLPMetricsProtocol, proto)
	}
}

func newTraceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	switch proto := tracesProtocol(); proto {
	case ProtocolHTTPProtobuf:
		exp, err := otlptracehttp.New(ctx)
		return exp, wrap("OTLP/HTTP trace exporter", err)
	case ProtocolGRPC:
		exp, err := otlptracegrpc.New(ctx)
		return exp, wrap("OTLP/gRPC trace exporter", err)
	default:
		return nil, protocolError(EnvOTLPTracesProtocol, proto)
	}
}
