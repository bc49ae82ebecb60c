package service

import (
	"context"
	"net/http"
)

// authResult is the authn step's verdict on a request's bearer token.
type authResult struct {
	claims  Claims
	subject string // claims.UserID as a string, for the limiter's key
	err     error  // why the token was refused; nil when it verified
}

// authCtx carries an authResult as the request's context value for
// authKey{}, allocated together with it (one allocation instead of
// context.WithValue's plus the value's).
type authCtx struct {
	context.Context
	res authResult
}

type authKey struct{}

func (c *authCtx) Value(key any) any {
	if _, ok := key.(authKey); ok {
		return &c.res
	}
	return c.Context.Value(key)
}

// authFrom returns the authn step's verdict for the request in ctx, or nil
// when the request carried no bearer token (or did not pass the step).
func authFrom(ctx context.Context) *authResult {
	a, _ := ctx.Value(authKey{}).(*authResult)
	return a
}

// authn is the chain's one token-verification step (after routing, before
// the rate limiter): a request with an Authorization: Bearer header has its
// token verified once, here, and the verdict put in the request's context
// under a key this package owns. The limiter's identity (identify) and the
// handlers' authentication (authenticate) both read it; nothing verifies a
// token a second time. Requests without a bearer token pass untouched, at
// no cost.
func (s *Server) authn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		c := &authCtx{Context: r.Context()}
		c.res.claims, c.res.err = s.tokens.Verify(tok)
		if c.res.err == nil {
			c.res.subject = c.res.claims.UserID.String()
		}
		next.ServeHTTP(w, r.WithContext(c))
	})
}
