package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope name of the meter that NewOTel
// uses.
const MeterName = "github.com/bulwark-go/bulwark/telemetry"

// maxStackTags is how many tags are converted to attributes without a heap
// allocation for the conversion buffer.
const maxStackTags = 8

// NewOTel returns a Telemetry that records into OpenTelemetry instruments of
// a meter obtained from mp.
//
// The instruments of KnownInstruments (plus extra, which may add names or
// override the spec of a known one) are created here, once, with their unit,
// description and buckets; an error creating any of them is returned. Other
// names are created on first use (unit UnitUnknown) and cached, so each name
// gets exactly one instrument for the life of the Telemetry. Counters and
// histograms are float64 instruments. Tags become string attributes (for a
// repeated key the last value wins). The measurement options of each
// distinct tag list are built once and cached (up to 4096 lists, then built
// per call), so recording with a tag list seen before allocates nothing.
//
// Negative counter values are dropped, since counters are monotonic.
func NewOTel(mp metric.MeterProvider, extra ...InstrumentSpec) (Telemetry, error) {
	if mp == nil {
		return nil, errors.New("telemetry: nil MeterProvider")
	}
	o := &otelTelemetry{meter: mp.Meter(MeterName)}
	specs := append(KnownInstruments(), extra...)
	for _, s := range specs {
		if err := o.register(s); err != nil {
			return nil, err
		}
	}
	return o, nil
}

type otelTelemetry struct {
	meter      metric.Meter
	counters   sync.Map // name → metric.Float64Counter
	histograms sync.Map // name → metric.Float64Histogram
	attrs      attrCache
}

func (o *otelTelemetry) register(s InstrumentSpec) error {
	switch s.Kind {
	case KindCounter:
		c, err := o.meter.Float64Counter(s.Name,
			metric.WithUnit(s.Unit), metric.WithDescription(s.Description))
		if err != nil {
			return fmt.Errorf("telemetry: counter %q: %w", s.Name, err)
		}
		o.counters.Store(s.Name, c)
	case KindHistogram:
		opts := []metric.Float64HistogramOption{
			metric.WithUnit(s.Unit), metric.WithDescription(s.Description),
		}
		if s.Buckets != nil {
			opts = append(opts, metric.WithExplicitBucketBoundaries(s.Buckets...))
		}
		h, err := o.meter.Float64Histogram(s.Name, opts...)
		if err != nil {
			return fmt.Errorf("telemetry: histogram %q: %w", s.Name, err)
		}
		o.histograms.Store(s.Name, h)
	default:
		return fmt.Errorf("telemetry: instrument %q: unknown kind %d", s.Name, int(s.Kind))
	}
	return nil
}

func (o *otelTelemetry) counter(name string) metric.Float64Counter {
	if c, ok := o.counters.Load(name); ok {
		return c.(metric.Float64Counter)
	}
	// Unknown name: create it once. A racing creation of the same name is
	// harmless (the SDK returns the same instrument) and LoadOrStore keeps
	// one. An error from the SDK still comes with a usable instrument.
	c, _ := o.meter.Float64Counter(name, metric.WithUnit(UnitUnknown))
	if c == nil {
		return nil
	}
	v, _ := o.counters.LoadOrStore(name, c)
	return v.(metric.Float64Counter)
}

func (o *otelTelemetry) histogram(name string) metric.Float64Histogram {
	if h, ok := o.histograms.Load(name); ok {
		return h.(metric.Float64Histogram)
	}
	h, _ := o.meter.Float64Histogram(name, metric.WithUnit(UnitUnknown))
	if h == nil {
		return nil
	}
	v, _ := o.histograms.LoadOrStore(name, h)
	return v.(metric.Float64Histogram)
}

// Counter implements Telemetry.
func (o *otelTelemetry) Counter(ctx context.Context, name string, value float64, tags ...Tag) {
	if value < 0 {
		return
	}
	c := o.counter(name)
	if c == nil {
		return
	}
	if opts := o.attrs.get(tags); opts != nil {
		c.Add(ctx, value, opts.add...)
		return
	}
	c.Add(ctx, value, metric.WithAttributeSet(attrSet(tags)))
}

// Histogram implements Telemetry.
func (o *otelTelemetry) Histogram(ctx context.Context, name string, value float64, tags ...Tag) {
	h := o.histogram(name)
	if h == nil {
		return
	}
	if opts := o.attrs.get(tags); opts != nil {
		h.Record(ctx, value, opts.record...)
		return
	}
	h.Record(ctx, value, metric.WithAttributeSet(attrSet(tags)))
}

// maxCachedSets bounds attrCache. Tags are meant to be low-cardinality
// (method, route pattern, status code), so the bound is only a guard against
// a caller passing raw paths or IDs as tags; past it, sets are built per
// call.
const maxCachedSets = 4096

// attrCache maps an encoding of a tag list to ready-made measurement
// options, so that a recurring tag combination costs no allocation.
type attrCache struct {
	mu sync.RWMutex
	m  map[string]*measurementOpts
}

// measurementOpts are read-only once cached: the SDK only reads the option
// slices it is given.
type measurementOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// get returns the options for tags, creating and caching them if there is
// room, or nil when the cache is full.
func (c *attrCache) get(tags []Tag) *measurementOpts {
	var stack [256]byte
	key := appendKey(stack[:0], tags)
	c.mu.RLock()
	opts := c.m[string(key)] // no allocation for the lookup
	c.mu.RUnlock()
	if opts != nil {
		return opts
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if opts = c.m[string(key)]; opts != nil {
		return opts
	}
	if len(c.m) >= maxCachedSets {
		return nil
	}
	if c.m == nil {
		c.m = make(map[string]*measurementOpts)
	}
	opt := metric.WithAttributeSet(attrSet(tags))
	opts = &measurementOpts{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
	c.m[string(key)] = opts
	return opts
}

// appendKey appends an unambiguous encoding of tags (length-prefixed keys
// and values, in order) to b.
func appendKey(b []byte, tags []Tag) []byte {
	for _, t := range tags {
		b = binary.AppendUvarint(b, uint64(len(t.Key)))
		b = append(b, t.Key...)
		b = binary.AppendUvarint(b, uint64(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b
}

// attrSet converts tags to an attribute set without retaining tags.
func attrSet(tags []Tag) attribute.Set {
	if len(tags) == 0 {
		return *attribute.EmptySet()
	}
	var buf [maxStackTags]attribute.KeyValue
	var kvs []attribute.KeyValue
	if len(tags) <= len(buf) {
		kvs = buf[:len(tags)]
	} else {
		kvs = make([]attribute.KeyValue, len(tags))
	}
	for i, t := range tags {
		kvs[i] = attribute.String(t.Key, t.Value)
	}
	// NewSet sorts kvs in place, which is fine: kvs is ours.
	return attribute.NewSet(kvs...)
}
