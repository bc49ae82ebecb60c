package memory

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultCacheMaxEntries is the number of entries a [Cache] from [NewCache]
// holds before it evicts.
const DefaultCacheMaxEntries = 10_000

// Cache is an in-process byte-value cache with per-entry TTLs and the same
// behaviour as the Redis backend. It serves tests and single-instance
// deployments without Redis.
//
// Keys are used as given (for example "cache:users:<uuid>"): no prefix is
// added. Values are copied in and out, so callers may reuse their slices.
// The cache holds at most its max entries (counted, not sized in bytes);
// setting a new key when full evicts the least recently used entry. Expired
// entries are never returned; they are dropped when read, or evicted like
// any other entry. It is safe for concurrent use (one mutex: the
// cache sits behind a database read, not on every request). It starts no
// goroutine and needs no Close.
type Cache struct {
	clock      func() time.Time
	maxEntries int

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recently used first
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	value   []byte
	expires time.Time
}

// NewCache returns an empty cache of at most DefaultCacheMaxEntries entries
// reading time from clock (time.Now when nil; it must be safe for concurrent
// use).
func NewCache(clock func() time.Time) *Cache {
	return NewCacheWithMaxEntries(clock, DefaultCacheMaxEntries)
}

// NewCacheWithMaxEntries is [NewCache] holding at most maxEntries entries
// (DefaultCacheMaxEntries when maxEntries < 1).
func NewCacheWithMaxEntries(clock func() time.Time, maxEntries int) *Cache {
	if clock == nil {
		clock = time.Now
	}
	if maxEntries < 1 {
		maxEntries = DefaultCacheMaxEntries
	}
	return &Cache{
		clock:      clock,
		maxEntries: maxEntries,
		lru:        list.New(),
		items:      make(map[string]*list.Element),
	}
}

// Get returns a copy of the value at key, or (nil, false, nil) on a miss or
// after the entry's TTL has passed. A done ctx is an error.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.remove(el)
		return nil, false, nil
	}
	c.lru.MoveToFront(el)
	return append([]byte{}, e.value...), true, nil
}

// Set stores a copy of value at key for ttl, replacing any previous value.
// ttl must be at least a millisecond (as with Redis). A done ctx is an error.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := c.store(ctx, key, value, ttl, true)
	return err
}

// Add stores value at key for ttl only when key holds no live entry; it
// reports whether it stored.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return c.store(ctx, key, value, ttl, false)
}

func (c *Cache) store(ctx context.Context, key string, value []byte, ttl time.Duration, replace bool) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("memory: cache ttl %v is shorter than 1ms", ttl)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := c.clock()
	e := &cacheEntry{key: key, value: append([]byte{}, value...), expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		if !replace && now.Before(el.Value.(*cacheEntry).expires) {
			return false, nil
		}
		el.Value = e
		c.lru.MoveToFront(el)
		return true, nil
	}
	for len(c.items) >= c.maxEntries {
		c.remove(c.lru.Back())
	}
	c.items[key] = c.lru.PushFront(e)
	return true, nil
}

// CompareAndSwap stores a copy of value at key for ttl only while key holds
// a live entry equal to old; it reports whether it stored. An absent or
// expired key is never equal to old.
func (c *Cache) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("memory: cache ttl %v is shorter than 1ms", ttl)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return false, nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) || !bytes.Equal(e.value, old) {
		return false, nil
	}
	el.Value = &cacheEntry{key: key, value: append([]byte{}, value...), expires: now.Add(ttl)}
	c.lru.MoveToFront(el)
	return true, nil
}

// ReplaceUnlessGuarded stores a copy of value at key for ttl unless key
// holds a live value that begins with guard and differs from mine; it
// reports whether it stored.
func (c *Cache) ReplaceUnlessGuarded(ctx context.Context, key string, value []byte, ttl time.Duration, mine, guard []byte) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("memory: cache ttl %v is shorter than 1ms", ttl)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) && bytes.HasPrefix(e.value, guard) && !bytes.Equal(e.value, mine) {
			return false, nil
		}
		el.Value = &cacheEntry{key: key, value: append([]byte{}, value...), expires: now.Add(ttl)}
		c.lru.MoveToFront(el)
		return true, nil
	}
	for len(c.items) >= c.maxEntries {
		c.remove(c.lru.Back())
	}
	c.items[key] = c.lru.PushFront(&cacheEntry{key: key, value: append([]byte{}, value...), expires: now.Add(ttl)})
	return true, nil
}

// Delete removes keys; missing keys are not an error. A done ctx is an error.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if el, ok := c.items[k]; ok {
			c.remove(el)
		}
	}
	return nil
}

// Len reports the number of entries held, including expired ones not yet
// dropped.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// remove drops el. c.mu must be held.
func (c *Cache) remove(el *list.Element) {
	c.lru.Remove(el)
	delete(c.items, el.Value.(*cacheEntry).key)
}
