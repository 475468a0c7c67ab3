package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sinkCmd runs "hooxrelay sink ARGS" until the test ends and returns what
// it prints; it waits until the sink listens.
func sinkCmd(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out, errOut := new(syncBuffer), new(syncBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"sink"}, args...), strings.NewReader(""), out, errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink %q: %v\n%s", args, err, errOut)
		}
	})
	waitFor(t, func() bool { return strings.Contains(errOut.String(), "listening on") }, "the sink to listen: "+errOut.String())
	return out
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: the condition is what is tested, not how fast it comes.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

// A relay signs its deliveries; a sink with --verify-secret says whether
// each signature holds, and --verbose shows what the target received.
func TestSinkVerboseAndVerifySecret(t *testing.T) {
	const secret, other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldA=="
	right, wrong := freeAddr(t), freeAddr(t)
	verbose := sinkCmd(t, "--listen", right, "--verbose", "--verify-secret", secret, "--name", "right")
	t.Setenv("HOOXRELAY_SINK_SECRET", other)
	quiet := sinkCmd(t, "--listen", wrong, "--name", "wrong")

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	cfg := fmt.Sprintf(`server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets:
  - {name: right, url: "http://%s/hook", signing_secret: %q, headers: {X-Team: media}}
  - {name: wrong, url: "http://%s/hook", signing_secret: %q}
routes: [{name: all, targets: [right, wrong]}]
`, filepath.Join(t.TempDir(), "r"), right, secret, wrong, secret)
	ingress, _, err := startLocal(ctx, &wg, []byte(cfg), "sink-test.yaml", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"task":"video_generate","job_id":"run_sink","status":"completed"}`
	if status, ans, err := post(ctx, "http://"+ingress+"/hooks/hoox", body); err != nil || status != 200 {
		t.Fatalf("post: %d %+v %v", status, ans, err)
	}
	waitFor(t, func() bool { return strings.Contains(verbose.String(), body) }, "the delivery to the verbose sink")
	waitFor(t, func() bool { return strings.Contains(quiet.String(), "webhook-id=") }, "the delivery to the other sink")

	got := verbose.String()
	for _, want := range []string{" right POST 200 webhook-id=evt_", " task=video_generate attempt=1 ", " signature=valid\n",
		"  POST /hook\n", "  Hooxrelay-Task: video_generate\n", "  Webhook-Signature: v1,", "  X-Team: media\n", "\n  " + body + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("sink --verbose --verify-secret printed\n%s\nwithout %q", got, want)
		}
	}
	got = quiet.String()
	if !strings.Contains(got, " signature=invalid (mismatch: ") || strings.Contains(got, body) || strings.Count(got, "\n") != 1 {
		t.Errorf("sink with HOOXRELAY_SINK_SECRET set to another secret printed\n%s\nwant one line with signature=invalid (mismatch: ...)", got)
	}

	if _, stderr, code := runCmd(t, "", "sink", "--verify-secret", "whsec_!!"); code != 2 || !strings.Contains(stderr, "--verify-secret: must be \"whsec_<base64>\"") {
		t.Errorf("sink with a bad --verify-secret: exit %d, %q", code, stderr)
	}
}

// send says which flag is missing, and with --config it reads only the
// source it signs for: the rest of the file may use variables that are
// not set.
func TestSendFlagsAndConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--secret", "s"}, "--secret needs --kind (token, hmac-sha256 or standard-webhooks), or --config"},
		{[]string{"--secret", "s", "--kind", "hmac-sha256"}, "--kind hmac-sha256 needs --header, the header the source reads the signature from"},
		{[]string{"--secret", "s", "--kind", "hmac"}, `--kind "hmac": want token, hmac-sha256 or standard-webhooks`},
	} {
		args := append([]string{"send", "--url", "http://127.0.0.1:1/hooks/x"}, tc.args...)
		if _, stderr, code := runCmd(t, "", args...); code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("hooxrelay %q: exit %d, stderr %q; want exit 2 and %q", args, code, stderr, tc.msg)
		}
	}

	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "relay.yaml")
	os.WriteFile(cfg, []byte(`server: {admin_token: "${HOOXTEST_UNSET_ADMIN}"}
store: {kind: redis, redis: {url: "${HOOXTEST_UNSET_REDIS}"}}
sources:
  - {name: other, path: /hooks/other, verify: {kind: token, header: "${HOOXTEST_UNSET_HEADER}", secrets: ["${HOOXTEST_UNSET_A}"]}}
  - {name: hoox, path: /hooks/hoox, verify: {kind: hmac-sha256, header: "${HOOXTEST_SIG_HEADER:-X-Hoox-Signature}", secrets: ["${HOOXTEST_UNSET_B}"]}}
targets: [{name: t, url: "${HOOXTEST_UNSET_URL}"}]
`), 0o600)
	out, stderr, code := runCmd(t, `{"task":"x","status":"y"}`, "send", "--url", srv.URL+"/hooks/hoox", "--secret", "k", "--config", cfg, "-")
	if code != 0 || !strings.HasPrefix(got.Get("X-Hoox-Signature"), "sha256=") {
		t.Errorf("send --config with unset variables outside its source: exit %d, %s%s; the request had X-Hoox-Signature %q", code, out, stderr, got.Get("X-Hoox-Signature"))
	}
	_, stderr, code = runCmd(t, "", "send", "--url", srv.URL+"/hooks/other", "--secret", "k", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, `sources[0].verify.header: environment variable "HOOXTEST_UNSET_HEADER" is not set`) {
		t.Errorf("send for a source whose header is unset: exit %d, %q", code, stderr)
	}
}
