package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Target is one prepared GET request and the status that counts as success.
type Target struct {
	Path  string // request target, e.g. /api/v1/users/{id}
	Token string // bearer token; "" for none
	Want  int    // expected status
	raw   []byte // the whole HTTP/1.1 request
}

// NewTarget prepares GET path for host addr with an optional bearer token.
func NewTarget(addr, path, token string, want int) Target {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bulwark-loadtest\r\nAccept: */*\r\n", path, addr)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	return Target{Path: path, Token: token, Want: want, raw: b.Bytes()}
}

// Outcome is one request's result.
type Outcome struct {
	Status int   // 0 when Err is set
	Err    error // transport error: no response
	// Bad names a response that broke an expectation (an unexpected
	// status, a missing header...); "" when fine.
	Bad string
}

// Failed reports whether the outcome counts as an error: no response, or a
// response that broke an expectation.
func (o Outcome) Failed() bool { return o.Err != nil || o.Bad != "" }

// RawClient sends Targets round robin (request seq gets Targets[seq mod
// len]) over one keep-alive HTTP/1.1 connection per worker. Its Do is safe
// for concurrent use by distinct workers; one worker must not call it
// concurrently with itself.
type RawClient struct {
	addr    string
	targets []Target
	timeout time.Duration
	conns   []rawConn
}

type rawConn struct {
	c        net.Conn
	br       *bufio.Reader
	deadline time.Time // when the current deadline was set
	_        [64]byte  // keep workers' state on separate cache lines
}

// NewRawClient prepares a client for workers workers; timeout bounds each
// request (default 10s).
func NewRawClient(addr string, targets []Target, workers int, timeout time.Duration) *RawClient {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &RawClient{addr: addr, targets: targets, timeout: timeout, conns: make([]rawConn, workers)}
}

// Do sends request seq on worker's connection, dialling it when needed.
func (c *RawClient) Do(_ context.Context, worker int, seq int64) Outcome {
	t := &c.targets[seq%int64(len(c.targets))]
	rc := &c.conns[worker]
	if rc.c == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond) // a refused dial must not spin
			return Outcome{Err: err}
		}
		rc.c, rc.br = conn, bufio.NewReaderSize(conn, 16<<10)
		rc.deadline = time.Time{}
	}
	// Moving a deadline costs a runtime timer update; a 1 s granularity is
	// plenty for a 10 s bound.
	if now := time.Now(); now.Sub(rc.deadline) > time.Second {
		_ = rc.c.SetDeadline(now.Add(c.timeout))
		rc.deadline = now
	}
	if _, err := rc.c.Write(t.raw); err != nil {
		rc.close()
		return Outcome{Err: err}
	}
	status, closeConn, err := ReadResponse(rc.br)
	if err != nil {
		rc.close()
		return Outcome{Err: err}
	}
	if closeConn {
		rc.close()
	}
	o := Outcome{Status: status}
	if status != t.Want {
		o.Bad = "status " + strconv.Itoa(status) + ", want " + strconv.Itoa(t.Want)
	}
	return o
}

func (rc *rawConn) close() {
	_ = rc.c.Close()
	rc.c, rc.br = nil, nil
}

// Close closes every connection. Call it once no worker runs.
func (c *RawClient) Close() {
	for i := range c.conns {
		if c.conns[i].c != nil {
			c.conns[i].close()
		}
	}
}

// ErrMalformed is a response ReadResponse cannot parse.
var ErrMalformed = errors.New("malformed HTTP response")

// ReadResponse reads one response: the status, whether the server will
// close the connection, and the body (discarded; Content-Length or chunked).
func ReadResponse(br *bufio.Reader) (status int, closeConn bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, ErrMalformed
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, ErrMalformed
		}
		status = status*10 + int(c-'0')
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
			return 0, false, ErrMalformed
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil || length < 0 {
				return 0, false, ErrMalformed
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
			if perr != nil || size < 0 {
				return 0, false, ErrMalformed
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
