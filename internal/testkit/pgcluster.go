package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// PostgresCluster is a private PostgreSQL server that a test starts on a
// free port and may stop and start again, as it never may the shared one.
type PostgresCluster struct {
	t      testing.TB
	bin    string // the directory of initdb and pg_ctl
	dir    string // owned by the server's user: data, socket and log
	port   int
	asUser string // run the binaries as this user ("" for the test's own)
}

// StartPostgresCluster initializes and starts a private cluster, stopped
// and removed when the test ends. It skips the test when no PostgreSQL
// server binaries are installed under /usr/lib/postgresql/*/bin. Since
// PostgreSQL refuses to run as root, a root test runs them as the postgres
// user.
func StartPostgresCluster(t testing.TB) *PostgresCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; skipping the private-cluster test")
	}
	slices.Sort(bins)
	c := &PostgresCluster{t: t, bin: filepath.Dir(bins[len(bins)-1])}

	dir, err := os.MkdirTemp("", "keyward-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asUser = "postgres"
	}
	c.port = freePort(t)
	c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	t.Cleanup(func() {
		_ = c.signal(syscall.SIGCONT) // a frozen cluster cannot stop
		// Immediate: a test that failed mid-way may leave clients connected.
		_ = c.command("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
	})
	c.Start()
	return c
}

func (c *PostgresCluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the cluster's postgres database, as the superuser postgres.
func (c *PostgresCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Start starts the cluster on its port and waits until it accepts
// connections.
func (c *PostgresCluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir)
	c.run("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start")
}

// Stop stops the cluster with a fast shutdown (clients are disconnected,
// open transactions rolled back) and waits until it is down.
func (c *PostgresCluster) Stop() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop")
}

func (c *PostgresCluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if c.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (c *PostgresCluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := c.command(name, args...)
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("%s: %v\n%s\n%s", name, err, out, log)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Freeze stops every process of the cluster with SIGSTOP, so the server
// neither answers nor closes connections: a hung database, as a network
// partition leaves it. Thaw resumes it.
func (c *PostgresCluster) Freeze() {
	c.t.Helper()
	if err := c.signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
}

// Thaw resumes a frozen cluster.
func (c *PostgresCluster) Thaw() {
	c.t.Helper()
	if err := c.signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
}

// signal sends sig to the postmaster and its children.
func (c *PostgresCluster) signal(sig syscall.Signal) error {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("cluster not running: %w", err)
	}
	postmaster, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{postmaster}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ")".
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(postmaster) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	return nil
}
