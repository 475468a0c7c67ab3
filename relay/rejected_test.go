package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// rejected lists the relay's rejected log through the admin API.
func (h *relayHarness) rejected(t *testing.T, query string) []relay.RejectedJSON {
	t.Helper()
	r := h.admin(t, "/api/v1/rejected"+query)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/rejected%s: got %s, want 200", query, r)
	}
	var ans struct {
		Rejected []relay.RejectedJSON `json:"rejected"`
	}
	if err := json.Unmarshal(r.body, &ans); err != nil {
		t.Fatalf("GET /api/v1/rejected%s: %v in %s", query, err, r.body)
	}
	return ans.Rejected
}

func TestRejectedLogMasksSecrets(t *testing.T) {
	set := settingsFor(t)
	set.Server.RejectedLog = 10
	set.Sources = []relay.SourceSettings{{Name: "hoox", Path: "/hooks/hoox",
		Verify: verify.Settings{Kind: verify.KindHMACSHA256, Header: "X-Hoox-Sig", Secrets: []string{"hmac-key"}}}}
	h := startRelay(t, set, "")

	body := videoBody("bad_signature")
	r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(body), http.Header{
		"X-Hoox-Sig":        {"sha256=" + strings.Repeat("0c", 32)},
		"Authorization":     {"Bearer admin-secret-1"},
		"Cookie":            {"session=cookie-secret-2"},
		"Webhook-Signature": {"v1,c2lnbmF0dXJlLXNlY3JldC0z"},
		"X-Api-Key":         {"key-secret-4"},
		"X-Request-Id":      {"req-42"},
	})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("POST with a bad signature: got %s, want 401", r)
	}
	raw := h.admin(t, "/api/v1/rejected")
	for _, secret := range []string{strings.Repeat("0c", 32), "admin-secret-1", "cookie-secret-2", "c2lnbmF0dXJlLXNlY3JldC0z", "key-secret-4"} {
		if strings.Contains(string(raw.body), secret) {
			t.Errorf("GET /api/v1/rejected shows the secret %q:\n%s", secret, raw.body)
		}
	}
	got := h.rejected(t, "")
	if len(got) != 1 {
		t.Fatalf("rejected log = %+v, want the one refused request", got)
	}
	e := got[0]
	if e.Status != 401 || e.Outcome != "invalid_signature" || e.Source != "hoox" || e.Path != "/hooks/hoox" ||
		e.Method != "POST" || e.RemoteAddr != "127.0.0.1" || e.Body != body || e.BodyBytes != len(body) || e.At.IsZero() ||
		!strings.Contains(e.Reason, "mismatch") {
		t.Errorf("rejected entry = %+v, want a 401 invalid_signature (mismatch) of hoox from 127.0.0.1 with its body", e)
	}
	for _, name := range []string{"X-Hoox-Sig", "Authorization", "Cookie", "Webhook-Signature", "X-Api-Key"} {
		if e.Headers[name] != "***" {
			t.Errorf("rejected entry header %s = %q, want ***", name, e.Headers[name])
		}
	}
	if e.Headers["X-Request-Id"] != "req-42" || e.Headers["Content-Type"] != "application/json" {
		t.Errorf("rejected entry headers = %v, want X-Request-Id and Content-Type as sent", e.Headers)
	}
}

func TestRejectedLogIsBounded(t *testing.T) {
	set := settingsFor(t)
	set.Server.RejectedLog = 3
	set.Server.MaxBodyBytes = 8192
	h := startRelay(t, set, "")

	h.send(t, videoBody("accepted_is_not_logged"))
	for i := range 5 {
		if r := h.post(t, "/hooks/hoox", fmt.Sprintf("not json %d", i)); r.status != http.StatusBadRequest {
			t.Fatalf("POST of a body that is not JSON: got %s, want 400", r)
		}
	}
	got := h.rejected(t, "")
	if len(got) != 3 || got[0].Body != "not json 4" || got[2].Body != "not json 2" || got[0].Outcome != "invalid_payload" || got[0].Status != 400 {
		t.Fatalf("rejected log after 5 refusals with server.rejected_log 3 = %+v, want the 3 newest (4, 3, 2) as 400 invalid_payload", got)
	}
	if got := h.rejected(t, "?limit=1"); len(got) != 1 || got[0].Body != "not json 4" {
		t.Errorf("rejected ?limit=1 = %+v, want the newest", got)
	}

	// A body over 2 KiB keeps its first 2 KiB; an unknown path is logged.
	long := strings.Repeat("x", 3000)
	h.post(t, "/hooks/hoox", long)
	h.post(t, "/nope", "{}")
	got = h.rejected(t, "")
	if len(got) != 3 || got[0].Status != 404 || got[0].Path != "/nope" || got[0].Source != "" ||
		got[1].Body != long[:2048] || got[1].BodyBytes != 3000 || !got[1].Truncated {
		t.Errorf("rejected log = %+v, want the 404 of /nope, then the first 2048 bytes of the 3000-byte body", got)
	}

	// Many and long headers are cut to size.
	many := http.Header{strings.Repeat("X-Long-Name", 20): {"v"}}
	for i := range 40 {
		many.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("v", 1000))
	}
	h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader("not json"), many)
	e := h.rejected(t, "?limit=1")[0]
	if len(e.Headers) > 32 {
		t.Errorf("rejected entry kept %d headers, want at most 32", len(e.Headers))
	}
	for k, v := range e.Headers {
		if len(k) > 64+len("…") || len(v) > 256+len("…") {
			t.Errorf("rejected entry kept header %q (%d bytes) with %d bytes of value, want names cut to 64 and values to 256", k[:min(len(k), 20)], len(k), len(v))
		}
	}
	h.post(t, "/nope", "{}")

	// A reload shrinks the log to the newest that fit; 0 keeps none.
	set.Server.RejectedLog = 1
	if err := h.srv.Reload(t.Context(), set, "smaller"); err != nil {
		t.Fatal(err)
	}
	if got := h.rejected(t, ""); len(got) != 1 || got[0].Path != "/nope" {
		t.Errorf("rejected log after a reload to 1 = %+v, want the 404 of /nope alone", got)
	}
	set.Server.RejectedLog = 0
	if err := h.srv.Reload(t.Context(), set, "off"); err != nil {
		t.Fatal(err)
	}
	h.post(t, "/nope", "{}")
	if got := h.rejected(t, ""); len(got) != 0 {
		t.Errorf("rejected log with server.rejected_log 0 = %+v, want none", got)
	}
}

func TestRejectedLogKeepsStoreFailures(t *testing.T) {
	set := settingsFor(t)
	set.Server.RejectedLog = 10
	h := startRelay(t, set, "", func(o *pebblestore.Options) {
		o.Retention, o.DedupTTL = 0, 0 // no pruner racing with the close below
	})
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	body := videoBody("store_down")
	if r := h.post(t, "/hooks/hoox", body); r.status != http.StatusServiceUnavailable {
		t.Fatalf("POST with the store closed: got %s, want 503", r)
	}
	got := h.rejected(t, "")
	if len(got) != 1 || got[0].Status != 503 || got[0].Outcome != "unavailable" || got[0].Body != body || got[0].Reason == "" {
		t.Errorf("rejected log = %+v, want the 503 unavailable with its body and the store's error", got)
	}
}
