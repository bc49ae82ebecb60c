//go:build linux

package telemetry

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// processMetrics registers the process gauges, read from getrusage(2),
// getrlimit(2) and /proc/self when the reader collects.
func processMetrics(meter metric.Meter) error {
	cpu, err := meter.Float64ObservableCounter(MetricProcessCPUTime, metric.WithUnit("s"),
		metric.WithDescription("CPU time used by the process, by cpu.mode (user, system)."))
	if err != nil {
		return err
	}
	rss, err := meter.Int64ObservableUpDownCounter(MetricProcessMemoryUsage, metric.WithUnit("By"),
		metric.WithDescription("Resident set size of the process."))
	if err != nil {
		return err
	}
	fds, err := meter.Int64ObservableUpDownCounter(MetricProcessOpenFDs, metric.WithUnit("{file_descriptor}"),
		metric.WithDescription("Open file descriptors of the process."))
	if err != nil {
		return err
	}
	fdLimit, err := meter.Int64ObservableUpDownCounter(MetricProcessFDLimit, metric.WithUnit("{file_descriptor}"),
		metric.WithDescription("Soft limit on open file descriptors (RLIMIT_NOFILE)."))
	if err != nil {
		return err
	}
	user := metric.WithAttributeSet(attribute.NewSet(attribute.String("cpu.mode", "user")))
	system := metric.WithAttributeSet(attribute.NewSet(attribute.String("cpu.mode", "system")))
	pageSize := int64(os.Getpagesize())
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			o.ObserveFloat64(cpu, timevalSeconds(ru.Utime), user)
			o.ObserveFloat64(cpu, timevalSeconds(ru.Stime), system)
		}
		if pages, ok := residentPages(); ok {
			o.ObserveInt64(rss, pages*pageSize)
		}
		if n, ok := openFDs(); ok {
			o.ObserveInt64(fds, n)
		}
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur <= 1<<62 {
			o.ObserveInt64(fdLimit, int64(lim.Cur))
		}
		return nil
	}, cpu, rss, fds, fdLimit)
	return err
}

func timevalSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// residentPages is the second field of /proc/self/statm.
func residentPages() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(f[1]), 10, 64)
	return n, err == nil
}

// openFDs counts the entries of /proc/self/fd (the descriptor used to read
// the directory itself included, as every /proc-based count does).
func openFDs() (int64, bool) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	var n int64
	for {
		names, err := d.Readdirnames(256)
		n += int64(len(names))
		if err != nil {
			return n, n > 0
		}
	}
}
