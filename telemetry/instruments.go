package telemetry

// Names of the metrics that the HTTP telemetry middleware records (contract
// §4). Other packages should use these constants rather than literals.
const (
	// MetricHTTPRequestsTotal counts finished HTTP requests.
	MetricHTTPRequestsTotal = "http_requests_total"
	// MetricHTTPRequestDuration is the request latency histogram, in
	// milliseconds.
	MetricHTTPRequestDuration = "http_request_duration_ms"
	// MetricRateLimitDecisions counts the rate limiters' decisions (tag
	// decision = allowed | limited | fallback | fail_open; the credential
	// limiters add limiter = login | signup).
	MetricRateLimitDecisions = "ratelimit_decisions_total"
	// MetricCacheRequests counts cache results (tags cache, result = hit |
	// miss | error).
	MetricCacheRequests = "cache_requests_total"
	// MetricHTTPServerRequestDuration is the stable OpenTelemetry HTTP server
	// metric, recorded in addition to the above when TELEMETRY_SEMCONV is
	// true (seconds, SemConvDurationBuckets, attributes SemConvAttr*).
	MetricHTTPServerRequestDuration = "http.server.request.duration"
	// MetricPasswordHashes counts password hash and verify operations (tags
	// op = hash | verify, result = done | busy).
	MetricPasswordHashes = "password_hash_operations_total"
)

// Attribute keys of MetricHTTPServerRequestDuration (OpenTelemetry HTTP
// semantic conventions, stable). All are recorded as strings, the status
// code too: the Telemetry interface carries string tags, and Prometheus
// labels are strings anyway. http.route is left out when no route matched;
// error.type is the status code of a 5xx answer.
const (
	SemConvAttrRoute      = "http.route"
	SemConvAttrMethod     = "http.request.method"
	SemConvAttrStatusCode = "http.response.status_code"
	SemConvAttrURLScheme  = "url.scheme"
	SemConvAttrErrorType  = "error.type"
)

// SemConvDurationBuckets returns the explicit bucket boundaries (seconds)
// the semantic conventions advise for http.server.request.duration. Each
// call returns a new slice.
func SemConvDurationBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
}

// SemConvInstruments returns the instruments Setup adds in otel mode when
// Config.SemConv is set. Each call returns a new slice.
func SemConvInstruments() []InstrumentSpec {
	return []InstrumentSpec{{
		Name:        MetricHTTPServerRequestDuration,
		Kind:        KindHistogram,
		Unit:        "s",
		Description: "Duration of HTTP server requests.",
		Buckets:     SemConvDurationBuckets(),
	}}
}

// Units of the known instruments. They are the single place to change if
// the exported series names come out wrong.
//
// The naming trap: the OTel Collector's Prometheus exporter appends a unit
// suffix to metric names, so a histogram named http_request_duration_ms with
// unit "ms" is exposed as http_request_duration_ms_milliseconds_*, while the
// contract wants http_request_duration_ms_bucket/_sum/_count. The duration
// therefore carries no unit: the name already says milliseconds, and so does
// the description. This gives the exact names under every translation
// strategy of the exporter, without switching suffixes off for the other
// (otelpgx, redisotel) metrics. Measured end to end in docs/TELEMETRY.md.
// Annotation units such as "{request}" add no suffix, and a counter whose
// name already ends in _total keeps it (no _total_total).
const (
	// UnitDuration is the unit of MetricHTTPRequestDuration: none, on
	// purpose (see above); the value is in milliseconds.
	UnitDuration = ""
	// UnitRequests is the unit of MetricHTTPRequestsTotal (a UCUM
	// annotation, which Prometheus translation drops).
	UnitRequests = "{request}"
	// UnitUnknown is the unit given to metrics that are not in
	// KnownInstruments.
	UnitUnknown = ""
)

// InstrumentKind says which OpenTelemetry instrument backs a metric name.
type InstrumentKind int

// Instrument kinds.
const (
	// KindCounter is a float64 monotonic counter (Telemetry.Counter).
	KindCounter InstrumentKind = iota + 1
	// KindHistogram is a float64 explicit-bucket histogram
	// (Telemetry.Histogram).
	KindHistogram
)

// String returns "counter" or "histogram".
func (k InstrumentKind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindHistogram:
		return "histogram"
	default:
		return "unknown"
	}
}

// InstrumentSpec describes one metric known in advance: the OTel
// implementation creates these instruments up front with exactly this unit,
// description and (for histograms) bucket boundaries.
type InstrumentSpec struct {
	Name        string
	Kind        InstrumentKind
	Unit        string
	Description string
	// Buckets are the explicit histogram bucket boundaries (ignored for
	// counters). Nil means the SDK default boundaries.
	Buckets []float64
}

// DurationBucketsMS returns the explicit bucket boundaries of
// MetricHTTPRequestDuration, in milliseconds, suited to HTTP latency.
// Each call returns a new slice.
func DurationBucketsMS() []float64 {
	return []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
}

// KnownInstruments returns the registry of known instruments: name, kind,
// unit, description and buckets. Each call returns a new slice, so callers
// may modify it. Names not listed here are created on first use with unit
// UnitUnknown, no description and the SDK default buckets.
func KnownInstruments() []InstrumentSpec {
	return []InstrumentSpec{
		{
			Name:        MetricHTTPRequestsTotal,
			Kind:        KindCounter,
			Unit:        UnitRequests,
			Description: "Number of HTTP requests served, by method, route and status code.",
		},
		{
			Name:        MetricHTTPRequestDuration,
			Kind:        KindHistogram,
			Unit:        UnitDuration,
			Description: "Duration of HTTP requests in milliseconds, by method, route and status code.",
			Buckets:     DurationBucketsMS(),
		},
		{
			Name:        MetricRateLimitDecisions,
			Kind:        KindCounter,
			Unit:        UnitRequests,
			Description: "Rate-limit decisions: allowed, limited, fallback (store unavailable, the in-process fallback decided) or fail_open (no store answered, request let through).",
		},
		{
			Name:        MetricCacheRequests,
			Kind:        KindCounter,
			Unit:        UnitRequests,
			Description: "Cache lookups and writes by cache and result: hit, miss or error (fail-open).",
		},
		{
			Name:        MetricPasswordHashes,
			Kind:        KindCounter,
			Unit:        "{operation}",
			Description: "Password hash and verify operations by op and result: done (ran) or busy (refused by the hashing gate).",
		},
	}
}
