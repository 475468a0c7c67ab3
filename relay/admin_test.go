package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

const adminToken = "adm-7e6d5c"

// adminSettings have a target that delivers (good) and one that refuses
// for good (410) until the test says otherwise (flaky), behind an admin
// token.
func adminSettings(t testing.TB, good, flaky *sink) relay.Settings {
	tf := target(flaky)
	tf.Retry.MaxAttempts, tf.Retry.InitialInterval = 3, 50*time.Millisecond
	set := settingsFor(t, target(good), tf)
	set.Server.AdminToken = adminToken
	set.Server.MaxBodyBytes = 1 << 20
	return set
}

// api calls the admin API with the token and decodes the answer into out
// (when not nil); it returns the status.
func (h *relayHarness) api(t testing.TB, method, path string, out any) int {
	t.Helper()
	r := h.do(t, method, h.adminURL+path, nil, http.Header{"Authorization": {"Bearer " + adminToken}})
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: %s is not the expected JSON: %v", method, path, r, err)
		}
	}
	return r.status
}

// TestAdminAPI runs every endpoint and error of docs/http.md against a relay on
// each store.
func TestAdminAPI(t *testing.T) {
	onStores(t, testAdminAPI)
}

func testAdminAPI(t *testing.T, open func() relay.Store) {
	good := newSink(t, "good", ok)
	flaky := newSink(t, "flaky", always(answer{status: http.StatusGone}))
	h := startRelayOn(t, adminSettings(t, good, flaky), open())

	bodies := []string{
		videoBody("api_1"),
		`{"task":"avatar_create","avatar_id":"av_1","look_id":"l1","status":"completed"}`,
		`{"task":"video_generate","job_id":"api_3","status":"failed","error":"boom"}`,
	}
	var ids []string
	for _, b := range bodies {
		ids = append(ids, h.send(t, b))
		time.Sleep(2 * time.Millisecond) // distinct receive milliseconds: a stable order
	}
	h.waitDeliveries(t, "good", "delivered", 3, 10*time.Second)
	h.waitDeliveries(t, "flaky", "dead", 3, 10*time.Second)

	t.Run("token required", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong", adminToken, "Basic " + adminToken, "Bearer", "Bearer" + adminToken} {
			r := h.do(t, http.MethodGet, h.adminURL+"/api/v1/targets", nil, http.Header{"Authorization": {auth}})
			if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), `"error":"unauthorized"`) || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("Authorization %q: %s, want 401 unauthorized with WWW-Authenticate", auth, r)
			}
		}
		if r := h.admin(t, "/healthz"); r.status != http.StatusOK {
			t.Errorf("/healthz needs no token: %s", r)
		}
		// RFC 9110: the scheme is case-insensitive; one or more spaces.
		for _, auth := range []string{"bearer " + adminToken, "BEARER " + adminToken, "Bearer   " + adminToken} {
			r := h.do(t, http.MethodGet, h.adminURL+"/api/v1/targets", nil, http.Header{"Authorization": {auth}})
			if r.status != http.StatusOK {
				t.Errorf("Authorization %q: %s, want 200", auth, r)
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		var got struct{ Events []relay.EventJSON }
		if st := h.api(t, "GET", "/api/v1/events", &got); st != 200 || len(got.Events) != 3 {
			t.Fatalf("GET /api/v1/events: %d with %d events, want 200 with 3", st, len(got.Events))
		}
		var order []string
		for _, e := range got.Events {
			order = append(order, e.EventID)
		}
		if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(order, want) {
			t.Errorf("events %v, want newest first %v", order, want)
		}
		e := got.Events[2]
		if e.Source != "hoox" || e.Task != "video_generate" || e.Status != "completed" || e.DedupKey != "video_generate:api_1:completed" || e.ReceivedAt.IsZero() {
			t.Errorf("event = %+v, want the first webhook's metadata", e)
		}
		states := fmt.Sprint(e.Deliveries)
		if states != "[{good delivered 1} {flaky dead 1}]" {
			t.Errorf("deliveries of the first event = %s, want good delivered after 1 attempt, flaky dead after 1", states)
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"?task=avatar_create", []string{ids[1]}},
			{"?status=failed", []string{ids[2]}},
			{"?task=video_generate&status=completed", []string{ids[0]}},
			{"?limit=1", []string{ids[2]}},
			{"?limit=1&before=" + ids[2], []string{ids[1]}},
			{"?before=" + ids[0], nil},
		} {
			var page struct{ Events []relay.EventJSON }
			h.api(t, "GET", "/api/v1/events"+tc.query, &page)
			var got []string
			for _, e := range page.Events {
				got = append(got, e.EventID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("GET /api/v1/events%s = %v, want %v", tc.query, got, tc.want)
			}
		}
		var e400 relay.ErrorJSON
		if st := h.api(t, "GET", "/api/v1/events?limit=abc", &e400); st != 400 || e400.Error != "invalid_request" || !strings.Contains(e400.Message, "limit") {
			t.Errorf("limit=abc: %d %+v, want 400 invalid_request about limit", st, e400)
		}
	})

	t.Run("event", func(t *testing.T) {
		var ev relay.EventDetailJSON
		if st := h.api(t, "GET", "/api/v1/events/"+ids[0], &ev); st != 200 {
			t.Fatalf("GET event: %d", st)
		}
		if string(ev.Payload) != bodies[0] {
			t.Errorf("payload %s, want the body as received %s", ev.Payload, bodies[0])
		}
		if len(ev.Deliveries) != 2 {
			t.Fatalf("deliveries %+v, want 2", ev.Deliveries)
		}
		fl := ev.Deliveries[1]
		if fl.DeliveryID != ids[0]+":flaky" || fl.State != relay.Dead || len(fl.History) != 1 || fl.History[0].Status != 410 ||
			!strings.Contains(fl.History[0].Body, "answered 410") || fl.History[0].Attempt != 1 || fl.LastStatus != 410 {
			t.Errorf("flaky delivery = %+v, want dead after one 410 attempt, recorded with its body", fl)
		}
		var e404 relay.ErrorJSON
		if st := h.api(t, "GET", "/api/v1/events/evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", &e404); st != 404 || e404.Error != "not_found" ||
			e404.Message != `event "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV" not found` {
			t.Errorf("unknown event: %d %+v, want 404 not_found", st, e404)
		}
	})

	t.Run("deliveries", func(t *testing.T) {
		var got struct{ Deliveries []relay.DeliveryJSON }
		h.api(t, "GET", "/api/v1/deliveries?state=dead&target=flaky", &got)
		if len(got.Deliveries) != 3 || got.Deliveries[0].DeliveryID != ids[2]+":flaky" || got.Deliveries[0].LastStatus != 410 || got.Deliveries[0].State != relay.Dead {
			t.Errorf("dead deliveries of flaky = %+v, want 3, newest first, with last_status 410", got.Deliveries)
		}
		h.api(t, "GET", "/api/v1/deliveries?state=delivered", &got)
		if len(got.Deliveries) != 3 || got.Deliveries[0].Target != "good" {
			t.Errorf("delivered deliveries = %+v, want the 3 to good", got.Deliveries)
		}
		var e400 relay.ErrorJSON
		if st := h.api(t, "GET", "/api/v1/deliveries?state=lost", &e400); st != 400 || !strings.Contains(e400.Message, "pending, delivered or dead") {
			t.Errorf("state=lost: %d %+v, want 400 naming the states", st, e400)
		}
	})

	t.Run("targets", func(t *testing.T) {
		var got struct{ Targets []relay.TargetJSON }
		h.api(t, "GET", "/api/v1/targets", &got)
		want := []relay.TargetJSON{
			{Name: "good", URL: good.url, Breaker: "closed", Delivered: 3},
			{Name: "flaky", URL: flaky.url, Breaker: "closed", Dead: 3},
		}
		if !slices.Equal(got.Targets, want) {
			t.Errorf("targets = %+v, want %+v", got.Targets, want)
		}
	})

	t.Run("retry", func(t *testing.T) {
		var e relay.ErrorJSON
		var resent relay.DeliveryJSON
		if st := h.api(t, "POST", "/api/v1/deliveries/"+ids[0]+":good/retry", &resent); st != 202 || !strings.HasPrefix(resent.ReplayID, "rpl_") {
			t.Errorf("retry of a delivered delivery: %d %+v, want 202 with the replay that sends it again", st, resent)
		}
		if st := h.api(t, "POST", "/api/v1/deliveries/"+ids[0]+":nobody/retry", &e); st != 404 {
			t.Errorf("retry of an unknown delivery: %d %+v, want 404", st, e)
		}
		if r := h.do(t, "GET", h.adminURL+"/api/v1/deliveries/x/retry", nil, http.Header{"Authorization": {"Bearer " + adminToken}}); r.status != 405 {
			t.Errorf("GET on retry: %s, want 405", r)
		}
		flaky.setRespond(ok)
		var d relay.DeliveryJSON
		if st := h.api(t, "POST", "/api/v1/deliveries/"+ids[0]+":flaky/retry", &d); st != 202 || d.State != relay.Pending || d.Attempts != 1 {
			t.Fatalf("retry of a dead delivery: %d %+v, want 202 pending", st, d)
		}
		storetest.Eventually(t, 10*time.Second, func() error {
			var ev relay.EventDetailJSON
			h.api(t, "GET", "/api/v1/events/"+ids[0], &ev)
			if fl := ev.Deliveries[1]; fl.State != relay.Delivered || len(fl.History) != 2 || fl.History[1].Attempt != 2 {
				return fmt.Errorf("after the retry: %+v, want delivered at attempt 2", fl)
			}
			return nil
		})
	})

	t.Run("retry-dead", func(t *testing.T) {
		var e relay.ErrorJSON
		if st := h.api(t, "POST", "/api/v1/targets/nobody/retry-dead", &e); st != 404 || !strings.Contains(e.Message, "nobody") {
			t.Errorf("retry-dead of an unknown target: %d %+v, want 404 naming it", st, e)
		}
		var got struct{ Requeued int }
		if st := h.api(t, "POST", "/api/v1/targets/flaky/retry-dead", &got); st != 202 || got.Requeued != 2 {
			t.Fatalf("retry-dead: %d %+v, want 202 with the 2 left", st, got)
		}
		storetest.Eventually(t, 10*time.Second, func() error {
			var ts struct{ Targets []relay.TargetJSON }
			h.api(t, "GET", "/api/v1/targets", &ts)
			if fl := ts.Targets[1]; fl.Dead != 0 || fl.Delivered != 3 {
				return fmt.Errorf("flaky after retry-dead: %+v, want 3 delivered", fl)
			}
			return nil
		})
	})

	t.Run("pause and resume", func(t *testing.T) {
		var e relay.ErrorJSON
		if st := h.api(t, "POST", "/api/v1/targets/nobody/pause", &e); st != 404 {
			t.Errorf("pause of an unknown target: %d, want 404", st)
		}
		var p struct {
			Name   string
			Paused bool
		}
		if st := h.api(t, "POST", "/api/v1/targets/flaky/pause", &p); st != 200 || !p.Paused {
			t.Fatalf("pause: %d %+v", st, p)
		}
		before := flaky.count()
		id := h.send(t, videoBody("while_paused"))
		good.waitCount(t, 4, 10*time.Second)
		time.Sleep(300 * time.Millisecond)
		if n := flaky.count(); n != before {
			t.Fatalf("a paused target got %d requests", n-before)
		}
		var ts struct{ Targets []relay.TargetJSON }
		h.api(t, "GET", "/api/v1/targets", &ts)
		if fl := ts.Targets[1]; !fl.Paused || fl.Pending != 1 {
			t.Errorf("paused flaky = %+v, want paused with 1 pending", fl)
		}
		if h.metric(t, "hooxrelay_targets_paused", map[string]string{"target": "flaky"}) != 1 {
			t.Error("hooxrelay_targets_paused{target=flaky} is not 1 while paused")
		}
		h.api(t, "POST", "/api/v1/targets/flaky/resume", &p)
		if p.Paused {
			t.Errorf("resume answered %+v", p)
		}
		flaky.waitCount(t, before+1, 10*time.Second)
		if got := flaky.requests()[before].id(); got != id {
			t.Errorf("after resume flaky got %s, want the held %s", got, id)
		}
	})

	t.Run("status", func(t *testing.T) {
		var st relay.StatusJSON
		h.api(t, "GET", "/api/v1/status", &st)
		if st.Version != "test" || st.StartedAt.IsZero() || st.Store != "embedded" && st.Store != "redis" {
			t.Errorf("status = %+v", st)
		}
		var e relay.ErrorJSON
		if code := h.api(t, "GET", "/api/v1/nothing", &e); code != 404 || e.Error != "not_found" {
			t.Errorf("unknown endpoint: %d %+v, want 404 not_found", code, e)
		}
	})
}

// A pause is kept in the store: after a restart the target is still paused
// and its deliveries wait until it is resumed.
func TestPauseOutlastsRestart(t *testing.T) {
	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", ok)
	set := adminSettings(t, good, flaky)
	path := filepath.Join(t.TempDir(), "pause")
	open := func() relay.Store {
		s, err := pebblestore.Open(path, pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	h := startRelayOn(t, set, open())
	if st := h.api(t, "POST", "/api/v1/targets/flaky/pause", nil); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.store.Close()

	h = startRelayOn(t, set, open())
	id := h.send(t, videoBody("after_restart"))
	good.waitCount(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if flaky.count() != 0 {
		t.Fatal("a target paused before the restart got a delivery after it")
	}
	var ts struct{ Targets []relay.TargetJSON }
	h.api(t, "GET", "/api/v1/targets", &ts)
	if !ts.Targets[1].Paused {
		t.Errorf("after the restart flaky = %+v, want paused", ts.Targets[1])
	}
	h.api(t, "POST", "/api/v1/targets/flaky/resume", nil)
	flaky.waitCount(t, 1, 10*time.Second)
	if got := flaky.requests()[0].id(); got != id {
		t.Errorf("flaky got %s, want %s", got, id)
	}
}
