package telemetry_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	colllogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-go/bulwark/telemetry"
)

// clearOTelEnv blanks every variable of the process environment that could
// leak in from the machine: Setup reads its own through Config.Getenv, but
// the exporters and the SDK read some themselves (and the process's would
// also show that Setup does not read os.Getenv).
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range append(telemetry.EnvVars(),
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_INSECURE") {
		t.Setenv(k, "")
	}
}

// env returns a getenv over the key/value pairs kv.
func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustShutdown(t *testing.T, p *telemetry.Provider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := p.Shutdown(ctx); err != nil { // idempotent
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		getenv  func(string) string
		mode    string
		rate    float64
		wantErr string
	}{
		{"defaults", env(), telemetry.ModeNoop, 1, ""},
		{"log", env("TELEMETRY_MODE", "log", "TELEMETRY_SAMPLE_RATE", "0.25"), telemetry.ModeLog, 0.25, ""},
		{"otel upper", env("TELEMETRY_MODE", " OTEL "), telemetry.ModeOTel, 1, ""},
		{"rate 0", env("TELEMETRY_SAMPLE_RATE", "0"), telemetry.ModeNoop, 0, ""},
		{"bad mode", env("TELEMETRY_MODE", "prometheus"), "", 0, "TELEMETRY_MODE"},
		{"rate > 1", env("TELEMETRY_SAMPLE_RATE", "1.5"), "", 0, "TELEMETRY_SAMPLE_RATE"},
		{"rate NaN", env("TELEMETRY_SAMPLE_RATE", "NaN"), "", 0, "TELEMETRY_SAMPLE_RATE"},
		{"rate word", env("TELEMETRY_SAMPLE_RATE", "half"), "", 0, "TELEMETRY_SAMPLE_RATE"},
		{"semconv word", env("TELEMETRY_SEMCONV", "sometimes"), "", 0, "TELEMETRY_SEMCONV"},
		// In otel mode the OTEL_* variables are validated too (what Setup
		// would refuse); outside it they are not read.
		{"otel bad protocol", env("TELEMETRY_MODE", "otel", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "", 0, "telemetry: OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"otel bad sampler", env("TELEMETRY_MODE", "otel", "OTEL_TRACES_SAMPLER", "sometimes"), "", 0, "telemetry: OTEL_TRACES_SAMPLER"},
		{"otel bad sampler arg", env("TELEMETRY_MODE", "otel", "OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), "", 0, "telemetry: OTEL_TRACES_SAMPLER_ARG"},
		{"otel bad endpoint", env("TELEMETRY_MODE", "otel", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "collector:4318"), "", 0, "telemetry: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"},
		{"otel bad logs exporter", env("TELEMETRY_MODE", "otel", "OTEL_LOGS_EXPORTER", "console"), "", 0, "telemetry: OTEL_LOGS_EXPORTER"},
		{"otel bad resource", env("TELEMETRY_MODE", "otel", "OTEL_RESOURCE_ATTRIBUTES", "a=1,b"), "", 0, "telemetry: OTEL_RESOURCE_ATTRIBUTES"},
		{"otel bad interval", env("TELEMETRY_MODE", "otel", "OTEL_METRIC_EXPORT_INTERVAL", "1s"), "", 0, "telemetry: OTEL_METRIC_EXPORT_INTERVAL"},
		{"log ignores OTEL_*", env("TELEMETRY_MODE", "log", "OTEL_TRACES_SAMPLER", "sometimes"), telemetry.ModeLog, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := telemetry.ConfigFromEnv(tc.getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr+": ") {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.Mode != tc.mode || cfg.SampleRate != tc.rate {
				t.Fatalf("got %+v, %v; want mode %s rate %v", cfg, err, tc.mode, tc.rate)
			}
		})
	}
}

func TestSetupRejectsBadConfig(t *testing.T) {
	clearOTelEnv(t)
	for _, cfg := range []telemetry.Config{
		{Mode: "statsd", SampleRate: 1},
		{Mode: "log", SampleRate: 2},
		{Mode: "otel", SampleRate: -0.1},
	} {
		if p, err := telemetry.Setup(context.Background(), cfg, quietLogger()); err == nil {
			_ = p.Shutdown(context.Background())
			t.Errorf("Setup(%+v) succeeded", cfg)
		}
	}
}

func TestSetupNoopAndLog(t *testing.T) {
	clearOTelEnv(t)
	getenv := env(telemetry.EnvOTLPEndpoint, "http://127.0.0.1:1") // ignored outside otel mode
	for _, mode := range []string{"", telemetry.ModeNoop, telemetry.ModeLog} {
		var buf bytes.Buffer
		logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(&buf, nil), requestIDFrom))
		p, err := telemetry.Setup(context.Background(), telemetry.Config{Mode: mode, SampleRate: 1, Getenv: getenv}, logger)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.TracerProvider.(tracenoop.TracerProvider); !ok {
			t.Errorf("mode %q: TracerProvider %T, want the no-op one", mode, p.TracerProvider)
		}
		if _, ok := p.MeterProvider.(metricnoop.MeterProvider); !ok {
			t.Errorf("mode %q: MeterProvider %T, want the no-op one", mode, p.MeterProvider)
		}
		if p.Propagator == nil || p.Telemetry == nil || p.LogHandler != nil {
			t.Fatalf("mode %q: nil field in %+v", mode, p)
		}
		buf.Reset()
		p.Telemetry.Counter(withRequestID(context.Background(), "r1"), telemetry.MetricHTTPRequestsTotal, 1, tags3...)
		lines := jsonLines(t, &buf)
		if mode == telemetry.ModeLog {
			if len(lines) != 1 || lines[0]["msg"] != "metric.counter" || lines[0]["request_id"] != "r1" {
				t.Errorf("log mode lines: %v", lines)
			}
		} else if len(lines) != 0 {
			t.Errorf("mode %q wrote %v", mode, lines)
		}
		mustShutdown(t, p)
	}
}

func TestPropagatorFields(t *testing.T) {
	got := telemetry.NewPropagator().Fields()
	for _, want := range []string{"traceparent", "tracestate", "baggage"} {
		found := false
		for _, f := range got {
			found = found || f == want
		}
		if !found {
			t.Errorf("propagator fields %v lack %s", got, want)
		}
	}
	// It continues an incoming trace.
	carrier := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	sc := trace.SpanContextFromContext(telemetry.NewPropagator().Extract(context.Background(), carrier))
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() || !sc.IsSampled() {
		t.Errorf("extracted %+v", sc)
	}
}

func TestSetupOTelStdout(t *testing.T) {
	clearOTelEnv(t)
	var out syncBuffer
	p, err := telemetry.Setup(context.Background(), telemetry.Config{
		Mode: telemetry.ModeOTel, SampleRate: 1, ServiceVersion: "1.2.3",
		Stdout: &out, MetricInterval: time.Hour, Getenv: env(telemetry.EnvServiceName, "svc-from-env"),
	}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.MeterProvider.(*sdkmetric.MeterProvider); !ok {
		t.Errorf("MeterProvider %T, want the SDK one", p.MeterProvider)
	}
	if _, ok := p.TracerProvider.(*sdktrace.TracerProvider); !ok {
		t.Errorf("TracerProvider %T, want the SDK one", p.TracerProvider)
	}
	ctx, span := p.TracerProvider.Tracer("t").Start(context.Background(), "GET /x")
	if !span.SpanContext().IsValid() {
		t.Error("no exporter, but spans must still get IDs for log correlation")
	}
	p.Telemetry.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
	p.Telemetry.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 42, tags3...)
	span.End()
	if out.Len() != 0 {
		t.Fatalf("exported before the interval or Shutdown: %s", out.String())
	}
	mustShutdown(t, p)
	s := out.String()
	for _, want := range []string{"http_request_duration_ms", "http_requests_total", "svc-from-env", "1.2.3", "/api/v1/users/{id}"} {
		if !strings.Contains(s, want) {
			t.Errorf("stdout output lacks %q:\n%s", want, s)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
func (b *syncBuffer) Len() int       { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.Len() }

// otlpSink collects what an in-test OTLP receiver got.
type otlpSink struct {
	mu          sync.Mutex
	wantTraceID string // of the request runRequestAndShutdown recorded
	metrics     []*collmetrics.ExportMetricsServiceRequest
	traces      []*colltrace.ExportTraceServiceRequest
	logs        []*colllogs.ExportLogsServiceRequest
}

func (s *otlpSink) counts() (metrics, traces int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.metrics), len(s.traces)
}

// check asserts that the sink got the request metrics and the span, and the
// resource attributes.
func (s *otlpSink) check(t *testing.T, wantService string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.metrics) == 0 || len(s.traces) == 0 {
		t.Fatalf("got %d metric and %d trace exports, want both > 0", len(s.metrics), len(s.traces))
	}
	names := map[string]string{} // metric name → unit
	resAttrs := map[string]string{}
	for _, req := range s.metrics {
		for _, rm := range req.GetResourceMetrics() {
			for _, kv := range rm.GetResource().GetAttributes() {
				resAttrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					names[m.GetName()] = m.GetUnit()
				}
			}
		}
	}
	if u, ok := names["http_request_duration_ms"]; !ok || u != telemetry.UnitDuration {
		t.Errorf("metrics %v: want http_request_duration_ms with unit %q", names, telemetry.UnitDuration)
	}
	if _, ok := names["http_requests_total"]; !ok {
		t.Errorf("metrics %v: want http_requests_total", names)
	}
	if resAttrs["service.name"] != wantService || resAttrs["service.version"] != "9.9.9" || resAttrs["deployment.environment"] != "test" {
		t.Errorf("resource attributes %v", resAttrs)
	}
	spans := 0
	for _, req := range s.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				spans += len(ss.GetSpans())
			}
		}
	}
	if spans != 1 {
		t.Errorf("got %d spans, want 1", spans)
	}
	// The log record: body, request_id attribute, and the trace and span
	// IDs of the span it was logged in.
	found := false
	for _, req := range s.logs {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				for _, lr := range sl.GetLogRecords() {
					attrs := map[string]string{}
					for _, kv := range lr.GetAttributes() {
						attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
					}
					t.Logf("log record %q trace %x span %x attrs %v", lr.GetBody().GetStringValue(), lr.GetTraceId(), lr.GetSpanId(), attrs)
					if lr.GetBody().GetStringValue() == "request" && attrs["request_id"] == "req-1" &&
						hex.EncodeToString(lr.GetTraceId()) == s.wantTraceID && lr.GetSeverityText() == "INFO" {
						found = true
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("no OTLP log record \"request\" with request_id req-1 and trace ID %s in %d log exports", s.wantTraceID, len(s.logs))
	}
}

// runRequestAndShutdown records what one finished request would, then
// shuts down.
func runRequestAndShutdown(t *testing.T, sink *otlpSink, getenv func(string) string) {
	t.Helper()
	p, err := telemetry.Setup(context.Background(), telemetry.Config{
		Mode: telemetry.ModeOTel, SampleRate: 1, ServiceVersion: "9.9.9",
		Stdout: io.Discard, MetricInterval: time.Hour, Getenv: getenv,
	}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if p.LogHandler == nil {
		t.Fatal("an OTLP endpoint is set, but Provider.LogHandler is nil")
	}
	logger := slog.New(telemetry.NewContextHandler(p.LogHandler, requestIDFrom))
	ctx, span := p.TracerProvider.Tracer("t").Start(withRequestID(context.Background(), "req-1"), "GET /api/v1/users/{id}")
	p.Telemetry.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
	p.Telemetry.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 3.5, tags3...)
	logger.InfoContext(ctx, "request", "status", 200)
	sink.mu.Lock()
	sink.wantTraceID = span.SpanContext().TraceID().String()
	sink.mu.Unlock()
	span.End()
	if m, tr := sink.counts(); m != 0 || tr != 0 {
		t.Fatalf("exported before Shutdown: %d metrics, %d traces", m, tr)
	}
	mustShutdown(t, p)
}

func TestSetupOTLPHTTP(t *testing.T) {
	for _, protocol := range []string{"", "http/protobuf"} { // "" = the default
		t.Run("protocol="+protocol, func(t *testing.T) {
			clearOTelEnv(t)
			sink := &otlpSink{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				sink.mu.Lock()
				defer sink.mu.Unlock()
				switch r.URL.Path {
				case "/v1/metrics":
					var req collmetrics.ExportMetricsServiceRequest
					if err := proto.Unmarshal(body, &req); err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					sink.metrics = append(sink.metrics, &req)
				case "/v1/traces":
					var req colltrace.ExportTraceServiceRequest
					if err := proto.Unmarshal(body, &req); err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					sink.traces = append(sink.traces, &req)
				case "/v1/logs":
					var req colllogs.ExportLogsServiceRequest
					if err := proto.Unmarshal(body, &req); err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					sink.logs = append(sink.logs, &req)
				default:
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			defer srv.Close()
			runRequestAndShutdown(t, sink, env(telemetry.EnvOTLPEndpoint, srv.URL, telemetry.EnvOTLPProtocol, protocol,
				telemetry.EnvResourceAttributes, "deployment.environment=test"))
			sink.check(t, telemetry.DefaultServiceName)
		})
	}
}

type grpcMetrics struct {
	collmetrics.UnimplementedMetricsServiceServer
	sink *otlpSink
}

func (g grpcMetrics) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	g.sink.mu.Lock()
	defer g.sink.mu.Unlock()
	g.sink.metrics = append(g.sink.metrics, req)
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}

type grpcTraces struct {
	colltrace.UnimplementedTraceServiceServer
	sink *otlpSink
}

func (g grpcTraces) Export(_ context.Context, req *colltrace.ExportTraceServiceRequest) (*colltrace.ExportTraceServiceResponse, error) {
	g.sink.mu.Lock()
	defer g.sink.mu.Unlock()
	g.sink.traces = append(g.sink.traces, req)
	return &colltrace.ExportTraceServiceResponse{}, nil
}

type grpcLogs struct {
	colllogs.UnimplementedLogsServiceServer
	sink *otlpSink
}

func (g grpcLogs) Export(_ context.Context, req *colllogs.ExportLogsServiceRequest) (*colllogs.ExportLogsServiceResponse, error) {
	g.sink.mu.Lock()
	defer g.sink.mu.Unlock()
	g.sink.logs = append(g.sink.logs, req)
	return &colllogs.ExportLogsServiceResponse{}, nil
}

func TestSetupOTLPGRPC(t *testing.T) {
	clearOTelEnv(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &otlpSink{}
	srv := grpc.NewServer()
	collmetrics.RegisterMetricsServiceServer(srv, grpcMetrics{sink: sink})
	colltrace.RegisterTraceServiceServer(srv, grpcTraces{sink: sink})
	colllogs.RegisterLogsServiceServer(srv, grpcLogs{sink: sink})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	runRequestAndShutdown(t, sink, env(telemetry.EnvOTLPEndpoint, "http://"+lis.Addr().String(), // http:// = insecure
		telemetry.EnvOTLPProtocol, "grpc",
		telemetry.EnvResourceAttributes, "deployment.environment=test,service.name=from-attrs"))
	sink.check(t, "from-attrs")
}

func TestSetupSignalSpecificEndpointAndProtocol(t *testing.T) {
	clearOTelEnv(t)
	// Only traces have an endpoint; metrics fall back to stdout. The
	// traces protocol is invalid and must be reported by name.
	_, err := telemetry.Setup(context.Background(), telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: 1, Stdout: io.Discard,
		Getenv: env(telemetry.EnvOTLPTracesEndpoint, "http://127.0.0.1:1/v1/traces", telemetry.EnvOTLPTracesProtocol, "http/json")}, quietLogger())
	if err == nil || !strings.Contains(err.Error(), telemetry.EnvOTLPTracesProtocol) {
		t.Fatalf("err = %v, want one naming %s", err, telemetry.EnvOTLPTracesProtocol)
	}

	_, err = telemetry.Setup(context.Background(), telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: 1, Stdout: io.Discard,
		Getenv: env(telemetry.EnvOTLPTracesEndpoint, "http://127.0.0.1:1/v1/traces", telemetry.EnvOTLPProtocol, "carrier-pigeon")}, quietLogger())
	if err == nil || !strings.Contains(err.Error(), telemetry.EnvOTLPProtocol+":") {
		t.Fatalf("err = %v, want one naming %s", err, telemetry.EnvOTLPProtocol)
	}
}

func TestSetupSampler(t *testing.T) {
	remoteSampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	for _, tc := range []struct {
		name        string
		rate        float64
		sampler     string
		samplerArg  string
		wantRoot    bool // a new root span is sampled
		wantChild   bool // a child of a sampled remote parent is sampled
		wantErrName string
	}{
		{name: "rate 0", rate: 0, wantRoot: false, wantChild: true},
		{name: "rate 1", rate: 1, wantRoot: true, wantChild: true},
		{name: "env always_on beats rate 0", rate: 0, sampler: "always_on", wantRoot: true, wantChild: true},
		{name: "env always_off beats rate 1", rate: 1, sampler: "always_off", wantRoot: false, wantChild: false},
		{name: "env ratio arg", rate: 1, sampler: "parentbased_traceidratio", samplerArg: "0", wantRoot: false, wantChild: true},
		{name: "env unknown sampler", rate: 1, sampler: "jaeger_remote", wantErrName: telemetry.EnvTracesSampler},
		{name: "env bad arg", rate: 1, sampler: "traceidratio", samplerArg: "2", wantErrName: telemetry.EnvTracesSamplerArg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			p, err := telemetry.Setup(context.Background(), telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: tc.rate, Stdout: io.Discard,
				Getenv: env(telemetry.EnvTracesSampler, tc.sampler, telemetry.EnvTracesSamplerArg, tc.samplerArg)}, quietLogger())
			if tc.wantErrName != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrName+":") {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErrName)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mustShutdown(t, p)
			tr := p.TracerProvider.Tracer("t")
			roots := 0
			for range 100 {
				_, s := tr.Start(context.Background(), "root")
				if s.SpanContext().IsSampled() {
					roots++
				}
				if !s.SpanContext().IsValid() {
					t.Fatal("span without IDs")
				}
				s.End()
			}
			if (roots == 100) != tc.wantRoot || (roots == 0) == tc.wantRoot {
				t.Errorf("%d of 100 root spans sampled, want all: %v", roots, tc.wantRoot)
			}
			_, child := tr.Start(remoteSampled, "child")
			if child.SpanContext().IsSampled() != tc.wantChild {
				t.Errorf("child of sampled remote parent sampled = %v, want %v", child.SpanContext().IsSampled(), tc.wantChild)
			}
			child.End()
		})
	}
}

// TestSetupReadsNoProcessEnvironment: Setup takes the OTEL_* variables only
// through Config.Getenv. A sampler name in the process environment that
// Setup would refuse changes nothing when Getenv does not return it.
func TestSetupReadsNoProcessEnvironment(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv(telemetry.EnvTracesSampler, "no-such-sampler")
	t.Setenv(telemetry.EnvOTLPProtocol, "carrier-pigeon")
	t.Setenv(telemetry.EnvOTLPEndpoint, "http://127.0.0.1:1")
	p, err := telemetry.Setup(context.Background(), telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: 1, Stdout: io.Discard}, quietLogger())
	if err != nil {
		t.Fatalf("Setup read the process environment: %v", err)
	}
	defer mustShutdown(t, p)
	if p.LogHandler != nil {
		t.Error("LogHandler set although Getenv gives no endpoint")
	}
	// The same values through Getenv are refused, by name.
	_, err = telemetry.Setup(context.Background(), telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: 1, Stdout: io.Discard,
		Getenv: env(telemetry.EnvTracesSampler, "no-such-sampler")}, quietLogger())
	if err == nil || !strings.Contains(err.Error(), telemetry.EnvTracesSampler) {
		t.Fatalf("err = %v, want one naming %s", err, telemetry.EnvTracesSampler)
	}
}

// TestValidateIsSetup: for each bad value, Validate and Setup fail with the
// same message (they run the same resolve step), and for the good ones both
// pass.
func TestValidateIsSetup(t *testing.T) {
	clearOTelEnv(t)
	for _, getenv := range []func(string) string{
		env(telemetry.EnvOTLPEndpoint, "http://127.0.0.1:1", telemetry.EnvOTLPProtocol, "http/json"),
		env(telemetry.EnvOTLPEndpoint, "http://127.0.0.1:1", telemetry.EnvOTLPLogsProtocol, "thrift"),
		env(telemetry.EnvTracesSampler, "jaeger_remote"),
		env(telemetry.EnvTracesSampler, "parentbased_traceidratio", telemetry.EnvTracesSamplerArg, "-1"),
		env(telemetry.EnvOTLPTracesEndpoint, "127.0.0.1:4317"),
		env(telemetry.EnvResourceAttributes, "k=%zz"),
		env(telemetry.EnvMetricExportInterval, "0"),
		env(telemetry.EnvLogsExporter, "stdout"),
		env(), // good
		env(telemetry.EnvOTLPEndpoint, "http://127.0.0.1:1", telemetry.EnvLogsExporter, "none", telemetry.EnvTracesSampler, "always_off"), // good
	} {
		cfg := telemetry.Config{Mode: telemetry.ModeOTel, SampleRate: 1, Stdout: io.Discard, Getenv: getenv}
		verr := cfg.Validate()
		p, serr := telemetry.Setup(context.Background(), cfg, quietLogger())
		if serr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.Shutdown(ctx) // an export to 127.0.0.1:1 fails: not what this test is about
			cancel()
		}
		if fmt.Sprint(verr) != fmt.Sprint(serr) {
			t.Errorf("Validate: %v; Setup: %v", verr, serr)
		} else {
			t.Logf("both: %v", verr)
		}
	}
}
