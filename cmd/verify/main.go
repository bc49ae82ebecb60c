package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a check failed
	exitUsage = 2 // bad flags
)

// defaultBase is where "make run" listens.
const defaultBase = "http://localhost:8000"

// config is the parsed command line.
type config struct {
	base             string
	timeout          time.Duration
	totalTimeout     time.Duration
	email            string
	password         string
	givenUser        bool
	maxRequests      int
	requireRateLimit bool
	requireDeps      bool
}

const usageText = `Usage:
  verify [flags] [BASE_URL]

Checks a running bulwark end to end (default BASE_URL ` + defaultBase + `):
/health, the 404 envelope and its request_id, readiness, sign-up, login,
GET /api/v1/users/{id} twice, and, when rate limiting is on, that repeated
requests end in a 429 envelope with Retry-After and X-RateLimit-* headers.
Prints one line per check and "OK: prod hardening verification passed ..."
(exit 0), or names the failed check with what it got (exit 1).

Flags:
`

// parseFlags parses args. It returns the config, or an exit code and false
// when the program should stop (help or a usage error, already reported).
func parseFlags(args []string, stderr io.Writer) (config, int, bool) {
	var c config
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	fs.DurationVar(&c.totalTimeout, "total-timeout", 2*time.Minute, "timeout of the whole run")
	fs.StringVar(&c.email, "email", "", "sign up (409 accepted: the user exists) and log in as this user; default: a new verify+<random>@example.com")
	fs.StringVar(&c.password, "password", "", "password for --email (required with it); default: random")
	fs.IntVar(&c.maxRequests, "max-requests", 1000, "hard cap on the requests sent while waiting for a 429")
	fs.BoolVar(&c.requireRateLimit, "require-rate-limit", false, "fail, instead of skipping the 429 check, when rate limiting is off")
	fs.BoolVar(&c.requireDeps, "require-deps", false, `fail unless readiness reports every check (db, redis) "ok", not "disabled"`)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	usage := func(format string, a ...any) (config, int, bool) {
		fmt.Fprintf(stderr, "verify: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'verify -h' for usage")
		return c, exitUsage, false
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, exitOK, false
		}
		return c, exitUsage, false // flag has printed the error and usage
	}
	switch fs.NArg() {
	case 0:
		c.base = defaultBase
	case 1:
		c.base = fs.Arg(0)
	default:
		return usage("one BASE_URL expected, got %d arguments", fs.NArg())
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usage("BASE_URL must be an http(s) URL such as %s, not %q", defaultBase, c.base)
	}
	c.base = strings.TrimSuffix(c.base, "/")
	c.givenUser = c.email != "" || c.password != ""
	switch {
	case c.timeout <= 0:
		return usage("--timeout must be positive, not %s", c.timeout)
	case c.totalTimeout <= 0:
		return usage("--total-timeout must be positive, not %s", c.totalTimeout)
	case c.maxRequests < 1:
		return usage("--max-requests must be at least 1, not %d", c.maxRequests)
	case c.givenUser && (c.email == "" || c.password == ""):
		return usage("--email and --password go together")
	}
	return c, exitOK, true
}
