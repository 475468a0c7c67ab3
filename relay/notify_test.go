package relay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/notify"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// The notification tests: real relays whose notify entries point at real
// httptest receivers (sinks, which record every request).

// endpoint is a webhook notify entry posting to s, for every event type.
func endpoint(s *sink, minInterval time.Duration) notify.Endpoint {
	return notify.Endpoint{Name: s.name, URL: s.url, Kind: notify.KindWebhook, Events: notify.Types,
		BacklogAge: time.Hour, MinInterval: minInterval}
}

// bodies decodes the notifications s received, of type typ ("": all).
func bodies(t *testing.T, s *sink, typ string) []notify.Body {
	t.Helper()
	var out []notify.Body
	for _, r := range s.requests() {
		var b notify.Body
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("notification %s is not JSON: %v", r.body, err)
		}
		if typ == "" || b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

func waitBodies(t *testing.T, s *sink, typ string, n int) []notify.Body {
	t.Helper()
	var got []notify.Body
	storetest.Eventually(t, 20*time.Second, func() error {
		if got = bodies(t, s, typ); len(got) < n {
			return fmt.Errorf("%d %s notifications received, waiting for %d", len(got), typ, n)
		}
		return nil
	})
	return got
}

func TestNotifyBreakerOpen(t *testing.T) {
	down := newSink(t, "down", always(answer{status: http.StatusInternalServerError}))
	up := newSink(t, "up", ok)
	ops := newSink(t, "ops", ok)
	td, tu := target(down), target(up)
	td.Retry.InitialInterval, td.Retry.MaxAttempts = 10*time.Millisecond, 100
	td.Breaker.MinRequests = 2
	tu.Breaker.MinRequests = 2
	set := settingsFor(t, td, tu)
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{endpoint(ops, 0)}}
	h := startRelay(t, set, "")
	h.send(t, videoBody("b1"))
	h.send(t, videoBody("b2"))
	waitBodies(t, ops, notify.BreakerOpen, 1)
	h.waitDeliveries(t, "up", "delivered", 2, 10*time.Second)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	got := bodies(t, ops, notify.BreakerOpen)
	if len(got) != 1 || got[0].Target != "down" || !strings.Contains(got[0].Detail, "breaker opened") {
		t.Errorf("breaker_open notifications = %+v, want one naming target down", got)
	}
	if n := len(bodies(t, ops, "")); n != 1 {
		t.Errorf("%d notifications in all, want the one breaker_open: %+v", n, bodies(t, ops, ""))
	}
}

func TestNotifyDeadLetterBurst(t *testing.T) {
	gone := newSink(t, "gone", always(answer{status: http.StatusGone}))
	ops := newSink(t, "ops", ok)
	const n = 100
	set := settingsFor(t, target(gone))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{endpoint(ops, 3*time.Second)}}
	h := startRelay(t, set, "")
	for i := range n {
		h.send(t, videoBody(fmt.Sprint("d", i)))
	}
	h.waitDeliveries(t, "gone", "dead", n, 20*time.Second)
	got := waitBodies(t, ops, notify.DeadLetter, 2)
	if len(got) != 2 {
		t.Fatalf("dead_letter notifications = %+v, want 2", got)
	}
	for _, r := range ops.requests() {
		t.Logf("notification %s: %s", r.header.Get("Webhook-Id"), r.body)
	}
	if got[0].Target != "gone" || got[0].HeldBack != 0 || !strings.Contains(got[0].Detail, ":gone is dead after attempt 1: HTTP 410") {
		t.Errorf("first dead_letter = %+v, want target gone, nothing held back, the delivery in the detail", got[0])
	}
	if got[1].Target != "gone" || got[1].HeldBack != n-1 {
		t.Errorf("second dead_letter = %+v, want target gone with held_back %d", got[1], n-1)
	}
	// The endpoint has the second notification before the notifier has
	// its answer and counts it sent.
	storetest.Eventually(t, 5*time.Second, func() error {
		if v := h.metric(t, "hooxrelay_notifications_total", map[string]string{"notify": "ops", "outcome": "sent"}); v != 2 {
			return fmt.Errorf("hooxrelay_notifications_total{notify=ops,outcome=sent} = %v, want 2", v)
		}
		return nil
	})
	if v := h.metric(t, "hooxrelay_notifications_total", map[string]string{"notify": "ops", "outcome": "held"}); v != n-1 {
		t.Errorf("hooxrelay_notifications_total{notify=ops,outcome=held} = %v, want %d", v, n-1)
	}
}

// A notification endpoint that never answers leaves deliveries as they
// are: every acked webhook is delivered (or dead, as its target says).
func TestNotifyHangingEndpoint(t *testing.T) {
	good := newSink(t, "good", ok)
	gone := newSink(t, "gone", always(answer{status: http.StatusGone}))
	stuck := newSink(t, "stuck", always(answer{hang: true}))
	set := settingsFor(t, target(good), target(gone))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{endpoint(stuck, 0)}}
	h := startRelay(t, set, "")
	const n = 300 // more than a notify queue holds
	for i := range n {
		h.send(t, videoBody(fmt.Sprint("h", i)))
	}
	h.waitDeliveries(t, "good", "delivered", n, 60*time.Second)
	h.waitDeliveries(t, "gone", "dead", n, 60*time.Second)
	if ids := good.ids(); len(ids) != n {
		t.Errorf("target good got %d distinct webhooks, want %d", len(ids), n)
	}
	if v := h.metric(t, "hooxrelay_notifications_total", map[string]string{"notify": "stuck", "outcome": "dropped"}); v == 0 {
		t.Errorf("no notification dropped, yet %d dead letters went to an endpoint that never answers", n)
	}
}

func TestNotifySigned(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	gone := newSink(t, "gone", always(answer{status: http.StatusGone}))
	team := newSink(t, "team", ok)
	slack := newSink(t, "slack", ok)
	e := endpoint(team, 0)
	e.SigningSecrets = []string{secret}
	s := endpoint(slack, 0)
	s.Kind = notify.KindSlack
	set := settingsFor(t, target(gone))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{e, s}}
	h := startRelay(t, set, "")
	h.send(t, videoBody("s1"))
	waitBodies(t, team, notify.DeadLetter, 1)
	v, err := verify.New(verify.Settings{Kind: verify.KindStandardWebhooks, Secrets: []string{secret}, Tolerance: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r := team.requests()[0]
	if err := v.Verify(r.header, nil, r.body, time.Now()); err != nil || !strings.HasPrefix(r.header.Get("Webhook-Id"), "ntf_") {
		t.Errorf("notification %s with headers %v: verify = %v, want a valid signature and an ntf_ id", r.body, r.header, err)
	}
	storetest.Eventually(t, 10*time.Second, func() error {
		if slack.count() == 0 {
			return fmt.Errorf("no slack notification yet")
		}
		return nil
	})
	var sb notify.SlackBody
	sr := slack.requests()[0]
	t.Logf("slack notification: %s", sr.body)
	if err := json.Unmarshal(sr.body, &sb); err != nil || !strings.HasPrefix(sb.Text, "hooxrelay: dead_letter on target gone: delivery evt_") {
		t.Errorf("slack body %s (%v), want {\"text\": \"hooxrelay: dead_letter on target gone: delivery evt_...\"}", sr.body, err)
	}
	if sr.header.Get("Webhook-Signature") != "" {
		t.Errorf("slack notification signed: %v", sr.header)
	}
}

// A reload replaces the notify list, and a target's notify list narrows
// who hears about it.
func TestNotifyReload(t *testing.T) {
	a := newSink(t, "a", ok)
	b := newSink(t, "b", ok)
	other := newSink(t, "other", ok)
	media := newSink(t, "media", ok)
	set := settingsFor(t, target(media))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{endpoint(a, 0)}}
	h := startRelay(t, set, "")
	pause := func(paused bool) {
		t.Helper()
		path := "/api/v1/targets/media/resume"
		if paused {
			path = "/api/v1/targets/media/pause"
		}
		if r := h.do(t, http.MethodPost, h.adminURL+path, nil, nil); r.status != http.StatusOK {
			t.Fatalf("POST %s: %v", path, r)
		}
	}
	pause(true)
	got := waitBodies(t, a, notify.TargetPaused, 1)
	if got[0].Target != "media" {
		t.Errorf("target_paused = %+v, want target media", got[0])
	}
	pause(false)

	set2 := set
	set2.Notify = notify.Settings{
		Endpoints: []notify.Endpoint{endpoint(b, 0), endpoint(other, 0)},
		Targets:   map[string][]string{"media": {"b"}},
	}
	if err := h.srv.Reload(t.Context(), set2, "second"); err != nil {
		t.Fatal(err)
	}
	pause(true)
	waitBodies(t, b, notify.TargetPaused, 1)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := a.count(); n != 1 {
		t.Errorf("entry a, removed by the reload, got %d notifications, want 1", n)
	}
	if n := other.count(); n != 0 {
		t.Errorf("entry other, not in target media's notify list, got %d notifications, want 0", n)
	}
}

// BenchmarkDeliveryNotify acks b.N webhooks for two targets, one of which
// answers 410 (every delivery a dead letter, each a notification), and
// waits until all are delivered or dead: with no notify entry, and with
// one whose endpoint never answers. The two should match.
func BenchmarkDeliveryNotify(b *testing.B) {
	for _, name := range []string{"none", "hanging"} {
		b.Run(name, func(b *testing.B) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				switch r.URL.Path {
				case "/gone":
					w.WriteHeader(http.StatusGone)
				case "/stuck":
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
			}))
			defer srv.Close()
			defer close(release)
			set := settingsFor(b, benchTarget("good", srv.URL+"/good"), benchTarget("gone", srv.URL+"/gone"))
			if name == "hanging" {
				set.Notify = notify.Settings{Endpoints: []notify.Endpoint{{Name: "stuck", URL: srv.URL + "/stuck",
					Kind: notify.KindWebhook, Events: notify.Types}}}
			}
			url, store, stop := benchRelay(b, set)
			postParallel(b, url+"/hooks/hoox")
			waitFinished(b, store, map[string]relay.State{"good": relay.Delivered, "gone": relay.Dead})
			b.StopTimer()
			stop()
		})
	}
}

// A webhook the store refuses (503) sends store_unavailable, naming no
// target.
func TestNotifyStoreUnavailable(t *testing.T) {
	a := newSink(t, "a", ok)
	ops := newSink(t, "ops", ok)
	set := settingsFor(t, target(a))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{endpoint(ops, time.Minute)}}
	h := startRelay(t, set, "", func(o *pebblestore.Options) { o.Retention, o.DedupTTL = 0, 0 })
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := h.post(t, "/hooks/hoox", videoBody(fmt.Sprint("u", i))); r.status != http.StatusServiceUnavailable {
			t.Fatalf("POST with the store closed: %v, want 503", r)
		}
	}
	got := waitBodies(t, ops, notify.StoreUnavailable, 1)
	if got[0].Target != "" || !strings.Contains(got[0].Detail, "503") {
		t.Errorf("store_unavailable = %+v, want no target and the 503 in the detail", got[0])
	}
}

// A target whose oldest pending delivery is older than backlog_age sends
// backlog_age, to the entries whose threshold it passed.
func TestNotifyBacklogAge(t *testing.T) {
	t.Cleanup(relay.SetWatchEvery(50 * time.Millisecond)) // after the relay stops
	media := newSink(t, "media", ok)
	soon := newSink(t, "soon", ok)
	late := newSink(t, "late", ok)
	es, el := endpoint(soon, time.Hour), endpoint(late, time.Hour)
	es.Events, el.Events = []string{notify.BacklogAge}, []string{notify.BacklogAge}
	es.BacklogAge, el.BacklogAge = 300*time.Millisecond, time.Hour
	set := settingsFor(t, target(media))
	set.Notify = notify.Settings{Endpoints: []notify.Endpoint{es, el}}
	h := startRelay(t, set, "")
	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/media/pause", nil, nil); r.status != http.StatusOK {
		t.Fatalf("pause: %v", r)
	}
	h.send(t, videoBody("old"))
	got := waitBodies(t, soon, notify.BacklogAge, 1)
	if got[0].Target != "media" || !strings.Contains(got[0].Detail, "oldest pending delivery") {
		t.Errorf("backlog_age = %+v, want target media and the delivery's age", got[0])
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := late.count(); n != 0 {
		t.Errorf("the entry with backlog_age 1h got %d notifications for a backlog under a second old", n)
	}
	if n := len(bodies(t, soon, "")); n != 1 {
		t.Errorf("%d notifications within min_interval (1h), want 1", n)
	}
}
