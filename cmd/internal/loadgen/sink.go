package loadgen

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Sink is a stand-in collector: it accepts OTLP/HTTP protobuf exports
// of traces, metrics and logs, answers 200 with an empty (full-success) response
// and counts what it received. It makes otel mode measure the SDK's cost
// (spans, batching, encoding, the HTTP export), not a collector's.
type Sink struct {
	srv           *http.Server
	Addr          string       // host:port of its OTLP/HTTP endpoint
	Spans         atomic.Int64 // spans received
	TraceExports  atomic.Int64 // POSTs to /v1/traces
	MetricExports atomic.Int64 // POSTs to /v1/metrics
}

// StartSink listens on a free loopback port.
func StartSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n int64
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += int64(len(ss.Spans))
			}
		}
		s.Spans.Add(n)
		s.TraceExports.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		if _, err := readBody(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.MetricExports.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	// otel mode also sends its log records (one access-log record per request) over OTLP.
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		if _, err := readBody(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(io.LimitReader(rd, 64<<20))
}

// Close stops it.
func (s *Sink) Close() { _ = s.srv.Close() }
