package service

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/bulwark-go/bulwark/middleware"
)

// route is one row of the route table.
type route struct {
	method  string
	path    string // ServeMux pattern without the method; the "route" tag
	handler http.HandlerFunc
}

// routeTable lists every route of the API (CONTRACT §1), in one place.
func (s *Server) routeTable() []route {
	return []route{
		{http.MethodGet, "/health", s.handleHealth},
		{http.MethodGet, "/api/v1/health/live", s.handleLive},
		{http.MethodGet, "/api/v1/health/ready", s.handleReady},
		{http.MethodPost, "/auth/login", s.handleLogin},
		{http.MethodPost, "/api/v1/users", s.handleCreateUser},
		{http.MethodGet, "/api/v1/users", s.handleListUsers},
		{http.MethodGet, "/api/v1/users/me", s.handleMe},
		{http.MethodGet, "/api/v1/users/{id}", s.handleGetUser},
		{http.MethodPatch, "/api/v1/users/{id}", s.handleUpdateUser},
		{http.MethodDelete, "/api/v1/users/{id}", s.handleDeleteUser},
		{http.MethodGet, "/api/v1/openapi.json", s.handleOpenAPI},
	}
}

// routes registers the table on a ServeMux. Each handler records its route
// for logs, metrics and spans, then passes guard (the authn step and the
// rate limiter), then the body limit, then runs; so a 413 or 429 is tagged
// with its route and carries the X-RateLimit-* headers like any other
// in-scope answer. Anything the table does not
// match lands on the catch-all, which answers the envelope: 405 with Allow
// when the path exists under other methods, else 404. (ServeMux's own 404 and
// 405 are plain text, so they are never reached.)
//
// routeOf returns the route pattern a request's path matches whatever its
// method ("" for none): the route tag of a CORS preflight, which is answered
// before the router.
func (s *Server) routes(guard, bodyLimit func(http.Handler) http.Handler) (router http.Handler, routeOf func(*http.Request) string) {
	mux := http.NewServeMux()
	paths := http.NewServeMux() // method-less patterns: which paths exist at all
	allow := map[string][]string{}
	for _, rt := range s.routeTable() {
		mux.Handle(rt.method+" "+rt.path, withRoute(rt.path, guard(bodyLimit(rt.handler))))
		if _, seen := allow[rt.path]; !seen {
			paths.Handle(rt.path, http.NotFoundHandler())
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
		}
	}
	allowHeader := make(map[string]string, len(allow))
	for p, methods := range allow {
		slices.Sort(methods)
		allowHeader[p] = strings.Join(methods, ", ")
	}
	mux.Handle("/", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p := paths.Handler(r); p != "" {
			w.Header().Set("Allow", allowHeader[p])
			s.respondStatus(w, r, http.StatusMethodNotAllowed, "")
			return
		}
		s.respondStatus(w, r, http.StatusNotFound, "")
	})))
	notFound := guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respondStatus(w, r, http.StatusNotFound, "")
	}))
	// ServeMux answers a path with dot-segments or double slashes with a
	// plain-text redirect to its clean form; no route of the API lives at
	// such a path, so it gets the 404 envelope instead (CONTRACT §2).
	router = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isClean(r) {
			notFound.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	routeOf = func(r *http.Request) string {
		if !isClean(r) {
			return ""
		}
		_, p := paths.Handler(r)
		return p
	}
	return router, routeOf
}

// isClean reports whether r's path is in ServeMux's canonical form.
func isClean(r *http.Request) bool {
	p := r.URL.EscapedPath()
	return p == "" || cleanPath(p) == p
}

// cleanPath is ServeMux's canonical form of a path: rooted, without dot
// segments or repeated slashes, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func withRoute(path string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		middleware.SetRoute(r.Context(), path)
		h.ServeHTTP(w, r)
	})
}
