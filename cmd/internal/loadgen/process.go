package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
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
	"unsafe"
)

// Process is one server process under test.
type Process struct {
	Name    string
	Addr    string // 127.0.0.1:port
	LogPath string // its stdout
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	done    chan error
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ProcessConfig says how to start a server.
type ProcessConfig struct {
	Name string
	Dir  string   // its stdout goes to Dir/<Name>.log
	Argv []string // in arguments, "{addr}" becomes 127.0.0.1:port and "{port}" the port
	// Env is the whole environment (nothing of the caller's leaks in);
	// PORT is set to the chosen port.
	Env map[string]string
	// Health is the path polled until it answers 200 (default /health).
	Health string
	// Ready, when set, replaces the health poll: the server is up once it
	// returns nil (for servers that do not speak HTTP).
	Ready func(addr string) error
}

// StartProcess starts a server on a free port and waits up to 60s until
// its health path answers 200.
func StartProcess(ctx context.Context, c ProcessConfig) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := &Process{Name: c.Name, Addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan error, 1)}
	args := make([]string, 0, len(c.Argv)-1)
	for _, a := range c.Argv[1:] {
		args = append(args, strings.NewReplacer("{addr}", p.Addr, "{port}", strconv.Itoa(port)).Replace(a))
	}
	p.cmd = exec.Command(c.Argv[0], args...)
	p.cmd.Env = []string{"PORT=" + strconv.Itoa(port)}
	for k, v := range c.Env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.LogPath = filepath.Join(c.Dir, strings.NewReplacer("/", "_", " ", "_").Replace(c.Name)+".log")
	f, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	p.cmd.Stdout = f
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	health := c.Health
	if health == "" {
		health = "/health"
	}
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	ready := c.Ready
	if ready == nil {
		ready = func(addr string) error {
			resp, err := client.Get("http://" + addr + health)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: status %d", health, resp.StatusCode)
			}
			return nil
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("%s exited before serving: %v\n%s", c.Name, err, p.stderr.String())
		case <-ctx.Done():
			_ = p.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		err := ready(p.Addr)
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return nil, fmt.Errorf("%s not ready within 60s: %v\n%s", c.Name, err, p.stderr.String())
		}
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits (SIGKILL after 30s); it returns the exit
// error, nil for a clean exit 0.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("did not stop within 30s of SIGTERM; killed")
	}
}

// Stderr is what the process wrote to stderr so far. Call it after Stop.
func (p *Process) Stderr() string { return p.stderr.String() }

// LogBytes is the size of the process's stdout file.
func (p *Process) LogBytes() int64 {
	fi, err := os.Stat(p.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ProcCPU is the user+system CPU time pid has used, all its threads
// together (utime and stime of /proc/<pid>/stat).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. Field 3 (state) is index 0 there,
	// utime (14) index 11, stime (15) index 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	tick, err := ClockTick()
	if err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * tick, nil
}

// ClockTick is the length of the clock tick /proc reports CPU times in
// (sysconf(_SC_CLK_TCK), usually 100 Hz). It is read from the kernel's
// auxiliary vector of this process (AT_CLKTCK in /proc/self/auxv), which
// is where the C library's sysconf takes it from.
func ClockTick() (time.Duration, error) {
	hz, err := auxv(atClkTck)
	if err != nil {
		return 0, fmt.Errorf("clock ticks per second: %w", err)
	}
	if hz <= 0 || hz > 1e6 {
		return 0, fmt.Errorf("clock ticks per second: implausible AT_CLKTCK %d", hz)
	}
	return time.Second / time.Duration(hz), nil
}

const atClkTck = 17 // AT_CLKTCK, <linux/auxvec.h>

// auxv returns the value of one entry of /proc/self/auxv: pairs of native
// words (type, value), ending with AT_NULL.
func auxv(key uint64) (int64, error) {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 0, err
	}
	w := int(unsafe.Sizeof(uintptr(0)))
	word := func(p []byte) uint64 {
		if w == 4 {
			return uint64(binary.NativeEndian.Uint32(p))
		}
		return binary.NativeEndian.Uint64(p)
	}
	for i := 0; i+2*w <= len(b); i += 2 * w {
		k, v := word(b[i:]), word(b[i+w:])
		if k == 0 {
			break
		}
		if k == key {
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("no entry %d in /proc/self/auxv", key)
}

// SelfCPU is the user+system CPU time this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StatusKB reads a "<field>: N kB" line of /proc/<pid>/status (VmHWM,
// VmRSS...), 0 when absent.
func StatusKB(pid int, field string) int64 {
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

// LoadAvg is the 1, 5 and 15 minute load averages ("?" when unknown).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
