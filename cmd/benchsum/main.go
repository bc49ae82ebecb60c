package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

func main() {
	out := flag.String("out", "", "markdown `file` whose \"bench\" section gets the summary (empty: stdout only)")
	command := flag.String("command", "make bench", "the command to print as the reproduction command")
	flag.Parse()
	var b bytes.Buffer
	if err := run(os.Stdin, &b); err != nil {
		fmt.Fprintln(os.Stderr, "benchsum:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(b.Bytes())
	if *out == "" {
		return
	}
	header := fmt.Sprintf("Summarised %s from:\n\n```sh\n%s\n```\n\nMachine: %s, %d CPUs, %s/%s, %s; load average %s when summarised. Medians over `-count`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), *command, loadgen.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), loadgen.LoadAvg())
	if err := docsection.Write(*out, "bench", header+b.String()); err != nil {
		fmt.Fprintln(os.Stderr, "benchsum:", err)
		os.Exit(1)
	}
}

// result is the medians of one benchmark over its runs.
type result struct {
	name    string
	metrics map[string]float64 // unit → median
}

// procSuffix is the -GOMAXPROCS suffix go test appends to names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark lines: name, iterations, then value/unit pairs.
func parse(r io.Reader) ([]*result, error) {
	samples := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := samples[name]
		if m == nil {
			m = map[string][]float64{}
			samples[name] = m
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]*result, 0, len(order))
	for _, name := range order {
		res := &result{name: name, metrics: map[string]float64{}}
		for unit, vs := range samples[name] {
			res.metrics[unit] = median(vs)
		}
		out = append(out, res)
	}
	return out, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// group is the benchmark name without its last element: the rows that share
// one bare baseline.
func group(name string) (string, string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

func run(in io.Reader, out io.Writer) error {
	results, err := parse(in)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no benchmark lines on stdin")
	}
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.name] = r
	}
	bareOf := func(name string) *result {
		g, _ := group(name)
		return byName[g+"/bare"]
	}

	fmt.Fprintln(out, "| benchmark | ns/op | B/op | allocs/op | allocs over bare | throughput vs bare | redis round trips/op |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		ns, bytes, allocs := r.metrics["ns/op"], r.metrics["B/op"], r.metrics["allocs/op"]
		over, share := "", ""
		if b := bareOf(r.name); b != nil && b != r {
			over = fmt.Sprintf("%+.0f", allocs-b.metrics["allocs/op"])
			share = fmt.Sprintf("%.1f%%", 100*b.metrics["ns/op"]/ns)
		}
		rtt := ""
		if v, ok := r.metrics["redis-rtt/op"]; ok {
			rtt = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(out, "| %s | %.0f | %.0f | %.0f | %s | %s | %s |\n",
			strings.TrimPrefix(r.name, "Benchmark"), ns, bytes, allocs, over, share, rtt)
	}

	fmt.Fprintln(out)
	fmt.Fprintln(out, "Budgets an in-process benchmark checks:")
	fmt.Fprintln(out)
	check := func(what string, ok bool, detail string) {
		mark := "met"
		if !ok {
			mark = "NOT MET"
		}
		fmt.Fprintf(out, "- %s: %s (%s)\n", what, mark, detail)
	}
	missing := func(what string) { fmt.Fprintf(out, "- %s: not run\n", what) }

	if n, b := byName["BenchmarkChain/health/noop-file"], byName["BenchmarkChain/health/bare"]; n != nil && b != nil {
		added := n.metrics["allocs/op"] - b.metrics["allocs/op"]
		check("noop chain, access log to a file, adds at most 8 allocations per request", added <= 8,
			fmt.Sprintf("%+.0f allocs/op over bare", added))
	} else {
		missing("noop chain allocations")
	}
	for _, name := range []string{"BenchmarkChain/users-get/mem-limiter-redis", "BenchmarkChain/users-get/mem-over-limit-redis"} {
		if r := byName[name]; r != nil {
			what := "one Redis round trip per request (" + strings.TrimPrefix(name, "BenchmarkChain/") + ")"
			v, ok := r.metrics["redis-rtt/op"]
			if !ok || v <= 0 {
				// Nothing counted means the limiter never reached Redis (or
				// the count failed): an error, never "met".
				fmt.Fprintf(out, "- %s: ERROR (%.2f round trips/op counted: the limiter did not reach Redis)\n", what, v)
				continue
			}
			check(what, v >= 0.95 && v <= 1.05, fmt.Sprintf("%.2f round trips/op, server-wide count", v))
		}
	}

	fmt.Fprintln(out)
	fmt.Fprintln(out, "In-process indicators of two throughput budgets. The load test is authoritative: it adds the HTTP server, the network and the client to both sides (the mode budgets against bare are only meaningful there, since bare here costs no more than a map lookup):")
	fmt.Fprintln(out)
	ratio := func(what, num, den string, want float64, unit string) {
		a, b := byName["BenchmarkChain/"+num], byName["BenchmarkChain/"+den]
		if a == nil || b == nil {
			missing(what)
			return
		}
		r := b.metrics["ns/op"] / a.metrics["ns/op"] // throughput of num over den
		fmt.Fprintf(out, "- %s: %s is %.2f%s of %s (budget %.2f%s)\n", what, num, r*scale(unit), unit, den, want*scale(unit), unit)
	}
	ratio("Redis limiter on vs off", "users-get/mem-limiter-redis", "users-get/mem", 0.75, "%")
	ratio("cache hit vs uncached Postgres", "users-get/pg-cache-hit", "users-get/pg-nocache", 2, "x")
	return nil
}

func scale(unit string) float64 {
	if unit == "%" {
		return 100
	}
	return 1
}
