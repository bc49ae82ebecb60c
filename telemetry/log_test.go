package telemetry_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulwark-go/bulwark/telemetry"
)

func newJSONLogger(buf *bytes.Buffer) *slog.Logger {
	h := slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(telemetry.NewContextHandler(h, requestIDFrom))
}

var tags3 = []telemetry.Tag{
	{Key: "method", Value: "GET"},
	{Key: "route", Value: "/api/v1/users/{id}"},
	{Key: "status_code", Value: "200"},
}

func TestLogModeLines(t *testing.T) {
	var buf bytes.Buffer
	tel := telemetry.NewLog(newJSONLogger(&buf), 1, requestIDFrom)
	ctx := withRequestID(context.Background(), "req-42")

	tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
	tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 12.5, tags3...)

	lines := jsonLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	want := []struct {
		msg, name string
		value     float64
	}{
		{"metric.counter", "http_requests_total", 1},
		{"metric.histogram", "http_request_duration_ms", 12.5},
	}
	for i, l := range lines {
		if l["level"] != "INFO" || l["msg"] != want[i].msg || l["name"] != want[i].name || l["value"] != want[i].value {
			t.Errorf("line %d = %v, want INFO %s name=%s value=%v", i, l, want[i].msg, want[i].name, want[i].value)
		}
		if l["method"] != "GET" || l["route"] != "/api/v1/users/{id}" || l["status_code"] != "200" {
			t.Errorf("line %d tags = %v", i, l)
		}
		if l["request_id"] != "req-42" {
			t.Errorf("line %d request_id = %v, want req-42", i, l["request_id"])
		}
		if _, ok := l["trace_id"]; ok {
			t.Errorf("line %d has trace_id without a span: %v", i, l)
		}
	}
	// Attribute order: name, value, then the tags.
	first := buf.String()
	re := regexp.MustCompile(`"msg":"metric.counter","name":"http_requests_total","value":1,"method":"GET","route":"/api/v1/users/\{id\}","status_code":"200"`)
	if !re.MatchString(first) {
		t.Errorf("unexpected attribute order: %s", first)
	}
}

func TestContextHandlerTraceIDs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	var buf bytes.Buffer
	logger := newJSONLogger(&buf)
	tel := telemetry.NewLog(logger, 1, requestIDFrom)

	ctx, span := tp.Tracer("test").Start(withRequestID(context.Background(), "req-7"), "GET /x")
	tel.Counter(ctx, "c", 1)
	logger.InfoContext(ctx, "plain line")
	logger.Info("no context line") // context.Background(): nothing added
	span.End()

	lines := jsonLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	sc := span.SpanContext()
	for _, l := range lines[:2] {
		if l["trace_id"] != sc.TraceID().String() || l["span_id"] != sc.SpanID().String() || l["request_id"] != "req-7" {
			t.Errorf("line %v: want trace_id %s span_id %s request_id req-7", l, sc.TraceID(), sc.SpanID())
		}
	}
	for _, k := range []string{"trace_id", "span_id", "request_id"} {
		if _, ok := lines[2][k]; ok {
			t.Errorf("line without context has %s: %v", k, lines[2])
		}
	}
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("recorded %d spans, want 1", n)
	}
}

func TestContextHandlerNoDuplicates(t *testing.T) {
	var buf bytes.Buffer
	logger := newJSONLogger(&buf)
	ctx := withRequestID(context.Background(), "req-1")

	logger.With("request_id", "req-1").InfoContext(ctx, "with")
	logger.InfoContext(ctx, "explicit", "request_id", "req-1")
	logger.WithGroup("g").InfoContext(ctx, "grouped", "k", "v")

	out := buf.String()
	lines := jsonLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	for i, line := range bytes.Split(bytes.TrimSpace([]byte(out)), []byte("\n"))[:2] {
		if n := bytes.Count(line, []byte(`"request_id"`)); n != 1 {
			t.Errorf("line %d has request_id %d times: %s", i, n, line)
		}
	}
	g, _ := lines[2]["g"].(map[string]any)
	if g["request_id"] != "req-1" || g["k"] != "v" {
		t.Errorf("grouped line = %v", lines[2])
	}
}

func TestContextHandlerNilAccessor(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(&buf, nil), nil))
	logger.InfoContext(withRequestID(context.Background(), "x"), "m")
	if l := jsonLines(t, &buf); len(l) != 1 || l[0]["request_id"] != nil {
		t.Errorf("lines = %v", l)
	}
}

func TestLogModeSampleRate(t *testing.T) {
	const requests = 2000
	for _, tc := range []struct {
		rate   float64
		lo, hi int // accepted number of sampled requests
	}{
		{0, 0, 0},
		{1, requests, requests},
		{0.5, 900, 1100},
		{0.1, 150, 250},
	} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			var buf bytes.Buffer
			tel := telemetry.NewLog(newJSONLogger(&buf), tc.rate, requestIDFrom)
			for i := range requests {
				ctx := withRequestID(context.Background(), fmt.Sprintf("req-%d", i))
				tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
				tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 3, tags3...)
				tel.Counter(ctx, "other_total", 1)
			}
			perRequest := map[string]int{}
			for _, l := range jsonLines(t, &buf) {
				perRequest[l["request_id"].(string)]++
			}
			for id, n := range perRequest {
				if n != 3 {
					t.Fatalf("request %s: %d of 3 lines written (want all or nothing)", id, n)
				}
				if !telemetry.InLogSample(id, tc.rate) {
					t.Fatalf("request %s written but InLogSample says no", id)
				}
			}
			t.Logf("rate %v: %d of %d requests sampled", tc.rate, len(perRequest), requests)
			if n := len(perRequest); n < tc.lo || n > tc.hi {
				t.Errorf("rate %v: %d of %d requests sampled, want %d..%d", tc.rate, n, requests, tc.lo, tc.hi)
			}
		})
	}
}

func TestLogModeSampleByTraceID(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var buf bytes.Buffer
	tel := telemetry.NewLog(newJSONLogger(&buf), 0.5, nil) // no request-ID accessor
	const requests = 1000
	for range requests {
		ctx, span := tp.Tracer("t").Start(context.Background(), "r")
		tel.Counter(ctx, "a", 1)
		tel.Counter(ctx, "b", 1)
		span.End()
	}
	perTrace := map[string]int{}
	for _, l := range jsonLines(t, &buf) {
		perTrace[l["trace_id"].(string)]++
	}
	for id, n := range perTrace {
		if n != 2 {
			t.Fatalf("trace %s: %d of 2 lines", id, n)
		}
	}
	if n := len(perTrace); n < 400 || n > 600 {
		t.Errorf("%d of %d traces sampled at 0.5", n, requests)
	}

	// No request ID and no span: not a request, written when rate > 0.
	buf.Reset()
	tel.Counter(context.Background(), "bg", 1)
	if n := len(jsonLines(t, &buf)); n != 1 {
		t.Errorf("background emission: %d lines, want 1", n)
	}
}

func TestLogModeLevelDisabledAndNilContext(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	tel := telemetry.NewLog(slog.New(telemetry.NewContextHandler(h, requestIDFrom)), 1, requestIDFrom)
	tel.Counter(context.Background(), "c", 1)
	if buf.Len() != 0 {
		t.Errorf("INFO line written at WARN level: %s", buf.String())
	}

	buf.Reset()
	tel = telemetry.NewLog(newJSONLogger(&buf), 0.5, requestIDFrom)
	//lint:ignore SA1012 nil context must not panic
	tel.Histogram(nil, "h", 1)
	if n := len(jsonLines(t, &buf)); n != 1 {
		t.Errorf("nil context: %d lines", n)
	}
}

func TestLogModeConcurrent(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	tel := telemetry.NewLog(slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(w, nil), requestIDFrom)), 1, requestIDFrom)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ctx := withRequestID(context.Background(), fmt.Sprint("g", g))
			for range 100 {
				tel.Counter(ctx, "c", 1, tags3...)
			}
		})
	}
	wg.Wait()
	if n := len(jsonLines(t, &buf)); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
