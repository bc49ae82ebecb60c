// Package loadgen is the load-generation engine of cmd/loadtest, kept out of
// package main so other harnesses (the reliability suite's overload
// scenario, the compare run) drive servers the same way.
//
// Two load shapes share one request abstraction, a Do function that sends
// request seq on behalf of a worker and returns its Outcome:
//
//   - ClosedLoop: a fixed number of workers, each sending its next request
//     when the previous one has been answered (wrk's model). It measures
//     capacity; past capacity it slows down with the server and so hides
//     overload.
//   - OpenLoop: a constant arrival rate (wrk2's and vegeta's model): request
//     i is due at start + i/Rate whatever happened before, and its latency
//     is counted from that intended send time, so a server that stalls pays
//     for every request it made wait (no coordinated omission). It checks
//     itself: the achieved send rate and the send lag tell whether the
//     generator kept its schedule.
//
// RawClient is a Do for prepared HTTP/1.1 requests over keep-alive
// connections, one per worker, that parses just the status and length of
// each response: far cheaper than net/http's client, which matters when
// the generator shares the cores with the server. Wrk runs Debian's wrk,
// the reference client, with the same Targets.
//
// Process starts a server binary on a free port with a clean environment
// and waits for its health check; ProcCPU reads its user+system CPU time
// (/proc/<pid>/stat, in clock ticks of ClockTick), so server CPU per
// request can be reported whatever the client's speed. Sink is a stand-in
// OTLP/HTTP collector that counts spans.
package loadgen
