// Command api runs the bulwark HTTP service. It reads its configuration from
// the environment (see env.example), wires the concrete stores into the
// service, serves on PORT and shuts down gracefully on SIGTERM/SIGINT:
// readiness turns 503 at once, in-flight requests finish, telemetry is
// flushed, pools close, and the process exits 0.
package main
