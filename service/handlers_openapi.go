package service

import (
	"net/http"
)

// handleOpenAPI serves docs/openapi.yaml as JSON, converted once in
// NewServer.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	if s.openapiErr != nil {
		s.respondError(w, r, s.openapiErr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openapi)
}
