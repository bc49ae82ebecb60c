package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/telemetry"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// Cache is the read-through cache the API consumes (CONTRACT §6).
// storage/redis and storage/memory implement it. Get returns (nil, false,
// nil) on a miss; Set replaces; Add stores only when the key is absent;
// CompareAndSwap replaces the value only while it is still old;
// ReplaceUnlessGuarded replaces anything but a guarded value of another
// writer. Each call is atomic on its one key. Callers bound each call;
// errors are survivable.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
	// ReplaceUnlessGuarded stores value at key for ttl unless key holds a
	// value that begins with guard and is not mine; it reports whether it
	// stored.
	ReplaceUnlessGuarded(ctx context.Context, key string, value []byte, ttl time.Duration, mine, guard []byte) (bool, error)
}

// Metric and span names of the user cache.
const (
	MetricCacheRequests = telemetry.MetricCacheRequests
	SpanCacheGet        = "cache.get"
	SpanCacheSet        = "cache.set"
	SpanCacheDelete     = "cache.delete"
)

// maxUserTTL caps how long a user entry lives (CONTRACT §6).
const maxUserTTL = 60 * time.Second

// Defaults of the bounds the fencing argument rests on (see userCache).
const (
	// defaultFlightTimeout bounds one database read of a miss, fill
	// included.
	defaultFlightTimeout = 5 * time.Second
	// defaultWriteTimeout bounds the database write of a fenced write.
	defaultWriteTimeout = 5 * time.Second
	// tombSlack is added to the tombstone's lifetime beyond the sum of the
	// bounds, for scheduling delays and clock-rate differences.
	tombSlack = 2 * time.Second
)

// cachedAccount is a cache entry: the UserPublic JSON plus the user's token
// version (an integer, not a secret), the one extension of CONTRACT §6's
// "UserPublic JSON only", so that authentication can check tokens without
// the database. Never a hash, never a request-specific field.
type cachedAccount struct {
	UserPublic
	TokenVersion int64 `json:"token_version"`
}

// account is what authorization needs to know of a user.
type account = cachedAccount

func accountOf(u user.User) account {
	return account{UserPublic: publicOf(u), TokenVersion: u.TokenVersion}
}

// The values a key cache:users:<id> can hold besides an entry (a JSON
// object). Each carries a random token, so no two are equal.
const (
	// A lease: a reader found the key absent, claimed it, and is reading
	// the database; only the holder of this very lease may fill the key
	// (CompareAndSwap from the lease to the entry).
	leasePrefix = "lease:"
	// A pending tombstone: a write is about to change the user in the
	// database. Set BEFORE the write, unconditionally (it overwrites any
	// entry or lease), or the write does not happen.
	pendingPrefix = "tomb:p:"
	// A committed tombstone: the write has committed. It replaces whatever
	// the key holds except another write's pending tombstone.
	committedPrefix = "tomb:c:"
)

// userCache reads users through the cache and fences writes, so that no
// request is authorized from a stale entry once a write has answered 2xx
// (CONTRACT §10), across instances and whatever Redis does.
//
// Writes (fence, write, settle): a write that changes a user first sets a
// pending tombstone, bounded by timeout; if that fails the write answers
// 503 and the database is not touched, so nothing is acknowledged that the
// cache could contradict. The database write is bounded by writeTimeout.
// After it commits the write replaces the key with a committed tombstone,
// unless another write's pending tombstone is there: normally that replaces
// its own pending tombstone; if Redis lost it during the write (a restart)
// and a read filled the key from the old row meanwhile, it replaces that
// entry too. Tombstones live tombTTL = timeout + writeTimeout +
// flightTimeout + slack.
//
// Reads: an entry is served. Otherwise the read goes to the database, and
// may fill the key only by CompareAndSwap from a marker it saw in the key
// before that database read began: a lease it set itself on an absent key
// (set-if-absent), another reader's lease, or a committed tombstone. Reads
// that see the same marker share one flight. A pending tombstone or a cache
// error means reading alone, without filling.
//
// Why no read after a 2xx sees an older value: the fence overwrote every
// marker the key held, so a fill from a read that began before it fails,
// however late its command reaches Redis (even one Redis had buffered while
// stopped). A marker seen after the write answered was put there after the
// fence: a committed tombstone after the commit; a lease only once the key
// was absent again, that is after the pending tombstone expired, which is
// after the commit because the tombstone outlives the fence call plus the
// write; so every flight such a read joins began after the commit. The
// flight bound in tombTTL keeps the original argument (no flight that read
// the old row is still running once the tombstone is gone) as a second
// line. docs/PROD_HARDENING.md (Cache) has it in full, with what the cache
// Redis must not do (evict tombstones, restore a snapshot, fail over to a
// replica that missed the fence).
type userCache struct {
	cache         Cache
	ttl           time.Duration
	timeout       time.Duration
	flightTimeout time.Duration
	writeTimeout  time.Duration
	tombTTL       time.Duration
	leaseTTL      time.Duration
	tel           telemetry.Telemetry
	tracer        trace.Tracer
	flights       singleflight.Group
	tags          map[string][]telemetry.Tag
}

func newUserCache(c Cache, ttl, timeout, flightTimeout, writeTimeout time.Duration, tel telemetry.Telemetry, tracer trace.Tracer) *userCache {
	if ttl <= 0 || ttl > maxUserTTL {
		ttl = maxUserTTL
	}
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	if flightTimeout <= 0 {
		flightTimeout = defaultFlightTimeout
	}
	if writeTimeout <= 0 {
		writeTimeout = defaultWriteTimeout
	}
	uc := &userCache{cache: c, ttl: ttl, timeout: timeout, flightTimeout: flightTimeout, writeTimeout: writeTimeout,
		tombTTL:  timeout + writeTimeout + flightTimeout + tombSlack,
		leaseTTL: flightTimeout + tombSlack,
		tel:      tel, tracer: tracer, tags: map[string][]telemetry.Tag{}}
	for _, r := range []string{"hit", "miss", "error"} {
		uc.tags[r] = []telemetry.Tag{{Key: "cache", Value: "users"}, {Key: "result", Value: r}}
	}
	return uc
}

func userKey(id uuid.UUID) string { return "cache:users:" + id.String() }

func (uc *userCache) count(ctx context.Context, result string) {
	uc.tel.Counter(ctx, MetricCacheRequests, 1, uc.tags[result]...)
}

func (uc *userCache) failed(ctx context.Context, span trace.Span, what string, err error) {
	span.SetStatus(codes.Error, what)
	span.RecordError(err)
	uc.count(ctx, "error")
}

// keyState is what a read found in a user's key.
type keyState int

const (
	stateHit keyState = iota
	stateAbsent
	stateShared  // a lease or a committed tombstone: share a flight keyed by it
	statePending // a pending tombstone (or anything unknown): read alone
	stateError   // the cache failed: read alone
)

// get reads id's key: the entry on a hit, else what the key holds. Errors
// and corrupt entries are counted (always) and recorded on the span; hits
// and misses only when count is set (a second look is not a second miss).
func (uc *userCache) get(ctx context.Context, id uuid.UUID, count bool) (account, keyState, []byte) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheGet, trace.WithAttributes(attribute.String("cache.name", "users")))
	defer span.End()
	callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
	raw, ok, err := uc.cache.Get(callCtx, userKey(id))
	cancel()
	span.SetAttributes(attribute.Bool("cache.hit", false))
	switch {
	case err != nil:
		uc.failed(ctx, span, "cache get failed", err)
		return account{}, stateError, nil
	case !ok:
		if count {
			uc.count(ctx, "miss")
		}
		return account{}, stateAbsent, nil
	case len(raw) > 0 && raw[0] == '{':
		var a account
		if json.Unmarshal(raw, &a) != nil || a.ID != id {
			uc.failed(ctx, span, "cache get failed", errCorruptEntry)
			return account{}, stateError, nil
		}
		span.SetAttributes(attribute.Bool("cache.hit", true))
		if count {
			uc.count(ctx, "hit")
		}
		return a, stateHit, nil
	}
	if count {
		uc.count(ctx, "miss")
	}
	if bytes.HasPrefix(raw, []byte(leasePrefix)) || bytes.HasPrefix(raw, []byte(committedPrefix)) {
		return account{}, stateShared, raw
	}
	return account{}, statePending, raw
}

type cacheError string

func (e cacheError) Error() string { return string(e) }

const errCorruptEntry = cacheError("cache entry is not a cached account of that id")

func newMarker(prefix string) []byte {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return []byte(prefix + hex.EncodeToString(b[:]))
}

// lease claims an absent key (set-if-absent) so that a read may fill it;
// nil when the key is taken or the cache failed.
func (uc *userCache) lease(ctx context.Context, id uuid.UUID) []byte {
	ctx, span := uc.tracer.Start(ctx, SpanCacheSet, trace.WithAttributes(attribute.String("cache.name", "users"),
		attribute.String("cache.op", "lease")))
	defer span.End()
	l := newMarker(leasePrefix)
	callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
	ok, err := uc.cache.Add(callCtx, userKey(id), l, uc.leaseTTL)
	cancel()
	if err != nil {
		uc.failed(ctx, span, "cache lease failed", err)
		return nil
	}
	if !ok {
		return nil
	}
	return l
}

// fill swaps marker, a lease or committed tombstone that the key held
// before the flight's database read began, for the entry. It stores nothing
// if the marker was overwritten meanwhile (a write fenced the key, another
// flight filled it) or has expired: so a row read before a fence is never
// stored after it.
func (uc *userCache) fill(ctx context.Context, marker []byte, a account) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheSet, trace.WithAttributes(attribute.String("cache.name", "users"),
		attribute.String("cache.op", "fill")))
	defer span.End()
	raw, err := json.Marshal(a)
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
		var stored bool
		stored, err = uc.cache.CompareAndSwap(callCtx, userKey(a.ID), marker, raw, uc.ttl)
		cancel()
		span.SetAttributes(attribute.Bool("cache.stored", stored))
	}
	if err != nil {
		uc.failed(ctx, span, "cache fill failed", err)
	}
}

// errFenceFailed: the pending tombstone could not be set, so the write was
// not made.
var errFenceFailed = &Error{Status: http.StatusServiceUnavailable, RetryAfter: retryShortly,
	Message: "The change could not be made visible to every instance (cache unavailable); nothing was changed, retry shortly"}

// fence sets a pending tombstone on id's key before a write; an error means
// the write must not happen. It returns the tombstone, for settle.
func (uc *userCache) fence(ctx context.Context, id uuid.UUID) ([]byte, error) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheDelete, trace.WithAttributes(attribute.String("cache.name", "users"),
		attribute.String("cache.op", "fence")))
	defer span.End()
	tomb := newMarker(pendingPrefix)
	callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
	err := uc.cache.Set(callCtx, userKey(id), tomb, uc.tombTTL)
	cancel()
	if err != nil {
		uc.failed(ctx, span, "cache fence failed: write refused", err)
		return nil, &Error{Status: errFenceFailed.Status, Message: errFenceFailed.Message, RetryAfter: errFenceFailed.RetryAfter, Err: err}
	}
	return tomb, nil
}

// settle, after the write committed, replaces id's key with a committed
// tombstone unless another write has fenced it since (its pending tombstone
// stays; that write settles it). Whatever else the key holds is replaced:
// the write's own pending tombstone, or what appeared if Redis lost that
// during the write (an entry filled from the old row, a lease). Best
// effort: if Redis cannot be reached, the pending tombstone (if it is still
// there) protects readers until it expires. (No local flight needs
// forgetting: every flight is keyed by a marker, and the fence replaced
// every marker a flight from before the write could be keyed by.)
func (uc *userCache) settle(ctx context.Context, id uuid.UUID, pending []byte) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheDelete, trace.WithAttributes(attribute.String("cache.name", "users"),
		attribute.String("cache.op", "settle")))
	defer span.End()
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uc.timeout)
	_, err := uc.cache.ReplaceUnlessGuarded(callCtx, userKey(id), newMarker(committedPrefix), uc.tombTTL, pending, []byte(pendingPrefix))
	cancel()
	if err != nil {
		uc.failed(ctx, span, "cache settle failed", err)
	}
}

// lookupAccount returns the user with id as authorization sees it: from the
// cache when enabled and present, else from the store, filling the cache.
// Concurrent misses share one database read per marker (a lease or a
// committed tombstone) the key holds.
func (s *Server) lookupAccount(ctx context.Context, id uuid.UUID) (account, error) {
	if s.cache == nil {
		u, err := s.users.ByID(ctx, id)
		return accountOf(u), err
	}
	a, state, marker := s.cache.get(ctx, id, true)
	if state == stateAbsent {
		if marker = s.cache.lease(ctx, id); marker == nil {
			// Another reader claimed the key first (or the cache failed):
			// look again to share its flight.
			a, state, marker = s.cache.get(ctx, id, false)
			if state == stateAbsent {
				state = statePending
			}
		}
	}
	switch state {
	case stateHit:
		return a, nil
	case statePending, stateError:
		u, err := s.users.ByID(ctx, id)
		return accountOf(u), err
	}
	v, err, _ := s.cache.flights.Do(id.String()+"/"+string(marker), func() (any, error) {
		// The flight outlives any one caller: it runs on its own bounded
		// context so one client hanging up does not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cache.flightTimeout)
		defer cancel()
		u, err := s.users.ByID(fctx, id)
		if err != nil {
			return account{}, err
		}
		a := accountOf(u)
		s.cache.fill(fctx, marker, a)
		return a, nil
	})
	if err != nil {
		return account{}, err
	}
	return v.(account), nil
}

// lookupUser is lookupAccount as the API shows a user.
func (s *Server) lookupUser(ctx context.Context, id uuid.UUID) (UserPublic, error) {
	a, err := s.lookupAccount(ctx, id)
	return a.UserPublic, err
}

// fencedWrite runs write, which changes user id in the store, behind the
// cache fence: without a cache it just runs (bounded); with one, a pending
// tombstone goes first (503 and no write if it cannot), the write is
// bounded by writeTimeout, and the tombstone is settled after a success.
func (s *Server) fencedWrite(ctx context.Context, id uuid.UUID, write func(ctx context.Context) error) error {
	timeout := defaultWriteTimeout
	var pending []byte
	if s.cache != nil {
		var err error
		if pending, err = s.cache.fence(ctx, id); err != nil {
			return err
		}
		timeout = s.cache.writeTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	err := write(wctx)
	cancel()
	if err != nil {
		return err
	}
	if s.cache != nil {
		s.cache.settle(ctx, id, pending)
	}
	return nil
}
