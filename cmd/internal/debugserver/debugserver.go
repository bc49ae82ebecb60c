// Package debugserver is the debug listener of bulwark's commands: the
// net/http/pprof profiles, the build information and the effective
// configuration (secrets already redacted by the caller), on a mux and an
// http.Server of its own, so none of it can ever be reached through the
// public listener. net/http/pprof also registers itself on
// http.DefaultServeMux when imported; nothing in bulwark serves that mux.
package debugserver

import (
	"encoding/json"
	"log"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"time"
)

// Info is what the listener shows besides the profiles.
type Info struct {
	// Version is the build's version stamp (main.version).
	Version string
	// Config maps each configuration variable to its value in effect. The
	// caller redacts secrets before handing it over.
	Config map[string]string
}

// Paths served by Handler.
const (
	PathPprof     = "/debug/pprof/"
	PathBuildInfo = "/debug/buildinfo"
	PathConfig    = "/debug/config"
)

// Handler returns the debug mux: PathPprof (index, cmdline, profile,
// symbol, trace and every named profile: heap, goroutine, allocs, block,
// mutex, threadcreate), PathBuildInfo (JSON: version, Go version, module
// path, dependencies and build settings from runtime/debug.ReadBuildInfo)
// and PathConfig (JSON: the version and info.Config). Anything else is 404.
func Handler(info Info) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPprof, pprof.Index) // also serves the named profiles
	mux.HandleFunc("GET "+PathPprof+"cmdline", pprof.Cmdline)
	mux.HandleFunc("GET "+PathPprof+"profile", pprof.Profile)
	mux.HandleFunc("GET "+PathPprof+"symbol", pprof.Symbol)
	mux.HandleFunc("POST "+PathPprof+"symbol", pprof.Symbol)
	mux.HandleFunc("GET "+PathPprof+"trace", pprof.Trace)
	mux.HandleFunc("GET "+PathBuildInfo, func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]any{"version": info.Version}
		if bi, ok := debug.ReadBuildInfo(); ok {
			out["go_version"] = bi.GoVersion
			out["path"] = bi.Path
			out["main"] = bi.Main
			out["deps"] = bi.Deps
			out["settings"] = bi.Settings
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET "+PathConfig, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"version": info.Version, "config": info.Config})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// MaxProfile is the longest CPU profile or execution trace (?seconds=) the
// server's WriteTimeout lets through; net/http/pprof refuses longer ones.
const MaxProfile = 60 * time.Second

// New returns the debug http.Server for h, with its own timeouts: headers
// within 5 s, responses within MaxProfile plus a margin (a CPU profile
// writes only at its end), idle connections closed after a minute. errLog
// receives the server's own errors (nil: the log package's default).
func New(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      MaxProfile + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
}
