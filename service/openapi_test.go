package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulwark-go/bulwark/docs"
	"github.com/bulwark-go/bulwark/middleware"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
)

// spec validates requests and responses against docs/openapi.yaml (as the
// service serves it: converted to JSON), so the description cannot drift from
// the code.
//
// A request whose path and method the description does not list (an unknown
// path, a wrong method, a CORS preflight) has no operation to validate
// against: its response must then be the 404, 405 or 429 of
// components/responses (or, for OPTIONS, the 204 of Preflight), checked
// against those with the same validator.
type spec struct {
	doc                *openapi3.T
	router             routers.Router
	unmatched, options *routers.Route
	validated          atomic.Int64
}

func newSpec(t testing.TB) *spec {
	t.Helper()
	raw, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	// kin-openapi asserts date-time itself; uuid and email are ours to define.
	doc.SetStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(v string) error {
		if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
			return errors.New("not a UUID")
		}
		return nil
	}))
	doc.SetStringFormatValidator("email", openapi3.NewCallbackValidator(func(v string) error {
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v {
			return errors.New("not an email address")
		}
		return nil
	}))
	// NewRouter validates the document (OpenAPI 3.1 rules) first.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	// Unknown paths under /api/v1 pass the rate limiter too, so a 429 fits them as well.
	unlisted := map[int]string{404: "NotFound", 405: "MethodNotAllowed", 429: "RateLimited"}
	route := func(statuses map[int]string) *routers.Route {
		responses := openapi3.NewResponses()
		responses.Delete("default")
		for status, name := range statuses {
			ref := doc.Components.Responses[name]
			if ref == nil {
				t.Fatalf("docs/openapi.yaml: components/responses/%s missing", name)
			}
			responses.Set(fmt.Sprint(status), ref)
		}
		return &routers.Route{Spec: doc, Path: "(unmatched)", Method: "*", Operation: &openapi3.Operation{Responses: responses}}
	}
	s := &spec{doc: doc, router: router, unmatched: route(unlisted)}
	unlisted[204] = "Preflight"
	s.options = route(unlisted)
	return s
}

// bearerPresent satisfies the bearerAuth scheme when an Authorization: Bearer
// header is present; whether the token is good is the server's business.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if h := in.RequestValidationInput.Request.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return nil
	}
	return errors.New("no bearer token")
}

// check validates r (whose body was body) and the response rec gave to it.
// It fails t when the response does not match the description, or when the
// description rejects the request but the server accepted it.
func (s *spec) check(t testing.TB, r *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	s.validated.Add(1)
	ctx := context.Background()
	vr := r.Clone(ctx)
	vr.Body = io.NopCloser(bytes.NewReader(body))
	vr.ContentLength = int64(len(body))
	opts := &openapi3filter.Options{
		AuthenticationFunc:    bearerPresent,
		SkipSettingDefaults:   true,
		IncludeResponseStatus: true,
		MultiError:            true,
		// The uuid and email formats defined in newSpec.
		SchemaValidationOptions: s.doc.GetSchemaValidationOptions(),
	}
	// An X-Request-ID the description's pattern refuses is replaced by the
	// server, not refused (CONTRACT §3; components/parameters/RequestID):
	// the response must carry another, and the request is validated
	// without it.
	if id := vr.Header.Get("X-Request-ID"); id != "" && !middleware.ValidRequestID(id) {
		if rec.Header().Get("X-Request-ID") == id {
			t.Errorf("%s %s: the invalid X-Request-ID %.40q was kept", r.Method, r.URL, id)
		}
		vr.Header.Del("X-Request-ID")
	}
	route, params, routeErr := s.router.FindRoute(vr)
	if routeErr == nil && strings.HasSuffix(vr.URL.Path, "/") != strings.HasSuffix(route.Path, "/") {
		// The router ignores a trailing slash; ServeMux (rightly) does not.
		routeErr = fmt.Errorf("%s is not %s", vr.URL.Path, route.Path)
	}
	if routeErr != nil {
		route, params = s.unmatched, nil
		if vr.Method == http.MethodOptions {
			route = s.options
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	var reqErr error
	if routeErr == nil {
		reqErr = openapi3filter.ValidateRequest(ctx, in)
	}
	res := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Result().Header,
		Options:                opts,
	}
	res.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, res); err != nil {
		where := route.Method + " " + route.Path
		if routeErr != nil {
			where = "not listed: " + routeErr.Error() + "; only the 404/405/429 (and for OPTIONS the 204 Preflight) of components/responses fit"
		}
		t.Errorf("%s %s → %d does not match docs/openapi.yaml (%s): %v\nbody: %s", r.Method, r.URL, rec.Code, where, err, rec.Body)
		return
	}
	if reqErr != nil && rec.Code < 400 {
		t.Errorf("%s %s: docs/openapi.yaml rejects the request (%v) but the server answered %d", r.Method, r.URL, reqErr, rec.Code)
	}
}

// serve runs r through h and validates the exchange.
func (s *spec) serve(t testing.TB, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			t.Fatal(err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	s.check(t, r, body, rec)
	return rec
}

// recordTB collects what spec.check reports instead of failing the test.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The validator is only worth something if it notices drift: each of these
// responses breaks the description in one way.
func TestSpecCatchesDrift(t *testing.T) {
	s := newSpec(t)
	const rid = "0123456789abcdef0123456789abcdef"
	env := func(code string) string {
		return `{"error":{"code":"` + code + `","message":"m","request_id":"` + rid + `","details":null}}`
	}
	user := `{"id":"0190b8a2-3c5e-7d2a-9f1e-2b3c4d5e6f70","email":"a@example.com","full_name":null,"is_active":true,"is_superuser":false,"created_at":"2026-01-02T03:04:05Z"}`
	id := "/api/v1/users/0190b8a2-3c5e-7d2a-9f1e-2b3c4d5e6f70"
	cases := []struct {
		name, method, path string
		reqBody            string
		status             int
		header             map[string]string
		body               string
		want               string // in the failure; "" = must pass
	}{
		{"valid user", "GET", id, "", 200, nil, user, ""},
		{"valid unknown path", "GET", "/x", "", 404, nil, env("not_found"), ""},
		{"extra field in UserPublic", "GET", id, "", 200, nil, strings.Replace(user, `"is_active"`, `"password":"x","is_active"`, 1), "password"},
		{"id not a uuid", "GET", id, "", 200, nil, strings.Replace(user, "0190b8a2-", "zzz-", 1), "uuid"},
		{"created_at not a date-time", "GET", id, "", 200, nil, strings.Replace(user, "2026-01-02T03:04:05Z", "yesterday", 1), "date-time"},
		{"undocumented status", "GET", id, "", 418, nil, env("im_a_teapot"), "status is not supported"},
		{"wrong code for the status", "GET", id, "", 404, nil, env("forbidden"), "not_found"},
		{"details not null outside 422", "GET", id, "", 403, nil, strings.Replace(env("forbidden"), `"details":null`, `"details":{}`, 1), "details"},
		{"401 without WWW-Authenticate", "GET", "/api/v1/users/me", "", 401, map[string]string{"WWW-Authenticate": ""}, env("unauthorized"), "WWW-Authenticate"},
		{"no X-Request-ID", "GET", "/health", "", 200, map[string]string{"X-Request-ID": ""}, `{"status":"ok"}`, "X-Request-ID"},
		{"unknown path answered 200", "GET", "/x", "", 200, nil, `{"status":"ok"}`, "status is not supported"},
		{"405 without Allow", "POST", "/health", "", 405, nil, env("method_not_allowed"), "Allow"},
		{"429 without Retry-After", "GET", id, "", 429, map[string]string{"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}, env("rate_limited"), "Retry-After"},
		{"spec rejects the request, server accepts it", "POST", "/api/v1/users", `{"email":"x@example.com","password":"short"}`, 201,
			map[string]string{"Location": "/api/v1/users/0190b8a2-3c5e-7d2a-9f1e-2b3c4d5e6f70"}, user, "rejects the request"},
		{"health is never rate limited", "GET", "/health", "", 429, nil, env("rate_limited"), "status is not supported"},
		{"control character in full_name", "GET", id, "", 200, nil, strings.Replace(user, `"full_name":null`, `"full_name":"a\nb"`, 1), "pattern"},
		{"more field errors than maxItems", "POST", "/api/v1/users", `{}`, 422, nil, `{"error":{"code":"validation_error","message":"m","request_id":"` + rid +
			`","details":{"errors":[` + strings.Repeat(`{"field":"f","message":"m"},`, 10) + `{"field":"f","message":"m"}]}}}`, "maxItems"},
		{"CORS exposes another list", "GET", "/health", "", 200, map[string]string{"Access-Control-Expose-Headers": "X-Request-Id"}, `{"status":"ok"}`, "Access-Control-Expose-Headers"},
		{"CORS origin with a path", "GET", "/health", "", 200, map[string]string{"Access-Control-Allow-Origin": "https://a.example/x"}, `{"status":"ok"}`, "Access-Control-Allow-Origin"},
		{"valid preflight", "OPTIONS", "/api/v1/users", "", 204, map[string]string{"Content-Type": "", "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			"Access-Control-Allow-Origin": "https://a.example", "Access-Control-Allow-Methods": "POST", "Access-Control-Max-Age": "600"}, "", ""},
		{"preflight answered 200", "OPTIONS", "/api/v1/users", "", 200, nil, "", "status is not supported"},
		{"preflight without Vary", "OPTIONS", "/api/v1/users", "", 204, map[string]string{"Content-Type": ""}, "", "Vary"},
		{"503 with a Retry-After of 0", "GET", id, "", 503, map[string]string{"Retry-After": "0"}, env("service_unavailable"), "Retry-After"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.reqBody))
			r.Header.Set("Authorization", "Bearer x")
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			rec.Header().Set("X-Request-ID", rid)
			if c.status == 401 {
				rec.Header().Set("WWW-Authenticate", "Bearer")
			}
			for k, v := range c.header {
				if v == "" {
					rec.Header().Del(k)
				} else {
					rec.Header().Set(k, v)
				}
			}
			rec.WriteHeader(c.status)
			rec.WriteString(c.body)
			tb := &recordTB{TB: t}
			s.check(tb, r, []byte(c.reqBody), rec)
			got := strings.Join(tb.errs, "\n")
			switch {
			case c.want == "" && got != "":
				t.Fatalf("unexpected failure: %s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Fatalf("failure %q does not mention %q", got, c.want)
			}
		})
	}
}
