package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	answer := func(status int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				t.Errorf("health sent %s %s, want GET", r.Method, r.URL)
			}
			if ua := r.UserAgent(); !strings.HasPrefix(ua, "hooxrelay-health/") {
				t.Errorf("health sent User-Agent %q, want hooxrelay-health/<version>", ua)
			}
			if status == http.StatusFound {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs before slow.Close

	ok := answer(http.StatusOK, `{"status":"ok"}`)
	noContent := answer(http.StatusNoContent, "")
	unready := answer(http.StatusServiceUnavailable, "{\"status\":\"unavailable\",\n  \"reason\":\"store: dial tcp: refused\"}\n")
	redirect := answer(http.StatusFound, "")
	refused := "http://" + freeAddr(t) + "/healthz"

	for _, tc := range []struct {
		name       string
		args       []string
		want       int
		stdout     string
		stderr     []string
		noStdout   bool
		maxElapsed time.Duration
	}{
		{name: "200", args: []string{"--url", ok.URL + "/healthz"}, want: 0, stdout: ok.URL + "/healthz: 200 OK\n"},
		{name: "204", args: []string{"--url", noContent.URL + "/readyz"}, want: 0, stdout: "204 No Content"},
		{name: "503", args: []string{"--url", unready.URL + "/readyz"}, want: 1, noStdout: true,
			stderr: []string{"GET " + unready.URL + "/readyz: 503 Service Unavailable: {\"status\":\"unavailable\", \"reason\":\"store: dial tcp: refused\"}\n"}},
		{name: "redirect not followed", args: []string{"--url", redirect.URL}, want: 1, noStdout: true, stderr: []string{"302 Found"}},
		{name: "refused", args: []string{"--url", refused}, want: 1, noStdout: true,
			stderr: []string{"GET " + refused + ": dial tcp", "connection refused", "is hooxrelay serve running"}},
		{name: "timeout", args: []string{"--url", slow.URL, "--timeout", "200ms"}, want: 1, noStdout: true,
			stderr: []string{"no answer within 200ms"}, maxElapsed: 5 * time.Second},
		{name: "not a URL", args: []string{"--url", "127.0.0.1:9090/healthz"}, want: 2, stderr: []string{"want an http:// or https:// URL"}},
		{name: "zero timeout", args: []string{"--timeout", "0s"}, want: 2, stderr: []string{"--timeout must be positive"}},
		{name: "argument", args: []string{ok.URL}, want: 2, stderr: []string{"health takes no arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			stdout, stderr, code := runCmd(t, "", append([]string{"health"}, tc.args...)...)
			if code != tc.want {
				t.Errorf("hooxrelay health %q: exit %d, want %d (stdout %q, stderr %q)", tc.args, code, tc.want, stdout, stderr)
			}
			if tc.stdout != "" && !strings.Contains(stdout, tc.stdout) {
				t.Errorf("hooxrelay health %q: stdout %q, want it to contain %q", tc.args, stdout, tc.stdout)
			}
			if tc.noStdout && stdout != "" {
				t.Errorf("hooxrelay health %q: stdout %q, want nothing", tc.args, stdout)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("hooxrelay health %q: stderr %q, want it to contain %q", tc.args, stderr, want)
				}
			}
			if code == 1 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("hooxrelay health %q: stderr %q, want one line", tc.args, stderr)
			}
			if tc.maxElapsed > 0 && time.Since(start) > tc.maxElapsed {
				t.Errorf("hooxrelay health %q took %s, want under %s", tc.args, time.Since(start), tc.maxElapsed)
			}
		})
	}
}

// The health check of the image works against a real relay: /healthz and
// /readyz both answer 2xx once it is up, and it fails once the relay is gone.
func TestHealthOfARealRelay(t *testing.T) {
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	p := startRelay(t, writeConfig(t, dir, ingest, admin, "http://127.0.0.1:1"), ingest, admin)
	for _, path := range []string{"/healthz", "/readyz"} {
		if out, stderr, code := runCmd(t, "", "health", "--url", "http://"+admin+path); code != 0 {
			t.Errorf("hooxrelay health --url http://%s%s: exit %d (stdout %q, stderr %q), want 0", admin, path, code, out, stderr)
		}
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	if _, stderr, code := runCmd(t, "", "health", "--url", "http://"+admin+"/healthz"); code != 1 || !strings.Contains(stderr, "connection refused") {
		t.Errorf("hooxrelay health after the relay was killed: exit %d, stderr %q; want 1 and connection refused", code, stderr)
	}
}
