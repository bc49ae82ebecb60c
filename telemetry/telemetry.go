package telemetry

import "context"

// Tag is one metric dimension.
type Tag struct{ Key, Value string }

// Telemetry records metrics. Implementations must be safe for concurrent use.
//
// Callers own the tags slice; implementations never retain it after the call
// returns.
type Telemetry interface {
	// Counter adds value (which must not be negative) to the counter name.
	Counter(ctx context.Context, name string, value float64, tags ...Tag)
	// Histogram records one observation of value in the histogram name.
	Histogram(ctx context.Context, name string, value float64, tags ...Tag)
}

// Noop returns a Telemetry that records nothing. Its methods allocate nothing
// when called with a tags slice the caller already owns (tags...).
func Noop() Telemetry { return noopTelemetry{} }

type noopTelemetry struct{}

func (noopTelemetry) Counter(context.Context, string, float64, ...Tag)   {}
func (noopTelemetry) Histogram(context.Context, string, float64, ...Tag) {}
