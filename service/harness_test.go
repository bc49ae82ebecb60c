package service_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	bredis "github.com/bulwark-go/bulwark/storage/redis"
	"github.com/bulwark-go/bulwark/telemetry"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// This file is the harness of the rate-limit and cache tests: the two
// backends (process memory; a real Redis at TEST_REDIS_URL), env options, and
// small assertion helpers.

// semanticTimeout bounds each limiter and cache call in the tests about
// behaviour (not about failure): generous, so that a loaded machine running
// -race never fails open by accident and turns an exact count into a flake.
const semanticTimeout = 5 * time.Second

// backend is a rate store and a cache of one kind. Every key the service
// touches is recorded, so that the Redis keys can be inspected and deleted
// when the test ends.
type backend struct {
	name  string
	rate  middleware.RateStore
	cache service.Cache
	raw   *goredis.Client // nil for the memory backend
	keys  *keyLog
}

type keyLog struct {
	mu   sync.Mutex
	keys map[string]int
}

func (k *keyLog) add(keys ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range keys {
		k.keys[key]++
	}
}

// count reports how often the service used key.
func (k *keyLog) count(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[key]
}

func (k *keyLog) all() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]string, 0, len(k.keys))
	for key := range k.keys {
		out = append(out, key)
	}
	return out
}

type loggedRate struct {
	middleware.RateStore
	log *keyLog
}

func (l loggedRate) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	l.log.add(key)
	return l.RateStore.Hit(ctx, key, window)
}

type loggedCache struct {
	service.Cache
	log *keyLog
}

func (l loggedCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	l.log.add(key)
	return l.Cache.Get(ctx, key)
}

func (l loggedCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	l.log.add(key)
	return l.Cache.Set(ctx, key, value, ttl)
}

func (l loggedCache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	l.log.add(key)
	return l.Cache.Add(ctx, key, value, ttl)
}

func (l loggedCache) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	l.log.add(key)
	return l.Cache.CompareAndSwap(ctx, key, old, value, ttl)
}

func (l loggedCache) ReplaceUnlessGuarded(ctx context.Context, key string, value []byte, ttl time.Duration, mine, guard []byte) (bool, error) {
	l.log.add(key)
	return l.Cache.ReplaceUnlessGuarded(ctx, key, value, ttl, mine, guard)
}

func newBackend(name string, rate middleware.RateStore, cache service.Cache, raw *goredis.Client) *backend {
	log := &keyLog{keys: map[string]int{}}
	return &backend{name: name, rate: loggedRate{rate, log}, cache: loggedCache{cache, log}, raw: raw, keys: log}
}

// backends are the two implementations every rate-limit and cache test runs
// against.
var backends = []struct {
	name string
	new  func(t *testing.T) *backend
}{
	{"memory", memoryBackend},
	{"redis", sharedRedisBackend},
}

func memoryBackend(*testing.T) *backend {
	return newBackend("memory", memory.NewRateStore(nil), memory.NewCache(nil), nil)
}

// testRedisURL is TEST_REDIS_URL or the local default.
func testRedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// rawRedis connects a plain go-redis client to url for planting and
// inspecting keys. It skips the test when Redis does not answer (fails it
// when CI=true).
func rawRedis(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("redis url %q: %v", url, err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1 // skip fast when Redis is absent
	raw := goredis.NewClient(opt)
	t.Cleanup(func() { _ = raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := raw.Ping(ctx).Err(); err != nil {
		pgtest.Unavailable(t, "Redis at "+url, err)
	}
	return raw
}

// sharedRedisBackend is the Redis at TEST_REDIS_URL, shared with other tests
// and runs: the tests use random client IPs and fresh user ids, and every
// key the service touched is deleted when the test ends.
func sharedRedisBackend(t *testing.T) *backend {
	t.Helper()
	url := testRedisURL()
	raw := rawRedis(t, url)
	c := newRedisClient(t, url, semanticTimeout)
	b := newBackend("redis", c.RateStore(), c.Cache(), raw)
	t.Cleanup(func() {
		keys := b.keys.all()
		if len(keys) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := raw.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("cleanup: del %d keys: %v", len(keys), err)
		}
	})
	return b
}

// newRedisClient is a client whose operations and dials are bounded by
// opTimeout: the tests about behaviour give a generous one (a dial under
// the default 250ms fails on a loaded machine and the request would fail
// open by accident), the failure tests a short one.
func newRedisClient(t *testing.T, url string, opTimeout time.Duration) *bredis.Client {
	t.Helper()
	c, err := bredis.New(context.Background(), url, bredis.Options{OpTimeout: opTimeout, DialTimeout: max(opTimeout, bredis.DefaultDialTimeout)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Env options.

func withRateLimit(rs middleware.RateStore, n int, window, timeout time.Duration) envOption {
	return func(s *envSetup) {
		s.deps.RateStore = rs
		s.cfg.RateLimit = service.RateLimitConfig{Requests: n, Window: window, Timeout: timeout}
	}
}

func withCache(c service.Cache, ttl, timeout time.Duration) envOption {
	return func(s *envSetup) {
		s.deps.Cache = c
		s.cfg.CacheTTL, s.cfg.CacheTimeout = ttl, timeout
	}
}

func withTelemetry(tel telemetry.Telemetry) envOption {
	return func(s *envSetup) { s.deps.Telemetry = tel }
}

func withTracing(tp trace.TracerProvider) envOption {
	return func(s *envSetup) { s.deps.TracerProvider = tp }
}

// withRemote makes addr the RemoteAddr of requests that set none, the
// set-up's sign-ups included.
func withRemote(addr string) envOption {
	return func(s *envSetup) { s.remote = addr }
}

func withTrustedProxies(t *testing.T, list string) envOption {
	tp, err := middleware.ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return func(s *envSetup) { s.cfg.TrustedProxies = tp }
}

// randomIP returns a random address in 2001:db8::/32 (documentation range):
// a client identity no other test or run shares.
func randomIP() netip.Addr {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	return netip.AddrFrom16(b)
}

// remote is the RemoteAddr of a socket peer at ip.
func remote(ip netip.Addr) string { return netip.AddrPortFrom(ip, 40000).String() }

// ipKey is the limiter key of a client at ip: IPv6 clients are keyed by
// their /64.
func ipKey(ip netip.Addr) string {
	return "ratelimit:ip:" + middleware.ClientIdentity(ip.String(), middleware.DefaultIPv6Prefix)
}

func userKey(id string) string { return "ratelimit:user:" + id }

var rlHeaderNames = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}

// rlHeaders asserts the three rate-limit headers are integers and returns them.
func rlHeaders(t *testing.T, rec *httptest.ResponseRecorder) (limit, remaining, reset int64) {
	t.Helper()
	var v [3]int64
	for i, h := range rlHeaderNames {
		s := rec.Header().Get(h)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s = %q on a %d response, want an integer", h, s, rec.Code)
		}
		v[i] = n
	}
	return v[0], v[1], v[2]
}

// noRLHeaders asserts the response carries no rate-limit header.
func noRLHeaders(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	for _, h := range append(rlHeaderNames, "Retry-After") {
		if v := rec.Header().Get(h); v != "" {
			t.Errorf("%s: %d response carries %s: %q", what, rec.Code, h, v)
		}
	}
}

// check429 asserts a rate-limited answer: the envelope, Retry-After within
// the window, the headers with nothing remaining.
func check429(t *testing.T, rec *httptest.ResponseRecorder, limit int, window time.Duration) {
	t.Helper()
	checkEnvelope(t, rec, 429, "rate_limited")
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 1 || time.Duration(ra)*time.Second > window+time.Second {
		t.Fatalf("Retry-After %q, want 1..%v seconds", rec.Header().Get("Retry-After"), window)
	}
	l, rem, _ := rlHeaders(t, rec)
	if l != int64(limit) || rem != 0 {
		t.Fatalf("429 with X-RateLimit-Limit %d, -Remaining %d; want %d, 0", l, rem, limit)
	}
}

// countingUsers counts ByID reads per id, and can hold the reads of one id
// before (gate) or after (afterRead) the store answers, so that concurrent
// misses really overlap or a read can be made to finish late.
type countingUsers struct {
	user.Store
	mu        sync.Mutex
	byID      map[uuid.UUID]int
	slow      uuid.UUID
	gate      func()
	afterRead func()
}

func newCountingUsers(s user.Store) *countingUsers {
	return &countingUsers{Store: s, byID: map[uuid.UUID]int{}}
}

func (c *countingUsers) ByID(ctx context.Context, id uuid.UUID) (user.User, error) {
	c.mu.Lock()
	c.byID[id]++
	var gate, after func()
	if c.slow == id {
		gate, after = c.gate, c.afterRead
	}
	c.mu.Unlock()
	if gate != nil {
		gate()
	}
	u, err := c.Store.ByID(ctx, id)
	if after != nil {
		after()
	}
	return u, err
}

func (c *countingUsers) reads(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[uuid.MustParse(id)]
}

// otelMetrics records through the real OTel Telemetry into a manual reader.
type otelMetrics struct {
	tel    telemetry.Telemetry
	reader *sdkmetric.ManualReader
}

func newOTelMetrics(t *testing.T) *otelMetrics {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	return &otelMetrics{tel: tel, reader: reader}
}

// sum returns the value of counter name for the data point whose attributes
// include every "key=value" of attrs.
func (m *otelMetrics) sum(t *testing.T, name string, attrs ...string) float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, sm := range rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			if mm.Name != name {
				continue
			}
			s, ok := mm.Data.(metricdata.Sum[float64])
			if !ok {
				t.Fatalf("%s is %T, want a float64 sum", name, mm.Data)
			}
		points:
			for _, dp := range s.DataPoints {
				for _, kv := range attrs {
					k, v, _ := strings.Cut(kv, "=")
					if got, ok := dp.Attributes.Value(attribute.Key(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}

// eventually retries f every 50ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")

// countTel is a Telemetry that counts counters by name and tags
// ("name{k=v,k=v}", tags in the order given).
type countTel struct {
	mu sync.Mutex
	n  map[string]float64
}

func newCountTel() *countTel { return &countTel{n: map[string]float64{}} }

func (c *countTel) Counter(_ context.Context, name string, v float64, tags ...telemetry.Tag) {
	kv := make([]string, len(tags))
	for i, t := range tags {
		kv[i] = t.Key + "=" + t.Value
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[name+"{"+strings.Join(kv, ",")+"}"] += v
}

func (c *countTel) Histogram(context.Context, string, float64, ...telemetry.Tag) {}

// get returns the counter name{tags}, tags written "k=v,k=v".
func (c *countTel) get(name, tags string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name+"{"+tags+"}"]
}
