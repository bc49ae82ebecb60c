// Package storagetest holds the contract test suites every implementation of
// a store interface must pass, so the memory and the real (Postgres, Redis)
// backends are held to the same behaviour.
package storagetest
