package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLineBytes is the longest input line (excluding its line ending) that is
// considered for parsing. Longer lines are dropped, counted in both dropped and
// too_long, and copied to --dropped-out in full without being held in memory.
const maxLineBytes = 1 << 20

// counts are the per-run line statistics reported in meta.
// lines_read = parsed + dropped + blank + other_service.
type counts struct {
	LinesRead    int64
	Parsed       int64
	Dropped      int64
	Blank        int64
	TooLong      int64
	OtherService int64
}

// extractor splits input into lines, strips compose prefixes and keeps the
// lines whose remainder is a JSON object.
type extractor struct {
	// emit receives each kept record, compacted; the slice is only valid
	// during the call.
	emit func(rec []byte) error
	// dropped, if non-nil, receives each dropped line followed by '\n'.
	dropped io.Writer
	// service, when set, keeps only the lines whose compose prefix names
	// that service (a saved multi-service log read with --in); the others
	// are counted in OtherService and neither kept nor dropped.
	service string

	c         counts
	compact   bytes.Buffer
	scratch   []byte
	firstLine bool
	pendingCR bool
}

// consume reads r to EOF, handling every line including an unterminated last
// one. It returns the first read error or emit/dropped write error.
func (x *extractor) consume(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	tooLong, started := false, false
	x.firstLine = true
	for {
		frag, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return err
		}
		final := err != bufio.ErrBufferFull
		if len(frag) > 0 {
			started = true
		}
		if err == nil {
			frag = frag[:len(frag)-1] // the '\n'
		}
		if !tooLong && len(line)+len(frag) > maxLineBytes {
			tooLong = true
			x.pendingCR = false
			if err := x.streamDropped(line, false); err != nil {
				return err
			}
			line = line[:0]
		}
		if tooLong {
			if err := x.streamDropped(frag, final); err != nil {
				return err
			}
		} else {
			line = append(line, frag...)
		}
		if !final {
			continue
		}
		if started {
			if tooLong {
				x.c.LinesRead++
				x.c.Dropped++
				x.c.TooLong++
				if x.dropped != nil {
					if _, err := x.dropped.Write([]byte{'\n'}); err != nil {
						return err
					}
				}
			} else if err := x.handle(line); err != nil {
				return err
			}
			x.firstLine = false
		}
		if err == io.EOF {
			return nil
		}
		line, tooLong, started = line[:0], false, false
	}
}

// streamDropped copies a fragment of an over-long line to the dropped writer.
// A '\r' at the end of a fragment is held back until it is known not to be
// the CR of a final CRLF.
func (x *extractor) streamDropped(frag []byte, final bool) error {
	if x.dropped == nil {
		return nil
	}
	if final && len(frag) == 0 {
		x.pendingCR = false
		return nil
	}
	if x.pendingCR {
		if _, err := x.dropped.Write([]byte{'\r'}); err != nil {
			return err
		}
		x.pendingCR = false
	}
	if n := len(frag); n > 0 && frag[n-1] == '\r' {
		frag = frag[:n-1]
		x.pendingCR = !final
	}
	_, err := x.dropped.Write(frag)
	return err
}

// handle classifies one complete line (without '\n').
func (x *extractor) handle(line []byte) error {
	x.c.LinesRead++
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if x.firstLine {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	if x.service != "" && !x.fromService(line) {
		x.c.OtherService++
		return nil
	}
	rem := x.payload(line)
	if len(rem) == 0 {
		x.c.Blank++
		return nil
	}
	if rem[0] == '{' && utf8.Valid(rem) {
		x.compact.Reset()
		if json.Compact(&x.compact, rem) == nil {
			x.c.Parsed++
			return x.emit(x.compact.Bytes())
		}
	}
	x.c.Dropped++
	if x.dropped == nil {
		return nil
	}
	if _, err := x.dropped.Write(line); err != nil {
		return err
	}
	_, err := x.dropped.Write([]byte{'\n'})
	return err
}

// payload returns the log message of a line: ANSI colour codes removed, the
// compose prefix ("app-1  | ") and a leading RFC 3339 timestamp (as printed
// by "logs --timestamps") stripped, and surrounding white space trimmed.
func (x *extractor) payload(line []byte) []byte {
	if bytes.IndexByte(line, 0x1b) >= 0 {
		x.scratch = stripANSI(x.scratch[:0], line)
		line = x.scratch
	}
	line = bytes.TrimSpace(stripPrefix(line))
	if len(line) > 0 && line[0] != '{' {
		line = stripTimestamp(line)
	}
	return line
}

// fromService reports whether line carries the compose prefix of x.service
// (see prefixName and serviceOf).
func (x *extractor) fromService(line []byte) bool {
	if bytes.IndexByte(line, 0x1b) >= 0 {
		x.scratch = stripANSI(x.scratch[:0], line)
		line = x.scratch
	}
	name, ok := prefixName(line)
	return ok && serviceOf(name, x.service)
}

// prefixName returns the container or service name of a compose log prefix
// ("app-1  | ..." gives "app-1"); ok is false for a line without one.
func prefixName(line []byte) (string, bool) {
	rest := stripPrefix(line)
	if len(rest) == len(line) {
		return "", false
	}
	i := 0
	for i < len(line) && isNameByte(line[i]) {
		i++
	}
	return string(line[:i]), true
}

// serviceOf reports whether a compose prefix name belongs to service: the
// service itself ("app"), a replica ("app-1", "app_1"), or a project's
// container ("bulwark-app-1", "bulwark_app_1").
func serviceOf(name, service string) bool {
	if name == service {
		return true
	}
	for _, sep := range []string{"-", "_"} {
		base, num, ok := cutLast(name, sep)
		if !ok || !allDigits(num) {
			continue
		}
		if base == service || strings.HasSuffix(base, sep+service) {
			return true
		}
	}
	return false
}

func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stripPrefix removes a compose log prefix: a container or service name
// (letters, digits, '.', '_', '-'), optional padding, '|' and one optional
// space. It covers "app-1  | " (compose v2), "app_1  | " (v1),
// "bulwark-app-1  | " and "app  | " for any service.
func stripPrefix(line []byte) []byte {
	i := 0
	for i < len(line) && isNameByte(line[i]) {
		i++
	}
	if i == 0 {
		return line
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) || line[i] != '|' {
		return line
	}
	i++
	if i < len(line) && line[i] == ' ' {
		i++
	}
	return line[i:]
}

func isNameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '_' || b == '-' || b == '.'
}

// stripTimestamp removes a leading RFC 3339 timestamp followed by white
// space, if the first word parses as one.
func stripTimestamp(s []byte) []byte {
	sp := bytes.IndexAny(s, " \t")
	if sp < len("2006-01-02T15:04:05Z") {
		return s
	}
	if _, err := time.Parse(time.RFC3339Nano, string(s[:sp])); err != nil {
		return s
	}
	return bytes.TrimLeft(s[sp:], " \t")
}

// stripANSI appends src to dst without ANSI CSI escape sequences
// (ESC '[' parameters final-byte). A raw ESC cannot occur in valid JSON, so
// this never alters a line that would otherwise be kept.
func stripANSI(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		if src[i] == 0x1b && i+1 < len(src) && src[i+1] == '[' {
			j := i + 2
			for j < len(src) && (src[j] < 0x40 || src[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		dst = append(dst, src[i])
	}
	return dst
}
