package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultOpTimeout bounds one operation (one round trip, plus the EVAL
	// fallback after a script-cache flush) when Options.OpTimeout is zero.
	DefaultOpTimeout = 50 * time.Millisecond
	// DefaultDialTimeout bounds one connection attempt when
	// Options.DialTimeout is zero. A dial made on behalf of an operation is
	// also bounded by that operation's deadline.
	DefaultDialTimeout = 250 * time.Millisecond
)

// Options tunes a [Client]. The zero value is usable.
//
// The timeout, retry and pool settings below always override any given in
// the URL's query string; the URL still supplies the address, database,
// credentials and TLS.
type Options struct {
	// OpTimeout bounds each operation: it is the socket read and write
	// timeout, the wait for a free pooled connection, and the deadline of a
	// context derived from the caller's (the caller's deadline wins when it
	// is earlier). Zero means DefaultOpTimeout.
	OpTimeout time.Duration
	// DialTimeout bounds one connection attempt. Zero means
	// DefaultDialTimeout. Only one attempt is made per dial (go-redis would
	// otherwise retry a failed dial five times with 100ms pauses).
	DialTimeout time.Duration
	// PoolSize is the maximum number of connections; zero keeps go-redis'
	// default (10 per GOMAXPROCS).
	PoolSize int
	// TracerProvider receives one client span per Redis command (via
	// redisotel). Nil installs no tracing hook at all; the global provider
	// is never used. Command arguments are not recorded (keys carry user ids and IP
	// addresses, values carry user data).
	TracerProvider trace.TracerProvider
	// MeterProvider receives redisotel's command-duration and pool metrics.
	// Nil installs no metrics hook; the global provider is never used.
	MeterProvider metric.MeterProvider
}

// Client is a Redis connection pool shared by a [RateStore] and a [Cache].
// It is safe for concurrent use. Close it when done.
type Client struct {
	rdb       *goredis.Client
	opTimeout time.Duration
	// pingTimeout bounds Ping, which may have to dial first.
	pingTimeout time.Duration
	hitScript   *goredis.Script

	closeOnce sync.Once
	closeErr  error
	// metricsDone unregisters redisotel's pool-stat callbacks (and ends the
	// goroutine redisotel starts to wait for it) when closed.
	metricsDone chan struct{}
}

// New builds a Client for url (redis://[user:password@]host:port[/db] or
// rediss:// for TLS), parsed with go-redis' ParseURL.
//
// New does not contact Redis and does not fail when Redis is down: the pool
// dials lazily, each operation dials when it finds no idle connection, and a
// service that fails open keeps working (and recovers by itself) without it.
// Use [Client.Ping] to report readiness. ctx is not retained; it is accepted
// for symmetry with other constructors.
//
// Retries are disabled (MaxRetries -1, a single dial attempt): a request's
// budget is tens of milliseconds and a retry under a dead or stalled Redis
// only multiplies what every request pays before failing open.
func New(ctx context.Context, url string, opts Options) (*Client, error) {
	_ = ctx
	ro, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	if opts.OpTimeout < 0 || opts.DialTimeout < 0 || opts.PoolSize < 0 {
		return nil, errors.New("redis: negative OpTimeout, DialTimeout or PoolSize")
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	ro.DialTimeout = opts.DialTimeout
	ro.DialerRetries = 1
	ro.ReadTimeout = opts.OpTimeout
	ro.WriteTimeout = opts.OpTimeout
	ro.PoolTimeout = opts.OpTimeout
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1
	ro.PoolSize = opts.PoolSize
	ro.MinIdleConns = 0 // no background dialling at start-up
	// A standalone cache has no use for cluster maintenance push
	// notifications, and probing for them costs a round trip per new
	// connection.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	rdb := goredis.NewClient(ro)
	// The hooks run on every command, so they are installed only when
	// something receives what they record (otel mode).
	if opts.TracerProvider != nil {
		if err := redisotel.InstrumentTracing(rdb,
			redisotel.WithTracerProvider(opts.TracerProvider),
			redisotel.WithDBStatement(false),
			redisotel.WithCallerEnabled(false),
		); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("redis: instrument tracing: %w", err)
		}
	}
	done := make(chan struct{})
	if opts.MeterProvider != nil {
		if err := redisotel.InstrumentMetrics(rdb,
			redisotel.WithMeterProvider(opts.MeterProvider),
			redisotel.WithCloseChan(done),
		); err != nil {
			close(done)
			_ = rdb.Close()
			return nil, fmt.Errorf("redis: instrument metrics: %w", err)
		}
	}

	return &Client{
		rdb:         rdb,
		opTimeout:   opts.OpTimeout,
		pingTimeout: opts.DialTimeout + opts.OpTimeout,
		hitScript:   goredis.NewScript(hitLua),
		metricsDone: done,
	}, nil
}

// OpTimeout reports the bound applied to each operation.
func (c *Client) OpTimeout() time.Duration { return c.opTimeout }

// Ping checks that Redis answers, for readiness probes. It is bounded by
// DialTimeout + OpTimeout (or ctx's earlier deadline), since it may have to
// open a connection first.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.pingTimeout)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Close closes the pool and stops metric reporting. Operations after Close
// fail. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.metricsDone)
		c.closeErr = c.rdb.Close()
	})
	return c.closeErr
}

// RateStore returns the fixed-window rate store backed by c. It shares c's
// pool and lifetime; it has no Close of its own.
func (c *Client) RateStore() *RateStore { return &RateStore{c: c} }

// Cache returns the cache backed by c. It shares c's pool and lifetime; it
// has no Close of its own.
func (c *Client) Cache() *Cache { return &Cache{c: c} }

// opContext bounds one operation by the op timeout; an earlier deadline on
// ctx still wins.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opTimeout)
}
