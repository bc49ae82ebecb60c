// Command gozero is the go-zero server `loadtest -compare` (make compare)
// measures beside bulwark: GET /health with the same 15 bytes and
// Content-Type as bulwark's, behind go-zero's default rest chain (trace,
// access log, Prometheus, max-conns, breaker, CPU load shedding, timeout,
// recover, metrics, max-bytes, gunzip), configured through go-zero's own
// config loader so every default is go-zero's.
//
// It lives in a Go module of its own (this directory's go.mod), so go-zero
// and its dependencies never enter the service's go.mod.
//
// Environment: PORT (required); GOZERO_OTLP_ENDPOINT=host:port turns on
// go-zero's OpenTelemetry agent, 100% sampled, exporting spans over
// OTLP/HTTP to http://host:port/v1/traces. The access log goes to stdout
// as JSON, go-zero's default.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/rest"
)

func main() {
	if err := run(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "gozero:", err)
		os.Exit(1)
	}
}

// config is the YAML go-zero would read from a file.
func config(getenv func(string) string) (string, error) {
	port := getenv("PORT")
	if port == "" {
		return "", fmt.Errorf("PORT is not set")
	}
	y := "Name: gozero-compare\nHost: 127.0.0.1\nPort: " + port + "\n"
	if ep := getenv("GOZERO_OTLP_ENDPOINT"); ep != "" {
		y += "Telemetry:\n  Name: gozero-compare\n  Endpoint: " + ep + "\n  Batcher: otlphttp\n  OtlpHttpPath: /v1/traces\n  Sampler: 1.0\n"
	}
	return y, nil
}

func run(getenv func(string) string) error {
	y, err := config(getenv)
	if err != nil {
		return err
	}
	var c rest.RestConf
	if err := conf.LoadFromYamlBytes([]byte(y), &c); err != nil {
		return err
	}
	server, err := rest.NewServer(c)
	if err != nil {
		return err
	}
	defer server.Stop()
	body := []byte(`{"status":"ok"}`)
	server.AddRoute(rest.Route{Method: http.MethodGet, Path: "/health", Handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}})
	server.Start() // returns after SIGTERM, once go-zero's shutdown listeners ran
	return nil
}
