package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one server process under test.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // 127.0.0.1:port
	logPath string
	stderr  bytes.Buffer
	done    chan error
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs argv with env (plus PATH and HOME only, so nothing from
// the caller's environment leaks in) and PORT set, stdout to a file in dir,
// and waits until GET /health answers 200.
func startServer(ctx context.Context, name, dir string, argv []string, env map[string]string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan error, 1)}
	args := argv[1:]
	if len(args) > 0 && args[len(args)-1] == "{addr}" {
		args = append(args[:len(args)-1:len(args)-1], s.addr)
	}
	s.cmd = exec.Command(argv[0], args...)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PORT=" + strconv.Itoa(port)}
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.logPath = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name)+".log")
	f, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	s.cmd.Stdout = f
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("%s exited before serving: %v\n%s", name, err, s.stderr.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		resp, err := client.Get("http://" + s.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				client.CloseIdleConnections()
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not serve /health within 60s: %v\n%s", name, err, s.stderr.String())
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL after 30s); it returns the exit
// error, nil for a clean exit 0.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("did not stop within 30s of SIGTERM; killed")
	}
}

// procStatusKB reads a "<field>: N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// logBytes is the size of the server's stdout file.
func (s *server) logBytes() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}
