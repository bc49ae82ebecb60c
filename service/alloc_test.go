package service_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/telemetry"
)

// The performance budget (docs/PERFORMANCE.md): in noop mode, with limiter
// and cache off, the whole chain adds at most 8 allocations per /health
// request over a bare ServeMux serving the same bytes. Allocation counts are
// deterministic, so this is a test; timings are left to the benchmarks.
func TestNoopChainAllocationBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector; run go test ./service without -race")
	}
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(io.Discard, nil), middleware.RequestIDFromContext))
	srv := service.NewServer(service.Config{}, service.Deps{
		Logger: logger, Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	r := httptest.NewRequest(http.MethodGet, "/health", nil)
	w := &benchWriter{h: make(http.Header)}
	measure := func(h http.Handler) float64 {
		return testing.AllocsPerRun(500, func() {
			w.reset()
			h.ServeHTTP(w, r)
		})
	}
	bare, chain := measure(mux), measure(srv)
	if w.status != http.StatusOK || w.h.Get(middleware.HeaderRequestID) == "" {
		t.Fatalf("status %d, X-Request-ID %q", w.status, w.h.Get(middleware.HeaderRequestID))
	}
	if added := chain - bare; added > 8 {
		t.Fatalf("noop chain adds %.0f allocations per request over bare (%.0f → %.0f), budget 8", added, bare, chain)
	}
}
