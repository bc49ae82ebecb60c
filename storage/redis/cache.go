package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cache stores opaque byte values in Redis with a TTL. It is safe for
// concurrent use. Get one from [Client.Cache]. Keys are used as given: no
// prefix is added. Every call is one round trip bounded by the client's op
// timeout; errors are returned for the caller to fail open.
type Cache struct {
	c *Client
}

// Get returns the value at key, or (nil, false, nil) on a miss.
func (s *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	b, err := s.c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis: cache get: %w", err)
	}
	return b, true, nil
}

// Set stores value at key for ttl (SET key value PX ttl), replacing any
// previous value. ttl must be at least a millisecond: entries never live
// without expiry.
func (s *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: cache ttl %v is shorter than 1ms", ttl)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	// Always PX (go-redis' Set switches to EX for whole seconds).
	if err := s.c.rdb.Do(ctx, "set", key, value, "px", ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("redis: cache set: %w", err)
	}
	return nil
}

// Add stores value at key for ttl only when key does not exist (SET key
// value NX PX ttl); it reports whether it stored.
func (s *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("redis: cache ttl %v is shorter than 1ms", ttl)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	err := s.c.rdb.Do(ctx, "set", key, value, "nx", "px", ttl.Milliseconds()).Err()
	switch {
	case errors.Is(err, goredis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redis: cache add: %w", err)
	}
	return true, nil
}

// casLua replaces KEYS[1] with ARGV[2] for ARGV[3] milliseconds only while
// it holds ARGV[1]; 1 when it did, 0 when not. One key: Redis Cluster safe.
const casLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`

// replaceUnlessGuardedLua sets KEYS[1] to ARGV[1] for ARGV[4] milliseconds
// unless it holds a value that begins with ARGV[3] and is not ARGV[2]; 1
// when it set, 0 when not. One key: Redis Cluster safe.
const replaceUnlessGuardedLua = `local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[2] and string.sub(v, 1, string.len(ARGV[3])) == ARGV[3] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return 1
`

// The cache's scripts; each holds only its source and SHA1.
var (
	casScript                  = goredis.NewScript(casLua)
	replaceUnlessGuardedScript = goredis.NewScript(replaceUnlessGuardedLua)
)

// ReplaceUnlessGuarded stores value at key for ttl unless key holds a value
// that begins with guard and is not mine (one script, atomic, one round
// trip); it reports whether it stored.
func (s *Cache) ReplaceUnlessGuarded(ctx context.Context, key string, value []byte, ttl time.Duration, mine, guard []byte) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("redis: cache ttl %v is shorter than 1ms", ttl)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	n, err := replaceUnlessGuardedScript.Run(ctx, s.c.rdb, []string{key}, value, mine, guard, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("redis: cache replace: %w", err)
	}
	return n == 1, nil
}

// CompareAndSwap stores value at key for ttl only while key holds old (one
// script, atomic, one round trip); it reports whether it stored. A missing
// key never holds old.
func (s *Cache) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("redis: cache ttl %v is shorter than 1ms", ttl)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	n, err := casScript.Run(ctx, s.c.rdb, []string{key}, old, value, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("redis: cache compare-and-swap: %w", err)
	}
	return n == 1, nil
}

// Delete removes keys (one DEL); missing keys are not an error, and no keys
// is a no-op that does not contact Redis.
func (s *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	if err := s.c.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("redis: cache delete: %w", err)
	}
	return nil
}
