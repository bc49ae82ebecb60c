package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// meta is the export metadata. Tail is null with --in, and Service too
// unless --service filtered the saved log. other_service counts the lines of
// other services that --in with --service skipped.
type meta struct {
	Source      string  `json:"source"`
	Service     *string `json:"service"`
	Tail        *int    `json:"tail"`
	Format      string  `json:"format"`
	GeneratedAt string  `json:"generated_at"`
	LinesRead   int64   `json:"lines_read"`
	Parsed      int64   `json:"parsed"`
	Dropped     int64   `json:"dropped"`
	Blank       int64   `json:"blank"`
	TooLong     int64   `json:"too_long"`
	OtherSvc    int64   `json:"other_service"`
}

// run is the whole program: it parses args, exports, and returns the exit
// code. Errors are reported on stderr as one "logexport: ..." line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	m, err := export(ctx, cfg, stdin, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "logexport: %s\n", oneLine(err.Error()))
		return exitError
	}
	line, _ := json.Marshal(m)
	fmt.Fprintf(stderr, "logexport: meta %s\n", line)
	return exitOK
}

func export(ctx context.Context, cfg config, stdin io.Reader, stdout io.Writer) (m meta, err error) {
	m = meta{Format: cfg.format, GeneratedAt: time.Now().UTC().Format(time.RFC3339)}

	out, err := openOutput(cfg.out, stdout)
	if err != nil {
		return m, err
	}
	defer func() {
		if cerr := out.finish(err == nil); err == nil {
			err = cerr
		}
	}()
	x := &extractor{}
	if cfg.droppedOut != "" {
		d, derr := openOutput(cfg.droppedOut, stdout)
		if derr != nil {
			return m, derr
		}
		defer func() {
			if cerr := d.finish(err == nil); err == nil {
				err = cerr
			}
		}()
		x.dropped = d.w
	}

	var sp *spool
	if cfg.format == "ndjson" {
		x.emit = func(rec []byte) error {
			if _, err := out.w.Write(rec); err != nil {
				return err
			}
			return out.w.WriteByte('\n')
		}
	} else {
		sp = &spool{limit: spoolMemLimit}
		defer sp.close()
		x.emit = func(rec []byte) error {
			if x.c.Parsed > 1 {
				if _, err := sp.Write([]byte(",\n")); err != nil {
					return err
				}
			}
			if _, err := sp.Write([]byte("    ")); err != nil {
				return err
			}
			_, err := sp.Write(rec)
			return err
		}
	}

	if cfg.useIn {
		if cfg.filterService {
			m.Service = &cfg.service
			x.service = cfg.service
		}
		m.Source = cfg.in
		if cfg.in == "-" {
			m.Source = "stdin"
		}
		if err := readInput(ctx, cfg.in, stdin, x); err != nil {
			return m, err
		}
	} else {
		m.Service, m.Tail = &cfg.service, &cfg.tail
		argv := append(splitCommand(cfg.composeCmd), "logs", "--no-color", "--tail", strconv.Itoa(cfg.tail), cfg.service)
		m.Source = strings.Join(argv, " ")
		if err := runCompose(ctx, argv, x); err != nil {
			return m, err
		}
	}
	m.LinesRead, m.Parsed, m.Dropped, m.Blank, m.TooLong, m.OtherSvc = x.c.LinesRead, x.c.Parsed, x.c.Dropped, x.c.Blank, x.c.TooLong, x.c.OtherService

	if sp != nil {
		return m, writeArray(out.w, m, sp)
	}
	return m, nil
}

func readInput(ctx context.Context, name string, stdin io.Reader, x *extractor) error {
	if name == "-" {
		if err := x.consume(ctxReader{ctx, stdin}); err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := x.consume(ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// runCompose runs argv and feeds its stdout to x. A non-zero exit is an
// error that quotes the last line compose wrote to stderr.
func runCompose(ctx context.Context, argv []string, x *extractor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := strings.Join(argv, " ")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	errTail := &tailBuffer{max: 4096}
	cmd.Stderr = errTail
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cerr := x.consume(pipe)
	if cerr != nil {
		cancel() // stop compose; its exit status no longer matters
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil && cerr == nil:
		return fmt.Errorf("%s: %w", name, context.Cause(ctx))
	case cerr != nil:
		return cerr
	case werr != nil:
		if last := errTail.lastLine(); last != "" {
			return fmt.Errorf("%s: %v: %s", name, werr, last)
		}
		return fmt.Errorf("%s: %w", name, werr)
	}
	return nil
}

// writeArray writes {"meta":{...},"records":[...]} with the records taken
// from the spool.
func writeArray(w *bufio.Writer, m meta, sp *spool) error {
	var mb bytes.Buffer
	enc := json.NewEncoder(&mb)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	w.WriteString("{\n  \"meta\": ")
	w.Write(bytes.TrimSuffix(mb.Bytes(), []byte("\n")))
	if m.Parsed == 0 {
		_, err := w.WriteString(",\n  \"records\": []\n}\n")
		return err
	}
	w.WriteString(",\n  \"records\": [\n")
	if err := sp.copyTo(w); err != nil {
		return err
	}
	_, err := w.WriteString("\n  ]\n}\n")
	return err
}

// output is a buffered destination. A file is written to a temporary name in
// the same directory and renamed into place only on success, so a failed run
// leaves no partial or truncated file behind.
type output struct {
	w    *bufio.Writer
	f    *os.File // temp file, nil for stdout
	path string
}

func openOutput(path string, stdout io.Writer) (*output, error) {
	if path == "-" {
		return &output{w: bufio.NewWriterSize(stdout, 64<<10)}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	return &output{w: bufio.NewWriterSize(f, 64<<10), f: f, path: path}, nil
}

// finish flushes and, for files, commits (ok) or discards (!ok).
func (o *output) finish(ok bool) error {
	if !ok {
		if o.f != nil {
			o.f.Close()
			os.Remove(o.f.Name())
		}
		return nil
	}
	err := o.w.Flush()
	if o.f == nil {
		return err
	}
	if err == nil {
		err = o.f.Chmod(0o644)
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.path)
	}
	if err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

// spoolMemLimit is how many bytes of array records are kept in memory before
// the spool moves to a temporary file. A variable so tests can lower it.
var spoolMemLimit = 8 << 20

// spool holds array-mode records until the counts for meta are known: in
// memory up to limit bytes, then in a temporary file.
type spool struct {
	limit int
	mem   bytes.Buffer
	f     *os.File
	fw    *bufio.Writer
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) > s.limit {
		f, err := os.CreateTemp("", "logexport-*.spool")
		if err != nil {
			return 0, err
		}
		s.f, s.fw = f, bufio.NewWriterSize(f, 64<<10)
		if _, err := s.mem.WriteTo(s.fw); err != nil {
			return 0, err
		}
	}
	if s.f != nil {
		return s.fw.Write(p)
	}
	return s.mem.Write(p)
}

func (s *spool) copyTo(w io.Writer) error {
	if s.f == nil {
		_, err := s.mem.WriteTo(w)
		return err
	}
	if err := s.fw.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, s.f)
	return err
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// splitCommand splits a command line on white space (no quoting).
func splitCommand(s string) []string { return strings.Fields(s) }

// oneLine collapses line breaks so an error is reported on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}
