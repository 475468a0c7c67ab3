package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

func reloadConfig(ingest, admin, db, targets, routes string) string {
	return fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  shutdown_timeout: 5s
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets:
%s
routes:
%s
`, ingest, admin, db, targets, routes)
}

func adminStatus(t *testing.T, admin string) relay.StatusJSON {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st relay.StatusJSON
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// SIGHUP with a good config, then a bad one, while webhooks keep coming:
// the good one adds a target that then gets every new event, the bad one is
// refused with its problems logged, and no acked event is lost.
func TestReloadUnderTraffic(t *testing.T) {
	first := &recorder{delivered: map[string]int{}}
	second := &recorder{delivered: map[string]int{}}
	ts1, ts2 := httptest.NewServer(first), httptest.NewServer(second)
	defer ts1.Close()
	defer ts2.Close()
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	db := filepath.Join(dir, "relay")
	path := filepath.Join(dir, "hooxrelay.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig(ingest, admin, db, "  - {name: first, url: "+ts1.URL+"}", "  - {name: all, targets: [first]}"))
	p := startRelay(t, path, ingest, admin)
	hash0 := adminStatus(t, admin).ConfigHash

	var mu sync.Mutex
	var acked []string
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := postWebhook("http://"+ingest+"/hooks/hoox", int(seq.Add(1)))
				if err != nil {
					t.Errorf("POST during reloads: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)

	write(reloadConfig(ingest, admin, db,
		"  - {name: first, url: "+ts1.URL+", rate_limit: {rps: 1000, burst: 50}}\n  - {name: second, url: "+ts2.URL+"}",
		"  - {name: all, targets: [first, second]}"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	var st relay.StatusJSON
	deadline := time.Now().Add(5 * time.Second)
	for st = adminStatus(t, admin); st.Reloads < 1; st = adminStatus(t, admin) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload within 5s of SIGHUP\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !st.LastReload.OK || st.ConfigHash == hash0 {
		t.Fatalf("good reload: %+v, want ok with a new hash (was %s)\n%s", st, hash0, p.stderr)
	}
	// Requests in progress at the swap finish on the old routes; give them
	// a moment before counting what must reach the new target.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	afterGood := len(acked)
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)

	write(reloadConfig(ingest, admin, db, "  - {name: first, url: "+ts1.URL+", timeout: -1s}", "  - {name: all, targets: [first, gone]}"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for st = adminStatus(t, admin); st.Reloads < 2; st = adminStatus(t, admin) {
		if time.Now().After(deadline) {
			t.Fatalf("no second reload within 5s of SIGHUP\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.LastReload.OK || !strings.Contains(st.LastReload.Error, "targets[0].timeout") {
		t.Errorf("bad reload: %+v, want a failure naming targets[0].timeout", st.LastReload)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	deadline = time.Now().Add(20 * time.Second)
	for {
		missFirst := first.missing(acked)
		missSecond := second.missing(acked[afterGood:])
		if len(missFirst) == 0 && len(missSecond) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acked events not delivered to first, %d of %d after the reload not delivered to second\n%s",
				len(missFirst), len(acked), len(missSecond), len(acked)-afterGood, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := p.stderr.String()
	for _, want := range []string{`"msg":"config reloaded"`, `"msg":"config reload refused"`, `routes[0].targets[1]`, `"msg":"config reload failed; the previous config stays in use"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	t.Logf("%d events acked across a good and a bad reload; all delivered", len(acked))
}
