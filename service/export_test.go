package service

// The input bounds, for the bounds drift test (package service_test).
const (
	MinPassword    = minPassword
	MaxPassword    = maxPassword
	MaxEmail       = maxEmail
	MaxFullName    = maxFullName
	UUIDLength     = uuidLength
	MaxOffset      = maxOffset
	MinLimit       = minLimit
	MaxLimit       = maxLimit
	DefaultLimit   = defaultLimit
	MaxFieldErrors = maxFieldErrors
	MaxFieldName   = maxFieldName
)
