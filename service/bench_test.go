package service_test

// Benchmarks of the whole middleware chain (service.NewServer) beside a bare
// http.ServeMux serving the same bytes, in one run. `make bench` runs them and
// summarises the ratios (cmd/benchsum); docs/PERFORMANCE.md explains each row.
//
// Every request goes through ServeHTTP in-process with a reused request and a
// minimal ResponseWriter, so the figures are the cost of the chain itself:
// the net/http server, the network and the client are not in them (the load
// test, cmd/loadtest, measures those). Sub-benchmarks that need PostgreSQL or
// Redis skip when those are unreachable.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/bulwark-go/bulwark/storage/redis"
	"github.com/bulwark-go/bulwark/telemetry"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// benchWriter is the cheapest ResponseWriter that still behaves like one:
// a header map cleared between requests, the status, and a byte count.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchSpanSink is an in-memory span exporter that counts and drops, so a
// long benchmark does not hold millions of spans.
type benchSpanSink struct{ spans atomic.Int64 }

func (s *benchSpanSink) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	s.spans.Add(int64(len(spans)))
	return nil
}
func (s *benchSpanSink) Shutdown(context.Context) error { return nil }

// benchChain describes one server configuration.
type benchChain struct {
	mode    string    // telemetry.ModeNoop, ModeLog or ModeOTel
	logOut  io.Writer // where the JSON log (access log, metric lines) goes
	users   user.Store
	rate    middleware.RateStore
	limit   int
	cache   service.Cache
	timeout time.Duration
}

// build assembles the server as cmd/api does (JSON logger on the context
// handler, the telemetry of the mode, otelhttp only in otel mode).
func (c benchChain) build(b *testing.B) (*service.Server, *service.Tokens) {
	b.Helper()
	out := c.logOut
	if out == nil {
		out = io.Discard
	}
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(out, nil), middleware.RequestIDFromContext))
	deps := service.Deps{
		Logger: logger,
		Users:  c.users,
		Tokens: service.NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour),
		Hasher: service.NewArgon2id(64, 1, 1),
	}
	if deps.Users == nil {
		deps.Users = memory.NewUsers()
	}
	switch c.mode {
	case telemetry.ModeLog:
		deps.Telemetry = telemetry.NewLog(logger, 1, middleware.RequestIDFromContext)
	case telemetry.ModeOTel:
		// The real SDK, as telemetry.Setup builds it, with in-memory ends:
		// metrics aggregate into a manual reader, spans are sampled at 100%
		// and go through the batch processor to a discarding exporter.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		sink := &benchSpanSink{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(sink))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		tel, err := telemetry.NewOTel(mp)
		if err != nil {
			b.Fatal(err)
		}
		deps.Telemetry, deps.TracerProvider, deps.Propagator = tel, tp, telemetry.NewPropagator()
	default:
		deps.Telemetry = telemetry.Noop()
	}
	deps.RateStore, deps.Cache = c.rate, c.cache
	limit := c.limit
	if limit == 0 {
		limit = 1 << 30
	}
	timeout := c.timeout
	if timeout == 0 {
		timeout = 50 * time.Millisecond
	}
	srv := service.NewServer(service.Config{
		RateLimit:    service.RateLimitConfig{Requests: limit, Window: time.Minute, Timeout: timeout},
		CacheTTL:     time.Minute,
		CacheTimeout: timeout,
	}, deps)
	return srv, deps.Tokens
}

// benchSignup creates a user through the API and returns its id and a token.
func benchSignup(b *testing.B, h http.Handler, tokens *service.Tokens, email string) (string, string) {
	b.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/users",
		strings.NewReader(`{"email":"`+email+`","password":"benchmark password"}`))
	r.Header.Set("Content-Type", "application/json")
	// A peer of its own, so the sign-up never meets a limit of 1 that an
	// earlier run left on the shared Redis.
	var ip [2]byte
	_, _ = rand.Read(ip[:])
	r.RemoteAddr = "198.18." + strconv.Itoa(int(ip[0])) + "." + strconv.Itoa(int(ip[1])) + ":40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	var u struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
		b.Fatal(err)
	}
	id, err := uuid.Parse(u.ID)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokens.Issue(id, 0) // a new user: token version 0
	if err != nil {
		b.Fatal(err)
	}
	return u.ID, tok
}

// benchServe serves r on h b.N times and checks the status of the last
// response. It returns ns/op so the caller can keep the bare figure.
func benchServe(b *testing.B, h http.Handler, r *http.Request, want int) float64 {
	b.Helper()
	w := &benchWriter{h: make(http.Header)}
	// One request outside the timing: warms caches, fills the user cache,
	// uses up a limit of 1.
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.status != want {
		b.Fatalf("status %d, want %d", w.status, want)
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// reportVsBare adds x-bare: this configuration's ns/op over the bare
// ServeMux's, measured just before in the same run (0 when bare was not run).
func reportVsBare(b *testing.B, ns, bare float64) {
	if bare > 0 {
		b.ReportMetric(ns/bare, "x-bare")
	}
}

func benchLogFile(b *testing.B) *os.File {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}

// benchRedis returns a client on TEST_REDIS_URL (default local) and a raw
// client for counting commands, or skips.
func benchRedis(b *testing.B) (*redis.Client, *goredis.Client) {
	b.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		b.Fatalf("TEST_REDIS_URL: %v", err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1
	raw := goredis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := raw.Ping(ctx).Err(); err != nil {
		_ = raw.Close()
		pgtest.Unavailable(b, "Redis", err)
	}
	c, err := redis.New(ctx, url, redis.Options{OpTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(); _ = raw.Close() })
	return c, raw
}

// redisCalls is the number of commands Redis has served to clients:
// the calls of INFO commandstats, less INCR, PTTL and PEXPIRE, which this
// service only runs inside its rate-limit script. It is server-wide, so other
// clients of the same server add noise.
func redisCalls(b *testing.B, raw *goredis.Client) int64 {
	s, err := raw.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_incr", "cmdstat_pttl", "cmdstat_pexpire":
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, _ := strconv.ParseInt(calls, 10, 64)
		n += v
	}
	return n
}

// reportRedisRoundTrips runs bench and reports the Redis round trips per
// request it caused (the first INFO call itself is subtracted).
func reportRedisRoundTrips(b *testing.B, raw *goredis.Client, bench func()) {
	before := redisCalls(b, raw)
	bench()
	after := redisCalls(b, raw)
	b.ReportMetric(float64(after-before-1)/float64(b.N), "redis-rtt/op")
}

// missingCache makes every Get a miss while still paying its round trip:
// the cost of the miss path (Get, database read, Add) on every request.
type missingCache struct{ service.Cache }

func (m missingCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	_, _, err := m.Cache.Get(ctx, key)
	return nil, false, err
}

func benchPostgres(b *testing.B) *postgres.Store {
	b.Helper()
	url := pgtest.NewDatabase(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	return st
}

// BenchmarkChain compares the full chain in each configuration with a bare
// ServeMux in the same run:
//
//   - health/*: GET /health. bare is a ServeMux with the same handler bytes;
//     noop, log and otel are the telemetry modes with the JSON log to
//     io.Discard, -file variants write it to a file (one write per line, as
//     the binary does with stdout redirected).
//   - users-get/*: GET /api/v1/users/{id} by the user itself (bearer token).
//     bare writes the same UserPublic bytes from a ServeMux; mem is the chain
//     on the memory store with limiter and cache off; limiter-* turn the
//     limiter on (limit never reached) and over-limit-* answer 429 on every
//     request; pg-* read Postgres with the cache off, missing (every Get
//     misses, then the database read and the Add) or hitting.
func BenchmarkChain(b *testing.B) {
	health := httptest.NewRequest(http.MethodGet, "/health", nil)
	health.RemoteAddr = "192.0.2.10:40000"

	b.Run("health", func(b *testing.B) {
		var bare float64
		b.Run("bare", func(b *testing.B) {
			mux := http.NewServeMux()
			body := []byte(`{"status":"ok"}`)
			mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(body)
			})
			bare = benchServe(b, mux, health, http.StatusOK)
		})
		for _, c := range []struct {
			name string
			mode string
			file bool
		}{
			{"noop", telemetry.ModeNoop, false},
			{"noop-file", telemetry.ModeNoop, true},
			{"log-discard", telemetry.ModeLog, false},
			{"log-file", telemetry.ModeLog, true},
			{"otel", telemetry.ModeOTel, false},
			{"otel-file", telemetry.ModeOTel, true},
		} {
			b.Run(c.name, func(b *testing.B) {
				cfg := benchChain{mode: c.mode}
				if c.file {
					cfg.logOut = benchLogFile(b)
				}
				srv, _ := cfg.build(b)
				reportVsBare(b, benchServe(b, srv, health, http.StatusOK), bare)
			})
		}
	})

	b.Run("users-get", func(b *testing.B) {
		var bare float64
		get := func(id, token string) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/users/"+id, nil)
			r.RemoteAddr = "192.0.2.10:40000"
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}
		// A user served by a plain chain gives bare its exact body.
		ref := benchChain{}
		refSrv, refTokens := ref.build(b)
		refID, refTok := benchSignup(b, refSrv, refTokens, "bare@example.com")
		rec := httptest.NewRecorder()
		refSrv.ServeHTTP(rec, get(refID, refTok))
		userBody := bytes.Clone(rec.Body.Bytes())

		b.Run("bare", func(b *testing.B) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /api/v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(userBody)
			})
			bare = benchServe(b, mux, get(refID, refTok), http.StatusOK)
		})
		run := func(name string, want int, cfg func(b *testing.B) benchChain, raw func(b *testing.B) *goredis.Client) {
			b.Run(name, func(b *testing.B) {
				c := cfg(b)
				srv, tokens := c.build(b)
				id, tok := benchSignup(b, srv, tokens, "user@example.com")
				r := get(id, tok)
				var ns float64
				if raw != nil {
					reportRedisRoundTrips(b, raw(b), func() { ns = benchServe(b, srv, r, want) })
				} else {
					ns = benchServe(b, srv, r, want)
				}
				reportVsBare(b, ns, bare)
			})
		}
		var rawRedis *goredis.Client
		redisFor := func(b *testing.B) *redis.Client {
			c, raw := benchRedis(b)
			rawRedis = raw
			return c
		}
		rawOf := func(*testing.B) *goredis.Client { return rawRedis }

		run("mem", http.StatusOK, func(*testing.B) benchChain { return benchChain{} }, nil)
		run("mem-limiter-memory", http.StatusOK, func(*testing.B) benchChain {
			return benchChain{rate: memory.NewRateStore(nil)}
		}, nil)
		run("mem-limiter-redis", http.StatusOK, func(b *testing.B) benchChain {
			return benchChain{rate: redisFor(b).RateStore()}
		}, rawOf)
		run("mem-over-limit-memory", http.StatusTooManyRequests, func(*testing.B) benchChain {
			return benchChain{rate: memory.NewRateStore(nil), limit: 1}
		}, nil)
		run("mem-over-limit-redis", http.StatusTooManyRequests, func(b *testing.B) benchChain {
			return benchChain{rate: redisFor(b).RateStore(), limit: 1}
		}, rawOf)
		run("pg-nocache", http.StatusOK, func(b *testing.B) benchChain {
			return benchChain{users: benchPostgres(b)}
		}, nil)
		run("pg-cache-miss", http.StatusOK, func(b *testing.B) benchChain {
			return benchChain{users: benchPostgres(b), cache: missingCache{redisFor(b).Cache()}}
		}, rawOf)
		run("pg-cache-hit", http.StatusOK, func(b *testing.B) benchChain {
			return benchChain{users: benchPostgres(b), cache: redisFor(b).Cache()}
		}, rawOf)
		run("pg-cache-hit-memory", http.StatusOK, func(b *testing.B) benchChain {
			return benchChain{users: benchPostgres(b), cache: memory.NewCache(nil)}
		}, nil)
	})
}
