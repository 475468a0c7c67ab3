package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// logLines decodes the JSON log lines of a relay's stderr.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// The real binary's JSON log: durations are Go duration strings, a
// delivered attempt has no err key, a breaker opening is a warning and its
// closing is information.
func TestLogLines(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "logs.yaml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `server: {listen: %q, admin_listen: %q, shutdown_timeout: 2s}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets:
  - name: t
    url: %s
    retry: {initial_interval: 50ms, max_interval: 50ms, jitter: 0}
    breaker: {min_requests: 1, failure_ratio: 1, open_timeout: 300ms}
routes: [{name: all, targets: [t]}]
`, ingest, admin, filepath.Join(dir, "relay"), target.URL), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, cfg, ingest, admin)
	if _, err := postWebhook("http://"+ingest+"/hooks/hoox", 1); err != nil {
		t.Fatal(err)
	}
	waitLog := func(what string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, l := range logLines(t, p.stderr.String()) {
				if match(l) {
					return l
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the log within 10s:\n%s", what, p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	breaker := func(to string) func(map[string]any) bool {
		return func(l map[string]any) bool { return l["msg"] == "breaker state changed" && l["to"] == to }
	}
	if l := waitLog("breaker opening", breaker("open")); l["level"] != "WARN" {
		t.Errorf("breaker opening logged at %v, want WARN: %v", l["level"], l)
	}
	down.Store(false)
	if l := waitLog("breaker closing", breaker("closed")); l["level"] != "INFO" {
		t.Errorf("breaker closing logged at %v, want INFO: %v", l["level"], l)
	}
	delivered := waitLog("delivered attempt", func(l map[string]any) bool {
		return l["msg"] == "delivery attempt" && l["outcome"] == "delivered"
	})
	if _, ok := delivered["err"]; ok {
		t.Errorf("a delivered attempt's line has an err key: %v", delivered)
	}
	for _, l := range logLines(t, p.stderr.String()) {
		for _, key := range []string{"duration", "timeout"} {
			v, ok := l[key]
			if !ok {
				continue
			}
			if s, isString := v.(string); !isString {
				t.Errorf("%q line: %s is %v, want a Go duration string such as \"1.032ms\"", l["msg"], key, v)
			} else if _, err := time.ParseDuration(s); err != nil {
				t.Errorf("%q line: %s %q is not a duration: %v", l["msg"], key, s, err)
			}
		}
	}
}

// A relay process collects at GOGC=400, unless GOGC says otherwise.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(123))
	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(123); got != gcPercent {
		t.Errorf("without GOGC: the collector's target is %d, want %d", got, gcPercent)
	}
	t.Setenv("GOGC", "50")
	tuneGC()
	if got := debug.SetGCPercent(123); got != 123 {
		t.Errorf("with GOGC set: tuneGC changed the target to %d", got)
	}
}
