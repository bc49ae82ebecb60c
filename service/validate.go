package service

import (
	"math"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The bounds of every input, in one place. docs/openapi.yaml states the same
// numbers (maxLength, minimum, maxItems, ...), and the bounds drift test
// (service/bounds_test.go) reads them from there and proves the server
// refuses one past each with a 422 naming the field and accepts the bound
// itself. Lengths of strings count characters (code points), as JSON Schema
// does.
const (
	// minPassword and maxPassword bound password (sign-up, PATCH);
	// maxPassword also bounds current_password and the login password: no
	// account can have a longer one, and hashing a megabyte costs.
	minPassword = 8
	maxPassword = 128
	// maxEmail is RFC 5321's limit of a forward path; it also bounds the
	// login username (the email).
	maxEmail = 254
	// maxFullName bounds full_name, which must hold no control character.
	maxFullName = 255
	// uuidLength is the length of a path id (a UUID in its 8-4-4-4-12 form).
	uuidLength = 36
	// List paging: ?offset= and ?limit=.
	maxOffset    = math.MaxInt32
	minLimit     = 1
	maxLimit     = 100
	defaultLimit = 20
	// maxFieldErrors caps the entries of a 422's details.errors, so that a
	// body of a thousand unknown fields is not answered with a thousand
	// entries.
	maxFieldErrors = 10
	// maxFieldName caps (in bytes) an unknown field's name echoed in a 422.
	maxFieldName = 64
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is
// not set (MAX_BODY_BYTES' default).
const DefaultMaxBodyBytes = 1 << 20

// normalizeEmail validates an email address and returns it lower-cased, the
// form in which it is stored and compared. Addresses must be plain ASCII
// local@domain.tld: display names, comments, quoted local parts and non-ASCII
// look-alikes are refused rather than normalised.
func normalizeEmail(email string) (string, *FieldError) {
	bad := &FieldError{Field: "email", Message: "value is not a valid email address"}
	if email == "" || len(email) > maxEmail {
		return "", bad
	}
	for i := 0; i < len(email); i++ {
		if c := email[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == '<' || c == '>' || c == ',' || c == ';' || c == '\\' || c == '[' || c == ']' {
			return "", bad
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", bad
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || strings.Count(email, "@") != 1 ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") {
		return "", bad
	}
	return strings.ToLower(email), nil
}

func validatePassword(pw string) *FieldError {
	return lengthBetween("password", pw, minPassword, maxPassword)
}

// validateFullName refuses more than maxFullName characters and control
// characters (Postgres' text cannot even store NUL: it was a 500; a newline
// in a name is a log-injection vector).
func validateFullName(name *string) *FieldError {
	if name == nil {
		return nil
	}
	if ferr := lengthBetween("full_name", *name, 0, maxFullName); ferr != nil {
		return ferr
	}
	if strings.IndexFunc(*name, unicode.IsControl) >= 0 {
		return &FieldError{Field: "full_name", Message: "must not contain control characters"}
	}
	return nil
}

// lengthBetween checks that v has lo to hi characters.
func lengthBetween(field, v string, lo, hi int) *FieldError {
	if n := utf8.RuneCountInString(v); n < lo || n > hi {
		if lo == 0 {
			return &FieldError{Field: field, Message: "must be at most " + strconv.Itoa(hi) + " characters"}
		}
		return &FieldError{Field: field, Message: "must be " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + " characters"}
	}
	return nil
}

// fieldName is an unknown field's name as a 422 may echo it: control
// characters and invalid UTF-8 replaced by "?", cut to maxFieldName bytes
// on a character boundary.
func fieldName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(name, "?"))
	if len(name) <= maxFieldName {
		return name
	}
	cut := maxFieldName
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}

// collect returns a 422 for the non-nil field errors (the first
// maxFieldErrors of them), or nil.
func collect(errs ...*FieldError) error {
	var out []FieldError
	for _, e := range errs {
		if e != nil && len(out) < maxFieldErrors {
			out = append(out, *e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return validation(out...)
}
