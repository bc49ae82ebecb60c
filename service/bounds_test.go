package service_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/getkin/kin-openapi/openapi3"
)

// The bounds drift test: every bound on an input in docs/openapi.yaml is read
// from the description, compared with the Go constant the server enforces,
// and proven against the server through the whole chain — one past the bound
// is a 422 naming the field without echoing the value, the bound itself is
// accepted. Every exchange is also validated against the description (e.do).
// Lengths are sent in multi-byte characters where the field allows it, so
// the server is shown to count characters as JSON Schema does, not bytes.
func TestBounds(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			runBounds(t, newEnv(t, newStore(t)))
		})
	}
}

// specDoc reads bounds out of the loaded description.
type specDoc struct {
	t   *testing.T
	doc *openapi3.T
}

func (d specDoc) prop(schema, field string) *openapi3.Schema {
	d.t.Helper()
	s := d.doc.Components.Schemas[schema]
	if s == nil || s.Value.Properties[field] == nil {
		d.t.Fatalf("docs/openapi.yaml: no components/schemas/%s/properties/%s", schema, field)
	}
	return s.Value.Properties[field].Value
}

func (d specDoc) queryParam(path, method, name string) *openapi3.Schema {
	d.t.Helper()
	op := d.doc.Paths.Find(path).GetOperation(method)
	if p := op.Parameters.GetByInAndName("query", name); p != nil {
		return p.Schema.Value
	}
	d.t.Fatalf("docs/openapi.yaml: %s %s has no query parameter %s", method, path, name)
	return nil
}

func (d specDoc) param(name string) *openapi3.Schema {
	d.t.Helper()
	p := d.doc.Components.Parameters[name]
	if p == nil {
		d.t.Fatalf("docs/openapi.yaml: no components/parameters/%s", name)
	}
	return p.Value.Schema.Value
}

func (d specDoc) header(name string) *openapi3.Schema {
	d.t.Helper()
	h := d.doc.Components.Headers[name]
	if h == nil {
		d.t.Fatalf("docs/openapi.yaml: no components/headers/%s", name)
	}
	return h.Value.Schema.Value
}

func maxLen(t *testing.T, where string, s *openapi3.Schema) int {
	t.Helper()
	if s.MaxLength == nil {
		t.Fatalf("docs/openapi.yaml: %s has no maxLength", where)
	}
	return int(*s.MaxLength)
}

func num(t *testing.T, where string, f *float64) int64 {
	t.Helper()
	if f == nil {
		t.Fatalf("docs/openapi.yaml: %s has no bound", where)
	}
	return int64(*f)
}

func same(t *testing.T, what string, spec, code int64) {
	t.Helper()
	if spec != code {
		t.Errorf("%s: docs/openapi.yaml says %d, the server enforces %d", what, spec, code)
	}
}

var boundsSeq atomic.Int64

// emailOfLength is a valid, unique address of exactly n characters (n >= 16).
func emailOfLength(t *testing.T, n int) string {
	t.Helper()
	local := fmt.Sprintf("b%d-%d", time.Now().UnixNano()%1e6, boundsSeq.Add(1))
	rest := n - len(local) - 1 - len("com") // the labels before the TLD, each with its dot
	if rest < 2 {
		t.Fatalf("no email of %d characters", n)
	}
	var b strings.Builder
	b.WriteString(local + "@")
	for rest > 0 {
		seg := min(64, rest) // a label of up to 63 characters and its dot
		if rest-seg == 1 {
			seg--
		}
		b.WriteString(strings.Repeat("d", seg-1) + ".")
		rest -= seg
	}
	b.WriteString("com")
	if b.Len() != n {
		t.Fatalf("email of %d characters, want %d", b.Len(), n)
	}
	return b.String()
}

func jsonBody(kv ...any) string {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// refused asserts a 422 that names field and does not echo value.
func refused(t *testing.T, rec *httptest.ResponseRecorder, field, value string) {
	t.Helper()
	env := checkEnvelope(t, rec, 422, "validation_error")
	fieldIs(field)(t, rec, env)
	if len(value) >= 4 && strings.Contains(rec.Body.String(), value) {
		t.Fatalf("the refused value of %s is echoed: %.200s", field, rec.Body)
	}
}

func runBounds(t *testing.T, e *env) {
	d := specDoc{t: t, doc: e.spec.doc}
	rootID := e.superID
	pw := func(_ *testing.T, n int) string { return strings.Repeat("é", n) } // 2 bytes, 1 character
	name := func(_ *testing.T, n int) string { return strings.Repeat("ü", n) }
	fresh := func() account { return e.signup(emailOfLength(t, 40), "freshpassword") }

	// String lengths: spec bound, Go constant, and the server's answer on
	// each side of each bound.
	type strBound struct {
		where, field string
		min, max     int // from the spec
		goMin, goMax int
		value        func(t *testing.T, n int) string
		// send puts v in the field; it returns the response and the status
		// an accepted value gets.
		send func(t *testing.T, v string) (*httptest.ResponseRecorder, int)
	}
	signupWith := func(kv ...any) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/users", body: jsonBody(kv...)})
	}
	patchAsSuper := func(field, v string) (*httptest.ResponseRecorder, int) {
		u := fresh()
		return e.do(req{method: "PATCH", path: "/api/v1/users/" + u.id, token: e.super, body: jsonBody(field, v)}), 200
	}
	form := func(name, pass string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded",
			body: url.Values{"username": {name}, "password": {pass}}.Encode()})
	}
	loginJSON := func(name, pass string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/auth/login", body: jsonBody("username", name, "password", pass)})
	}
	// loginUser: with a username of length n that belongs to an account
	// when n is within the bound, and a password likewise.
	// loginUser and loginPass send a username or password of the given
	// length; where it can belong to an account it does, and the login
	// succeeds; where none can (one character) the accepted answer is the
	// 401 of any unknown account.
	loginUser := func(login func(string, string) *httptest.ResponseRecorder) func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
		return func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
			if !strings.Contains(v, "@") {
				return login(v, "loginpassword"), 401
			}
			if utf8.RuneCountInString(v) <= service.MaxEmail {
				e.signup(v, "loginpassword")
			}
			return login(v, "loginpassword"), 200
		}
	}
	loginPass := func(login func(string, string) *httptest.ResponseRecorder) func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
		return func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
			email := emailOfLength(t, 30)
			switch n := utf8.RuneCountInString(v); {
			case n < service.MinPassword:
				return login(email, v), 401
			case n <= service.MaxPassword:
				e.signup(email, v)
			}
			return login(email, v), 200
		}
	}
	emailV := func(t *testing.T, n int) string {
		if n < 16 {
			return strings.Repeat("u", n) // too short to be an address: only a login username can be
		}
		return emailOfLength(t, n)
	}
	bounds := []strBound{
		{where: "UserCreate.email", field: "email", goMax: service.MaxEmail, value: emailV,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
				return signupWith("email", v, "password", "whatever123"), 201
			}},
		{where: "UserCreate.password", field: "password", goMin: service.MinPassword, goMax: service.MaxPassword, value: pw,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
				return signupWith("email", emailOfLength(t, 30), "password", v), 201
			}},
		{where: "UserCreate.full_name", field: "full_name", goMax: service.MaxFullName, value: name,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
				return signupWith("email", emailOfLength(t, 30), "password", "whatever123", "full_name", v), 201
			}},
		{where: "UserUpdate.email", field: "email", goMax: service.MaxEmail, value: emailV,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) { return patchAsSuper("email", v) }},
		{where: "UserUpdate.password", field: "password", goMin: service.MinPassword, goMax: service.MaxPassword, value: pw,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) { return patchAsSuper("password", v) }},
		{where: "UserUpdate.full_name", field: "full_name", goMax: service.MaxFullName, value: name,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) { return patchAsSuper("full_name", v) }},
		// current_password: the account's own password when within the
		// bound (so it is accepted however it is checked), sent by the user.
		{where: "UserUpdate.current_password", field: "current_password", goMin: 1, goMax: service.MaxPassword, value: pw,
			send: func(t *testing.T, v string) (*httptest.ResponseRecorder, int) {
				own := "ownpassword"
				if n := utf8.RuneCountInString(v); n >= service.MinPassword && n <= service.MaxPassword {
					own = v
				}
				u := e.signup(emailOfLength(t, 30), own)
				return e.do(req{method: "PATCH", path: "/api/v1/users/" + u.id, token: u.token,
					body: jsonBody("full_name", "x", "current_password", v)}), 200
			}},
		// The login fields refuse only the empty string below ("field required").
		{where: "LoginForm.username", field: "username", goMin: 1, goMax: service.MaxEmail, value: emailV, send: loginUser(form)},
		{where: "LoginForm.password", field: "password", goMin: 1, goMax: service.MaxPassword, value: pw, send: loginPass(form)},
		{where: "LoginJSON.username", field: "username", goMin: 1, goMax: service.MaxEmail, value: emailV, send: loginUser(loginJSON)},
		{where: "LoginJSON.password", field: "password", goMin: 1, goMax: service.MaxPassword, value: pw, send: loginPass(loginJSON)},
	}
	for _, b := range bounds {
		schema, field, _ := strings.Cut(b.where, ".")
		s := d.prop(schema, field)
		b.min, b.max = int(s.MinLength), maxLen(t, b.where, s)
		t.Run(b.where, func(t *testing.T) {
			same(t, b.where+" maxLength", int64(b.max), int64(b.goMax))
			same(t, b.where+" minLength", int64(b.min), int64(b.goMin))
			check := func(n int) {
				t.Helper()
				v := b.value(t, n)
				rec, okStatus := b.send(t, v)
				if n >= b.min && n <= b.max {
					if rec.Code != okStatus {
						t.Fatalf("%d characters (within %d..%d): %d, want %d: %.300s", n, b.min, b.max, rec.Code, okStatus, rec.Body)
					}
					return
				}
				refused(t, rec, b.field, v)
			}
			check(b.max)
			check(b.max + 1)
			if b.min > 0 {
				if b.where != "UserUpdate.current_password" {
					check(b.min) // no account has a 1-character password: that side is not shown
				}
				check(b.min - 1)
			}
		})
	}

	t.Run("full_name refuses control characters", func(t *testing.T) {
		p := d.prop("UserCreate", "full_name").Pattern
		for _, c := range []string{"\x00", "\n", "\x7f", "\u0085"} {
			rec := signupWith("email", emailOfLength(t, 30), "password", "whatever123", "full_name", "a"+c+"b")
			refused(t, rec, "full_name", "")
			if p == "" {
				t.Fatal("UserCreate.full_name has no pattern")
			}
		}
	})

	t.Run("path id", func(t *testing.T) {
		s := d.param("UserID")
		same(t, "UserID maxLength", int64(maxLen(t, "UserID", s)), service.UUIDLength)
		same(t, "UserID minLength", int64(s.MinLength), service.UUIDLength)
		get := func(id string) *httptest.ResponseRecorder {
			return e.do(req{method: "GET", path: "/api/v1/users/" + id, token: e.super})
		}
		if rec := get(rootID); rec.Code != 200 {
			t.Fatalf("%d-character id: %d %s", len(rootID), rec.Code, rec.Body)
		}
		refused(t, get(rootID+"0"), "id", rootID+"0")
		refused(t, get(rootID[:len(rootID)-1]), "id", rootID[:len(rootID)-1])
	})

	t.Run("paging", func(t *testing.T) {
		list := func(q string) *httptest.ResponseRecorder {
			return e.do(req{method: "GET", path: "/api/v1/users?" + q, token: e.super})
		}
		for _, p := range []struct {
			name         string
			goMin, goMax int64
			goDef        int64
		}{{"offset", 0, service.MaxOffset, 0}, {"limit", service.MinLimit, service.MaxLimit, service.DefaultLimit}} {
			s := d.queryParam("/api/v1/users", "GET", p.name)
			lo, hi := num(t, p.name+" minimum", s.Min), num(t, p.name+" maximum", s.Max)
			same(t, p.name+" minimum", lo, p.goMin)
			same(t, p.name+" maximum", hi, p.goMax)
			if def, _ := s.Default.(float64); int64(def) != p.goDef {
				t.Errorf("%s default: docs/openapi.yaml says %v, the server uses %d", p.name, s.Default, p.goDef)
			}
			if s.Format != "int32" || hi > 1<<31-1 {
				t.Errorf("%s: format %q, maximum %d; want an int32", p.name, s.Format, hi)
			}
			for _, n := range []int64{lo, hi} {
				if rec := list(p.name + "=" + strconv.FormatInt(n, 10)); rec.Code != 200 {
					t.Fatalf("%s=%d: %d %s", p.name, n, rec.Code, rec.Body)
				}
			}
			for _, n := range []int64{lo - 1, hi + 1} {
				refused(t, list(p.name+"="+strconv.FormatInt(n, 10)), p.name, "")
			}
		}
		same(t, "UserList.data maxItems", int64(*d.prop("UserList", "data").MaxItems), service.MaxLimit)
	})

	t.Run("X-Request-ID", func(t *testing.T) {
		for _, s := range []*openapi3.Schema{d.param("RequestID"), d.header("X-Request-ID"), d.prop("ErrorEnvelope", "error").Properties["request_id"].Value} {
			same(t, "X-Request-ID maxLength", int64(maxLen(t, "X-Request-ID", s)), middleware.MaxRequestIDLength)
		}
		// Out of bounds it is replaced, not refused (CONTRACT §3).
		keep := strings.Repeat("r", middleware.MaxRequestIDLength)
		if got := e.do(req{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": keep}}).Header().Get("X-Request-ID"); got != keep {
			t.Fatalf("a %d-character id was replaced by %q", len(keep), got)
		}
		long := keep + "r"
		if rec := e.do(req{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": long}}); rec.Code != 200 || rec.Header().Get("X-Request-ID") == long {
			t.Fatalf("a %d-character id: %d, kept %v", len(long), rec.Code, rec.Header().Get("X-Request-ID") == long)
		}
	})

	t.Run("details.errors and field names", func(t *testing.T) {
		same(t, "ValidationDetails.errors maxItems", int64(*d.prop("ValidationDetails", "errors").MaxItems), service.MaxFieldErrors)
		same(t, "FieldError.field maxLength", int64(maxLen(t, "FieldError.field", d.prop("FieldError", "field"))), service.MaxFieldName)
		fields := map[string]any{}
		for i := range 3 * service.MaxFieldErrors {
			fields[fmt.Sprintf("unknown%03d", i)] = i
		}
		fields[strings.Repeat("é", 200)] = 1 // cut at a character boundary
		fields["a\x00b\nc\u0085d\u202e"] = 1 // control characters replaced
		body, _ := json.Marshal(fields)
		rec := e.do(req{method: "PATCH", path: "/api/v1/users/" + rootID, token: e.super, body: string(body)})
		env := checkEnvelope(t, rec, 422, "validation_error")
		var det struct{ Errors []service.FieldError }
		if err := json.Unmarshal(env.Error.Details, &det); err != nil {
			t.Fatal(err)
		}
		if len(det.Errors) != service.MaxFieldErrors {
			t.Fatalf("%d unknown fields: %d errors listed, want %d", len(fields), len(det.Errors), service.MaxFieldErrors)
		}
		if det.Errors[0].Field != "a?b?c?d\u202e" {
			t.Errorf("control characters in a field name: %q", det.Errors[0].Field)
		}
		for _, fe := range det.Errors {
			if len(fe.Field) > service.MaxFieldName || !utf8.ValidString(fe.Field) {
				t.Errorf("field name %q: %d bytes, valid UTF-8 %v", fe.Field, len(fe.Field), utf8.ValidString(fe.Field))
			}
		}
	})

	t.Run("rate-limit headers", func(t *testing.T) {
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Limit-429", "X-RateLimit-Remaining-429"} {
			same(t, h+" maximum", num(t, h, d.header(h).Max), middleware.MaxRateLimit)
		}
		for _, h := range []string{"Retry-After", "Retry-After-503"} {
			same(t, h+" maximum", num(t, h, d.header(h).Max), int64(middleware.MaxRateLimitWindow/time.Second))
		}
	})
}

// The body limit's default, stated in the description, holds on a server
// built with no limit configured: the limit itself is read, one byte more
// is a 413.
func TestBodyLimitBound(t *testing.T) {
	sp := newSpec(t)
	resp := sp.doc.Components.Responses["PayloadTooLarge"]
	n, ok := resp.Value.Extensions["x-default-max-body-bytes"].(float64)
	if !ok {
		t.Fatal("docs/openapi.yaml: components/responses/PayloadTooLarge has no x-default-max-body-bytes")
	}
	same(t, "x-default-max-body-bytes", int64(n), service.DefaultMaxBodyBytes)
	srv := service.NewServer(service.Config{}, service.Deps{
		Logger: slog.New(slog.DiscardHandler), Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
	})
	body := func(size int) string {
		b := `{"email":"big@example.com","password":"whatever123"}`
		return b + strings.Repeat(" ", size-len(b))
	}
	for size, want := range map[int]int{int(n): 201, int(n) + 1: 413} {
		r := httptest.NewRequest("POST", "/api/v1/users", strings.NewReader(body(size)))
		r.Header.Set("Content-Type", "application/json")
		if rec := sp.serve(t, srv, r); rec.Code != want {
			t.Fatalf("%d-byte body: %d, want %d: %.200s", size, rec.Code, want, rec.Body)
		}
	}
}
