package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// Cache is the read-through cache the API consumes (CONTRACT §6).
// storage/redis and storage/memory implement it. Get returns (nil, false,
// nil) on a miss; Add stores only when the key is absent. Callers bound each
// call; errors are survivable (fail-open).
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Delete(ctx context.Context, keys ...string) error
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

// flightTimeout bounds one database read of a miss; tombstoneTTL must
// exceed it so a late fill always meets the tombstone.
const (
	flightTimeout = 5 * time.Second
	tombstoneTTL  = 2 * flightTimeout
)

// userCache reads users through the cache. Entries hold the UserPublic JSON
// only: no hash, no request-specific field.
//
// Concurrent misses for one id share one database read (singleflight). A
// read fills the cache with Add (set-if-absent). A write (PATCH, DELETE),
// after its database write, replaces the entry with a short-lived tombstone
// and forgets any local flight in progress. So a read that started before
// the write and fills late cannot put the old value back (its Add finds the
// tombstone), and a read that starts after the write never joins an old
// flight: on the writing instance Forget sees to that, and on the others
// (which Forget cannot reach) a read that finds a tombstone joins only
// flights keyed by that very tombstone, which each write makes unique, and
// which therefore all started after that write had committed. So no read
// after a successful write returns the old value, across instances too.
// Tombstones outlive the longest flight (flightTimeout).
type userCache struct {
	cache   Cache
	ttl     time.Duration
	timeout time.Duration
	tel     telemetry.Telemetry
	tracer  trace.Tracer
	flights singleflight.Group
	tags    map[string][]telemetry.Tag
}

func newUserCache(c Cache, ttl, timeout time.Duration, tel telemetry.Telemetry, tracer trace.Tracer) *userCache {
	if ttl <= 0 || ttl > maxUserTTL {
		ttl = maxUserTTL
	}
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	uc := &userCache{cache: c, ttl: ttl, timeout: timeout, tel: tel, tracer: tracer, tags: map[string][]telemetry.Tag{}}
	for _, r := range []string{"hit", "miss", "error"} {
		uc.tags[r] = []telemetry.Tag{{Key: "cache", Value: "users"}, {Key: "result", Value: r}}
	}
	return uc
}

func userKey(id uuid.UUID) string { return "cache:users:" + id.String() }

func (uc *userCache) count(ctx context.Context, result string) {
	uc.tel.Counter(ctx, MetricCacheRequests, 1, uc.tags[result]...)
}

// get returns the cached user, ok=false on a miss or an error (counted and
// recorded on the span; the caller falls back to the database). On a miss
// that found a tombstone, tomb is its value.
func (uc *userCache) get(ctx context.Context, id uuid.UUID) (u UserPublic, ok bool, tomb string) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheGet, trace.WithAttributes(attribute.String("cache.name", "users")))
	defer span.End()
	callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
	raw, ok, err := uc.cache.Get(callCtx, userKey(id))
	cancel()
	if err == nil && ok && isTombstone(raw) {
		ok = false // recently written: read the database
		tomb = string(raw)
	}
	if err == nil && ok {
		if jerr := json.Unmarshal(raw, &u); jerr != nil || u.ID != id {
			err = errCorruptEntry
		}
	}
	switch {
	case err != nil:
		span.SetStatus(codes.Error, "cache get failed")
		span.RecordError(err)
		span.SetAttributes(attribute.Bool("cache.hit", false))
		uc.count(ctx, "error")
		return UserPublic{}, false, ""
	case !ok:
		span.SetAttributes(attribute.Bool("cache.hit", false))
		uc.count(ctx, "miss")
		return UserPublic{}, false, tomb
	}
	span.SetAttributes(attribute.Bool("cache.hit", true))
	uc.count(ctx, "hit")
	return u, true, ""
}

// A tombstone is any value that is not a JSON object; invalidate writes
// "tomb:" and a random token.
const tombPrefix = "tomb:"

func isTombstone(raw []byte) bool { return len(raw) == 0 || raw[0] != '{' }

func newTombstone() []byte {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return []byte(tombPrefix + hex.EncodeToString(b[:]))
}

// flightKey names the database read of a miss on id. A miss that found a
// tombstone reads under a key of its own for that tombstone: flights under
// it all started after the write that set it, so joining one never returns
// what the write replaced, even when the write ran on another instance.
func flightKey(id uuid.UUID, tomb string) string {
	if tomb == "" {
		return id.String()
	}
	return id.String() + "/" + tomb
}

type cacheError string

func (e cacheError) Error() string { return string(e) }

const errCorruptEntry = cacheError("cache entry is not a UserPublic of that id")

func (uc *userCache) set(ctx context.Context, u UserPublic) {
	ctx, span := uc.tracer.Start(ctx, SpanCacheSet, trace.WithAttributes(attribute.String("cache.name", "users")))
	defer span.End()
	raw, err := json.Marshal(u)
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
		_, err = uc.cache.Add(callCtx, userKey(u.ID), raw, uc.ttl)
		cancel()
	}
	if err != nil {
		span.SetStatus(codes.Error, "cache set failed")
		span.RecordError(err)
		uc.count(ctx, "error")
	}
}

// invalidate replaces id's entry with a fresh tombstone after a write and
// forgets a local flight in progress for it (flights keyed by an older
// tombstone are never joined again: readers now find the new one).
func (uc *userCache) invalidate(ctx context.Context, id uuid.UUID) {
	uc.flights.Forget(id.String())
	ctx, span := uc.tracer.Start(ctx, SpanCacheDelete, trace.WithAttributes(attribute.String("cache.name", "users")))
	defer span.End()
	callCtx, cancel := context.WithTimeout(ctx, uc.timeout)
	err := uc.cache.Set(callCtx, userKey(id), newTombstone(), tombstoneTTL)
	cancel()
	if err != nil {
		span.SetStatus(codes.Error, "cache delete failed")
		span.RecordError(err)
		uc.count(ctx, "error")
	}
}

// lookupUser returns the user with id as the API shows it: from the cache
// when enabled and present, else from the store (one read for concurrent
// misses), filling the cache.
func (s *Server) lookupUser(ctx context.Context, id uuid.UUID) (UserPublic, error) {
	if s.cache == nil {
		u, err := s.users.ByID(ctx, id)
		return u.Public(), err
	}
	u, ok, tomb := s.cache.get(ctx, id)
	if ok {
		return u, nil
	}
	v, err, _ := s.cache.flights.Do(flightKey(id, tomb), func() (any, error) {
		// The flight outlives any one caller: it runs on its own bounded
		// context so one client hanging up does not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		u, err := s.users.ByID(fctx, id)
		if err != nil {
			return UserPublic{}, err
		}
		pub := u.Public()
		s.cache.set(fctx, pub)
		return pub, nil
	})
	if err != nil {
		return UserPublic{}, err
	}
	return v.(UserPublic), nil
}

// invalidateUser drops id from the cache after a successful write.
func (s *Server) invalidateUser(ctx context.Context, id uuid.UUID) {
	if s.cache != nil {
		s.cache.invalidate(ctx, id)
	}
}
