package service

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/docs"
	"github.com/bulwark-go/bulwark/middleware"
)

// Check is one readiness check (CONTRACT §1 /api/v1/health/ready). A nil Func
// reports "disabled".
type Check struct {
	Name    string
	Func    func(ctx context.Context) error
	Timeout time.Duration
}

// Config holds the API's own settings.
type Config struct {
	// MaxBodyBytes caps request bodies (413 above it).
	MaxBodyBytes int64
	// TrustedProxies decides whose X-Forwarded-For is believed.
	TrustedProxies *middleware.TrustedProxies
}

// Deps are the collaborators the API consumes. Logger, Users, Tokens and
// Hasher are required.
type Deps struct {
	Logger *slog.Logger
	Users  UserStore
	Tokens *Tokens
	Hasher PasswordHasher
	// Checks are run by the readiness route, in order.
	Checks []Check
}

// Server is the HTTP API with its middleware chain. It is an http.Handler.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	users    UserStore
	tokens   *Tokens
	hasher   PasswordHasher
	checks   []Check
	draining atomic.Bool
	handler  http.Handler
	// openapi is docs/openapi.yaml as JSON; openapiErr is why it could
	// not be converted (the route then answers 500).
	openapi    []byte
	openapiErr error
}

// NewServer builds the API: the route table of routes.go behind the
// middleware chain (outermost first): request context, access log, panic
// recovery, body limit, router.
func NewServer(cfg Config, deps Deps) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &Server{
		cfg:    cfg,
		logger: deps.Logger,
		users:  deps.Users,
		tokens: deps.Tokens,
		hasher: deps.Hasher,
		checks: deps.Checks,
	}
	s.openapi, s.openapiErr = docs.OpenAPIJSON()
	if s.openapiErr != nil {
		s.logger.Error("OpenAPI description unavailable", "error", s.openapiErr.Error())
	}
	var h http.Handler = s.routes()
	h = middleware.BodyLimit(cfg.MaxBodyBytes, s.respondStatus)(h)
	h = middleware.Recover(s.logger, s.respondStatus)(h)
	h = middleware.AccessLog(s.logger)(h)
	h = middleware.RequestContext(cfg.TrustedProxies)(h)
	s.handler = h
	return s
}

// ServeHTTP serves one request through the whole chain.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes readiness answer 503 from now on; call it first on shutdown so
// load balancers stop sending traffic while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }
