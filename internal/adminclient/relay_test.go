package adminclient_test

// A real relay for the client to call: relay.Server over an embedded store
// in a temp dir, on loopback listeners, delivering to an httptest target.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
)

const testToken = "s3cret-admin"

// target answers 410 (permanent: the delivery is dead at once) to payloads
// with "status":"error" on /audit while gone is set, and 200 to everything
// else.
type target struct{ gone atomic.Bool }

func (a *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/audit" && a.gone.Load() && bytes.Contains(body, []byte(`"status":"error"`)) {
		http.Error(w, "gone", http.StatusGone)
		return
	}
	io.WriteString(w, "ok")
}

// testRelay is a relay whose targets are media (video_generate events) and
// audit (every event), both on one target, which starts out gone.
type testRelay struct {
	ingest    string // the URL of its source
	admin     string // the base URL of its admin API
	target    *target
	targetURL string // media is at targetURL/media, audit at targetURL/audit
}

func startRelay(t *testing.T) *testRelay {
	t.Helper()
	tg := &target{}
	tg.gone.Store(true)
	srv := httptest.NewServer(tg)
	t.Cleanup(srv.Close)

	deliverTo := func(name string) relay.TargetSettings {
		return relay.TargetSettings{
			Name: name, URL: srv.URL + "/" + name, Timeout: 5 * time.Second, MaxInFlight: 4,
			Retry:   relay.RetryPolicy{MaxAttempts: 12, InitialInterval: time.Second, MaxInterval: time.Minute, Multiplier: 2, MaxAge: time.Hour},
			Breaker: relay.BreakerSettings{FailureRatio: 0.5, MinRequests: 1000, Interval: time.Minute, OpenTimeout: 30 * time.Second},
		}
	}
	routes, err := rules.Compile([]rules.Route{
		{Name: "videos", Tasks: []string{"video_generate"}, Targets: []string{"media"}},
		{Name: "audit-everything", Targets: []string{"audit"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	set := relay.Settings{
		Server: relay.ServerSettings{
			AdminToken: testToken, MaxBodyBytes: 1 << 20,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
			IdleTimeout: time.Minute, ShutdownTimeout: 5 * time.Second,
		},
		DedupTTL:  time.Hour,
		StoreKind: "embedded",
		Sources:   []relay.SourceSettings{{Name: "hoox", Path: "/hooks/hoox", Verify: verify.Settings{Kind: verify.KindNone}}},
		Targets:   []relay.TargetSettings{deliverTo("media"), deliverTo("audit")},
		Routes:    routes,
	}
	store, err := pebblestore.Open(filepath.Join(t.TempDir(), "relay"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.NewServer(set, store, relay.ServerOptions{Version: "test", ConfigHash: "0123456789ab"})
	if err != nil {
		t.Fatal(err)
	}
	ln, adminLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ln, adminLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay Run returned %v at cleanup, want nil", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	return &testRelay{ingest: "http://" + ln.Addr().String() + "/hooks/hoox", admin: "http://" + adminLn.Addr().String(), target: tg, targetURL: srv.URL}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// client returns a client of the relay's admin API with its token.
func (r *testRelay) client() *adminclient.Client {
	return &adminclient.Client{URL: r.admin, Token: testToken, Timeout: 10 * time.Second}
}

// send posts a webhook, which must be accepted, and returns its event id.
func (r *testRelay) send(t *testing.T, body string) string {
	t.Helper()
	resp, err := http.Post(r.ingest, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Status != "accepted" {
		t.Fatalf("POST %s: %d %+v (%v), want accepted", body, resp.StatusCode, ans, err)
	}
	return ans.EventID
}

// waitCounts waits until no delivery is pending and each named target has
// the dead and delivered counts in want ({dead, delivered}).
func (r *testRelay) waitCounts(t *testing.T, want map[string][2]int) {
	t.Helper()
	c := r.client()
	storetest.Eventually(t, 10*time.Second, func() error {
		ts, err := c.Targets(t.Context())
		if err != nil {
			return err
		}
		for _, tg := range ts {
			if w, ok := want[tg.Name]; ok && (tg.Pending != 0 || tg.Dead != w[0] || tg.Delivered != w[1]) {
				return fmt.Errorf("target %s has %d pending, %d dead and %d delivered; want none pending and {dead, delivered} %v",
					tg.Name, tg.Pending, tg.Dead, tg.Delivered, w)
			}
		}
		return nil
	})
}
