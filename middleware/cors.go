package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"
)

// CORSOptions configures CORS (CORS_ALLOWED_ORIGINS and friends). Build the
// lists with ParseCORSOrigins, ParseCORSMethods and ParseCORSHeaders; NewCORS
// checks them again, so options built by hand get the same rules.
type CORSOptions struct {
	// AllowedOrigins are exact origins ("https://app.example.com",
	// "http://localhost:5173"), or the single entry "*" (any origin, never
	// with credentials).
	AllowedOrigins []string
	// AllowedMethods a cross-origin request may use (preflight).
	AllowedMethods []string
	// AllowedHeaders a cross-origin request may send beyond the
	// CORS-safelisted ones (lower case, as browsers send them); at least one.
	AllowedHeaders []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true, so a
	// browser includes cookies and TLS client certificates. bulwark
	// authenticates with a bearer token, which needs no credentials mode.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer, in whole
	// seconds from 0 ("Access-Control-Max-Age: 0": ask every time) to 24h.
	MaxAge time.Duration
}

// Defaults of the CORS_* variables other than the origins.
const (
	DefaultCORSMethods = "GET, HEAD, POST, PATCH, DELETE"
	DefaultCORSHeaders = "Authorization, Content-Type, X-Request-ID"
	DefaultCORSMaxAge  = 10 * time.Minute
	// MaxCORSMaxAge is the longest preflight cache accepted; browsers cap
	// it lower anyway (Chromium: 2 hours).
	MaxCORSMaxAge = 24 * time.Hour
)

// CORSExposedHeaders are the response headers a cross-origin page may read
// besides the CORS-safelisted ones: the request ID, the rate-limit headers,
// Retry-After (429 and 503) and Location (201).
func CORSExposedHeaders() []string {
	return []string{HeaderRequestID, "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Location"}
}

// corsMethods are the methods an allow-list may name.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// CORS answers preflights and adds the CORS headers to every other response
// (github.com/rs/cors underneath, with the allow-list checked here).
type CORS struct {
	c *cors.Cors
}

// NewCORS validates o and returns the middleware's configuration. An origin
// not on the list never gets an Access-Control-Allow-Origin header; "*" is
// refused together with credentials.
func NewCORS(o CORSOptions) (*CORS, error) {
	if len(o.AllowedOrigins) == 0 {
		return nil, errors.New("no allowed origin")
	}
	origins, err := canonical("origins", o.AllowedOrigins, ParseCORSOrigins)
	if err != nil {
		return nil, err
	}
	anyOrigin := origins[0] == "*"
	if anyOrigin && o.AllowCredentials {
		return nil, errors.New(`"*" cannot be combined with credentials: list the origins`)
	}
	// rs/cors replaces an empty method or header list with defaults of its own.
	if len(o.AllowedMethods) == 0 || len(o.AllowedHeaders) == 0 {
		return nil, errors.New("at least one allowed method and one allowed header are needed")
	}
	if _, err := canonical("methods", o.AllowedMethods, ParseCORSMethods); err != nil {
		return nil, err
	}
	if _, err := canonical("headers", o.AllowedHeaders, ParseCORSHeaders); err != nil {
		return nil, err
	}
	if o.MaxAge < 0 || o.MaxAge > MaxCORSMaxAge || o.MaxAge%time.Second != 0 {
		return nil, fmt.Errorf("max age %v: must be whole seconds from 0 to %v", o.MaxAge, MaxCORSMaxAge)
	}
	opts := cors.Options{
		AllowedMethods:   slices.Clone(o.AllowedMethods),
		AllowedHeaders:   slices.Clone(o.AllowedHeaders),
		ExposedHeaders:   CORSExposedHeaders(),
		AllowCredentials: o.AllowCredentials,
		MaxAge:           int(o.MaxAge / time.Second),
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = -1 // rs/cors: negative sends "0"; zero would send nothing (browser default 5s)
	}
	if anyOrigin {
		opts.AllowedOrigins = []string{"*"}
	} else {
		allowed := make(map[string]bool, len(origins))
		for _, o := range origins {
			allowed[o] = true
		}
		// Exact, case-sensitive match of the one Origin header (browsers
		// send the serialized origin, lower case): rs/cors reflects every
		// Origin header it was sent, so a request with two never qualifies.
		opts.AllowOriginVaryRequestFunc = func(r *http.Request, origin string) (bool, []string) {
			return len(r.Header.Values("Origin")) == 1 && allowed[origin], nil
		}
	}
	return &CORS{c: cors.New(opts)}, nil
}

// canonical checks that list is what parse makes of it joined with commas.
func canonical(what string, list []string, parse func(string) ([]string, error)) ([]string, error) {
	got, err := parse(strings.Join(list, ","))
	if err != nil {
		return nil, err
	}
	if !slices.Equal(got, list) {
		return nil, fmt.Errorf("%s %q are not in canonical form %q (use the Parse function)", what, list, got)
	}
	return got, nil
}

// Middleware answers a preflight (OPTIONS with Access-Control-Request-Method)
// at once with 204, so it never reaches the router (no 405), the rate limiter
// or the body limit; route names the route pattern the preflight is aimed at
// for logs and metrics ("" keeps "unmatched"). Every other request gets its
// CORS headers before next runs, so every answer — envelopes of 401, 404,
// 405, 413, 429 and 500 included — carries them. It must run inside
// RequestContext and Recover.
func (c *CORS) Middleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		h := c.c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isPreflight(r) && route != nil {
				if p := route(r); p != "" {
					SetRoute(r.Context(), p)
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// isPreflight is rs/cors' own test for a preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// ParseCORSOrigins parses CORS_ALLOWED_ORIGINS: a comma-separated list of
// exact origins, scheme://host[:port] with scheme http or https, no path
// (not even "/"), query, fragment or user info, no wildcard, no default port
// (browsers never send ":443" or ":80"), a host name in ASCII (an
// internationalised name in its xn-- form). Scheme and host are lower-cased,
// duplicates dropped. "*" alone allows any origin; "null" is refused (it is
// the origin of sandboxed frames and file: pages, which anyone can create).
// An empty list is empty: CORS stays off.
func ParseCORSOrigins(list string) ([]string, error) {
	out, err := parseList(list, parseOrigin)
	if err == nil && len(out) > 1 && slices.Contains(out, "*") {
		return nil, errors.New(`"*" must be the only entry`)
	}
	return out, err
}

// DefaultCORSOptions are the options of CORS_ALLOWED_ORIGINS=origins with
// every other CORS_* variable at its default.
func DefaultCORSOptions(origins string) (CORSOptions, error) {
	o, err := ParseCORSOrigins(origins)
	if err != nil {
		return CORSOptions{}, err
	}
	m, _ := ParseCORSMethods(DefaultCORSMethods)
	h, _ := ParseCORSHeaders(DefaultCORSHeaders)
	return CORSOptions{AllowedOrigins: o, AllowedMethods: m, AllowedHeaders: h, MaxAge: DefaultCORSMaxAge}, nil
}

// parseList splits a comma-separated list, skips empty entries, puts each
// other one in canonical form with parse and drops duplicates.
func parseList(list string, parse func(string) (string, error)) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func parseOrigin(s string) (string, error) {
	switch {
	case s == "*":
		return s, nil
	case strings.EqualFold(s, "null"):
		return "", errors.New(`"null" is refused: sandboxed frames and file: pages all send it`)
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("%q: wildcards are not supported, list each origin", s)
	}
	bad := func(why string) (string, error) { return "", fmt.Errorf("%q is not an origin: %s", s, why) }
	u, err := url.Parse(s)
	if err != nil {
		return bad("want scheme://host[:port]")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return bad("want scheme://host[:port]")
	case u.User != nil:
		return bad("no user info")
	case u.Path != "" || u.RawPath != "":
		return bad("no path, not even a trailing /")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return bad("no query or fragment")
	case strings.HasSuffix(u.Host, ":"):
		return bad("empty port")
	}
	host := strings.ToLower(u.Hostname())
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bad("bad IPv6 literal")
		}
		host = "[" + a.String() + "]"
	} else {
		for i := 0; i < len(host); i++ {
			c := host[i]
			if c >= 0x80 {
				return bad("write an internationalised host name in its xn-- form, as browsers send it")
			}
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
				return bad("bad character in host")
			}
		}
	}
	origin := u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return bad("port must be 1..65535")
		}
		if u.Scheme == "http" && n == 80 || u.Scheme == "https" && n == 443 {
			return bad("browsers omit the default port: write " + origin)
		}
		origin += ":" + p
	}
	return origin, nil
}

// ParseCORSMethods parses CORS_ALLOWED_METHODS: a comma-separated list of
// GET, HEAD, POST, PUT, PATCH, DELETE (case-insensitive; returned upper
// case). "*" is refused.
func ParseCORSMethods(list string) ([]string, error) {
	return parseList(list, func(f string) (string, error) {
		f = strings.ToUpper(f)
		if !slices.Contains(corsMethods, f) {
			return "", fmt.Errorf("%q is not one of %s", f, strings.Join(corsMethods, ", "))
		}
		return f, nil
	})
}

// ParseCORSHeaders parses CORS_ALLOWED_HEADERS: a comma-separated list of
// header names (returned lower case, as browsers list them in
// Access-Control-Request-Headers). "*" is refused.
func ParseCORSHeaders(list string) ([]string, error) {
	return parseList(list, func(f string) (string, error) {
		f = strings.ToLower(f)
		if f == "*" {
			return "", errors.New(`"*" is refused: list the headers`)
		}
		for i := 0; i < len(f); i++ {
			if !isTokenChar(f[i]) {
				return "", fmt.Errorf("%q is not a header name", f)
			}
		}
		return f, nil
	})
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
