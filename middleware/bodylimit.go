package middleware

import "net/http"

// BodyLimit caps request bodies at limit bytes. A declared Content-Length over
// the limit is answered 413 at once; a body that grows past it fails the
// handler's read with *http.MaxBytesError, which the handler maps to 413.
func BodyLimit(limit int64, respond ErrorResponder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				respond(w, r, http.StatusRequestEntityTooLarge, "")
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}
