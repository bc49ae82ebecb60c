package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
)

func TestWarnThrottle(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	th := telemetry.NewWarnThrottle(logger, "store down", 10*time.Second, clock)
	for range 50 {
		th.Warn(context.Background(), errors.New("refused"))
	}
	if n := strings.Count(buf.String(), "store down"); n != 1 {
		t.Fatalf("%d lines for 50 failures within the interval, want 1:\n%s", n, buf.String())
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	th.Warn(context.Background(), errors.New("refused"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed_since_last=49") || !strings.Contains(lines[1], "level=WARN") {
		t.Fatalf("second line should report the 49 held back:\n%s", buf.String())
	}
}
