package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels the export (stopping compose and removing
	// temporary files); a second one kills the process as usual.
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // I/O or compose failure
	exitUsage = 2 // bad flags
)

// config is the parsed command line.
type config struct {
	composeCmd string
	service    string
	tail       int
	format     string
	out        string
	droppedOut string
	in         string
	useIn      bool
	// filterService: --service was given with --in, so only that
	// service's lines of the saved log are read.
	filterService bool
}

const usageText = `Usage:
  logexport [--compose-cmd CMD] [--service NAME] [--tail N] [--format array|ndjson]
            [--out FILE] [--dropped-out FILE]
  logexport --in FILE|- [--service NAME] [--format array|ndjson] [--out FILE]
            [--dropped-out FILE]

Runs "CMD logs --no-color --tail N NAME" (or reads saved logs with --in),
strips compose prefixes such as "app-1  | ", keeps the lines that are JSON
objects and writes them as one JSON document ({"meta":{...},"records":[...]})
or as NDJSON. A one-line summary "logexport: meta {...}" goes to stderr.

Flags:
`

// parseFlags parses args. It returns the config, or an exit code and false
// when the program should stop (help or a usage error, already reported).
func parseFlags(args []string, stderr io.Writer) (config, int, bool) {
	var c config
	fs := flag.NewFlagSet("logexport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.composeCmd, "compose-cmd", "docker compose", "compose command line, split on spaces (e.g. \"docker-compose\")")
	fs.StringVar(&c.service, "service", "app", "compose service whose logs to fetch; with --in, keep only this service's lines of a saved multi-service log")
	fs.IntVar(&c.tail, "tail", 200, "number of lines to fetch from compose (--tail N)")
	fs.StringVar(&c.format, "format", "array", "output format: array or ndjson")
	fs.StringVar(&c.out, "out", "-", "output file; - for stdout")
	fs.StringVar(&c.droppedOut, "dropped-out", "", "optional file for dropped lines, one per line; - for stdout if --out is a file")
	fs.StringVar(&c.in, "in", "", "read saved logs from FILE (- for stdin) instead of running compose")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	usage := func(format string, a ...any) (config, int, bool) {
		fmt.Fprintf(stderr, "logexport: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'logexport -h' for usage")
		return c, exitUsage, false
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, exitOK, false
		}
		return c, exitUsage, false // flag has printed the error and usage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.useIn = set["in"]

	switch {
	case c.format != "array" && c.format != "ndjson":
		return usage("--format must be array or ndjson, not %q", c.format)
	case c.out == "":
		return usage("--out must not be empty (use - for stdout)")
	case set["dropped-out"] && c.droppedOut == "":
		return usage("--dropped-out must not be empty")
	case c.droppedOut == "-" && c.out == "-":
		return usage("--out and --dropped-out cannot both be stdout")
	case c.droppedOut != "" && c.droppedOut == c.out:
		return usage("--out and --dropped-out must differ")
	}
	if c.useIn {
		if c.in == "" {
			return usage("--in must name a file or - for stdin")
		}
		for _, name := range []string{"compose-cmd", "tail"} {
			if set[name] {
				return usage("--%s selects what compose fetches and cannot be combined with --in", name)
			}
		}
		if c.filterService = set["service"]; c.filterService && c.service == "" {
			return usage("--service must not be empty")
		}
		return c, exitOK, true
	}
	switch {
	case len(splitCommand(c.composeCmd)) == 0:
		return usage("--compose-cmd must not be empty")
	case c.service == "":
		return usage("--service must not be empty")
	case c.tail < 1:
		return usage("--tail must be at least 1, not %d", c.tail)
	}
	return c, exitOK, true
}
