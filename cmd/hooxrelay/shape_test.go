package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// check compiles every template and jq program and reports a broken one
// as FILE:LINE: KEY: PROBLEM, exit 2.
func TestCheckShaping(t *testing.T) {
	const head = "sources: [{name: hoox, path: /hooks/hoox}]\nroutes: [{name: all, targets: [t]}]\ntargets:\n  - name: t\n"
	for _, tc := range []struct {
		name, target string
		line         int
		key, msg     string
	}{
		{"broken jq program", "    url: http://127.0.0.1:9/x\n    request:\n      body: '{id: .job_id'\n", 7, "targets[0].request.body", "jq: unexpected EOF"},
		{"impure jq program", "    url: http://127.0.0.1:9/x\n    request:\n      body: '{id: .job_id, home: env.HOME}'\n", 7, "targets[0].request.body", "env is not allowed"},
		{"unknown placeholder syntax in url", "    url: http://127.0.0.1:9/jobs/{job id}\n", 5, "targets[0].url", "unknown placeholder syntax"},
		{"unknown placeholder syntax in a header", "    url: http://127.0.0.1:9/x\n    request:\n      headers:\n        X-Job: '{.job_id}'\n", 8, "targets[0].request.headers.X-Job", "unknown placeholder syntax"},
		{"form without a program", "    url: http://127.0.0.1:9/x\n    request: {format: form}\n", 6, "targets[0].request.format", "needs a body program"},
		{"unknown auth kind", "    url: http://127.0.0.1:9/x\n    request:\n      auth: {kind: digest}\n", 7, "targets[0].request.auth.kind", "none, basic, bearer or oauth2"},
		{"success out of range", "    url: http://127.0.0.1:9/x\n    success: [200, 2000]\n", 6, "targets[0].success[1]", "from 100 to 599"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempConfig(t, head+tc.target)
			_, stderr, code := runCmd(t, "", "check", "--config", path)
			want := fmt.Sprintf("%s:%d: %s: ", path, tc.line, tc.key)
			if code != 2 || !strings.Contains(stderr, want) || !strings.Contains(stderr, tc.msg) {
				t.Errorf("check: exit %d, stderr:\n%s\nwant exit 2 and a line starting %q with %q", code, stderr, want, tc.msg)
			}
		})
	}
}

// route --requests prints the exact requests of the shipped legacy example.
func TestRouteRequestsGolden(t *testing.T) {
	t.Setenv("BILLING_TOKEN", "example-billing-token")
	t.Setenv("CRM_PASSWORD", "example-crm-password")
	t.Setenv("REPORTS_CLIENT_SECRET", "example-client-secret")
	cfg := "../../deploy/examples/legacy.yaml"
	for _, tc := range []struct{ name, payload string }{
		{"put", `{"task":"video_generate","job_id":"run/0123 b","status":"completed","result":{"video_id":"video_ab","cost":5}}`},
		{"form", `{"task":"avatar_edit","avatar_id":"avtr_abc","look_id":"look_edit_789","status":"error","error":{"code":"GENERATION_FAILED","message":"face not found"}}`},
		{"oauth2", `{"task":"video_export","job_id":"run_0456","status":"completed","result":{"video_id":"video_cd","cost":2}}`},
		{"jq-error", `{"task":"video_export","job_id":"run_9","status":"completed","result":{"cost":"x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCmd(t, tc.payload, "route", "--config", cfg, "--requests", "-")
			if code != 0 {
				t.Fatalf("route --requests: exit %d\n%s", code, stderr)
			}
			for _, secret := range []string{"example-billing-token", "example-crm-password", "example-client-secret"} {
				if strings.Contains(out, secret) {
					t.Errorf("route --requests shows the secret %q", secret)
				}
			}
			golden(t, "route-requests-"+tc.name, out)
		})
	}
}

// check describes how each target's requests are shaped.
func TestCheckLegacyGolden(t *testing.T) {
	t.Setenv("BILLING_TOKEN", "example-billing-token")
	t.Setenv("CRM_PASSWORD", "example-crm-password")
	t.Setenv("REPORTS_CLIENT_SECRET", "example-client-secret")
	out, stderr, code := runCmd(t, "", "check", "--config", "../../deploy/examples/legacy.yaml")
	if code != 0 {
		t.Fatalf("check of legacy.yaml: exit %d\n%s", code, stderr)
	}
	golden(t, "check-legacy", out)
}

// SIGHUP with a changed request block applies to the attempts after it;
// a reloaded file with a broken program is refused and the old shaping
// stays.
func TestReloadShaping(t *testing.T) {
	type got struct{ method, body string }
	var mu sync.Mutex
	var reqs []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Method, string(b)})
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "hooxrelay.yaml")
	write := func(method, body string) {
		target := fmt.Sprintf("  - name: legacy\n    url: %s/jobs/{job_id}\n    request:\n      method: %s\n      body: '%s'\n", srv.URL, method, body)
		if err := os.WriteFile(path, []byte(reloadConfig(ingest, admin, filepath.Join(dir, "relay.db"), target, "  - {name: all, targets: [legacy]}")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(i int, want got) {
		t.Helper()
		if _, err := postWebhook("http://"+ingest+"/hooks/hoox", i); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(reqs)
			var last got
			if n > 0 {
				last = reqs[n-1]
			}
			mu.Unlock()
			if n == i {
				if last != want {
					t.Fatalf("webhook %d reached the target as %s %s, want %s %s", i, last.method, last.body, want.method, want.body)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the target got %d requests within 5s, want %d", n, i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReloads := func(n int, ok bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := adminStatus(t, admin)
			if st.Reloads >= n {
				if st.LastReload.OK != ok {
					t.Fatalf("reload %d: %+v, want ok %v", n, st.LastReload, ok)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no reload %d within 5s of SIGHUP", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	write("PUT", `{v: 1, id: .job_id}`)
	p := startRelay(t, path, ingest, admin)
	deliver(1, got{"PUT", `{"id":"run_1","v":1}`})

	write("PATCH", `{v: 2, id: .job_id}`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitReloads(1, true)
	deliver(2, got{"PATCH", `{"id":"run_2","v":2}`})

	write("PUT", `{v: 3, id: .job_id`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitReloads(2, false)
	deliver(3, got{"PATCH", `{"id":"run_3","v":2}`})
	if !strings.Contains(p.stderr.String(), "targets[0].request.body: jq: unexpected EOF") {
		t.Errorf("the refused reload did not log the broken program:\n%s", p.stderr)
	}
}
