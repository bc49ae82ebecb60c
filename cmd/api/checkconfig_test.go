package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// TestCheckConfigIsStartup runs -check-config's check (checkConfig) and
// start-up (run) on the same environments: for each bad value both fail
// with the same one-line message naming the variable; for the good one
// both pass (run, with its context already cancelled, starts and stops).
// Every value here once passed -check-config and then failed start-up, or
// is of a kind that could.
func TestCheckConfigIsStartup(t *testing.T) {
	otel := func(kv ...string) map[string]string {
		m := map[string]string{"TELEMETRY_MODE": "otel", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string // the variable the message must name; "" for a good environment
		env  map[string]string
	}{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", otel("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", otel("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")},
		{"OTEL_TRACES_SAMPLER", otel("OTEL_TRACES_SAMPLER", "sometimes")},
		{"OTEL_TRACES_SAMPLER_ARG", otel("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "1.5")},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", otel("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")},
		{"OTEL_RESOURCE_ATTRIBUTES", otel("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment")},
		{"OTEL_METRIC_EXPORT_INTERVAL", otel("OTEL_METRIC_EXPORT_INTERVAL", "5s")},
		{"OTEL_LOGS_EXPORTER", otel("OTEL_LOGS_EXPORTER", "console")},
		{"TELEMETRY_SEMCONV", map[string]string{"TELEMETRY_SEMCONV": "perhaps"}},
		{"DEBUG_ADDR", map[string]string{"DEBUG_ADDR": "6060"}},
		{"DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:1/db?pool_max_conns=many"}},
		{"REDIS_URL", map[string]string{"REDIS_URL": "redis://:hunter2@127.0.0.1:1/not-a-db"}},
		{"FIRST_SUPERUSER_EMAIL", map[string]string{"FIRST_SUPERUSER_EMAIL": "admin", "FIRST_SUPERUSER_PASSWORD": "long-enough-password"}},
		{"FIRST_SUPERUSER_PASSWORD", map[string]string{"FIRST_SUPERUSER_EMAIL": "admin@example.com", "FIRST_SUPERUSER_PASSWORD": "short"}},
		{"", otel("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.1",
			"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test", "OTEL_METRIC_EXPORT_INTERVAL", "60000",
			"TELEMETRY_SEMCONV", "true")},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s=%v", c.name, c.env), func(t *testing.T) {
			c.env["PORT"] = "0"
			getenv := envOf(c.env)
			checkErr := checkConfig(getenv)
			if c.name == "" {
				if checkErr != nil {
					t.Fatalf("good environment refused: %v", checkErr)
				}
				// run gets past its checks and serves: stop it once it
				// says it is listening.
				ctx, cancel := context.WithCancel(context.Background())
				out := &signalWriter{want: "msg=listening", seen: make(chan struct{})}
				done := make(chan error, 1)
				go func() { done <- run(ctx, getenv, out, io.Discard) }()
				select {
				case <-out.seen:
					cancel()
					if err := <-done; err != nil {
						t.Fatalf("run: %v", err)
					}
				case err := <-done:
					cancel()
					t.Fatalf("run stopped before listening: %v", err)
				}
				return
			}
			runErr := run(context.Background(), getenv, io.Discard, io.Discard)
			if checkErr == nil || runErr == nil || checkErr.Error() != runErr.Error() {
				t.Fatalf("check: %v\\nrun:   %v\\nwant the same error from both", checkErr, runErr)
			}
			msg := checkErr.Error()
			if !strings.Contains(msg, c.name) || strings.Contains(msg, "\\n") || strings.Contains(msg, "hunter2") {
				t.Fatalf("message %q: want one line naming %s, no password", msg, c.name)
			}
			t.Logf("both: %s", msg)
		})
	}
}

// signalWriter closes seen once the text written to it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}
