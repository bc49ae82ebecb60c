package service

import (
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Limits of user fields.
const (
	minPassword = 8
	maxPassword = 128
	maxEmail    = 254
	maxFullName = 255
)

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
	if n := utf8.RuneCountInString(pw); n < minPassword || n > maxPassword {
		return &FieldError{Field: "password", Message: "must be 8 to 128 characters"}
	}
	return nil
}

func validateFullName(name *string) *FieldError {
	if name != nil && utf8.RuneCountInString(*name) > maxFullName {
		return &FieldError{Field: "full_name", Message: "must be at most 255 characters"}
	}
	return nil
}

// collect returns a 422 for the non-nil field errors, or nil.
func collect(errs ...*FieldError) error {
	var out []FieldError
	for _, e := range errs {
		if e != nil {
			out = append(out, *e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return validation(out...)
}
