package testenv

import (
	"os"
	"strconv"
	"testing"
)

// CI reports whether the tests run under CI (the CI variable is a true
// boolean: "true", "1", "t", ...).
func CI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Unavailable skips tb because what is missing (err says why), or fails it
// under CI, where every service must be present.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if CI() {
		tb.Fatalf("%s is required when CI is set: %v", what, err)
	}
	tb.Skipf("skipping: %s not available (%v); set TEST_DATABASE_URL / TEST_REDIS_URL or start it", what, err)
}
