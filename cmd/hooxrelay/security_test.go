package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf/tlstest"
)

// The secrets of securityConfig; none may ever show in a log line.
var configSecrets = []string{
	"tok-2f1e9c0b7a", "url-8d3a44e1f0", "hmac-5c7b2e9d11",
	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"whsec_c2Vjb25kLXNlY3JldA==", "c2Vjb25kLXNlY3JldA==",
	"bearer-9e8d7c6b5a", "admin-4a5b6c7d8e",
}

func securityConfig(t *testing.T, ingest, admin, target string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secure.yaml")
	cfg := fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  admin_token: admin-4a5b6c7d8e
  shutdown_timeout: 5s
store:
  path: %q
sources:
  - name: token
    path: /hooks/token
    verify: {kind: token, header: X-Hoox-Token, secrets: [tok-2f1e9c0b7a]}
  - name: url
    path: /hooks/url
    verify: {kind: token, secrets: [url-8d3a44e1f0]}
  - name: hmac
    path: /hooks/hmac
    verify: {kind: hmac-sha256, header: X-Hoox-Signature, secrets: [hmac-5c7b2e9d11]}
  - name: std
    path: /hooks/std
    verify: {kind: standard-webhooks, secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}
targets:
  - name: t
    url: %s
    headers: {Authorization: "Bearer bearer-9e8d7c6b5a"}
    signing_secret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_c2Vjb25kLXNlY3JldA==]
    retry: {initial_interval: 50ms, max_attempts: 2}
routes:
  - name: all
    targets: [t]
`, ingest, admin, filepath.Join(t.TempDir(), "relay"), target)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hooxrelay send --secret signs as each source's kind expects, taking the
// kind and header from the config; a wrong secret is refused.
func TestSendSignsForEachKind(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := securityConfig(t, ingest, admin, target.URL)
	startRelay(t, cfg, ingest, admin)
	for _, tc := range []struct{ path, secret, wrong string }{
		{"/hooks/token", "tok-2f1e9c0b7a", "tok-2f1e9c0b7b"},
		{"/hooks/url", "url-8d3a44e1f0", "url"},
		{"/hooks/hmac", "hmac-5c7b2e9d11", "hmac"},
		{"/hooks/std", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldA=="},
	} {
		url := "http://" + ingest + tc.path
		out, errOut, code := runCmd(t, "", "send", "--url", url, "--secret", tc.secret, "--config", cfg)
		if code != 0 || !strings.Contains(out, `"status":"accepted"`) {
			t.Errorf("send --secret to %s: exit %d\n%s%s", tc.path, code, out, errOut)
		}
		out, _, code = runCmd(t, "", "send", "--url", url, "--secret", tc.wrong, "--config", cfg)
		if code != 1 || !strings.Contains(out, "401") {
			t.Errorf("send with a wrong secret to %s: exit %d\n%s, want 401 and exit 1", tc.path, code, out)
		}
	}
	out, _, code := runCmd(t, "", "send", "--url", "http://"+ingest+"/hooks/hmac", "--secret", "hmac-5c7b2e9d11", "--kind", "hmac-sha256", "--header", "X-Hoox-Signature")
	if code != 0 {
		t.Errorf("send with --kind and --header instead of --config: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCmd(t, "", "send", "--url", "http://"+ingest+"/hooks/hmac", "--secret", "x"); code != 2 || !strings.Contains(errOut, "--kind") {
		t.Errorf("send --secret without a kind: exit %d, %q; want a usage error naming --kind", code, errOut)
	}
}

// A whole run at debug level, with good and bad signatures on every kind,
// deliveries with a secret header and signatures, and a shutdown: no secret
// of the config appears anywhere in the log.
func TestNoSecretInLogs(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Hooxrelay-Attempt") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable) // a retry, and its log lines
		}
	}))
	defer target.Close()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := securityConfig(t, ingest, admin, target.URL)
	p := startRelay(t, cfg, ingest, admin, "--log-level", "debug")
	for i, tc := range []struct{ path, secret string }{
		{"/hooks/token", "tok-2f1e9c0b7a"},
		{"/hooks/url", "url-8d3a44e1f0"},
		{"/hooks/hmac", "hmac-5c7b2e9d11"},
		{"/hooks/std", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	} {
		url := "http://" + ingest + tc.path
		for _, secret := range []string{tc.secret, tc.secret + "x"} {
			body := fmt.Sprintf(`{"task":"video_generate","job_id":"sec_%d_%d","status":"completed"}`, i, len(secret))
			f := filepath.Join(t.TempDir(), "body.json")
			os.WriteFile(f, []byte(body), 0o600)
			runCmd(t, "", "send", "--url", url, "--secret", secret, "--config", cfg, f)
		}
		// The secret in the URL of a refused request, too.
		resp, err := http.Post(url+"?token="+tc.secret, "application/json", strings.NewReader(`{"task":"video_generate"}`))
		if err == nil {
			resp.Body.Close()
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer admin-4a5b6c7d8e")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond) // the retries go out
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()

	log := p.stderr.String()
	if !strings.Contains(log, `"msg":"webhook accepted"`) || !strings.Contains(log, `"reason":"mismatch"`) {
		t.Fatalf("the log lacks the accepted and refused webhooks this test sent; nothing was checked:\n%s", log)
	}
	for _, s := range configSecrets {
		if strings.Contains(log, s) {
			for line := range strings.SplitSeq(log, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("secret %q in a log line: %s", s, line)
				}
			}
		}
	}
}

// SIGHUP makes a running relay serve its renewed certificate, without a
// restart.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, dir)
	ingest, admin := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "tls.yaml")
	cfg := fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  tls: {cert_file: %q, key_file: %q}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets: [{name: t, url: "http://127.0.0.1:1/x"}]
routes: [{name: all, targets: [t]}]
`, ingest, admin, certFile, keyFile, filepath.Join(dir, "relay"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, path, ingest, admin)
	serial := func() string {
		conn, err := tls.Dial("tcp", ingest, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("TLS handshake with the relay: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	newCert, newKey := ca.Server(t, t.TempDir())
	for from, to := range map[string]string{newCert: certFile, newKey: keyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial() == before {
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %s 5s after SIGHUP\n%s", before, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.cmd.ProcessState != nil {
		t.Fatalf("the relay exited on SIGHUP\n%s", p.stderr)
	}
}
