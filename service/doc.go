// Package service is bulwark's HTTP API: the route table, the handlers, the
// error envelope every non-2xx response uses, the user domain types, and the
// interfaces the API consumes (UserStore, PasswordHasher, Cache). Concrete
// stores live in storage/*; cmd/api wires them in.
package service
