// Package redistest runs a redis-server of a test's own, on a free loopback
// port in a temp dir, for tests of the Redis store and of relays sharing it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/redisproc"
	"github.com/hooxrelay/hooxrelay/internal/testenv"
)

// Server is a redis-server process owned by one test.
type Server struct {
	Addr string // host:port
	t    testing.TB
	proc *redisproc.Proc
}

// Start runs a server until the test ends. With durable set it keeps an
// append-only file fsync'd on every write, so that Stop and Restart lose
// nothing; args are more redis-server settings. Without the binary the
// test fails in CI (CI=true) and is skipped elsewhere, saying how to
// install it.
func Start(t testing.TB, durable bool, args ...string) *Server {
	t.Helper()
	binary(t)
	p, err := redisproc.New(t.TempDir(), durable)
	if err != nil {
		t.Fatal(err)
	}
	p.AddArgs(args...)
	s := &Server{Addr: p.Addr, t: t, proc: p}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server; it is a no-op when it is not running.
func (s *Server) Stop() { s.proc.Kill() }

// Restart starts the server again on the same port and directory and waits
// until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.proc.Start(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func binary(t testing.TB) string {
	t.Helper()
	return testenv.LookPath(t, "redis-server", testenv.InstallRedis)
}

// run starts a redis-server process with args until the test ends and
// waits until addr answers.
func run(t testing.TB, addr, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !redisproc.Ping(addr) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server on %s did not answer within 10s\n%s", addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartSentinel runs a Sentinel that monitors master under the name
// "mymaster" and returns its address.
func StartSentinel(t testing.TB, master *Server) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	_, mport, _ := net.SplitHostPort(master.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor mymaster 127.0.0.1 %s 1\nsentinel down-after-milliseconds mymaster 5000\n",
		port, dir, filepath.Join(dir, "redis.log"), mport)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	run(t, addr, dir, conf, "--sentinel")
	return addr
}

// StartCluster runs a Redis Cluster of three masters and returns their
// addresses once the cluster is up.
func StartCluster(t testing.TB) []string {
	t.Helper()
	cli := testenv.LookPath(t, "redis-cli", testenv.InstallRedis)
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		port := freePort(t)
		addr := "127.0.0.1:" + port
		run(t, addr, dir, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
		addrs = append(addrs, addr)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		for {
			info, _ := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(info), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok within 20s:\n%s", a, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs
}
