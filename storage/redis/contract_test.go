package redis

import (
	"context"
	"github.com/bulwark-go/bulwark/storage/testenv"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/storage/storagetest"
)

// sharedRedis connects to TEST_REDIS_URL (default redis://127.0.0.1:6379/0)
// with a plain go-redis client for planting, inspecting and cleaning up
// keys. It skips the test when Redis does not answer, or fails it if CI=true.
// Every key under prefix is deleted when the test ends.
func sharedRedis(t *testing.T, prefix string) (string, *goredis.Client) {
	t.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1 // skip fast when Redis is absent
	raw := goredis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := raw.Ping(ctx).Err(); err != nil {
		_ = raw.Close()
		testenv.Unavailable(t, "Redis at "+url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := raw.Scan(ctx, 0, prefix+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan %s*: %v", prefix, err)
		}
		if len(keys) > 0 {
			if err := raw.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: del: %v", err)
			}
		}
		_ = raw.Close()
	})
	return url, raw
}

// newTestClient builds a Client with an op timeout generous enough for a
// loaded machine running -race: these tests are about semantics, not speed.
func newTestClient(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 2 * time.Second
	}
	c, err := New(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestRateStoreContract(t *testing.T) {
	storagetest.RunRateStoreSuite(t, rateHarness(t))
}

func TestRateStoreReserveContract(t *testing.T) {
	storagetest.RunReserveSuite(t, rateHarness(t))
}

// rateHarness adapts a RateStore on the shared Redis to the rate-store
// suites; keys live under a random prefix deleted at the end.
func rateHarness(t *testing.T) storagetest.RateHarness {
	prefix := "bulwark:" + storagetest.RandomPrefix()
	url, raw := sharedRedis(t, prefix)
	c := newTestClient(t, url, Options{})
	rs := c.RateStore()
	return storagetest.RateHarness{
		New:       func(*testing.T) storagetest.RateStore { return rs },
		KeyPrefix: prefix,
		Window:    300 * time.Millisecond,
		Wait:      func(_ *testing.T, d time.Duration) { time.Sleep(d) },
		Slack:     150 * time.Millisecond,
		Plant: func(t *testing.T, key string, count int64) {
			if err := raw.Set(context.Background(), key, count, 0).Err(); err != nil {
				t.Fatalf("plant %s: %v", key, err)
			}
			if ttl := raw.PTTL(context.Background(), key).Val(); ttl != -1 {
				t.Fatalf("planted key has PTTL %v, want -1 (no expiry)", ttl)
			}
		},
		PTTL: func(t *testing.T, key string) time.Duration {
			d, err := raw.PTTL(context.Background(), key).Result()
			if err != nil {
				t.Fatalf("PTTL %s: %v", key, err)
			}
			return d
		},
	}
}

func TestCacheContract(t *testing.T) {
	prefix := "bulwark:" + storagetest.RandomPrefix()
	url, _ := sharedRedis(t, prefix)
	c := newTestClient(t, url, Options{})
	cache := c.Cache()
	storagetest.RunCacheSuite(t, storagetest.CacheHarness{
		New:       func(*testing.T) storagetest.Cache { return cache },
		KeyPrefix: prefix,
		TTL:       200 * time.Millisecond,
		Wait:      func(_ *testing.T, d time.Duration) { time.Sleep(d) },
	})
}

func TestCacheSetUsesPX(t *testing.T) {
	prefix := "bulwark:" + storagetest.RandomPrefix()
	url, raw := sharedRedis(t, prefix)
	c := newTestClient(t, url, Options{}).Cache()
	ctx := context.Background()
	k := prefix + "cache:users:px"
	if err := c.Set(ctx, k, []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := raw.PTTL(ctx, k).Val(); d <= time.Second || d > 1500*time.Millisecond {
		t.Errorf("PTTL = %v, want in (1s, 1.5s]", d)
	}
}

func TestHitOnNonIntegerValueFails(t *testing.T) {
	prefix := "bulwark:" + storagetest.RandomPrefix()
	url, raw := sharedRedis(t, prefix)
	rs := newTestClient(t, url, Options{}).RateStore()
	ctx := context.Background()
	k := prefix + "ratelimit:ip:garbage"
	raw.Set(ctx, k, "not a number", time.Minute)
	if _, _, err := rs.Hit(ctx, k, time.Second); err == nil {
		t.Error("Hit on a non-integer value: no error")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "http://localhost:6379", "redis://localhost:6379/notadb"} {
		if c, err := New(context.Background(), u, Options{}); err == nil {
			_ = c.Close()
			t.Errorf("New(%q): no error", u)
		}
	}
	if _, err := New(context.Background(), "redis://localhost:6379", Options{OpTimeout: -1}); err == nil {
		t.Error("New with negative OpTimeout: no error")
	}
}

func TestReserveOnNonIntegerValueFails(t *testing.T) {
	prefix := "bulwark:" + storagetest.RandomPrefix()
	url, raw := sharedRedis(t, prefix)
	rs := newTestClient(t, url, Options{}).RateStore()
	ctx := context.Background()
	k := prefix + "ratelimit:login:garbage"
	raw.Set(ctx, k, "not a number", time.Minute)
	if _, _, _, err := rs.Reserve(ctx, k, 5, time.Second); err == nil {
		t.Error("Reserve on a non-integer value: no error")
	}
}
