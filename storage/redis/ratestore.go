package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// hitLua counts one hit against KEYS[1] in a fixed window of ARGV[1]
// milliseconds and returns {count, pttl}.
//
// The window starts with the first hit (count 1) and is the key's TTL. A key
// found without a TTL (PTTL -1: planted by hand, or left by a write that lost
// its expiry) would otherwise count forever; it is repaired by giving it a
// fresh window, and its count carries on. INCR, PTTL and PEXPIRE run
// atomically inside the script, so concurrent hits see counts 1..n exactly
// once each.
const hitLua = `local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`

// RateStore is a fixed-window hit counter in Redis. It is safe for
// concurrent use. Get one from [Client.RateStore].
type RateStore struct {
	c *Client
}

// Hit counts one request against key (used as given: no prefix is added) in
// the fixed window that the key's TTL describes, creating the window with
// length window on the first hit. It returns the count including this hit
// and the time left in the window. It costs one round trip (EVALSHA; EVAL
// once more after Redis lost its script cache), bounded by the client's op
// timeout. window must be at least a millisecond.
//
// On error (Redis down, timeout, a non-integer value at key) the caller
// decides; a hit that timed out may still have been counted by Redis.
func (s *RateStore) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if window < time.Millisecond {
		return 0, 0, fmt.Errorf("redis: rate window %v is shorter than 1ms", window)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	vals, err := s.c.hitScript.Run(ctx, s.c.rdb, []string{key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("redis: rate hit: %w", err)
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("redis: rate hit: script returned %d values, want 2", len(vals))
	}
	return vals[0], time.Duration(vals[1]) * time.Millisecond, nil
}

// Peek returns the count of key's current window and the time left in it
// without counting a hit: (0, 0) when the key does not exist. One round trip
// (GET and PTTL pipelined), bounded by the op timeout. The login limiter
// uses it to refuse an attempt before it costs a password hash.
func (s *RateStore) Peek(ctx context.Context, key string) (int64, time.Duration, error) {
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	_, err := s.c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, key)
		pttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("redis: rate peek: %w", err)
	}
	n, err := get.Int64()
	if err != nil {
		return 0, 0, fmt.Errorf("redis: rate peek: %w", err)
	}
	ttl := pttl.Val()
	if ttl < 0 {
		ttl = 0
	}
	return n, ttl, nil
}
