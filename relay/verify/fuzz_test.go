package verify

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// The fuzz targets feed arbitrary header values and bodies to a Verifier
// and check three properties: it never panics; a failure is one of the
// Verifier's fixed messages (so nothing presented can leak into a log);
// and a signature computed independently for the fuzzed input passes while
// the same signature over a changed body fails.

// checkFailure fails the test unless err is nil or one of v's prebuilt
// failures, with an allowed reason.
func checkFailure(t *testing.T, v *Verifier, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, known := range []error{v.errMissing, v.errMalformed, v.errMismatch, v.errMissingID, v.errMissingTS, v.errBadTS, v.errStale, v.errFuture} {
		if known != nil && err == known {
			return
		}
	}
	t.Fatalf("Verify returned %q (reason %q), which is not one of the verifier's fixed failures", err, Reason(err))
}

func flipLastHex(s string) string {
	b := []byte(s)
	if b[len(b)-1] == '0' {
		b[len(b)-1] = '1'
	} else {
		b[len(b)-1] = '0'
	}
	return string(b)
}

func FuzzVerifyHMAC(f *testing.F) {
	f.Add(hmacOld, []byte(`{"task":"video_generate"}`), "sha256="+hmacHex(hmacOld, `{"task":"video_generate"}`))
	f.Add("k", []byte{}, "")
	f.Add("k", []byte("x"), "sha256=")
	f.Add("secret", []byte("{}"), "garbage, sha256=zz,,  ")
	f.Add("secret", []byte("{}"), hmacB64(base64.RawURLEncoding, "secret", "{}"))
	f.Add("secret", []byte("\x00\xff"), "SHA256="+hmacB64(base64.StdEncoding, "secret", "\x00\xff"))
	f.Fuzz(func(t *testing.T, secret string, body []byte, presented string) {
		if secret == "" {
			secret = "k"
		}
		v := mustNew(t, Settings{Kind: "hmac-sha256", Header: "X-Sig", Secrets: []string{"other-secret", secret}})
		checkFailure(t, v, v.Verify(http.Header{"X-Sig": {presented}}, nil, body, now))

		sig := mac([]byte(secret), body)
		for _, good := range []string{
			"sha256=" + hexString(sig),
			base64.StdEncoding.EncodeToString(sig),
			base64.RawURLEncoding.EncodeToString(sig),
			presented + "," + hexString(sig), // one valid among whatever was fuzzed
		} {
			if err := v.Verify(http.Header{"X-Sig": {good}}, nil, body, now); err != nil {
				t.Fatalf("Verify(valid signature %q) = %v, want nil", good, err)
			}
			changed := append(body[:len(body):len(body)], 'x')
			if err := v.Verify(http.Header{"X-Sig": {good}}, nil, changed, now); err == nil {
				t.Fatalf("Verify(signature of another body) = nil, want a failure")
			}
		}
		if got := Reason(v.Verify(http.Header{"X-Sig": {flipLastHex(hexString(sig))}}, nil, body, now)); got != ReasonMismatch {
			t.Fatalf("Verify(altered signature) reason %q, want %q", got, ReasonMismatch)
		}
	})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func FuzzVerifyStandardWebhooks(f *testing.F) {
	ts := unix(now)
	f.Add("msg_1", int64(0), []byte(`{"task":"video_generate"}`), ts, "v1,"+swSig(swKeyOld, "msg_1", ts, `{"task":"video_generate"}`)[3:])
	f.Add("msg_1", int64(-299), []byte{}, "", "")
	f.Add("", int64(299), []byte("{}"), "abc", "v1,")
	f.Add("msg.with.dots", int64(17), []byte("{}"), "-9223372036854775808", "v1a,xyz v2,abc garbage v1,!!!!")
	f.Add("m", int64(-1<<62), []byte("\x00"), "99999999999999999999", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, id string, offset int64, body []byte, tsHeader, presented string) {
		v := mustNew(t, Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}})
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {tsHeader}, "Webhook-Signature": {presented}}
		checkFailure(t, v, v.Verify(h, nil, body, now))
		if id == "" {
			return
		}

		// A timestamp inside the 5m window, signed by hand.
		off := offset % 300
		ts := strconv.FormatInt(now.Unix()+off, 10)
		good := swSig(swKeyNew, id, ts, string(body))
		for _, sig := range []string{good, presented + " " + good} {
			h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
			if err := v.Verify(h, nil, body, now); err != nil {
				t.Fatalf("Verify(valid signature, ts %s) = %v, want nil", ts, err)
			}
			if err := v.Verify(h, nil, append(body[:len(body):len(body)], '.'), now); err == nil {
				t.Fatalf("Verify(signature of another body) = nil, want a failure")
			}
		}
		// The same signature outside the window is refused for its age.
		late := now.Add(301*time.Second + time.Duration(off)*time.Second)
		h = http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {good}}
		if got := Reason(v.Verify(h, nil, body, late)); got != ReasonStale {
			t.Fatalf("Verify(valid signature, %v late) reason %q, want %q", late.Sub(now), got, ReasonStale)
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	f.Add(tokOld, tokOld)
	f.Add(tokOld, "")
	f.Add("s", "Bearer s")
	f.Add("Bearer x", "x")
	f.Add(" lead", "lead")
	f.Fuzz(func(t *testing.T, secret, presented string) {
		if secret == "" {
			return // New refuses an empty secret
		}
		hv := mustNew(t, Settings{Kind: "token", Header: "X-Token", Secrets: []string{"unrelated-secret", secret}})
		qv := mustNew(t, Settings{Kind: "token", Secrets: []string{secret}})
		av := mustNew(t, Settings{Kind: "token", Header: "Authorization", Secrets: []string{secret}})

		// A header or parameter passes exactly when it equals a secret.
		herr := hv.Verify(http.Header{"X-Token": {presented}}, nil, nil, now)
		qerr := qv.Verify(nil, url.Values{"token": {presented}}, nil, now)
		checkFailure(t, hv, herr)
		checkFailure(t, qv, qerr)
		want := presented == secret || presented == "unrelated-secret"
		if (herr == nil) != want {
			t.Fatalf("header token %q vs secret %q: Verify = %v, want pass=%v", presented, secret, herr, want)
		}
		if (qerr == nil) != (presented == secret) {
			t.Fatalf("query token %q vs secret %q: Verify = %v, want pass=%v", presented, secret, qerr, presented == secret)
		}
		checkFailure(t, av, av.Verify(http.Header{"Authorization": {presented}}, nil, nil, now))
		if err := av.Verify(http.Header{"Authorization": {"Bearer " + secret}}, nil, nil, now); err != nil {
			t.Fatalf("Authorization: Bearer <secret %q> = %v, want nil", secret, err)
		}
	})
}
