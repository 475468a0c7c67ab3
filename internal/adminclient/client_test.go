package adminclient_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
)

// TestClient calls every endpoint of a real relay whose audit target
// refuses some events for good.
func TestClient(t *testing.T) {
	r := startRelay(t)
	c := r.client()
	ctx := t.Context()
	evs := []string{
		r.send(t, `{"task":"video_generate","job_id":"run_1","status":"completed","result":{"video_id":"v1","cost":5}}`),
		r.send(t, `{"task":"video_generate","job_id":"run_2","status":"error","error":{"code":"GENERATION_FAILED","message":"the model gave up"}}`),
		r.send(t, `{"task":"avatar_create","avatar_id":"avtr_1","look_id":"look_1","status":"error","error":{"code":"X"}}`),
		r.send(t, `{"task":"avatar_create","avatar_id":"avtr_2","look_id":"look_2","status":"completed"}`),
	}
	r.waitCounts(t, map[string][2]int{"media": {0, 2}, "audit": {2, 2}})

	t.Run("status", func(t *testing.T) {
		st, err := c.Status(ctx)
		if err != nil || st.Version != "test" || st.ConfigHash != "0123456789ab" || st.Store != "embedded" || st.StartedAt.IsZero() {
			t.Errorf("Status() = %+v, %v; want version test, config hash 0123456789ab, store embedded and a start time", st, err)
		}
	})

	t.Run("targets", func(t *testing.T) {
		ts, err := c.Targets(ctx)
		want := []relay.TargetJSON{
			{Name: "media", URL: r.targetURL + "/media", Breaker: "closed", Delivered: 2},
			{Name: "audit", URL: r.targetURL + "/audit", Breaker: "closed", Dead: 2, Delivered: 2},
		}
		if err != nil || !slices.Equal(ts, want) {
			t.Errorf("Targets() = %+v, %v; want %+v", ts, err, want)
		}
	})

	t.Run("events", func(t *testing.T) {
		for _, tc := range []struct {
			filter adminclient.EventFilter
			want   []string
		}{
			{adminclient.EventFilter{}, []string{evs[3], evs[2], evs[1], evs[0]}},
			{adminclient.EventFilter{Status: "error"}, []string{evs[2], evs[1]}},
			{adminclient.EventFilter{Task: "video_generate"}, []string{evs[1], evs[0]}},
			{adminclient.EventFilter{Limit: 2}, []string{evs[3], evs[2]}},
			{adminclient.EventFilter{Limit: 2, Before: evs[2]}, []string{evs[1], evs[0]}},
			{adminclient.EventFilter{Task: "voice_clone"}, []string{}},
		} {
			es, err := c.Events(ctx, tc.filter)
			if got := eventIDs(es); err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Events(%+v) listed %v, %v; want %v", tc.filter, got, err, tc.want)
			}
		}
		es, err := c.Events(ctx, adminclient.EventFilter{Limit: 1})
		want := []relay.DeliveryStateJSON{{Target: "audit", State: relay.Delivered, Attempts: 1}}
		if err != nil || len(es) != 1 || es[0].Task != "avatar_create" || es[0].Status != "completed" || !slices.Equal(es[0].Deliveries, want) {
			t.Errorf("Events(limit 1) = %+v, %v; want the last avatar_create, completed, with deliveries %+v", es, err, want)
		}
	})

	t.Run("event", func(t *testing.T) {
		ev, err := c.Event(ctx, evs[1])
		if err != nil || ev.EventID != evs[1] || len(ev.Deliveries) != 2 {
			t.Fatalf("Event(%s) = %+v, %v; want it with 2 deliveries", evs[1], ev, err)
		}
		var payload struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(ev.Payload, &payload); err != nil || payload.JobID != "run_2" {
			t.Errorf("Event(%s).Payload = %s; want the payload sent, job_id run_2", evs[1], ev.Payload)
		}
		d := ev.Deliveries[1]
		if d.DeliveryID != evs[1]+":audit" || d.State != relay.Dead || len(d.History) != 1 || d.History[0].Status != http.StatusGone {
			t.Errorf("Event(%s).Deliveries[1] = %+v; want %s:audit dead after one attempt answered 410", evs[1], d, evs[1])
		}
	})

	t.Run("deliveries", func(t *testing.T) {
		for _, tc := range []struct {
			filter adminclient.DeliveryFilter
			want   []string
		}{
			{adminclient.DeliveryFilter{Target: "media"}, []string{evs[1] + ":media", evs[0] + ":media"}},
			{adminclient.DeliveryFilter{State: relay.Dead}, []string{evs[2] + ":audit", evs[1] + ":audit"}},
			{adminclient.DeliveryFilter{State: relay.Delivered, Target: "audit", Limit: 1}, []string{evs[3] + ":audit"}},
			{adminclient.DeliveryFilter{Target: "media", Before: evs[1] + ":media"}, []string{evs[0] + ":media"}},
			{adminclient.DeliveryFilter{State: relay.Pending}, []string{}},
		} {
			ds, err := c.Deliveries(ctx, tc.filter)
			if got := deliveryIDs(ds); err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Deliveries(%+v) listed %v, %v; want %v", tc.filter, got, err, tc.want)
			}
		}
	})

	t.Run("retry", func(t *testing.T) {
		r.target.gone.Store(false)
		defer r.target.gone.Store(true)
		id := evs[2] + ":audit"
		d, err := c.Retry(ctx, id)
		if err != nil || d.DeliveryID != id || d.State != relay.Pending || d.Attempts != 1 {
			t.Fatalf("Retry(%s) = %+v, %v; want it pending after 1 attempt", id, d, err)
		}
		r.waitCounts(t, map[string][2]int{"audit": {1, 3}})
		// Now that it is delivered, a second retry sends it again, as a
		// replay.
		d, err = c.Retry(ctx, id)
		if err != nil || d.DeliveryID != id || !strings.HasPrefix(d.ReplayID, "rpl_") {
			t.Fatalf("Retry of a delivered delivery = %+v, %v; want it resent by a replay", d, err)
		}
		r.waitCounts(t, map[string][2]int{"audit": {1, 3}})
	})

	t.Run("retry-dead", func(t *testing.T) {
		for i := range 5 {
			r.send(t, fmt.Sprintf(`{"task":"avatar_create","avatar_id":"avtr_x%d","look_id":"l","status":"error"}`, i))
		}
		r.waitCounts(t, map[string][2]int{"audit": {6, 3}})

		// While audit still refuses them they die again at once; the
		// client stops at the 6 that were dead when it started.
		var steps [][2]int
		progress := func(done, total int) { steps = append(steps, [2]int{done, total}) }
		n, err := c.RetryDead(ctx, "audit", 2, progress)
		if want := [][2]int{{2, 6}, {4, 6}, {6, 6}}; n != 6 || err != nil || !slices.Equal(steps, want) {
			t.Errorf("RetryDead(audit, chunk 2) = %d, %v with progress %v; want 6 with progress %v", n, err, steps, want)
		}
		r.waitCounts(t, map[string][2]int{"audit": {6, 3}})

		r.target.gone.Store(false)
		defer r.target.gone.Store(true)
		steps = nil
		if n, err := c.RetryDead(ctx, "audit", 0, progress); n != 6 || err != nil || !slices.Equal(steps, [][2]int{{6, 6}}) {
			t.Errorf("RetryDead(audit, default chunk) = %d, %v with progress %v; want 6 in one chunk", n, err, steps)
		}
		r.waitCounts(t, map[string][2]int{"audit": {0, 9}})
		steps = nil
		if n, err := c.RetryDead(ctx, "audit", 0, progress); n != 0 || err != nil || steps != nil {
			t.Errorf("RetryDead(audit) with none dead = %d, %v with progress %v; want 0 and no progress", n, err, steps)
		}
		if n, err := c.RetryDead(ctx, "nowhere", 0, nil); n != 0 || err == nil || err.Error() != `target "nowhere" is not in the relay's config; hooxrelay targets lists them` {
			t.Errorf("RetryDead(nowhere) = %d, %v; want 0 and an error saying the target is not in the config", n, err)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			call   func(c *adminclient.Client) (relay.PauseJSON, error)
			paused bool
		}{
			{"Pause", func(c *adminclient.Client) (relay.PauseJSON, error) { return c.Pause(ctx, "audit") }, true},
			{"Resume", func(c *adminclient.Client) (relay.PauseJSON, error) { return c.Resume(ctx, "audit") }, false},
		} {
			ans, err := tc.call(c)
			if want := (relay.PauseJSON{Name: "audit", Paused: tc.paused}); ans != want || err != nil {
				t.Errorf("%s(audit) = %+v, %v; want %+v", tc.name, ans, err, want)
			}
			ts, err := c.Targets(ctx)
			if err != nil || len(ts) != 2 || ts[1].Paused != tc.paused {
				t.Errorf("after %s(audit), Targets() = %+v, %v; want audit's Paused %v", tc.name, ts, err, tc.paused)
			}
		}
		_, err := c.Pause(ctx, "nowhere")
		wantAPIError(t, "Pause(nowhere)", err, http.StatusNotFound, "not_found", `target "nowhere" is not in the config; GET /api/v1/targets lists them`)
	})

	t.Run("unknown ids", func(t *testing.T) {
		_, err := c.Event(ctx, "evt_00000000000000000000000000")
		wantAPIError(t, "Event of an unknown id", err, http.StatusNotFound, "not_found", `event "evt_00000000000000000000000000" not found`)
		_, err = c.Retry(ctx, "evt_00000000000000000000000000:audit")
		wantAPIError(t, "Retry of an unknown delivery", err, http.StatusNotFound, "not_found", "not found")
	})

	t.Run("token", func(t *testing.T) {
		for _, token := range []string{"nope", ""} {
			bad := r.client()
			bad.Token = token
			_, err := bad.Targets(ctx)
			wantAPIError(t, fmt.Sprintf("Targets with the token %q", token), err, http.StatusUnauthorized, "unauthorized",
				"the admin API refused the token (set --token or HOOXRELAY_ADMIN_TOKEN)")
		}
	})

	t.Run("answer", func(t *testing.T) {
		// Answer gets the body as the relay sent it, which the --json of
		// the commands prints.
		var got []byte
		raw := r.client()
		raw.Answer = func(body []byte) error { got = body; return nil }
		st, err := raw.Status(ctx)
		var sent relay.StatusJSON
		if err != nil || json.Unmarshal(got, &sent) != nil || sent.ConfigHash != st.ConfigHash || !sent.StartedAt.Equal(st.StartedAt) ||
			!strings.HasSuffix(string(got), "}\n") {
			t.Errorf("Status() with Answer = %+v, %v; Answer got %q, want the answer as sent, decoding to the same", st, err, got)
		}
		broken := errors.New("stdout is closed")
		raw.Answer = func([]byte) error { return broken }
		if _, err := raw.Targets(ctx); !errors.Is(err, broken) {
			t.Errorf("Targets() with an Answer that fails = %v, want its error", err)
		}
	})
}

// wantAPIError checks that err is an *APIError with status and code, whose
// message contains msg.
func wantAPIError(t *testing.T, call string, err error, status int, code, msg string) {
	t.Helper()
	var ae *adminclient.APIError
	if !errors.As(err, &ae) || ae.StatusCode != status || ae.Code != code || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s returned %#v (%v); want an *APIError %d %s saying %q", call, err, err, status, code, msg)
	}
}

func eventIDs(es []relay.EventJSON) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.EventID)
	}
	return ids
}

func deliveryIDs(ds []relay.DeliveryJSON) []string {
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.DeliveryID)
	}
	return ids
}

// TestAnswersOfSomethingElse points the client at servers that are not a
// healthy admin API, or at nothing, and expects one line saying what to
// check.
func TestAnswersOfSomethingElse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		msg     string
	}{
		{"store down", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"unavailable","message":"the store did not answer: timeout"}`)
		}, "the relay is unavailable: the store did not answer: timeout; try again in 1s"},
		{"store down, no Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"unavailable","message":"shutting down"}`)
		}, "the relay is unavailable: shutting down; try again"},
		{"another server's 404", http.NotFound, "answered 404 Not Found to GET /api/v1/targets; is --admin the relay's admin_listen address?"},
		{"another server's 401", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "who are you", http.StatusUnauthorized)
		}, "the admin API refused the token (set --token or HOOXRELAY_ADMIN_TOKEN)"},
		{"another server's 200", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"ok":true}`)
		}, `is not the admin API's (no "targets" in it); is --admin the relay's admin_listen address?`},
		{"a 200 that is not JSON", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<html>`)
		}, `is not the admin API's (invalid character '<'`},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "did not answer within 100ms (is the relay overloaded? raise --timeout)"},
		{"nothing listening", nil, "cannot reach the admin API at " + unreachable + " (is the relay running? is --admin right?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only the slow server needs a short timeout; the others get a
			// long one, so that a loaded machine does not turn their
			// answers into timeouts.
			timeout := 10 * time.Second
			if tc.name == "too slow" {
				timeout = 100 * time.Millisecond
			}
			c := &adminclient.Client{URL: unreachable, Timeout: timeout}
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				defer srv.Close()
				c.URL = srv.URL
			}
			ts, err := c.Targets(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Targets() against %s = %v, %v; want one line with %q", tc.name, ts, err, tc.msg)
			}
		})
	}
}

// TestRequest checks what the client sends: the method, path and query of
// each call, the token, Accept and User-Agent.
func TestRequest(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s|%s|%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Accept")))
		mu.Unlock()
		if ua := r.UserAgent(); ua != "hooxrelay-cli/test" {
			t.Errorf("%s %s: User-Agent %q, want hooxrelay-cli/test", r.Method, r.URL, ua)
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/retry-dead"):
			io.WriteString(w, `{"requeued":1}`)
		case r.URL.Path == "/prefix/api/v1/targets":
			io.WriteString(w, `{"targets":[{"name":"a b","dead":1}]}`)
		default:
			// Every field any call looks for.
			io.WriteString(w, `{"events":[],"deliveries":[],"event_id":"x","delivery_id":"x","paused":true,"started_at":"2024-01-15T10:30:00Z"}`)
		}
	}))
	defer srv.Close()
	c := &adminclient.Client{URL: srv.URL + "/prefix", Token: "tok", UserAgent: "hooxrelay-cli/test"}
	ctx := t.Context()
	calls := []func() error{
		func() error { _, err := c.Status(ctx); return err },
		func() error { _, err := c.Targets(ctx); return err },
		func() error {
			_, err := c.Events(ctx, adminclient.EventFilter{Task: "video_generate", Status: "error", Before: "evt_1", Limit: 10})
			return err
		},
		func() error { _, err := c.Events(ctx, adminclient.EventFilter{}); return err },
		func() error { _, err := c.Event(ctx, "evt/1"); return err },
		func() error {
			_, err := c.Deliveries(ctx, adminclient.DeliveryFilter{State: relay.Dead, Target: "media", Before: "evt_1:media", Limit: 5})
			return err
		},
		func() error { _, err := c.Retry(ctx, "evt_1:media"); return err },
		func() error { _, err := c.RetryDead(ctx, "a b", 0, nil); return err },
		func() error { _, err := c.Pause(ctx, "a b"); return err },
		func() error { _, err := c.Resume(ctx, "a b"); return err },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	want := []string{
		"GET /prefix/api/v1/status |Bearer tok|application/json",
		"GET /prefix/api/v1/targets |Bearer tok|application/json",
		"GET /prefix/api/v1/events before=evt_1&limit=10&status=error&task=video_generate|Bearer tok|application/json",
		"GET /prefix/api/v1/events |Bearer tok|application/json",
		"GET /prefix/api/v1/events/evt%2F1 |Bearer tok|application/json",
		"GET /prefix/api/v1/deliveries before=evt_1%3Amedia&limit=5&state=dead&target=media|Bearer tok|application/json",
		"POST /prefix/api/v1/deliveries/evt_1:media/retry |Bearer tok|application/json",
		"GET /prefix/api/v1/targets |Bearer tok|application/json",
		"POST /prefix/api/v1/targets/a%20b/retry-dead limit=1|Bearer tok|application/json",
		"POST /prefix/api/v1/targets/a%20b/pause |Bearer tok|application/json",
		"POST /prefix/api/v1/targets/a%20b/resume |Bearer tok|application/json",
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("the calls sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
