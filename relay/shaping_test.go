package relay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// legacy is a legacy endpoint: it records each request as it came off the
// wire (method, request URI, headers, body) and answers as respond says.
type legacy struct {
	url     string
	mu      sync.Mutex
	reqs    []legacyReq
	respond func(r *http.Request) int
}

type legacyReq struct {
	method, uri string
	header      http.Header
	body        []byte
}

func newLegacy(t *testing.T, respond func(*http.Request) int) *legacy {
	t.Helper()
	l := &legacy{respond: respond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.reqs = append(l.reqs, legacyReq{r.Method, r.RequestURI, r.Header.Clone(), body})
		respond := l.respond
		l.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

func (l *legacy) requests() []legacyReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]legacyReq(nil), l.reqs...)
}

// shaped is a target called name delivering to base+path, shaped as req.
func shaped(l *legacy, name, path string, req shape.Settings) relay.TargetSettings {
	tg := target(&sink{name: name, url: l.url + path})
	tg.Request = req
	tg.Retry.MaxAttempts = 1
	return tg
}

func waitDelivery(t *testing.T, h *relayHarness, id, target string, want relay.State) relay.Delivery {
	t.Helper()
	var d relay.Delivery
	storetest.Eventually(t, 5*time.Second, func() error {
		var err error
		if d, _, err = h.store.LoadDelivery(t.Context(), id+":"+target); err != nil {
			return err
		}
		if d.State != want {
			return fmt.Errorf("delivery %s:%s is %s (%q), want %s", id, target, d.State, d.LastError, want)
		}
		return nil
	})
	return d
}

// Method, an escaped path id, header templates, a jq body, basic auth and
// the signature, end to end: the target gets exactly the shaped request,
// and the signature verifies over the bytes it got.
func TestShapedRequestEndToEnd(t *testing.T) {
	l := newLegacy(t, nil)
	tg := shaped(l, "billing", "/api/jobs/{job_id}/done?video={result.video_id}", shape.Settings{
		Method:  "PUT",
		Headers: map[string]string{"X-Job": "{job_id}", "X-State": "{status}"},
		Body:    `{id: .job_id, state: (if .status == "completed" then "DONE" else "FAILED" end), cost: .result.cost}`,
		Auth:    shape.Auth{Kind: "basic", Username: "relay", Password: "s3cret"},
	})
	tg.SigningSecrets = []string{whsecA}
	tg.Headers = map[string]string{"X-Static": "yes"}
	h := startRelay(t, settingsFor(t, tg), "")
	body := `{"task":"video_generate","job_id":"run/01 a","status":"completed","result":{"video_id":"v 1","cost":5}}`
	id := h.send(t, body)
	waitDelivery(t, h, id, "billing", relay.Delivered)

	reqs := l.requests()
	if len(reqs) != 1 {
		t.Fatalf("the target got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wantBody := `{"cost":5,"id":"run/01 a","state":"DONE"}`
	if r.method != "PUT" || r.uri != "/api/jobs/run%2F01%20a/done?video=v+1" || string(r.body) != wantBody {
		t.Errorf("the target got %s %s %s\nwant PUT /api/jobs/run%%2F01%%20a/done?video=v+1 %s", r.method, r.uri, r.body, wantBody)
	}
	for name, want := range map[string]string{
		"X-Job": "run/01 a", "X-State": "completed", "X-Static": "yes",
		"Authorization": "Basic cmVsYXk6czNjcmV0", "Content-Type": "application/json",
		"Webhook-Id": id, "Hooxrelay-Task": "video_generate", "Hooxrelay-Attempt": "1",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	v, err := verify.New(verify.Settings{Kind: verify.KindStandardWebhooks, Secrets: []string{whsecA}, Tolerance: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.header, nil, r.body, time.Now()); err != nil {
		t.Errorf("Webhook-Signature does not verify over the body sent: %v", err)
	}
	if err := v.Verify(r.header, nil, []byte(body), time.Now()); err == nil {
		t.Errorf("Webhook-Signature verifies over the original payload; it must sign the bytes sent")
	}
}

// format: form with bearer auth: an old PHP endpoint reads $_POST.
func TestShapedFormWithBearer(t *testing.T) {
	l := newLegacy(t, func(r *http.Request) int {
		if r.Header.Get("Authorization") != "Bearer tkn-1" {
			return http.StatusForbidden
		}
		return http.StatusOK
	})
	tg := shaped(l, "php", "/notify.php", shape.Settings{
		Format: "form",
		Body:   `{job: .job_id, ok: (.status == "completed"), cost: .result.cost, note: "a&b=c"}`,
		Auth:   shape.Auth{Kind: "bearer", Token: "tkn-1"},
	})
	h := startRelay(t, settingsFor(t, tg), "")
	id := h.send(t, videoBody("run 7"))
	waitDelivery(t, h, id, "php", relay.Delivered)
	r := l.requests()[0]
	if ct := r.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q, want application/x-www-form-urlencoded", ct)
	}
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatalf("the body %q is not a form: %v", r.body, err)
	}
	want := url.Values{"job": {"run 7"}, "ok": {"true"}, "cost": {"5"}, "note": {"a&b=c"}}
	if fmt.Sprint(form) != fmt.Sprint(want) {
		t.Errorf("the PHP endpoint read the form %v from %q, want %v", form, r.body, want)
	}
}

// OAuth2 client credentials against a local token endpoint: one token
// serves many deliveries; when the target refuses it (401), the attempt
// fetches one new token and repeats the request, still attempt 1.
func TestShapedOAuth2(t *testing.T) {
	var mu sync.Mutex
	issued, valid := 0, ""
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		if id != "relay" || secret != "cs" || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "jobs:write" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		issued++
		valid = fmt.Sprint("tok-", issued)
		tok := valid
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(tokens.Close)
	l := newLegacy(t, func(r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+valid {
			return http.StatusUnauthorized
		}
		return http.StatusOK
	})
	tg := shaped(l, "svc", "/jobs", shape.Settings{Auth: shape.Auth{
		Kind: "oauth2", TokenURL: tokens.URL + "/oauth/token", ClientID: "relay", ClientSecret: "cs", Scopes: []string{"jobs:write"},
	}})
	h := startRelay(t, settingsFor(t, tg), "")
	var ids []string
	for i := range 5 {
		ids = append(ids, h.send(t, videoBody(fmt.Sprint("oauth_", i))))
	}
	for _, id := range ids {
		waitDelivery(t, h, id, "svc", relay.Delivered)
	}
	mu.Lock()
	if issued != 1 {
		t.Errorf("%d tokens fetched for 5 deliveries, want 1 (cached until it expires)", issued)
	}
	valid = "revoked" // the service no longer takes tok-1
	mu.Unlock()

	id := h.send(t, videoBody("oauth_after_revoke"))
	d := waitDelivery(t, h, id, "svc", relay.Delivered)
	mu.Lock()
	if issued != 2 {
		t.Errorf("%d tokens fetched after a 401, want 2 (one new token)", issued)
	}
	mu.Unlock()
	if d.Attempts != 1 {
		t.Errorf("the delivery took %d attempts, want 1 (the request is repeated within the attempt)", d.Attempts)
	}
	reqs := l.requests()
	last2 := reqs[len(reqs)-2:]
	for i, want := range []string{"Bearer tok-1", "Bearer tok-2"} {
		if got := last2[i].header.Get("Authorization"); got != want || last2[i].header.Get("Hooxrelay-Attempt") != "1" {
			t.Errorf("request %d after the revocation: Authorization %q attempt %s, want %q attempt 1", i+1, got, last2[i].header.Get("Hooxrelay-Attempt"), want)
		}
	}
}

// A delivery that cannot be shaped goes dead at once, with the reason,
// without a request and without touching the breaker.
func TestShapingFailureIsDeadWithoutRequest(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		set        shape.Settings
		want       string
		body       string // "": a video webhook
	}{
		{"missing URL field", "/jobs/{result.video_url}", shape.Settings{}, "url: placeholder {result.video_url}: the payload has no such field", ""},
		{"missing header field", "/jobs", shape.Settings{Headers: map[string]string{"X-Look": "{look_id}"}}, "header X-Look: placeholder {look_id}", ""},
		{"jq error", "/jobs", shape.Settings{Body: `.result.cost | ascii_downcase`}, "jq: ", ""},
		{"no output", "/jobs", shape.Settings{Body: `select(.status == "error")`}, "gave no output", ""},
		{"several outputs", "/jobs", shape.Settings{Body: `.job_id, .status`}, "more than one output", ""},
		{"form of a non-object", "/jobs", shape.Settings{Format: "form", Body: `.job_id`}, "format form: the body program's output must be an object of scalars, got a string", ""},
		{"header value with a line break", "/jobs", shape.Settings{Headers: map[string]string{"X-Note": "{result.note}"}}, "header X-Note: the value has control character 0x0a",
			`{"task":"video_generate","job_id":"j","status":"completed","result":{"note":"a\nX-Evil: 1"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLegacy(t, nil)
			tg := shaped(l, "legacy", tc.path, tc.set)
			tg.Breaker.MinRequests, tg.Breaker.FailureRatio = 1, 0.01
			h := startRelay(t, settingsFor(t, tg), "")
			body := tc.body
			if body == "" {
				body = videoBody("unshapeable")
			}
			id := h.send(t, body)
			d := waitDelivery(t, h, id, "legacy", relay.Dead)
			if !strings.Contains(d.LastError, tc.want) || d.Attempts != 0 {
				t.Errorf("dead delivery: last_error %q after %d attempts; want it to contain %q after 0", d.LastError, d.Attempts, tc.want)
			}
			if n := len(l.requests()); n != 0 {
				t.Errorf("the target got %d requests, want none", n)
			}
			if st := h.srv.Dispatcher().BreakerState("legacy"); st != "closed" {
				t.Errorf("breaker %s, want closed (a shaping error is not the target failing)", st)
			}
		})
	}
}

// success narrows what delivers: a legacy endpoint that answers 202 to a
// request it did not act on is not a delivery.
func TestSuccessRefuses202(t *testing.T) {
	l := newLegacy(t, func(r *http.Request) int {
		if strings.Contains(r.RequestURI, "queued") {
			return http.StatusAccepted
		}
		return http.StatusOK
	})
	tg := shaped(l, "strict", "/jobs/{job_id}", shape.Settings{})
	tg.Success = []int{200}
	h := startRelay(t, settingsFor(t, tg), "")
	queued := h.send(t, videoBody("queued"))
	done := h.send(t, videoBody("done"))
	d := waitDelivery(t, h, queued, "strict", relay.Dead)
	if d.LastStatus != 202 || !strings.Contains(d.LastError, "202 is not a success status") {
		t.Errorf("after a 202: last_status %d, last_error %q; want 202 and a reason naming it", d.LastStatus, d.LastError)
	}
	waitDelivery(t, h, done, "strict", relay.Delivered)
}
