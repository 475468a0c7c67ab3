package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// redisConfig writes a config for a relay on the Redis at addr, with one
// target.
func redisConfig(t *testing.T, name, redisAddr, ingest, admin, targetURL, targetExtra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	cfg := fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  shutdown_timeout: 5s
store:
  kind: redis
  redis: {url: "redis://%s/0", prefix: shared, lease: 2s}
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: t
    url: %s
    retry: {initial_interval: 100ms, max_interval: 500ms, max_attempts: 1000}
%s
routes:
  - name: all
    targets: [t]
`, ingest, admin, redisAddr, targetURL, targetExtra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type answered struct {
	status  int
	Status  string `json:"status"`
	EventID string `json:"event_id"`
}

func postTo(url, body string) (answered, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return answered{}, err
	}
	defer resp.Body.Close()
	a := answered{status: resp.StatusCode}
	json.NewDecoder(resp.Body).Decode(&a)
	return a, nil
}

// Two relays on one Redis receive the same webhooks at the same instant:
// each is accepted once, and delivered once.
func TestTwoRelaysShareDedup(t *testing.T) {
	r := redistest.Start(t, false)
	rec := &recorder{delivered: map[string]int{}}
	target := httptest.NewServer(rec)
	defer target.Close()
	var relays []*relayProc
	for i := range 2 {
		ingest, admin := freeAddr(t), freeAddr(t)
		relays = append(relays, startRelay(t, redisConfig(t, fmt.Sprint("r", i), r.Addr, ingest, admin, target.URL+"/hook", ""), ingest, admin))
	}
	const events = 40
	var ids []string
	for i := range events {
		body := fmt.Sprintf(`{"task":"video_generate","job_id":"run_%d","status":"completed"}`, i)
		var wg sync.WaitGroup
		got := make([]answered, len(relays))
		for j, p := range relays {
			wg.Go(func() {
				a, err := postTo("http://"+p.ingest+"/hooks/hoox", body)
				if err != nil {
					t.Errorf("POST to relay %d: %v", j, err)
				}
				got[j] = a
			})
		}
		wg.Wait()
		statuses := []string{got[0].Status, got[1].Status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []string{"accepted", "duplicate"}) || got[0].EventID != got[1].EventID {
			t.Fatalf("event %d sent to both relays at once: answers %+v, want one accepted and one duplicate with the same event_id", i, got)
		}
		ids = append(ids, got[0].EventID)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec.mu.Lock()
		done := 0
		for _, id := range ids {
			if rec.delivered[id] > 0 {
				done++
			}
		}
		twice := []string{}
		for id, n := range rec.delivered {
			if n > 1 {
				twice = append(twice, id)
			}
		}
		rec.mu.Unlock()
		if len(twice) > 0 {
			t.Fatalf("delivered more than once across two relays: %v", twice)
		}
		if done == events {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered within 20s", done, events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// /api/v1/status shows the durability of the Redis under the relay: on one
// without an append-only file, acked webhooks are lost if Redis stops,
// and the status names the setting.
func TestStatusShowsRedisDurability(t *testing.T) {
	r := redistest.Start(t, false)
	ingest, admin := freeAddr(t), freeAddr(t)
	startRelay(t, redisConfig(t, "status", r.Addr, ingest, admin, "http://127.0.0.1:1/hook", ""), ingest, admin)
	var st relay.StatusJSON
	resp, err := http.Get("http://" + admin + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if d := st.Durability; d == nil || d.Loss != relay.LossRestart || d.Settings["appendonly"] != "no" || !strings.Contains(d.Warning, "appendonly") {
		t.Errorf("status durability = %+v, want loss restart naming appendonly no", d)
	}
}

// A target's rate limit holds for the sum of the relays: 60 deliveries at
// 10/s through two relays take at least 5.3s.
func TestTwoRelaysShareRateLimit(t *testing.T) {
	r := redistest.Start(t, false)
	var mu sync.Mutex
	var at []time.Time
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
	}))
	defer target.Close()
	var relays []*relayProc
	for i := range 2 {
		ingest, admin := freeAddr(t), freeAddr(t)
		relays = append(relays, startRelay(t, redisConfig(t, fmt.Sprint("r", i), r.Addr, ingest, admin, target.URL+"/hook",
			"    rate_limit: {rps: 10, burst: 1}"), ingest, admin))
	}
	for i := range 60 {
		a, err := postTo("http://"+relays[i%2].ingest+"/hooks/hoox", fmt.Sprintf(`{"task":"video_export","job_id":"run_%d","status":"completed"}`, i))
		if err != nil || a.Status != "accepted" {
			t.Fatalf("POST %d: %+v, %v", i, a, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(at)
		mu.Unlock()
		if n >= 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 60 deliveries within 30s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if span := at[len(at)-1].Sub(at[0]); span < 5300*time.Millisecond {
		t.Errorf("60 deliveries through two relays with a shared 10/s limit took %s, want at least 5.3s", span.Round(time.Millisecond))
	}
}

// Redis going away: ingress answers 503 with Retry-After and /readyz 503;
// once Redis is back, webhooks are accepted again and nothing acked before
// or after is lost.
func TestRedisOutage(t *testing.T) {
	r := redistest.Start(t, true)
	rec := &recorder{delivered: map[string]int{}}
	target := httptest.NewServer(rec)
	defer target.Close()
	ingest, admin := freeAddr(t), freeAddr(t)
	p := startRelay(t, redisConfig(t, "r", r.Addr, ingest, admin, target.URL+"/hook", ""), ingest, admin)
	url := "http://" + ingest + "/hooks/hoox"
	var acked []string
	send := func(i int) answered {
		a, err := postTo(url, fmt.Sprintf(`{"task":"avatar_create","avatar_id":"a%d","look_id":"l","status":"completed"}`, i))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		if a.Status == "accepted" {
			acked = append(acked, a.EventID)
		}
		return a
	}
	for i := range 10 {
		send(i)
	}
	r.Stop()
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"task":"avatar_create","avatar_id":"down","look_id":"l","status":"completed"}`))
	if err != nil {
		t.Fatalf("POST with Redis down: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST with Redis down: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, err := http.Get("http://" + admin + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %v %v, want 503", resp.StatusCode, err)
	}
	r.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for i := 10; ; i++ {
		if a := send(i); a.Status == "accepted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook accepted within 10s of Redis coming back\n%s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		if miss := rec.missing(acked); len(miss) == 0 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d of %d acked events not delivered after the outage, e.g. %v (acked %v)\n%s", len(miss), len(acked), miss[0], acked, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A relay killed while its attempts hang leaves claims in Redis; another
// relay takes them over once their lease (2s here) ends, and each event is
// delivered once.
func TestKilledRelaysClaimsTakenOver(t *testing.T) {
	r := redistest.Start(t, false)
	var up atomic.Bool
	var hanging atomic.Int64
	rec := &recorder{delivered: map[string]int{}}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if up.Load() {
			rec.ServeHTTP(w, req)
			return
		}
		// Hang until the caller goes away (its process is killed); the
		// server notices that only once the body is read.
		io.Copy(io.Discard, req.Body)
		hanging.Add(1)
		<-req.Context().Done()
		hanging.Add(-1)
	}))
	defer target.Close()

	ingestA, adminA := freeAddr(t), freeAddr(t)
	a := startRelay(t, redisConfig(t, "a", r.Addr, ingestA, adminA, target.URL+"/hook", "    max_in_flight: 8\n    timeout: 60s"), ingestA, adminA)
	var ids []string
	for i := range 12 {
		ans, err := postTo("http://"+ingestA+"/hooks/hoox", fmt.Sprintf(`{"task":"video_generate","job_id":"lease_%d","status":"completed"}`, i))
		if err != nil || ans.Status != "accepted" {
			t.Fatalf("POST %d: %+v, %v", i, ans, err)
		}
		ids = append(ids, ans.EventID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for hanging.Load() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("relay a has %d attempts in flight, want 8 (its max_in_flight)", hanging.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	killed := time.Now()
	up.Store(true)

	ingestB, adminB := freeAddr(t), freeAddr(t)
	startRelay(t, redisConfig(t, "b", r.Addr, ingestB, adminB, target.URL+"/hook", ""), ingestB, adminB)
	deadline = time.Now().Add(20 * time.Second)
	for {
		miss := rec.missing(ids)
		if len(miss) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events not delivered by relay b within 20s of relay a's death", len(miss), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("relay b finished relay a's 8 claims %v after a was killed (lease 2s)", time.Since(killed).Round(time.Millisecond))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, n := range rec.delivered {
		if n != 1 {
			t.Errorf("event %s delivered %d times, want once", id, n)
		}
	}
}

// serve refuses a Redis whose eviction policy could drop queued webhooks,
// naming the setting and the fix.
func TestServeRefusesAnEvictingRedis(t *testing.T) {
	r := redistest.Start(t, true, "--maxmemory-policy", "allkeys-lru")
	cfg := redisConfig(t, "evicting", r.Addr, freeAddr(t), freeAddr(t), "http://127.0.0.1:1/hook", "")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a relay that started is stopped
	defer cancel()
	var out, errs bytes.Buffer
	code := exitCode(run(ctx, []string{"serve", "--config", cfg}, strings.NewReader(""), &out, &errs), &errs)
	stderr := errs.String()
	if code != 1 || !strings.Contains(stderr, `maxmemory-policy is "allkeys-lru"`) || !strings.Contains(stderr, "noeviction") {
		t.Errorf("serve on a Redis with maxmemory-policy allkeys-lru: exit %d, stderr:\n%s\nwant exit 1 naming maxmemory-policy and noeviction", code, stderr)
	}
}

// serve refuses keys of the first Redis layout with one line saying what
// to do, and writes nothing under their prefix.
func TestServeRefusesAnOldRedisLayout(t *testing.T) {
	r := redistest.Start(t, false)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	if err := rdb.SAdd(t.Context(), "{shared}:indexes", "{shared}:i:e").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := redisConfig(t, "old", r.Addr, freeAddr(t), freeAddr(t), "http://127.0.0.1:1/hook", "")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	code := exitCode(run(ctx, []string{"serve", "--config", cfg}, strings.NewReader(""), &out, &errs), &errs)
	stderr := errs.String()
	if code != 1 || !strings.Contains(stderr, "layout 1") || !strings.Contains(stderr, "store.redis.prefix") {
		t.Errorf("serve on keys of the first layout: exit %d, stderr:\n%s\nwant exit 1 naming layout 1 and what to do", code, stderr)
	}
	if n, _ := rdb.DBSize(t.Context()).Result(); n != 1 {
		t.Errorf("%d keys after the refusal, want only the old one", n)
	}
}
