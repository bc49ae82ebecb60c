package redis

import (
	"context"
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

// reserveLua counts one attempt against KEYS[1] unless its window already
// holds ARGV[1] (the limit) of them, in a fixed window of ARGV[2]
// milliseconds; it returns {1 or 0 (counted or refused), count, pttl}. The
// read, the comparison and the INCR run atomically inside the script, so n
// concurrent reservations succeed exactly min(n, limit) times. A refusal
// changes nothing, except that a key found without a TTL gets one (as in
// hitLua). One key: it works on Redis Cluster.
const reserveLua = `local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if count >= tonumber(ARGV[1]) then
  if ttl == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {0, count, ttl}
end
count = redis.call('INCR', KEYS[1])
if count == 1 or ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {1, count, ttl}
`

// releaseLua gives back one attempt reserved against KEYS[1]: DECR when the
// count is above zero (DECR keeps the TTL), nothing otherwise, so it never
// goes below zero and never creates a key. It returns the count after.
const releaseLua = `local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  return redis.call('DECR', KEYS[1])
end
return count
`

// The scripts of Reserve and Release. A Script holds only its source and
// SHA1; it is never modified.
var (
	reserveScript = goredis.NewScript(reserveLua)
	releaseScript = goredis.NewScript(releaseLua)
)

// Reserve counts one attempt against key unless its current window already
// holds limit of them, atomically (one script, one round trip, bounded by
// the op timeout). ok reports whether it was counted; count is the window's
// count afterwards and ttl the time left in it. The window is the same as
// Hit's on that key: created with length window by the first count. limit
// must be at least 1 and window at least a millisecond.
//
// On error the caller decides; a reservation that timed out may still have
// been counted.
func (s *RateStore) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (bool, int64, time.Duration, error) {
	if window < time.Millisecond {
		return false, 0, 0, fmt.Errorf("redis: rate window %v is shorter than 1ms", window)
	}
	if limit < 1 {
		return false, 0, 0, fmt.Errorf("redis: reserve limit %d is below 1", limit)
	}
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	vals, err := reserveScript.Run(ctx, s.c.rdb, []string{key}, limit, window.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, 0, fmt.Errorf("redis: rate reserve: %w", err)
	}
	if len(vals) != 3 {
		return false, 0, 0, fmt.Errorf("redis: rate reserve: script returned %d values, want 3", len(vals))
	}
	return vals[0] == 1, vals[1], time.Duration(vals[2]) * time.Millisecond, nil
}

// Release gives back one attempt reserved against key: the count of its
// current window goes down by one, never below zero; a missing key is left
// missing. One script, one round trip, bounded by the op timeout.
func (s *RateStore) Release(ctx context.Context, key string) error {
	ctx, cancel := s.c.opContext(ctx)
	defer cancel()
	if err := releaseScript.Run(ctx, s.c.rdb, []string{key}).Err(); err != nil {
		return fmt.Errorf("redis: rate release: %w", err)
	}
	return nil
}
