package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// explainTestConfig is a relay with one target, whose failures are retried
// after 100 ms.
const explainTestConfig = `server: {listen: %q, admin_listen: %q, shutdown_timeout: 5s}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets:
  - {name: billing, url: "%s/billing", retry: {initial_interval: 100ms, jitter: 0}, breaker: {min_requests: 1000}}
routes:
  - {name: videos-to-billing, match: {task: [video_generate]}, targets: [billing]}
`

// explain, against a running relay, tells the trail of an event that came
// twice and the timeline of its delivery that waited for a pause, failed
// once, then went through.
func TestExplain(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			http.Error(w, "busy, try later", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "booked")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "hooxrelay.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, explainTestConfig, ingest, admin, filepath.Join(dir, "relay"), srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	startRelay(t, cfg, ingest, admin)
	t.Setenv("HOOXRELAY_ADMIN_URL", "http://"+admin)
	body := `{"task":"video_generate","job_id":"run_explain","status":"completed","result":{"video_id":"v1","cost":5}}`
	cli(t, "pause", "billing")
	id := sendHoox(t, "http://"+ingest+"/hooks/hoox", body)
	time.Sleep(300 * time.Millisecond) // due, and held back by the pause
	cli(t, "resume", "billing")
	resp, err := http.Post("http://"+ingest+"/hooks/hoox", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	storetest.Eventually(t, 20*time.Second, func() error {
		out, _, code := runCmd(t, "", "events", "--job-id", "run_explain")
		if code != 0 || !strings.Contains(out, "billing:"+string(relay.Delivered)+"/2") {
			return fmt.Errorf("events --job-id run_explain: exit %d, %q; want the event delivered to billing after 2 attempts", code, out)
		}
		return nil
	})

	out, _ := cli(t, "explain", id)
	t.Logf("hooxrelay explain %s:\n%s", id, out)
	for _, want := range []string{
		"event " + id + ": video_generate completed, job run_explain, received ",
		"source     hoox from 127.0.0.1",
		"verify     none: not checked",
		"dedup key  video_generate:run_explain:completed (new; then 1 request answered as a duplicate of this event, the last at ",
		"routes     videos-to-billing",
		"targets    billing",
		"delivery to billing: delivered after 2 attempts",
		"  due\n",
		": the target was paused\n",
		"attempt 1  503",
		"answer: busy, try later",
		"attempt 2  200",
		"answer: booked",
		"  delivered\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q", want)
		}
	}
	if strings.Index(out, "attempt 1") > strings.Index(out, "attempt 2") {
		t.Error("explain shows attempt 2 before attempt 1")
	}
	if _, stderr, code := runCmd(t, "", "explain", "evt_00000000000000000000000000"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("explain of an unknown event: exit %d, %q; want 1 and not found", code, stderr)
	}
}
