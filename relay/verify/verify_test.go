package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The helpers below compute signatures from the scheme descriptions with
// the standard library alone, so that the tests do not check the package
// against itself.

const (
	tokOld = "tok-old-3f9a1c07d2e845b6"
	tokNew = "tok-new-81be55c0a94f2d37"

	hmacOld = "hmac-old-b1d94f0e6a2c7358"
	hmacNew = "hmac-new-0c4e7a19f85d23b6"
)

var (
	swKeyOld = []byte("0123456789abcdef0123456789abcdef")
	swKeyNew = []byte("rotated-key-for-standard-webhook")
	swOld    = "whsec_" + base64.StdEncoding.EncodeToString(swKeyOld)
	swNew    = "whsec_" + base64.StdEncoding.EncodeToString(swKeyNew)

	// now is the arrival time of every request in the tables.
	now = time.Unix(1_750_000_000, 0)
)

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func hmacHex(secret, body string) string {
	return hex.EncodeToString(mac([]byte(secret), []byte(body)))
}

func hmacB64(enc *base64.Encoding, secret, body string) string {
	return enc.EncodeToString(mac([]byte(secret), []byte(body)))
}

// swSig is one Standard Webhooks signature entry: v1,base64(HMAC(key,
// "<id>.<ts>.<body>")).
func swSig(key []byte, id, ts, body string) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, []byte(id+"."+ts+"."+body)))
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func swHeaders(id, ts, sig string) http.Header {
	return hdr("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sig)
}

func mustNew(t testing.TB, v Settings) *Verifier {
	t.Helper()
	ver, err := New(v)
	if err != nil {
		t.Fatalf("New(%+v) = %v", v.Kind, err)
	}
	return ver
}

type verifyCase struct {
	name   string
	h      http.Header
	query  url.Values
	body   string
	now    time.Time // zero: now
	reason string    // "" means it must pass
}

// runCases verifies each case and checks its reason, and that a failure's
// message quotes neither a secret nor anything the request presented.
func runCases(t *testing.T, cfg Settings, cases []verifyCase) {
	t.Helper()
	v := mustNew(t, cfg)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.now
			if at.IsZero() {
				at = now
			}
			err := v.Verify(tc.h, tc.query, []byte(tc.body), at)
			if got := Reason(err); got != tc.reason {
				t.Fatalf("Verify(%s) = %v (reason %q), want reason %q", cfg.Kind, err, got, tc.reason)
			}
			if err == nil {
				return
			}
			if _, ok := errors.AsType[*Failure](err); !ok {
				t.Errorf("Verify error %T is not a *Failure", err)
			}
			assertNoLeak(t, err, cfg.Secrets, tc.h, tc.query)
		})
	}
}

func assertNoLeak(t *testing.T, err error, secrets []string, h http.Header, q url.Values) {
	t.Helper()
	msg := err.Error()
	var presented []string
	presented = append(presented, secrets...)
	for _, s := range secrets {
		presented = append(presented, strings.TrimPrefix(s, "whsec_"))
	}
	for _, vals := range h {
		for _, val := range vals {
			presented = append(presented, val)
			presented = append(presented, strings.FieldsFunc(val, isListSep)...)
		}
	}
	for _, vals := range q {
		presented = append(presented, vals...)
	}
	for _, p := range presented {
		// Short values such as "v1," or a timestamp digit can occur in any
		// sentence; what must not leak is long enough to be a credential.
		if len(p) >= 8 && strings.Contains(msg, p) {
			t.Errorf("error %q contains the secret or presented value %q", msg, p)
		}
	}
}

func TestVerifyNone(t *testing.T) {
	runCases(t, Settings{Kind: "none"}, []verifyCase{
		{name: "no headers", h: http.Header{}},
		{name: "nil everything", h: nil},
		{name: "garbage signature", h: hdr("X-Signature", "garbage")},
	})
}

func TestVerifyTokenHeader(t *testing.T) {
	runCases(t, Settings{Kind: "token", Header: "X-Hoox-Token", Secrets: []string{tokOld, tokNew}}, []verifyCase{
		{name: "old secret", h: hdr("X-Hoox-Token", tokOld)},
		{name: "new secret", h: hdr("X-Hoox-Token", tokNew)},
		{name: "header name case-insensitive", h: hdr("x-hoox-token", tokNew)},
		{name: "body is not covered", h: hdr("X-Hoox-Token", tokOld), body: "anything"},
		{name: "wrong secret", h: hdr("X-Hoox-Token", "tok-wrong-00000000000000"), reason: ReasonMismatch},
		{name: "prefix of secret", h: hdr("X-Hoox-Token", tokOld[:len(tokOld)-1]), reason: ReasonMismatch},
		{name: "secret with suffix", h: hdr("X-Hoox-Token", tokOld+"x"), reason: ReasonMismatch},
		{name: "both secrets glued", h: hdr("X-Hoox-Token", tokOld+tokNew), reason: ReasonMismatch},
		{name: "bearer is not stripped from other headers", h: hdr("X-Hoox-Token", "Bearer "+tokOld), reason: ReasonMismatch},
		{name: "missing header", h: http.Header{}, reason: ReasonMissing},
		{name: "nil header", h: nil, reason: ReasonMissing},
		{name: "empty value", h: hdr("X-Hoox-Token", ""), reason: ReasonMissing},
		{name: "other header", h: hdr("X-Token", tokOld), reason: ReasonMissing},
		{name: "query ignored when a header is set", h: http.Header{}, query: url.Values{"token": {tokOld}}, reason: ReasonMissing},
	})
}

func TestVerifyTokenAuthorization(t *testing.T) {
	runCases(t, Settings{Kind: "token", Header: "authorization", Secrets: []string{tokOld, tokNew}}, []verifyCase{
		{name: "bearer old", h: hdr("Authorization", "Bearer "+tokOld)},
		{name: "bearer new", h: hdr("Authorization", "Bearer "+tokNew)},
		{name: "scheme case-insensitive", h: hdr("Authorization", "bEARER "+tokNew)},
		{name: "bare token", h: hdr("Authorization", tokOld)},
		{name: "bearer wrong", h: hdr("Authorization", "Bearer tok-wrong-00000000000000"), reason: ReasonMismatch},
		{name: "two spaces", h: hdr("Authorization", "Bearer  "+tokOld), reason: ReasonMismatch},
		{name: "basic scheme", h: hdr("Authorization", "Basic "+tokOld), reason: ReasonMismatch},
		{name: "bearer without token", h: hdr("Authorization", "Bearer"), reason: ReasonMissing},
		{name: "bearer and space", h: hdr("Authorization", "Bearer "), reason: ReasonMissing},
		{name: "missing", h: http.Header{}, reason: ReasonMissing},
	})
}

func TestVerifyTokenQuery(t *testing.T) {
	runCases(t, Settings{Kind: "token", Secrets: []string{tokOld, tokNew}}, []verifyCase{
		{name: "old secret", query: url.Values{"token": {tokOld}}},
		{name: "new secret", query: url.Values{"token": {tokNew}}},
		{name: "wrong secret", query: url.Values{"token": {"tok-wrong-00000000000000"}}, reason: ReasonMismatch},
		{name: "first value counts", query: url.Values{"token": {"tok-wrong-00000000000000", tokOld}}, reason: ReasonMismatch},
		{name: "empty", query: url.Values{"token": {""}}, reason: ReasonMissing},
		{name: "other parameter", query: url.Values{"tok": {tokOld}}, reason: ReasonMissing},
		{name: "nil query", reason: ReasonMissing},
		{name: "header ignored", h: hdr("Authorization", "Bearer "+tokOld), reason: ReasonMissing},
	})
}

func TestVerifyTokenRequest(t *testing.T) {
	v := mustNew(t, Settings{Kind: "token", Secrets: []string{tokOld}})
	r, _ := http.NewRequest(http.MethodPost, "http://relay.test/hooks/a?x=1&token="+url.QueryEscape(tokOld), nil)
	if err := v.VerifyRequest(r, nil, now); err != nil {
		t.Fatalf("VerifyRequest with ?token= = %v, want nil", err)
	}
	r.URL.RawQuery = "token=nope-nope-nope"
	if got := Reason(v.VerifyRequest(r, nil, now)); got != ReasonMismatch {
		t.Fatalf("VerifyRequest with wrong ?token= reason %q, want %q", got, ReasonMismatch)
	}
}

// urlSafeBody returns a body whose HMAC under secret has a '-' or '_' in
// URL base64, so that the URL alphabet is really exercised.
func urlSafeBody(t *testing.T, secret string) string {
	for i := range 1000 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		if strings.ContainsAny(hmacB64(base64.URLEncoding, secret, body), "-_") {
			return body
		}
	}
	t.Fatal("no body with a URL-alphabet HMAC")
	return ""
}

func TestVerifyHMAC(t *testing.T) {
	const body = `{"task":"video_generate","job_id":"j1","status":"completed"}`
	const name = "X-Hoox-Signature"
	ub := urlSafeBody(t, hmacNew)
	good := hmacHex(hmacNew, body)
	wrong := hmacHex("not-the-secret-at-all", body)
	rawStd := hmacB64(base64.RawStdEncoding, hmacOld, body)
	// The last of 43 characters carries 2 padding bits; setting one makes
	// a different string that lax decoders map to the same digest.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", rawStd[42])
	nonCanonical := rawStd[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last^1])

	runCases(t, Settings{Kind: "hmac-sha256", Header: name, Secrets: []string{hmacOld, hmacNew}}, []verifyCase{
		{name: "hex old secret", h: hdr(name, hmacHex(hmacOld, body)), body: body},
		{name: "hex new secret", h: hdr(name, good), body: body},
		{name: "hex upper case", h: hdr(name, strings.ToUpper(good)), body: body},
		{name: "sha256= prefix", h: hdr(name, "sha256="+good), body: body},
		{name: "SHA256= prefix", h: hdr(name, "SHA256="+good), body: body},
		{name: "base64 std padded", h: hdr(name, hmacB64(base64.StdEncoding, hmacOld, body)), body: body},
		{name: "base64 std raw", h: hdr(name, rawStd), body: body},
		{name: "base64 url padded", h: hdr(name, "sha256="+hmacB64(base64.URLEncoding, hmacNew, ub)), body: ub},
		{name: "base64 url raw", h: hdr(name, hmacB64(base64.RawURLEncoding, hmacNew, ub)), body: ub},
		{name: "empty body", h: hdr(name, hmacHex(hmacOld, "")), body: ""},
		{name: "lower-case header name", h: hdr(strings.ToLower(name), good), body: body},

		{name: "wrong secret", h: hdr(name, wrong), body: body, reason: ReasonMismatch},
		{name: "tampered body", h: hdr(name, good), body: body + " ", reason: ReasonMismatch},
		{name: "signature of another body", h: hdr(name, hmacHex(hmacNew, "{}")), body: body, reason: ReasonMismatch},
		{name: "url alphabet with std decoding is wrong", h: hdr(name, strings.NewReplacer("-", "+", "_", "/").Replace(hmacB64(base64.URLEncoding, hmacNew, ub))), body: body, reason: ReasonMismatch},

		{name: "missing header", h: http.Header{}, body: body, reason: ReasonMissing},
		{name: "empty value", h: hdr(name, ""), body: body, reason: ReasonMissing},
		{name: "blank value", h: hdr(name, "   "), body: body, reason: ReasonMissing},

		{name: "bad hex", h: hdr(name, "g"+good[1:]), body: body, reason: ReasonMalformed},
		{name: "short hex", h: hdr(name, good[:62]), body: body, reason: ReasonMalformed},
		{name: "long hex", h: hdr(name, good+"00"), body: body, reason: ReasonMalformed},
		{name: "bad base64", h: hdr(name, "!"+hmacB64(base64.StdEncoding, hmacNew, body)[1:]), body: body, reason: ReasonMalformed},
		{name: "mixed base64 alphabets", h: hdr(name, "+-"+hmacB64(base64.StdEncoding, hmacNew, body)[2:]), body: body, reason: ReasonMalformed},
		{name: "non-canonical base64", h: hdr(name, nonCanonical), body: body, reason: ReasonMalformed},
		{name: "prefix only", h: hdr(name, "sha256="), body: body, reason: ReasonMalformed},
		{name: "other algorithm prefix", h: hdr(name, "sha1="+good), body: body, reason: ReasonMalformed},
		{name: "garbage", h: hdr(name, "garbage"), body: body, reason: ReasonMalformed},
		{name: "commas only", h: hdr(name, ",,,"), body: body, reason: ReasonMalformed},

		{name: "one valid among invalid", h: hdr(name, "sha256="+wrong+", garbage, sha256="+good), body: body},
		{name: "valid first", h: hdr(name, good+" "+wrong), body: body},
		{name: "valid in second header line", h: hdr(name, wrong, name, good), body: body},
		{name: "all wrong", h: hdr(name, wrong+","+hmacHex("another-wrong-secret", body)), body: body, reason: ReasonMismatch},
		{name: "wrong and garbage", h: hdr(name, "garbage,"+wrong), body: body, reason: ReasonMismatch},
	})
}

func TestVerifyStandardWebhooks(t *testing.T) {
	const body = `{"task":"video_generate","job_id":"j1","status":"completed"}`
	const id = "msg_2bWk9rQd1YtEvZ3x"
	ts := unix(now)
	good := swSig(swKeyNew, id, ts, body)
	wrong := swSig([]byte("some-other-key-0123456789abcdef!"), id, ts, body)
	tol := 5 * time.Minute
	sigAt := func(at time.Time) http.Header {
		return swHeaders(id, unix(at), swSig(swKeyOld, id, unix(at), body))
	}

	runCases(t, Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}}, []verifyCase{
		{name: "old secret", h: swHeaders(id, ts, swSig(swKeyOld, id, ts, body)), body: body},
		{name: "new secret", h: swHeaders(id, ts, good), body: body},
		{name: "header names in any case", h: hdr("WEBHOOK-ID", id, "Webhook-Timestamp", ts, "webhook-SIGNATURE", good), body: body},
		{name: "empty body", h: swHeaders(id, ts, swSig(swKeyNew, id, ts, "")), body: ""},

		{name: "wrong secret", h: swHeaders(id, ts, wrong), body: body, reason: ReasonMismatch},
		{name: "tampered body", h: swHeaders(id, ts, good), body: body + "x", reason: ReasonMismatch},
		{name: "tampered id", h: swHeaders(id+"x", ts, good), body: body, reason: ReasonMismatch},
		{name: "tampered timestamp", h: swHeaders(id, unix(now.Add(time.Second)), good), body: body, reason: ReasonMismatch},
		{name: "timestamp respelled", h: swHeaders(id, "0"+ts, good), body: body, reason: ReasonMismatch},
		{name: "hex instead of base64", h: swHeaders(id, ts, "v1,"+hex.EncodeToString(mac(swKeyNew, []byte(id+"."+ts+"."+body)))), body: body, reason: ReasonMalformed},

		{name: "missing id", h: hdr("webhook-timestamp", ts, "webhook-signature", good), body: body, reason: ReasonMissing},
		{name: "missing timestamp", h: hdr("webhook-id", id, "webhook-signature", good), body: body, reason: ReasonMissing},
		{name: "missing signature", h: hdr("webhook-id", id, "webhook-timestamp", ts), body: body, reason: ReasonMissing},
		{name: "empty signature", h: swHeaders(id, ts, ""), body: body, reason: ReasonMissing},
		{name: "blank signature", h: swHeaders(id, ts, "   "), body: body, reason: ReasonMissing},
		{name: "empty id", h: swHeaders("", ts, good), body: body, reason: ReasonMissing},
		{name: "nil header", h: nil, body: body, reason: ReasonMissing},

		{name: "v1, only", h: swHeaders(id, ts, "v1,"), body: body, reason: ReasonMalformed},
		{name: "bad base64", h: swHeaders(id, ts, "v1,!!!!"+good[7:]), body: body, reason: ReasonMalformed},
		{name: "short base64", h: swHeaders(id, ts, "v1,"+base64.StdEncoding.EncodeToString([]byte("short"))), body: body, reason: ReasonMalformed},
		{name: "garbage", h: swHeaders(id, ts, "garbage"), body: body, reason: ReasonMalformed},
		{name: "no comma", h: swHeaders(id, ts, strings.Replace(good, ",", "", 1)), body: body, reason: ReasonMalformed},
		{name: "only other versions", h: swHeaders(id, ts, "v1a,"+good[3:]+" v2,"+good[3:]), body: body, reason: ReasonMalformed},
		{name: "upper-case version", h: swHeaders(id, ts, "V1,"+good[3:]), body: body, reason: ReasonMalformed},

		{name: "one valid among invalid", h: swHeaders(id, ts, wrong+" garbage v1, v1a,xyz "+good), body: body},
		{name: "valid first", h: swHeaders(id, ts, good+" "+wrong), body: body},
		{name: "valid in second header line", h: hdr("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", wrong, "webhook-signature", good), body: body},
		{name: "all wrong", h: swHeaders(id, ts, wrong+" "+swSig([]byte("k"), id, ts, body)), body: body, reason: ReasonMismatch},
		{name: "wrong and malformed", h: swHeaders(id, ts, "v1, "+wrong), body: body, reason: ReasonMismatch},

		{name: "non-numeric timestamp", h: swHeaders(id, "yesterday", good), body: body, reason: ReasonMalformed},
		{name: "fractional timestamp", h: swHeaders(id, ts+".5", good), body: body, reason: ReasonMalformed},
		{name: "timestamp in milliseconds", h: swHeaders(id, ts+"000", good), body: body, reason: ReasonFuture},
		{name: "timestamp overflows int64", h: swHeaders(id, "99999999999999999999", good), body: body, reason: ReasonMalformed},
		{name: "largest timestamp", h: swHeaders(id, "9223372036854775807", good), body: body, reason: ReasonFuture},
		{name: "smallest timestamp", h: swHeaders(id, "-9223372036854775808", good), body: body, reason: ReasonStale},
		{name: "zero timestamp", h: swHeaders(id, "0", good), body: body, reason: ReasonStale},

		{name: "at the past edge", h: sigAt(now.Add(-tol)), body: body},
		{name: "at the future edge", h: sigAt(now.Add(tol)), body: body},
		{name: "stale", h: sigAt(now.Add(-tol - time.Second)), body: body, reason: ReasonStale},
		{name: "future", h: sigAt(now.Add(tol + time.Second)), body: body, reason: ReasonFuture},
		{name: "a day old", h: sigAt(now.Add(-24 * time.Hour)), body: body, reason: ReasonStale},
		// Sub-second arrival: 5m0.5s after a whole-second timestamp is stale.
		{name: "stale by half a second", h: sigAt(now.Add(-tol)), now: now.Add(500 * time.Millisecond), body: body, reason: ReasonStale},
	})
}

func TestVerifyStandardWebhooksTolerance(t *testing.T) {
	const id, body = "msg_1", "{}"
	at := func(d time.Duration) http.Header {
		ts := unix(now.Add(d))
		return swHeaders(id, ts, swSig(swKeyOld, id, ts, body))
	}
	t.Run("zero means five minutes", func(t *testing.T) {
		runCases(t, Settings{Kind: "standard-webhooks", Secrets: []string{swOld}}, []verifyCase{
			{name: "4m old", h: at(-4 * time.Minute), body: body},
			{name: "6m old", h: at(-6 * time.Minute), body: body, reason: ReasonStale},
			{name: "6m ahead", h: at(6 * time.Minute), body: body, reason: ReasonFuture},
		})
	})
	t.Run("thirty seconds", func(t *testing.T) {
		runCases(t, Settings{Kind: "standard-webhooks", Secrets: []string{swOld}, Tolerance: 30 * time.Second}, []verifyCase{
			{name: "29s old", h: at(-29 * time.Second), body: body},
			{name: "31s old", h: at(-31 * time.Second), body: body, reason: ReasonStale},
			{name: "31s ahead", h: at(31 * time.Second), body: body, reason: ReasonFuture},
		})
	})
}

// TestVerifyStandardWebhooksVector checks the published Standard Webhooks
// test vector: passing it is what makes any sender's library interoperate.
func TestVerifyStandardWebhooksVector(t *testing.T) {
	h := swHeaders("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	for _, secret := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		v := mustNew(t, Settings{Kind: "standard-webhooks", Secrets: []string{secret}})
		if err := v.Verify(h, nil, body, at); err != nil {
			t.Errorf("Verify(test vector) with secret %.10s… = %v, want nil", secret, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	const secret = "sekrit-value-that-must-not-leak"
	for _, tc := range []struct {
		name string
		cfg  Settings
		want string
	}{
		{"unknown kind", Settings{Kind: "hmac-sha1", Secrets: []string{secret}}, "verify.kind"},
		{"empty kind", Settings{}, "verify.kind"},
		{"token without secrets", Settings{Kind: "token"}, "verify.secrets"},
		{"hmac without secrets", Settings{Kind: "hmac-sha256", Header: "X-Sig"}, "verify.secrets"},
		{"empty secret", Settings{Kind: "token", Secrets: []string{secret, ""}}, "verify.secrets[1]"},
		{"hmac without header", Settings{Kind: "hmac-sha256", Secrets: []string{secret}}, "verify.header"},
		{"standard-webhooks secret not base64", Settings{Kind: "standard-webhooks", Secrets: []string{swOld, "whsec_" + secret}}, "verify.secrets[1]"},
		{"standard-webhooks secret empty after prefix", Settings{Kind: "standard-webhooks", Secrets: []string{"whsec_"}}, "verify.secrets[0]"},
		{"negative tolerance", Settings{Kind: "standard-webhooks", Secrets: []string{swOld}, Tolerance: -time.Second}, "verify.tolerance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", tc.cfg, v)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error %q does not name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("New error %q contains the secret", err)
			}
		})
	}
}

func TestUnconfigured(t *testing.T) {
	var nilV *Verifier
	for name, v := range map[string]*Verifier{"nil": nilV, "zero": {}} {
		if got := Reason(v.Verify(http.Header{}, nil, nil, now)); got != ReasonUnconfigured {
			t.Errorf("%s Verifier: reason %q, want %q", name, got, ReasonUnconfigured)
		}
		r, _ := http.NewRequest(http.MethodPost, "http://relay.test/?token=x", nil)
		if got := Reason(v.VerifyRequest(r, nil, now)); got != ReasonUnconfigured {
			t.Errorf("%s Verifier: VerifyRequest reason %q, want %q", name, got, ReasonUnconfigured)
		}
	}
}

func TestReason(t *testing.T) {
	v := mustNew(t, Settings{Kind: "token", Header: "X-T", Secrets: []string{tokOld}})
	fail := v.Verify(hdr("X-T", "wrong"), nil, nil, now)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fail, ReasonMismatch},
		{fmt.Errorf("source %q: %w", "hoox", fail), ReasonMismatch},
		{errors.Join(errors.New("other"), fail), ReasonMismatch},
		{errors.New("boom"), ReasonUnknown},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestVerifyConcurrent shares one Verifier between goroutines, as the
// ingress does, so that -race sees the pooled HMAC state.
func TestVerifyConcurrent(t *testing.T) {
	v := mustNew(t, Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}})
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				id := fmt.Sprintf("msg_%d_%d", g, i)
				body := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				key := swKeyOld
				if i%2 == 1 {
					key = swKeyNew
				}
				h := swHeaders(id, unix(now), swSig(key, id, unix(now), body))
				if err := v.Verify(h, nil, []byte(body), now); err != nil {
					errs <- fmt.Errorf("goroutine %d request %d: %w", g, i, err)
					return
				}
				if err := v.Verify(h, nil, []byte(body+"x"), now); Reason(err) != ReasonMismatch {
					errs <- fmt.Errorf("goroutine %d request %d tampered: %v, want mismatch", g, i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
