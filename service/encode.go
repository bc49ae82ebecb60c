package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// mediaType returns the request's media type ("" when absent or unparseable).
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// readBody reads the whole (size-limited) body and rejects invalid UTF-8,
// which encoding/json would otherwise silently replace.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, &Error{Status: http.StatusBadRequest, Message: "Could not read request body", Err: err}
	}
	if !utf8.Valid(body) {
		return nil, validation(FieldError{Field: "body", Message: "body is not valid UTF-8"})
	}
	return body, nil
}

// decodeJSON decodes a JSON request body into v: 415 unless the content type
// is application/json, 413 over the body limit, 422 for malformed JSON,
// unknown fields, wrong types or trailing data, with the offending field named.
func decodeJSON(r *http.Request, v any) error {
	if mt := mediaType(r); mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return validation(FieldError{Field: "body", Message: "request body is empty"})
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return validation(FieldError{Field: "body", Message: "unexpected data after the JSON value"})
	}
	return nil
}

// jsonError turns a decoding error into a 422 that names the field and never
// echoes a value.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return validation(FieldError{Field: "body", Message: fmt.Sprintf("malformed JSON at offset %d", syntax.Offset)})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return validation(FieldError{Field: "body", Message: "malformed JSON: unexpected end of input"})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return validation(FieldError{Field: "body", Message: "body must be a JSON object"})
		}
		return validation(FieldError{Field: field, Message: "must be of type " + jsonTypeName(typeErr.Type.String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return validation(FieldError{Field: fieldName(name), Message: "unknown field"})
	}
	return validation(FieldError{Field: "body", Message: "malformed JSON"})
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "string"
	case goType == "bool" || goType == "*bool":
		return "boolean"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "float"):
		return "number"
	}
	return "object"
}

// decodeForm parses an application/x-www-form-urlencoded body.
func decodeForm(r *http.Request) (url.Values, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, validation(FieldError{Field: "body", Message: "malformed form body"})
	}
	return vals, nil
}
