// Package service is bulwark's HTTP API: the route table, the handlers, the
// error envelope every non-2xx response uses, the user domain types, the
// abuse defences that need the domain (the authn step, the password-hashing
// gate, the login and sign-up limiters, the fenced user cache), and the
// interfaces the API consumes (user.Store, PasswordHasher, Cache,
// CredentialRateStore). Concrete stores live in storage/*; cmd/api wires
// them in.
package service
