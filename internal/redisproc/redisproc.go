// Package redisproc runs a redis-server process of its own on a free
// loopback port, for the tests of the Redis store (through redistest) and
// for the benchmark scenarios that stop and restart Redis on purpose.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotInstalled says that no redis-server is on the PATH.
var ErrNotInstalled = errors.New("redis-server is not installed (apt-get install redis-server)")

// Proc is one redis-server that can be killed and started again on the
// same port and files. It is not safe for concurrent use.
type Proc struct {
	Addr   string // 127.0.0.1:port
	Dir    string // its files: redis.log, and the append-only file when durable
	bin    string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// New prepares a server in dir (created if missing) on a loopback port that
// is free now. With durable set it keeps an append-only file fsync'd on
// every write, so that Kill and Start lose nothing.
func New(dir string, durable bool) (*Proc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proc{Addr: ln.Addr().String(), Dir: dir, bin: bin}
	ln.Close()
	_, port, _ := net.SplitHostPort(p.Addr)
	p.args = []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log")}
	if durable {
		p.args = append(p.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		p.args = append(p.args, "--appendonly", "no")
	}
	return p, nil
}

// AddArgs adds settings for the next Start, such as "--maxmemory-policy",
// "allkeys-lru".
func (p *Proc) AddArgs(args ...string) { p.args = append(p.args, args...) }

// Start runs the server and waits until it answers PING (at most 10 s).
func (p *Proc) Start(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, p.bin, p.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !Ping(p.Addr) {
		select {
		case <-p.exited:
			return fmt.Errorf("redis-server on %s exited at start:\n%s", p.Addr, p.log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("redis-server on %s did not answer within 10s:\n%s", p.Addr, p.log())
		}
	}
	return nil
}

// Kill SIGKILLs the server and waits until it is gone; it does nothing when
// the server is not running.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

func (p *Proc) log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "redis.log"))
	return string(b)
}

// Ping reports whether a Redis at addr answers PING within a second.
func Ping(addr string) bool {
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
