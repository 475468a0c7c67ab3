package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
)

// replayRecorder is a target that answers 200 and remembers, per target
// path and event, the attempt numbers it got with each Hooxrelay-Replay
// ("" for none).
type replayRecorder struct {
	mu       sync.Mutex
	attempts map[string]map[string]bool // "path event replay" → attempt numbers
}

func (r *replayRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	k := req.URL.Path + " " + req.Header.Get("Webhook-Id") + " " + req.Header.Get("Hooxrelay-Replay")
	r.mu.Lock()
	if r.attempts[k] == nil {
		r.attempts[k] = map[string]bool{}
	}
	r.attempts[k][req.Header.Get("Hooxrelay-Attempt")] = true
	r.mu.Unlock()
}

// sends returns the attempt numbers that path got for event with replay.
func (r *replayRecorder) sends(path, event, replay string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attempts[path+" "+event+" "+replay])
}

func adminCall(t *testing.T, method, url, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || json.Unmarshal(b, out) != nil {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
}

// A replay interrupted by SIGKILL resumes when the relay starts again and
// sends each (event, target) once more: one attempt with its
// Hooxrelay-Replay per delivery, never a second one. (A delivery in flight
// at the kill may be sent twice with the same attempt number: delivery is
// at least once; a step of the replay done twice would be a new attempt.)
func TestReplayResumesAfterSIGKILL(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		testReplayResumesAfterSIGKILL(t, func(ingest, admin, targetURL string) (string, []string) {
			return writeConfig(t, t.TempDir(), ingest, admin, targetURL), []string{"/a", "/b"}
		})
	})
	t.Run("redis", func(t *testing.T) {
		r := redistest.Start(t, false)
		testReplayResumesAfterSIGKILL(t, func(ingest, admin, targetURL string) (string, []string) {
			return redisConfig(t, "replay", r.Addr, ingest, admin, targetURL+"/t", ""), []string{"/t"}
		})
	})
}

// testReplayResumesAfterSIGKILL runs the test with the config that
// config writes, whose targets receive at paths.
func testReplayResumesAfterSIGKILL(t *testing.T, config func(ingest, admin, targetURL string) (string, []string)) {
	rec := &replayRecorder{attempts: map[string]map[string]bool{}}
	target := httptest.NewServer(rec)
	defer target.Close()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg, paths := config(ingest, admin, target.URL)
	p := startRelay(t, cfg, ingest, admin)

	const n = 60
	var ids []string
	for i := range n {
		id, err := postWebhook("http://"+ingest+"/hooks/hoox", i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitFor(t, func() bool {
		for _, id := range ids {
			for _, path := range paths {
				if rec.sends(path, id, "") != 1 {
					return false
				}
			}
		}
		return true
	}, "every event delivered to every target")

	var r relay.ReplayJSON
	adminCall(t, "POST", "http://"+admin+"/api/v1/replays", `{"since":"1h","rate":10}`, &r)
	waitFor(t, func() bool {
		adminCall(t, "GET", "http://"+admin+"/api/v1/replays/"+r.ReplayID, "", &r)
		return r.EventsDone >= 10
	}, "the replay's first batches")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	if r.State != relay.ReplayRunning || r.EventsDone >= n {
		t.Fatalf("the replay was %+v at the kill; want it running, partway", r)
	}
	t.Logf("killed the relay with the replay at %d of %d events", r.EventsDone, r.EventsTotal)

	startRelay(t, cfg, ingest, admin)
	waitFor(t, func() bool {
		adminCall(t, "GET", "http://"+admin+"/api/v1/replays/"+r.ReplayID, "", &r)
		return r.State != relay.ReplayRunning
	}, "the resumed replay to end")
	if r.State != relay.ReplayDone || r.EventsDone != n || r.EventsTotal != n || r.Deliveries != len(paths)*n {
		t.Fatalf("the resumed replay ended as %+v, want done with %d events and %d deliveries", r, n, len(paths)*n)
	}
	waitFor(t, func() bool {
		for _, id := range ids {
			for _, path := range paths {
				if rec.sends(path, id, r.ReplayID) == 0 {
					return false
				}
			}
		}
		return true
	}, "every event replayed to every target")
	time.Sleep(500 * time.Millisecond) // room for a second send, if there were one
	for _, id := range ids {
		for _, path := range paths {
			if got := rec.sends(path, id, r.ReplayID); got != 1 {
				t.Errorf("%s got event %s in %d attempts marked with the replay, want 1", path, id, got)
			}
		}
	}
}
