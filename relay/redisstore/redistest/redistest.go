// Package redistest runs a redis-server of a test's own, on a free loopback
// port in a temp dir, for tests of the Redis store and of relays sharing it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server process owned by one test.
type Server struct {
	Addr string // host:port
	t    testing.TB
	bin  string
	dir  string
	args []string
	cmd  *exec.Cmd
}

// Start runs a server until the test ends. With durable set it keeps an
// append-only file fsync'd on every write, so that Stop and Restart lose
// nothing. Without the binary the test is skipped loudly, except in CI
// (CI=true), where it fails.
func Start(t testing.TB, durable bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run installs it with apt-get")
		}
		t.Skip("SKIPPING: redis-server is not installed (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), t: t, bin: bin, dir: t.TempDir()}
	ln.Close()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.args = []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log")}
	if durable {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server; it is a no-op when it is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and directory and waits
// until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pong(s.Addr) {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s did not answer within 10s\n%s", s.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pong(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "+PONG")
}
