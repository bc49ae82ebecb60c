// Package memory holds in-process implementations of the stores the service
// consumes: the user store used when DATABASE_URL is unset, and the rate-limit
// and cache backends used when REDIS_URL is unset. They are correct for one
// instance only: nothing is shared between processes or kept across restarts.
package memory
