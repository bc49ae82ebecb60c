package service_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
)

// blockingHasher holds every operation until released, counting how many
// run at once.
type blockingHasher struct {
	release chan struct{}
	entered chan struct{}
	running atomic.Int64
	peak    atomic.Int64
}

func newBlockingHasher() *blockingHasher {
	return &blockingHasher{release: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (b *blockingHasher) enter() {
	n := b.running.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	b.entered <- struct{}{}
	<-b.release
	b.running.Add(-1)
}

func (b *blockingHasher) Hash(string) (string, error) { b.enter(); return "$fake$hash", nil }

func (b *blockingHasher) Verify(p, h string) (bool, error) {
	b.enter()
	return p == "right" && h != "", nil
}

// The gate runs at most Slots operations at once, queues at most Queue, and
// refuses the rest at once; queued ones run in turn as slots free up.
func TestGatedHasherBounds(t *testing.T) {
	const slots, queue, extra = 2, 3, 4
	bh := newBlockingHasher()
	tel := newCountTel()
	g := service.NewGatedHasher(bh, service.HashGateConfig{Slots: slots, Queue: queue, Wait: time.Hour}, tel)
	ctx := context.Background()
	errs := make(chan error, slots+queue+extra)
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() { _, err := g.Hash(ctx, "pw"); errs <- err })
	}
	for range slots {
		<-bh.entered // both slots are held
	}
	for range queue {
		wg.Go(func() {
			_, err := g.Verify(ctx, "right", "h")
			errs <- err
		})
	}
	eventually(t, 10*time.Second, "queue full", func() error {
		if g.Waiting() != queue {
			return errNotYet
		}
		return nil
	})
	for range extra {
		if _, err := g.Hash(ctx, "pw"); !errors.Is(err, service.ErrHashBusy) {
			t.Fatalf("with slots and queue full: %v, want ErrHashBusy at once", err)
		}
	}
	close(bh.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("an admitted operation failed: %v", err)
		}
	}
	if p := bh.peak.Load(); p > slots {
		t.Fatalf("%d operations ran at once, want at most %d", p, slots)
	}
	if got := tel.get(service.MetricPasswordHashes, "op=hash,result=done") + tel.get(service.MetricPasswordHashes, "op=verify,result=done"); got != slots+queue {
		t.Fatalf("done operations counted %v, want %d", got, slots+queue)
	}
	if got := tel.get(service.MetricPasswordHashes, "op=hash,result=busy"); got != extra {
		t.Fatalf("busy operations counted %v, want %d", got, extra)
	}
}

// A waiter gives up after Wait (ErrHashBusy) or when its caller does
// (the context's error), and runs nothing.
func TestGatedHasherWaitBound(t *testing.T) {
	bh := newBlockingHasher()
	defer close(bh.release)
	g := service.NewGatedHasher(bh, service.HashGateConfig{Slots: 1, Queue: 10, Wait: 20 * time.Millisecond}, nil)
	go func() { _, _ = g.Hash(context.Background(), "pw") }()
	<-bh.entered
	if _, err := g.Hash(context.Background(), "pw"); !errors.Is(err, service.ErrHashBusy) {
		t.Fatalf("waiting past the bound: %v, want ErrHashBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Verify(ctx, "pw", "h"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that gave up: %v, want context.Canceled", err)
	}
	if n := bh.running.Load(); n != 1 {
		t.Fatalf("%d operations running, want only the first", n)
	}
}

// Through the chain: with hashing at capacity, sign-up and login answer the
// 503 envelope with Retry-After, and a refused login is not counted as a
// failed attempt.
func TestHashingAtCapacityIs503(t *testing.T) {
	bh := newBlockingHasher()
	users := memory.NewUsers()
	logs := &syncBuffer{}
	srv := service.NewServer(service.Config{
		// One slot; a waiter gives up after 50ms.
		HashGate:   service.HashGateConfig{Slots: 1, Queue: 1, Wait: 50 * time.Millisecond},
		LoginLimit: service.LoginLimitConfig{PerAccount: 1, PerIP: 1, Window: time.Minute},
	}, service.Deps{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Users: users,
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: bh, CredentialRateStore: memory.NewRateStore(nil),
	})
	e := &loginEnv{t: t, srv: srv, logs: logs, tel: newCountTel(), sp: newSpec(t)}
	held := make(chan int)
	go func() { held <- e.signup("192.0.2.40", "held@example.com", "rightpassword").Code }()
	<-bh.entered // the one slot is taken
	rec := e.signup("192.0.2.41", "y@example.com", "rightpassword")
	checkEnvelope(t, rec, 503, "service_unavailable")
	if rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("503 Retry-After %q, want 1", rec.Header().Get("Retry-After"))
	}
	checkEnvelope(t, e.login("192.0.2.42", "nobody@example.com", "wrong"), 503, "service_unavailable")
	if _, err := users.ByEmail(context.Background(), "y@example.com"); err == nil {
		t.Fatal("a refused sign-up created its user")
	}
	close(bh.release)
	if code := <-held; code != 201 {
		t.Fatalf("the sign-up holding the slot: %d", code)
	}
	// The refused login spent no failure: the next attempt is a 401, not 429.
	e.want(e.login("192.0.2.42", "nobody@example.com", "wrong"), 401)
	e.want(e.login("192.0.2.42", "nobody@example.com", "wrong"), 429)
}
