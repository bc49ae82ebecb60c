package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is one prepared request and the status that counts as success.
type target struct {
	raw  []byte // the whole HTTP/1.1 request
	want int
}

func newTarget(addr, path, token string, want int) target {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bulwark-loadtest\r\nAccept: */*\r\n", path, addr)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	return target{raw: b.Bytes(), want: want}
}

// load is one measurement: fixed concurrency, for a duration or a number of
// requests, whichever ends first.
type load struct {
	addr        string
	targets     []target // taken round robin, across all connections
	concurrency int
	duration    time.Duration // 0: no time limit
	requests    int64         // 0: no count limit
	keepSamples bool
	done        *atomic.Int64 // completed responses, for progress; may be nil
}

// result of one load.
type result struct {
	requests int64
	errors   int64 // transport errors and unexpected statuses
	statuses map[int]int64
	elapsed  time.Duration
	lat      []time.Duration // sorted
	firstErr string
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.lat)-1))
	return r.lat[i]
}

// run drives the load with a minimal keep-alive HTTP/1.1 client per
// connection: the request bytes are prepared once and each response is
// parsed just enough to find its status and length. It costs the client far
// less CPU than net/http's, which matters when the generator and the server
// share two cores. Every latency is kept and sorted, so percentiles are
// exact.
func (l load) run() *result {
	var next, errs atomic.Int64
	done := l.done
	if done == nil {
		done = new(atomic.Int64)
	}
	var stop atomic.Bool
	var mu sync.Mutex
	res := &result{statuses: map[int]int64{}}
	var wg sync.WaitGroup
	start := time.Now()
	if l.duration > 0 {
		t := time.AfterFunc(l.duration, func() { stop.Store(true) })
		defer t.Stop()
	}
	for range l.concurrency {
		wg.Go(func() {
			statuses := map[int]int64{}
			var lat []time.Duration
			var firstErr string
			var conn net.Conn
			var br *bufio.Reader
			fail := func(err error) {
				errs.Add(1)
				if firstErr == "" {
					firstErr = err.Error()
				}
				if conn != nil {
					_ = conn.Close()
					conn = nil
				}
			}
			for !stop.Load() {
				n := next.Add(1)
				if l.requests > 0 && n > l.requests {
					break
				}
				t := l.targets[(n-1)%int64(len(l.targets))]
				if conn == nil {
					c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
					if err != nil {
						fail(err)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				t0 := time.Now()
				_ = conn.SetDeadline(t0.Add(10 * time.Second))
				if _, err := conn.Write(t.raw); err != nil {
					fail(err)
					continue
				}
				status, closeConn, err := readResponse(br)
				d := time.Since(t0)
				if err != nil {
					fail(err)
					continue
				}
				done.Add(1)
				statuses[status]++
				if l.keepSamples {
					lat = append(lat, d)
				}
				if status != t.want {
					errs.Add(1)
					if firstErr == "" {
						firstErr = fmt.Sprintf("status %d, want %d", status, t.want)
					}
				}
				if closeConn {
					_ = conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				_ = conn.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range statuses {
				res.statuses[k] += v
			}
			res.lat = append(res.lat, lat...)
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests, res.errors = done.Load(), errs.Load()
	slices.Sort(res.lat)
	return res
}

var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one response: the status, whether the server will
// close the connection, and the body (discarded; Content-Length or chunked).
func readResponse(br *bufio.Reader) (status int, closeConn bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errMalformed
	}
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errMalformed
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return 0, false, errMalformed
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			size, perr := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if perr != nil {
				return 0, false, errMalformed
			}
			if _, err = br.Discard(int(size) + 2); err != nil { // data + CRLF
				return 0, false, err
			}
			if size == 0 {
				return status, closeConn, nil // no trailers expected
			}
		}
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, closeConn, err
	default:
		_, err = io.Copy(io.Discard, br)
		return status, true, err
	}
}
