//go:build reliability

package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
)

// pgCluster is a throw-away PostgreSQL cluster made with the distribution's
// initdb and pg_ctl, on a free port, that a test can stop and start.
type pgCluster struct {
	t      *testing.T
	bin    string // directory of initdb, pg_ctl
	dir    string // data directory
	sock   string // unix socket directory
	port   int
	asUser string // run the binaries as this user (initdb refuses root)
}

// findPGBin returns the directory holding initdb and pg_ctl: PG_BIN, then
// the Debian layout /usr/lib/postgresql/*/bin (newest first), then PATH.
func findPGBin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil // the newest (lexical order; fine for 10..99)
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("initdb not found (set PG_BIN): %w", err)
	}
	return filepath.Dir(p), nil
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bin, err := findPGBin()
	if err != nil {
		pgtest.Unavailable(t, "PostgreSQL server binaries", err)
	}
	c := &pgCluster{t: t, bin: bin, port: freePort(t)}
	root, err := os.MkdirTemp("", "bulwark-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	c.dir, c.sock = filepath.Join(root, "data"), filepath.Join(root, "sock")
	if err := os.MkdirAll(c.sock, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			pgtest.Unavailable(t, "a postgres system user to run initdb as (running as root)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{root, c.sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		c.asUser = "postgres"
	}
	c.run("initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	c.start()
	t.Cleanup(func() { c.stopMode("immediate", true) })
	return c
}

// run runs one of the cluster binaries (as the postgres user when root).
func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	if err := c.tryRun(name, args...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *pgCluster) tryRun(name string, args ...string) error {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

// URL is the connection URL of the cluster's postgres database.
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.port, c.sock)
	c.run("pg_ctl", "-D", c.dir, "-o", opts, "-l", filepath.Join(c.sock, "..", "pg.log"), "-w", "-t", "60", "start")
}

// stop stops the cluster: "immediate" is a crash as far as clients are
// concerned (connections cut, no checkpoint, WAL replay at the next start).
func (c *pgCluster) stop(mode string) { c.stopMode(mode, false) }

func (c *pgCluster) stopMode(mode string, quiet bool) {
	err := c.tryRun("pg_ctl", "-D", c.dir, "-m", mode, "-w", "-t", "30", "stop")
	if err != nil && !quiet {
		c.t.Fatal(err)
	}
	if quiet {
		time.Sleep(10 * time.Millisecond)
	}
}
