package relay_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/rules"
)

// Fan-out

func TestFanOutByTask(t *testing.T) {
	a, b, c := newSink(t, "a", ok), newSink(t, "b", ok), newSink(t, "c", ok)
	ta, tc := target(a), target(c)
	ta.Headers = map[string]string{"X-Team": "videos", "Authorization": "Bearer token-a"}
	tc.Headers = map[string]string{"X-Team": "avatars"}
	set := baseSettings()
	set.Targets = []relay.TargetSettings{ta, target(b), tc}
	set.Routes = routes(t,
		rules.Route{Name: "videos", Tasks: []string{"video_generate", "video_export"}, Targets: []string{"a", "b"}},
		rules.Route{Name: "avatars", Tasks: []string{"avatar_create", "avatar_edit"}, Targets: []string{"b", "c"}})
	h := startRelay(t, set, "")

	// Odd whitespace, key order, escapes and non-ASCII: the targets must
	// get these bytes, not a re-encoding.
	events := []struct {
		name    string
		body    string
		targets []string
	}{
		{"video_generate", "{\n  \"status\" : \"completed\",\t\"task\":\"video_generate\" ,\"job_id\":\"run_ünï_1\",\n\"result\":{\"z\":1,\"a\":2.50,\"note\":\"🎬 \\u00e9 \\\"q\\\" \\/\"}}  \n", []string{"a", "b"}},
		{"video_export", `{"job_id":"run_0002","task":"video_export","status":"failed","error":{"code":"X","message":"…"},"result":null}`, []string{"a", "b"}},
		{"avatar_create", `{ "task":"avatar_create","avatar_id":"avtr_1","look_id":"look_1","status":"completed","result":[1,2,3e2] }`, []string{"b", "c"}},
		{"avatar_edit", "{\"look_id\":\"look_edit_789\",\r\n\"avatar_id\":\"avtr_abc\",\"task\":\"avatar_edit\",\"status\":\"error\",\"error\":{\"code\":\"GENERATION_FAILED\",\"message\":\"日本語\"}}", []string{"b", "c"}},
	}
	sent := map[string]string{}     // event id -> body
	wantAt := map[string][]string{} // target -> event ids
	taskOf := map[string]string{}   // event id -> task
	for _, ev := range events {
		before := time.Now()
		r := h.post(t, "/hooks/hoox", ev.body)
		ans := r.answer(t)
		if r.status != http.StatusOK || ans.Status != "accepted" {
			t.Fatalf("%s: POST %q\n got %s\nwant 200 accepted", ev.name, ev.body, r)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: answer Content-Type %q, want application/json", ev.name, ct)
		}
		if ans.Targets == nil || !sameSet(*ans.Targets, ev.targets) {
			t.Errorf("%s: answer targets %v, want %v (answer %s)", ev.name, ans.Targets, ev.targets, r)
		}
		at, okID := relay.EventTime(ans.EventID)
		if !okID || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: event_id %q does not encode a receive time near now (got %v, ok %v)", ev.name, ans.EventID, at, okID)
		}
		if strings.ContainsAny(ans.EventID, "/?#%&+ ") {
			t.Errorf("%s: event_id %q is not URL-safe", ev.name, ans.EventID)
		}
		sent[ans.EventID] = ev.body
		taskOf[ans.EventID] = ev.name
		for _, tg := range ev.targets {
			wantAt[tg] = append(wantAt[tg], ans.EventID)
		}
	}

	t.Run("unrouted event answers targets []", func(t *testing.T) {
		r := h.post(t, "/hooks/hoox", `{"task":"image_upscale","status":"completed"}`)
		ans := r.answer(t)
		if r.status != http.StatusOK || ans.Status != "accepted" || !bytes.Contains(r.body, []byte(`"targets":[]`)) {
			t.Errorf("unrouted event: got %s, want 200 {\"status\":\"accepted\",\"event_id\":...,\"targets\":[]}", r)
		}
		sent[ans.EventID] = "unrouted"
	})

	extra := map[string]map[string]string{
		"a": {"X-Team": "videos", "Authorization": "Bearer token-a"},
		"c": {"X-Team": "avatars"},
	}
	for _, s := range []*sink{a, b, c} {
		t.Run("target "+s.name, func(t *testing.T) {
			want := wantAt[s.name]
			s.waitCount(t, len(want), 5*time.Second)
			got := s.requests()
			gotIDs := make([]string, len(got))
			for i, r := range got {
				gotIDs[i] = r.id()
			}
			if !sameSet(gotIDs, want) || len(gotIDs) != len(want) {
				t.Fatalf("target %s received Webhook-Ids %v, want exactly %v", s.name, gotIDs, want)
			}
			for _, r := range got {
				id := r.id()
				if string(r.body) != sent[id] {
					t.Errorf("target %s, event %s: body\n got %q\nwant %q (byte for byte)", s.name, id, r.body, sent[id])
				}
				checkHeader(t, s.name, r, "Content-Type", "application/json")
				checkHeader(t, s.name, r, "Hooxrelay-Task", taskOf[id])
				checkHeader(t, s.name, r, "Hooxrelay-Attempt", "1")
				if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "hooxrelay") {
					t.Errorf("target %s: User-Agent %q, want hooxrelay/<version>", s.name, ua)
				}
				ts, err := strconv.ParseInt(r.header.Get("Webhook-Timestamp"), 10, 64)
				if err != nil || math.Abs(float64(time.Now().Unix()-ts)) > 5 {
					t.Errorf("target %s: Webhook-Timestamp %q, want unix seconds near %d", s.name, r.header.Get("Webhook-Timestamp"), time.Now().Unix())
				}
				for k, v := range extra[s.name] {
					checkHeader(t, s.name, r, k, v)
				}
				if s.name == "b" {
					for _, k := range []string{"X-Team", "Authorization"} {
						if v := r.header.Get(k); v != "" {
							t.Errorf("target b got header %s: %q configured for another target", k, v)
						}
					}
				}
			}
		})
	}
}

func checkHeader(t *testing.T, target string, r recorded, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Errorf("target %s, event %s: header %s = %q, want %q", target, r.id(), name, got, want)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// Duplicates

func TestDuplicates(t *testing.T) {
	a, b := newSink(t, "a", ok), newSink(t, "b", ok)
	set := settingsFor(t, target(a), target(b))
	set.Sources = append(set.Sources, source("other"))
	h := startRelay(t, set, "")

	t.Run("serial", func(t *testing.T) {
		cases := []struct {
			name          string
			first, second string
			path2         string // where the second goes; "" = the same source
			wantDuplicate bool
		}{
			{"same body", videoBody("dup_1"), videoBody("dup_1"), "", true},
			{"same job and status, other fields differ", videoBody("dup_2"),
				`{"status":"completed","job_id":"dup_2","task":"video_generate","result":{"video_id":"other"}}`, "", true},
			{"same avatar and look", `{"task":"avatar_edit","avatar_id":"av1","look_id":"lk1","status":"completed"}`,
				`{"task":"avatar_edit","avatar_id":"av1","look_id":"lk1","status":"completed","result":{"x":1}}`, "", true},
			{"same job, other status", videoBody("dup_3"),
				`{"task":"video_generate","job_id":"dup_3","status":"failed"}`, "", false},
			{"same job, other task", videoBody("dup_4"),
				`{"task":"video_export","job_id":"dup_4","status":"completed"}`, "", false},
			{"same avatar, other look", `{"task":"avatar_create","avatar_id":"av2","look_id":"lk1","status":"completed"}`,
				`{"task":"avatar_create","avatar_id":"av2","look_id":"lk2","status":"completed"}`, "", false},
			{"same body, other source", videoBody("dup_5"), videoBody("dup_5"), "/hooks/other", false},
			{"unknown task, same body", `{"task":"image_upscale","status":"done","n":1}`,
				`{"task":"image_upscale","status":"done","n":1}`, "", true},
			{"unknown task, same fields, other bytes", `{"task":"image_upscale","status":"done","n":2}`,
				`{"task":"image_upscale", "status":"done","n":2}`, "", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				first := h.send(t, tc.first)
				path := cmp.Or(tc.path2, "/hooks/hoox")
				r := h.post(t, path, tc.second)
				ans := r.answer(t)
				if tc.wantDuplicate {
					want := `{"status":"duplicate","event_id":"` + first + `"}`
					if r.status != http.StatusOK || string(bytes.TrimSpace(r.body)) != want {
						t.Errorf("first POST %s -> %s\nthen POST %s %s\n got %s\nwant 200 %s", tc.first, first, path, tc.second, r, want)
					}
				} else if r.status != http.StatusOK || ans.Status != "accepted" || ans.EventID == first {
					t.Errorf("first POST %s -> %s\nthen POST %s %s\n got %s\nwant 200 accepted with a new event_id", tc.first, first, path, tc.second, r)
				}
			})
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		const n = 24
		body := videoBody("concurrent_1")
		start := make(chan struct{})
		answers := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = h.post(t, "/hooks/hoox", body)
			})
		}
		close(start)
		wg.Wait()
		accepted, duplicates := 0, 0
		var acceptedID string
		ids := map[string]int{}
		for _, r := range answers {
			a := r.answer(t)
			ids[a.EventID]++
			switch {
			case r.status == http.StatusOK && a.Status == "accepted":
				accepted++
				acceptedID = a.EventID
			case r.status == http.StatusOK && a.Status == "duplicate":
				duplicates++
			default:
				t.Errorf("concurrent POST %s: got %s, want 200 accepted or duplicate", body, r)
			}
		}
		if accepted != 1 || duplicates != n-1 || len(ids) != 1 {
			t.Fatalf("%d concurrent POSTs of one payload: %d accepted, %d duplicate, event ids %v; want 1 accepted, %d duplicate, one event id",
				n, accepted, duplicates, ids, n-1)
		}
		// Every delivery of this event has been created by now (at
		// ingest); once each target has it and the relay counted one
		// delivery per target, a second copy can only be a bug.
		for _, s := range []*sink{a, b} {
			storetest.Eventually(t, 5*time.Second, func() error {
				if got := s.ids()[acceptedID]; got != 1 {
					return fmt.Errorf("target %s received event %s %d times, want 1", s.name, acceptedID, got)
				}
				return nil
			})
		}
		// Send a marker after and wait for it: a second copy of the
		// duplicated event would have been queued before the marker.
		marker := h.send(t, videoBody("concurrent_marker"))
		for _, s := range []*sink{a, b} {
			storetest.Eventually(t, 5*time.Second, func() error {
				if s.ids()[marker] == 0 {
					return fmt.Errorf("target %s has not received marker %s yet", s.name, marker)
				}
				return nil
			})
			if got := s.ids()[acceptedID]; got != 1 {
				t.Errorf("target %s received the concurrently sent event %s %d times, want exactly 1", s.name, acceptedID, got)
			}
		}
		m := h.metrics(t)
		if v, _ := m.value("hooxrelay_ingress_requests_total", map[string]string{"outcome": "duplicate", "task": "video_generate"}); v < n-1 {
			t.Errorf("hooxrelay_ingress_requests_total{outcome=duplicate} = %v, want at least %d", v, n-1)
		}
	})
}

// Every ingress answer of docs/http.md

func TestIngressAnswers(t *testing.T) {
	a := newSink(t, "a", ok)
	set := settingsFor(t, target(a))
	limited := source("limited")
	limited.RateLimit = relay.RateLimit{RPS: 1, Burst: 2}
	set.Sources = append(set.Sources, limited)
	h := startRelay(t, set, "")

	expectJSON := func(t *testing.T, what string, r reply, status int, body string) {
		t.Helper()
		if r.status != status || string(bytes.TrimSpace(r.body)) != body {
			t.Errorf("%s\n got %s\nwant %d %s", what, r, status, body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
	}

	t.Run("200 accepted", func(t *testing.T) {
		body := videoBody("answers_1")
		r := h.post(t, "/hooks/hoox", body)
		ans := r.answer(t)
		want := `{"status":"accepted","event_id":"` + ans.EventID + `","targets":["a"]}`
		expectJSON(t, "POST "+body, r, http.StatusOK, want)
		if !strings.HasPrefix(ans.EventID, "evt_") {
			t.Errorf("event_id %q, want evt_<ulid>", ans.EventID)
		}
		t.Run("200 duplicate", func(t *testing.T) {
			r := h.post(t, "/hooks/hoox", body)
			expectJSON(t, "POST the same "+body, r, http.StatusOK, `{"status":"duplicate","event_id":"`+ans.EventID+`"}`)
		})
	})

	t.Run("400 invalid_payload", func(t *testing.T) {
		cases := []struct {
			name, body, field string // field "" = the body as a whole
		}{
			{"not JSON", `{"task":`, ""},
			{"not JSON at all", `task=video_generate`, ""},
			{"empty body", ``, ""},
			{"JSON array", `[{"task":"video_generate","job_id":"j","status":"completed"}]`, ""},
			{"JSON string", `"video_generate"`, ""},
			{"null", `null`, ""},
			{"trailing garbage", videoBody("trailing") + `x`, ""},
			{"missing task", `{"job_id":"j","status":"completed"}`, "task"},
			{"empty task", `{"task":"","job_id":"j","status":"completed"}`, "task"},
			{"task not a string", `{"task":7,"job_id":"j","status":"completed"}`, "task"},
			{"task null", `{"task":null,"status":"completed"}`, "task"},
			{"video task missing job_id", `{"task":"video_generate","status":"completed"}`, "job_id"},
			{"video task empty job_id", `{"task":"video_export","job_id":"","status":"completed"}`, "job_id"},
			{"video task job_id a number", `{"task":"video_export","job_id":12,"status":"completed"}`, "job_id"},
			{"avatar task missing avatar_id", `{"task":"avatar_create","look_id":"l","status":"completed"}`, "avatar_id"},
			{"avatar task missing look_id", `{"task":"avatar_edit","avatar_id":"a","status":"completed"}`, "look_id"},
			{"status missing", `{"task":"video_generate","job_id":"j"}`, "status"},
			{"status a number", `{"task":"video_generate","job_id":"j","status":200}`, "status"},
			{"status empty", `{"task":"avatar_edit","avatar_id":"a","look_id":"l","status":""}`, "status"},
			{"unknown task missing status", `{"task":"image_upscale"}`, "status"},
			{"line break in task", `{"task":"evil\r\nX-Injected: 1","status":"s"}`, "task"},
			{"job_id not UTF-8", "{\"task\":\"video_generate\",\"job_id\":\"z\xff\",\"status\":\"s\"}", "job_id"},
			{"lone surrogate in status", `{"task":"video_generate","job_id":"j","status":"\ud800"}`, "status"},
			{"task twice", `{"task":"image_upscale","task":"video_generate","job_id":"j","status":"s"}`, "task"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := h.post(t, "/hooks/hoox", tc.body)
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("POST %q: Content-Type %q, want application/json", tc.body, ct)
				}
				var got map[string]any
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatalf("POST %q: answer %s is not JSON: %v", tc.body, r, err)
				}
				msg, _ := got["message"].(string)
				field, hasField := got["field"]
				keys := slices.Sorted(maps.Keys(got))
				wantKeys := []string{"error", "message"}
				if tc.field != "" {
					wantKeys = []string{"error", "field", "message"}
				}
				if r.status != http.StatusBadRequest || got["error"] != "invalid_payload" || msg == "" ||
					!slices.Equal(keys, wantKeys) || (tc.field != "" && field != tc.field) || (tc.field == "" && hasField) {
					t.Errorf("POST %q\n got %s\nwant 400 {\"error\":\"invalid_payload\",\"message\":\"…\"%s}", tc.body, r,
						map[bool]string{true: `,"field":"` + tc.field + `"`, false: ""}[tc.field != ""])
				}
			})
		}
		// Nothing refused is stored or delivered: once a valid marker sent
		// after them arrives, no refused body may have.
		marker := h.send(t, videoBody("after_invalid"))
		storetest.Eventually(t, 3*time.Second, func() error {
			if a.ids()[marker] == 0 {
				return fmt.Errorf("target has not received marker %s yet", marker)
			}
			return nil
		})
		for _, r := range a.requests() {
			for _, tc := range cases {
				if string(r.body) == tc.body {
					t.Errorf("invalid payload %q (%s) was delivered to the target", tc.body, tc.name)
				}
			}
		}
	})

	t.Run("404 not_found", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{
			{http.MethodPost, "/hooks/nope"},
			{http.MethodPost, "/hooks/hoox/"},
			{http.MethodPost, "/"},
			{http.MethodGet, "/hooks"},
		} {
			r := h.do(t, tc.method, h.url+tc.path, strings.NewReader(videoBody("x")), nil)
			expectJSON(t, tc.method+" "+tc.path, r, http.StatusNotFound, `{"error":"not_found"}`)
		}
	})

	t.Run("405 method_not_allowed", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			var body io.Reader
			if m != http.MethodGet {
				body = strings.NewReader(videoBody("method"))
			}
			r := h.do(t, m, h.url+"/hooks/hoox", body, nil)
			expectJSON(t, m+" /hooks/hoox", r, http.StatusMethodNotAllowed, `{"error":"method_not_allowed"}`)
			if allow := r.header.Get("Allow"); allow != "POST" {
				t.Errorf("%s /hooks/hoox: Allow %q, want POST", m, allow)
			}
		}
	})

	t.Run("413 payload_too_large", func(t *testing.T) {
		max := int(h.settings.Server.MaxBodyBytes) // 1024
		cases := []struct {
			name    string
			size    int
			chunked bool // no Content-Length: the limit must hold while reading
			want    int
		}{
			{"exactly max_body_bytes with Content-Length", max, false, http.StatusOK},
			{"exactly max_body_bytes, chunked", max, true, http.StatusOK},
			{"one byte over with Content-Length", max + 1, false, http.StatusRequestEntityTooLarge},
			{"far over with Content-Length", 64 * max, false, http.StatusRequestEntityTooLarge},
			{"one byte over, chunked", max + 1, true, http.StatusRequestEntityTooLarge},
			{"far over, chunked", 64 * max, true, http.StatusRequestEntityTooLarge},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// A valid webhook padded with whitespace, its own job id
				// each time so that the accepted cases are not duplicates.
				valid := videoBody(fmt.Sprintf("size_%d", i))
				body := valid + strings.Repeat(" ", tc.size-len(valid))
				var rd io.Reader = strings.NewReader(body)
				if tc.chunked {
					rd = io.MultiReader(rd) // hides the length from net/http
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/hooks/hoox", rd)
				if err != nil {
					t.Fatal(err)
				}
				if tc.chunked != (req.ContentLength == 0) {
					t.Fatalf("test setup: chunked %v but ContentLength %d", tc.chunked, req.ContentLength)
				}
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatalf("POST %d bytes: %v", tc.size, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := reply{status: resp.StatusCode, header: resp.Header, body: b}
				what := fmt.Sprintf("POST %d bytes (max_body_bytes %d, chunked %v)", tc.size, max, tc.chunked)
				if tc.want == http.StatusOK {
					if r.status != http.StatusOK || r.answer(t).Status != "accepted" {
						t.Errorf("%s: got %s, want 200 accepted", what, r)
					}
					return
				}
				expectJSON(t, what, r, http.StatusRequestEntityTooLarge,
					`{"error":"payload_too_large","message":"the body is over the limit of 1024 bytes (server.max_body_bytes)"}`)
			})
		}
	})

	t.Run("415 unsupported_encoding", func(t *testing.T) {
		for _, coding := range []string{"gzip", "GZIP", "identity, br", "x-custom"} {
			r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader("\x1f\x8b\x08 not JSON"),
				http.Header{"Content-Encoding": {coding}})
			name := strings.TrimSpace(coding[strings.LastIndex(coding, ",")+1:])
			expectJSON(t, "POST with Content-Encoding "+coding, r, http.StatusUnsupportedMediaType,
				`{"error":"unsupported_encoding","message":"Content-Encoding \"`+name+`\" is not accepted: send the JSON body as it is, without Content-Encoding"}`)
			if ae := r.header.Get("Accept-Encoding"); ae != "identity" {
				t.Errorf("415 Accept-Encoding %q, want identity", ae)
			}
		}
		// identity is no coding at all.
		r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(videoBody("identity")), http.Header{"Content-Encoding": {"identity"}})
		if r.status != http.StatusOK {
			t.Errorf("POST with Content-Encoding identity: %s, want 200", r)
		}
	})

	t.Run("429 rate_limited", func(t *testing.T) {
		// rps 1, burst 2: two pass at once, the third is refused. Invalid
		// bodies are enough: the limit is checked before the body.
		var got []reply
		for range 3 {
			got = append(got, h.post(t, "/hooks/limited", `{}`))
		}
		for i, r := range got[:2] {
			if r.status != http.StatusBadRequest {
				t.Errorf("request %d within the burst of 2: got %s, want 400 (passed the rate limit, refused as invalid)", i+1, r)
			}
		}
		expectJSON(t, "third request within a second at rps 1 burst 2", got[2], http.StatusTooManyRequests, `{"error":"rate_limited"}`)
		if ra, err := strconv.Atoi(got[2].header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
			t.Errorf("429 Retry-After %q, want a whole number of seconds, 1 or 2", got[2].header.Get("Retry-After"))
		}
		// The limit is per source: the unlimited source still accepts.
		h.send(t, videoBody("not_limited"))
	})
}

func TestIngressStoreFailure(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, settingsFor(t, target(a)), "", func(o *pebblestore.Options) {
		// No background pruning: closing the store right after opening it
		// races with the pruner.
		o.Retention, o.DedupTTL = 0, 0
	})
	h.send(t, videoBody("before_failure"))
	if r := h.admin(t, "/readyz"); r.status != http.StatusOK {
		t.Fatalf("GET /readyz with a working store: got %s, want 200", r)
	}
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	body := videoBody("after_failure")
	r := h.post(t, "/hooks/hoox", body)
	if r.status != http.StatusServiceUnavailable || string(bytes.TrimSpace(r.body)) != `{"error":"unavailable"}` ||
		r.header.Get("Content-Type") != "application/json" {
		t.Errorf("POST %s with the store closed\n got %s\nwant 503 {\"error\":\"unavailable\"}", body, r)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	if r := h.admin(t, "/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the store closed: got %s, want 503", r)
	}
	if r := h.admin(t, "/healthz"); r.status != http.StatusOK {
		t.Errorf("GET /healthz with the store closed: got %s, want 200 (the process runs)", r)
	}
	if v := h.metric(t, "hooxrelay_ingress_requests_total", map[string]string{"outcome": "unavailable"}); v != 1 {
		t.Errorf("hooxrelay_ingress_requests_total{outcome=unavailable} = %v, want 1", v)
	}
}
