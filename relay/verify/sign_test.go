package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkSpecSignature verifies a Webhook-Signature value the way docs/http.md
// describes it, without this package: one "v1,<base64>" per secret,
// space-separated, each the standard-base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>" keyed with the base64-decoded part of the
// secret after "whsec_".
func checkSpecSignature(t *testing.T, header string, secrets []string, id string, ts int64, body []byte) {
	t.Helper()
	entries := strings.Split(header, " ")
	if len(entries) != len(secrets) {
		t.Errorf("signature %q has %d entries, want one per secret (%d)", header, len(entries), len(secrets))
		return
	}
	signed := []byte(id + "." + strconv.FormatInt(ts, 10) + ".")
	signed = append(signed, body...)
	for i, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Errorf("test secret %d: %v", i, err)
			return
		}
		m := hmac.New(sha256.New, key)
		m.Write(signed)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if entries[i] != want {
			t.Errorf("signature entry %d = %q, want %q", i, entries[i], want)
		}
	}
}

func TestSignerMatchesSpec(t *testing.T) {
	body := []byte(`{"task":"video_generate","job_id":"j1","status":"completed"}`)
	ts := time.Unix(1_750_000_123, 999_000_000) // sub-second part is dropped
	for _, tc := range []struct {
		name    string
		secrets []string
		id      string
		body    []byte
	}{
		{"one secret", []string{swOld}, "evt_01JZ8Q3", body},
		{"two secrets", []string{swOld, swNew}, "evt_01JZ8Q3", body},
		{"empty body", []string{swNew}, "evt_x", nil},
		{"three secrets", []string{swOld, swNew, "whsec_" + base64.StdEncoding.EncodeToString([]byte("k"))}, "evt_3", body},
		{"secret without prefix", []string{strings.TrimPrefix(swOld, "whsec_")}, "evt_4", body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSigner(tc.secrets)
			if err != nil {
				t.Fatalf("NewSigner = %v", err)
			}
			got := s.Sign(tc.id, ts, tc.body)
			checkSpecSignature(t, got, tc.secrets, tc.id, ts.Unix(), tc.body)
		})
	}
}

// TestSignerVector reproduces the published Standard Webhooks vector.
func TestSignerVector(t *testing.T) {
	s, err := NewSigner([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign(test vector) = %q, want %q", got, want)
	}
}

func TestSignerEmpty(t *testing.T) {
	for _, secrets := range [][]string{nil, {}} {
		s, err := NewSigner(secrets)
		if s != nil || err != nil {
			t.Errorf("NewSigner(%q) = %v, %v; want nil, nil", secrets, s, err)
		}
		if got := s.Sign("evt_1", now, []byte("{}")); got != "" {
			t.Errorf("nil Signer.Sign = %q, want \"\"", got)
		}
	}
	var zero Signer
	if got := zero.Sign("evt_1", now, []byte("{}")); got != "" {
		t.Errorf("zero Signer.Sign = %q, want \"\"", got)
	}
}

func TestNewSignerErrors(t *testing.T) {
	const secret = "whsec_not*base64*at-all-but-secret"
	for _, secrets := range [][]string{{secret}, {swOld, secret}, {""}, {"whsec_"}} {
		s, err := NewSigner(secrets)
		if err == nil {
			t.Errorf("NewSigner(%d secrets) = %v, nil; want an error", len(secrets), s)
			continue
		}
		if strings.Contains(err.Error(), "not*base64") {
			t.Errorf("NewSigner error %q contains the secret", err)
		}
	}
}

func TestSignerConcurrent(t *testing.T) {
	s, err := NewSigner([]string{swOld, swNew})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				id := fmt.Sprintf("evt_%d_%d", g, i)
				body := []byte(strings.Repeat("x", i))
				checkSpecSignature(t, s.Sign(id, now, body), []string{swOld, swNew}, id, now.Unix(), body)
			}
		})
	}
	wg.Wait()
}

// TestSignRequestRoundTrip signs real requests with SignRequest, sends them
// over HTTP and verifies them on the other side with a Verifier, as
// "hooxrelay send --secret" and the ingress would.
func TestSignRequestRoundTrip(t *testing.T) {
	body := []byte(`{"task":"video_generate","job_id":"run_1","status":"completed"}`)
	for _, tc := range []struct {
		name   string
		cfg    Settings
		secret string // the one the sender signs with
	}{
		{"none", Settings{Kind: "none"}, "ignored"},
		{"token header", Settings{Kind: "token", Header: "X-Hoox-Token", Secrets: []string{tokOld}}, tokOld},
		{"token authorization", Settings{Kind: "token", Header: "Authorization", Secrets: []string{tokOld, tokNew}}, tokNew},
		{"token query", Settings{Kind: "token", Secrets: []string{tokOld}}, tokOld},
		{"token query with odd characters", Settings{Kind: "token", Secrets: []string{"a&b=c d+e/f?"}}, "a&b=c d+e/f?"},
		{"hmac-sha256", Settings{Kind: "hmac-sha256", Header: "X-Hub-Signature-256", Secrets: []string{hmacOld, hmacNew}}, hmacOld},
		{"standard-webhooks", Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}}, swNew},
		{"standard-webhooks bare secret", Settings{Kind: "standard-webhooks", Secrets: []string{swOld}}, strings.TrimPrefix(swOld, "whsec_")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, tc.cfg)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ := io.ReadAll(r.Body)
				if err := v.VerifyRequest(r, got, time.Now()); err != nil {
					http.Error(w, Reason(err)+": "+err.Error(), http.StatusUnauthorized)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			send := func(b []byte, sign bool) (int, string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/hooks/hoox?x=1", bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if sign {
					if err := SignRequest(tc.cfg.Kind, tc.cfg.Header, tc.secret, req, body, time.Now()); err != nil {
						t.Fatalf("SignRequest = %v", err)
					}
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				msg, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(msg)
			}
			if code, msg := send(body, true); code != http.StatusNoContent {
				t.Fatalf("signed request answered %d %s, want 204", code, msg)
			}
			if tc.cfg.Kind == "none" {
				return
			}
			if code, msg := send(body, false); code != http.StatusUnauthorized || !strings.HasPrefix(msg, ReasonMissing) {
				t.Errorf("unsigned request answered %d %s, want 401 missing", code, msg)
			}
			if tc.cfg.Kind == "token" {
				return // a token does not cover the body
			}
			tampered := append(bytes.Clone(body), ' ')
			if code, msg := send(tampered, true); code != http.StatusUnauthorized || !strings.HasPrefix(msg, ReasonMismatch) {
				t.Errorf("tampered request answered %d %s, want 401 mismatch", code, msg)
			}
		})
	}
}

func TestSignRequestHeaders(t *testing.T) {
	body := []byte("{}")
	t.Run("standard-webhooks keeps an existing id", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "http://relay.test/", nil)
		req.Header.Set("webhook-id", "msg_mine")
		if err := SignRequest("standard-webhooks", "", swOld, req, body, now); err != nil {
			t.Fatal(err)
		}
		if got := req.Header.Get("Webhook-Id"); got != "msg_mine" {
			t.Errorf("webhook-id = %q, want msg_mine", got)
		}
		if got := req.Header.Get("Webhook-Timestamp"); got != unix(now) {
			t.Errorf("webhook-timestamp = %q, want %q", got, unix(now))
		}
		checkSpecSignature(t, req.Header.Get("Webhook-Signature"), []string{swOld}, "msg_mine", now.Unix(), body)
	})
	t.Run("standard-webhooks makes fresh ids", func(t *testing.T) {
		ids := map[string]bool{}
		for range 3 {
			req := httptest.NewRequest(http.MethodPost, "http://relay.test/", nil)
			if err := SignRequest("standard-webhooks", "", swOld, req, body, now); err != nil {
				t.Fatal(err)
			}
			id := req.Header.Get("Webhook-Id")
			if !strings.HasPrefix(id, "msg_") || len(id) < 20 || ids[id] {
				t.Errorf("webhook-id = %q, want a new random msg_ id (seen %v)", id, ids)
			}
			ids[id] = true
		}
	})
	t.Run("hmac-sha256 is sha256= hex", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "http://relay.test/", nil)
		if err := SignRequest("hmac-sha256", "X-Sig", hmacOld, req, body, now); err != nil {
			t.Fatal(err)
		}
		if got, want := req.Header.Get("X-Sig"), "sha256="+hmacHex(hmacOld, "{}"); got != want {
			t.Errorf("X-Sig = %q, want %q", got, want)
		}
	})
	t.Run("token keeps other query parameters", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "http://relay.test/h?a=1", nil)
		if err := SignRequest("token", "", "s3cret", req, body, now); err != nil {
			t.Fatal(err)
		}
		if q := req.URL.Query(); q.Get("a") != "1" || q.Get("token") != "s3cret" {
			t.Errorf("query = %q, want a=1 and token=s3cret", req.URL.RawQuery)
		}
	})
	t.Run("none sets nothing", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "http://relay.test/h", nil)
		if err := SignRequest("none", "", "s", req, body, now); err != nil || len(req.Header) != 0 || req.URL.RawQuery != "" {
			t.Errorf("SignRequest(none) = %v, headers %v, query %q; want nil and nothing set", err, req.Header, req.URL.RawQuery)
		}
	})
}

func TestSignRequestErrors(t *testing.T) {
	const secret = "whsec_definitely*not*base64"
	for _, tc := range []struct{ name, kind, header, secret string }{
		{"unknown kind", "hmac-sha1", "X-Sig", "s"},
		{"empty kind", "", "", "s"},
		{"no secret", "token", "X-T", ""},
		{"hmac without header", "hmac-sha256", "", "s"},
		{"standard-webhooks bad secret", "standard-webhooks", "", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://relay.test/", nil)
			err := SignRequest(tc.kind, tc.header, tc.secret, req, nil, now)
			if err == nil {
				t.Fatalf("SignRequest(%q, %q) = nil, want an error", tc.kind, tc.header)
			}
			if tc.secret == secret && strings.Contains(err.Error(), "not*base64") {
				t.Errorf("SignRequest error %q contains the secret", err)
			}
		})
	}
}
