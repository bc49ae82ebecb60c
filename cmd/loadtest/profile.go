package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

// profiles first profiles the BenchmarkChain rows of -profile-benches
// in-process (go test -cpuprofile -memprofile: works on any build), then runs
// each API scenario with DEBUG_ADDR set and, during the
// measured load, fetches a CPU profile and an allocation profile (the
// delta over the same seconds) from net/http/pprof on that address. The
// profiles go to o.profile; the top entries of each go to stdout and, with
// -out, to the "profiles" section. A server without pprof on DEBUG_ADDR
// gets a line saying so; the run fails only when nothing was profiled.
// Figures of these runs are not budgets: profiling costs the server CPU.
func (d *driver) profiles(ctx context.Context, stdout io.Writer) error {
	if err := os.MkdirAll(d.o.profile, 0o755); err != nil {
		return err
	}
	secs := max(1, int((d.o.duration-time.Second)/time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "Taken %s with `%s` (provisional: the machine's load at the time is not recorded in the profile).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), d.o.command)
	fmt.Fprintf(&b, "Each row: the server under the row's load (%s); a %ds CPU profile and the allocations of the same %ds "+
		"from `DEBUG_ADDR`'s `/debug/pprof/`. Files in `%s`; open one with `go tool pprof -http : %s <file>`.\n",
		d.clients(), secs, secs, d.o.profile, d.o.api)
	ran := 0
	if len(d.o.profileBenches) > 0 {
		fmt.Fprintf(&b, "\n#### In-process: `BenchmarkChain` rows\n\nThe chain alone through `ServeHTTP` (no HTTP server, network or client): "+
			"`go test ./service -bench '^BenchmarkChain/<row>$' -benchtime %v -cpuprofile … -memprofile …`, one run per row.\n", d.o.duration)
	}
	for _, bench := range d.o.profileBenches {
		base := filepath.Join(d.o.profile, "bench-"+strings.ReplaceAll(bench, "/", "_"))
		testBin := filepath.Join(d.o.profile, "service.test")
		cmd := exec.CommandContext(ctx, d.o.goCmd, "test", "./service", "-run", "^$", "-bench", "^BenchmarkChain/"+bench+"$",
			"-benchtime", d.o.duration.String(), "-count", "1", "-o", testBin,
			"-cpuprofile", base+".cpu.pb.gz", "-memprofile", base+".mem.pb.gz")
		fmt.Fprintf(&b, "\n##### %s (in-process)\n\n", bench)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(&b, "`go test` failed: %v: %s\n", err, firstLine(lastLines(string(out), 3)))
			continue
		}
		ran++
		d.writeTops(ctx, &b, testBin, base+".cpu.pb.gz", base+".mem.pb.gz")
	}
	for _, sc := range d.scenarios() {
		if d.o.onlyRE != nil && !d.o.onlyRE.MatchString(sc.name) {
			continue
		}
		// By default: the three modes on /health and the user read in noop, otel and with the Redis limiter.
		if d.o.onlyRE == nil && !slices.Contains([]string{rowNoop, rowLog, rowOTel, rowMem, rowMemOTel, rowMemRedis}, sc.name) {
			continue
		}
		if sc.bare {
			continue
		}
		port, err := loadgen.FreePort()
		if err != nil {
			return err
		}
		debug := "127.0.0.1:" + strconv.Itoa(port)
		psc := *sc
		psc.env = maps.Clone(sc.env)
		psc.env["DEBUG_ADDR"] = debug
		base := filepath.Join(d.o.profile, strings.ReplaceAll(sc.name, "/", "_"))
		var mu sync.Mutex
		var fetchErrs []string
		during := func(*loadgen.Process) {
			var wg sync.WaitGroup
			for _, p := range []struct{ path, file string }{
				{"/debug/pprof/profile?seconds=" + strconv.Itoa(secs), base + ".cpu.pb.gz"},
				{"/debug/pprof/allocs?seconds=" + strconv.Itoa(secs), base + ".allocs.pb.gz"},
			} {
				wg.Go(func() {
					if err := fetch(ctx, "http://"+debug+p.path, p.file, time.Duration(secs+30)*time.Second); err != nil {
						mu.Lock()
						fetchErrs = append(fetchErrs, err.Error())
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		m, skip := d.runScenario(ctx, &psc, during)
		fmt.Fprintf(&b, "\n#### %s (under load)\n\n%s.", sc.name, sc.what)
		switch {
		case skip != "":
			fmt.Fprintf(&b, " Skipped: %s\n", firstLine(skip))
			continue
		case len(fetchErrs) > 0:
			fmt.Fprintf(&b, " No profile: %s (does this cmd/api serve pprof on `DEBUG_ADDR`?)\n", firstLine(fetchErrs[0]))
			continue
		}
		ran++
		fmt.Fprintf(&b, " %.0f req/s under profiling (%s client), server CPU %s/req.\n\n", m.res.RPS(), m.res.Client, usPerReq(m.cpuPerReq()))
		d.writeTops(ctx, &b, d.o.api, base+".cpu.pb.gz", base+".allocs.pb.gz")
	}
	fmt.Fprintln(stdout, b.String())
	if d.o.out != "" {
		if err := docsection.Write(d.o.out, "profiles", b.String()); err != nil {
			return err
		}
	}
	if ran == 0 {
		return fmt.Errorf("no profile taken (see above)")
	}
	return nil
}

// fetch saves url's body to file.
func fetch(ctx context.Context, url, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, firstLine(string(body)))
	}
	return os.WriteFile(file, body, 0o644)
}

// writeTops writes the top entries of a CPU and an allocation profile of
// binary.
func (d *driver) writeTops(ctx context.Context, b *strings.Builder, binary, cpu, allocs string) {
	for _, t := range []struct{ title, file, index string }{
		{"CPU, top 15 by flat time", cpu, ""},
		{"allocations, top 15 by bytes allocated", allocs, "alloc_space"},
	} {
		top, err := d.pprofTop(ctx, binary, t.file, t.index)
		if err != nil {
			fmt.Fprintf(b, "%s: %s\n\n", t.title, firstLine(err.Error()))
			continue
		}
		fmt.Fprintf(b, "%s:\n\n```\n%s\n```\n\n", t.title, top)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// pprofTop is `go tool pprof -top` of a profile, without its preamble.
func (d *driver) pprofTop(ctx context.Context, binary, file, sampleIndex string) (string, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=15"}
	if sampleIndex != "" {
		args = append(args, "-sample_index="+sampleIndex)
	}
	cmd := exec.CommandContext(ctx, d.o.goCmd, append(args, binary, file)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, stderr.String())
	}
	s := out.String()
	if i := strings.Index(s, "      flat  flat%"); i >= 0 {
		s = s[i:]
	}
	return strings.TrimRight(s, "\n"), nil
}
