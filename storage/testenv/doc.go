// Package testenv decides what a test does when a service it needs
// (PostgreSQL, Redis, redis-server) is missing: skip with a message on a
// developer's machine, fail under CI. CI is recognised as the CI variable set
// to any true value strconv.ParseBool accepts (true, 1, t, TRUE, ...), as CI
// systems set it.
package testenv
