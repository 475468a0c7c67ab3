package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// targetConfig is a target in a scenario's config: its name, URL and
// more settings as YAML flow-mapping entries, e.g. "rate_limit: {rps: 200}".
type targetConfig struct{ name, url, extra string }

// relayConfig is the config of a scenario's relay: one source, and one
// route sending every event to every target. store is a YAML flow mapping.
func relayConfig(listen, admin, store string, targets ...targetConfig) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "server:\n  listen: %q\n  admin_listen: %q\n  shutdown_timeout: 10s\nstore: %s\n", listen, admin, store)
	b.WriteString("sources:\n  - name: hoox\n    path: /hooks/hoox\ntargets:\n")
	var names []string
	for _, t := range targets {
		fmt.Fprintf(&b, "  - {name: %s, url: %q", t.name, t.url)
		if t.extra != "" {
			b.WriteString(", " + t.extra)
		}
		b.WriteString("}\n")
		names = append(names, t.name)
	}
	fmt.Fprintf(&b, "routes:\n  - name: everything\n    match: {}\n    targets: [%s]\n", strings.Join(names, ", "))
	return b.Bytes()
}

// storeConfig returns the store of a scenario's relay, as a YAML flow
// mapping, and its name for the report: an embedded file at dbPath, or with
// redisURL, a loopback Redis under a prefix of its own (claims leased for
// lease, so that a killed relay's claims come back within the run).
func storeConfig(redisURL, dbPath string, lease time.Duration) (yaml, name string, err error) {
	if redisURL == "" {
		return fmt.Sprintf("{path: %q}", dbPath), "embedded store, fsync before each ack", nil
	}
	u, err := url.Parse(redisURL)
	if err != nil || !isLoopback(u.Hostname()) {
		return "", "", usagef("--redis %q: want a redis:// URL on a loopback address", redisURL)
	}
	return fmt.Sprintf("{kind: redis, redis: {url: %q, prefix: hooxrelay-bench-%d, lease: %s}}", redisURL, time.Now().UnixNano(), lease),
		"Redis at " + u.Host, nil
}

// localRelay is a relay served in this process until its context ends.
type localRelay struct {
	ingress, admin string
	served         <-chan error
	watch          relayWatch
}

// relayWatch is what a relay's log tells: its delivery attempts and its
// breakers' changes of state. It is safe for concurrent use.
type relayWatch struct {
	attempts atomic.Int64 // "delivery attempt" lines
	opens    atomic.Int64 // breaker changes to open

	mu             sync.Mutex
	attemptsAtOpen int64     // attempts logged before the first opening
	lastClosed     time.Time // last change to closed
}

func (w *relayWatch) breakerChanged(to string) {
	switch to {
	case "open":
		if w.opens.Add(1) == 1 {
			w.mu.Lock()
			w.attemptsAtOpen = w.attempts.Load()
			w.mu.Unlock()
		}
	case "closed":
		w.mu.Lock()
		w.lastClosed = time.Now()
		w.mu.Unlock()
	}
}

// watchHandler feeds a relayWatch from the relay's log records.
type watchHandler struct {
	slog.Handler
	w *relayWatch
}

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "delivery attempt":
		h.w.attempts.Add(1)
	case "breaker state changed":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "to" {
				h.w.breakerChanged(a.Value.String())
				return false
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h *watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &watchHandler{Handler: h.Handler.WithAttrs(as), w: h.w}
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	return &watchHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}

// childRelay is the relay as a process of its own ("BIN serve"), which a
// scenario can SIGKILL and start again on the same config and store.
type childRelay struct {
	bin, dir, cfgPath string
	ingress, admin    string
	cmd               *exec.Cmd
	exited            chan struct{}
	starts            int
}

// relayBinary is the binary run as the child relay: flag, else this one.
func relayBinary(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	bin, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary to run the relay: %w (pass --relay-binary)", err)
	}
	if strings.HasSuffix(bin, ".test") {
		return "", usagef("running inside a test binary: pass --relay-binary")
	}
	return bin, nil
}

// newChildRelay writes a config for the child on two free loopback ports
// in dir; store and targets are as for relayConfig.
func newChildRelay(bin, dir, store string, targets ...targetConfig) (*childRelay, error) {
	c := &childRelay{bin: bin, dir: dir, cfgPath: filepath.Join(dir, "relay.yaml")}
	for _, a := range []*string{&c.ingress, &c.admin} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		*a = ln.Addr().String()
		ln.Close()
	}
	return c, os.WriteFile(c.cfgPath, relayConfig(c.ingress, c.admin, store, targets...), 0o600)
}

// start runs the child and waits until it is ready; its log goes to
// relay-N.log in its directory. It stops with ctx (SIGTERM, then SIGKILL
// after 15s).
func (c *childRelay) start(ctx context.Context) error {
	c.starts++
	logPath := filepath.Join(c.dir, fmt.Sprintf("relay-%d.log", c.starts))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.bin, "serve", "--config", c.cfgPath, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s serve: %w", c.bin, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ready(c.admin) {
			return nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("relay exited at start (%s): %s", cmd.ProcessState, lastLines(log, 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("relay not ready within 30s: %s", lastLines(log, 5))
		}
	}
}

// kill SIGKILLs the child and waits for it to be gone.
func (c *childRelay) kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop asks the child to shut down cleanly and waits; after 15s it kills it.
func (c *childRelay) stop() error {
	if c.cmd == nil {
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		c.kill()
		return fmt.Errorf("relay still running 15s after SIGTERM; killed")
	}
	if !c.cmd.ProcessState.Success() {
		return fmt.Errorf("relay exited with %s after SIGTERM", c.cmd.ProcessState)
	}
	return nil
}

func (c *childRelay) pid() int { return c.cmd.Process.Pid }

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

func ready(admin string) bool {
	resp, err := probeClient.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
