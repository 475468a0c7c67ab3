package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/spf13/pflag"
)

// scenarioTarget is a target in a scenario's config: its name, URL and
// more settings as YAML flow-mapping entries, e.g. "rate_limit: {rps: 200}".
type scenarioTarget struct{ name, url, extra string }

// scenarioConfig is the config of a scenario's relay: one source, and one
// route sending every event to every target. store is a YAML flow mapping.
func scenarioConfig(listen, admin, store string, targets ...scenarioTarget) []byte {
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

// scenarioStore returns the store of a scenario's relay, as a YAML flow
// mapping, and its name for the report: an embedded file at dbPath, or with
// redisURL, a loopback Redis under a prefix of its own (claims leased for
// lease, so that a killed relay's claims come back within the run).
func scenarioStore(redisURL, dbPath string, lease time.Duration) (yaml, name string, err error) {
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

// redisFlag is the --redis flag of the scenarios that can run on Redis.
func redisFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "redis", "", "run the relay on the Redis at this loopback `URL` (e.g. redis://127.0.0.1:6379/15) instead of the embedded store; keys go under a prefix of their own")
}

// localRelay is a relay served in this process until its context ends.
type localRelay struct {
	ingress, admin string
	served         <-chan error
	watch          relayWatch
}

// startInProcess serves the config in the background, logging JSON to
// logw; wg owns the goroutine.
func startInProcess(ctx context.Context, wg *sync.WaitGroup, yamlText []byte, logw io.Writer) (*localRelay, error) {
	cfg, err := config.Check(yamlText, "bench.yaml")
	if err != nil {
		return nil, fmt.Errorf("bench.yaml: %w", err)
	}
	r := &localRelay{}
	log := slog.New(&watchHandler{Handler: slog.NewJSONHandler(logw, nil), w: &r.watch})
	type addrs struct{ in, admin string }
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	r.served = served
	wg.Add(1)
	go func() {
		defer wg.Done()
		served <- serve(ctx, cfg, "", log, func(in, admin string) { ready <- addrs{in, admin} }, nil)
	}()
	select {
	case a := <-ready:
		r.ingress, r.admin = a.in, a.admin
		return r, nil
	case err := <-served:
		return nil, fmt.Errorf("start the relay: %w", err)
	}
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
// in dir; store and targets are as for scenarioConfig.
func newChildRelay(bin, dir, store string, targets ...scenarioTarget) (*childRelay, error) {
	c := &childRelay{bin: bin, dir: dir, cfgPath: filepath.Join(dir, "relay.yaml")}
	for _, a := range []*string{&c.ingress, &c.admin} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		*a = ln.Addr().String()
		ln.Close()
	}
	return c, os.WriteFile(c.cfgPath, scenarioConfig(c.ingress, c.admin, store, targets...), 0o600)
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

// metricSample is one line of a Prometheus text exposition.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the relay's /metrics.
func scrape(admin string) ([]metricSample, error) {
	resp, err := probeClient.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var out []metricSample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s metricSample
		head, val, ok := cutLast(line, " ")
		if !ok {
			continue
		}
		if s.value, err = strconv.ParseFloat(val, 64); err != nil {
			continue
		}
		name, labels, hasLabels := strings.Cut(head, "{")
		s.name = name
		if hasLabels {
			s.labels = map[string]string{}
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// metricSum adds the samples named name whose labels include want (in
// pairs: key, value).
func metricSum(ms []metricSample, name string, want ...string) float64 {
	var sum float64
next:
	for _, m := range ms {
		if m.name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if m.labels[want[i]] != want[i+1] {
				continue next
			}
		}
		sum += m.value
	}
	return sum
}

// peakRSS reads this process's resident high-water mark (VmHWM), in
// bytes; 0 where /proc is missing.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// procStatus reads VmRSS and RssAnon of a process, in bytes, from
// /proc/PID/status (Linux only; 0 elsewhere).
func procStatus(pid string) (rss, anon int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "RssAnon":
			anon = n << 10
		}
	}
	return rss, anon
}

// report prints a scenario's result, as one indented JSON object when
// asJSON and as its table otherwise, and fails when d lost an acked event.
func report(e *env, asJSON bool, res interface{ table(io.Writer) }, d drainResult) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.table(e.stdout)
	}
	return lostError(d)
}
