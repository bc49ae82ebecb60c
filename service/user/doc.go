// Package user is the user domain: the stored User, the Update a write
// applies, the Store interface the storage packages implement
// (storage/postgres, storage/memory, checked by storage/storagetest), and
// the errors a Store returns. It knows nothing of HTTP: the service package
// turns these into routes, envelopes and the public JSON view (UserPublic),
// and storage depends on this package only, never on the web layer.
package user
