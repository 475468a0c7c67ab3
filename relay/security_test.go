package relay_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/tlsconf/tlstest"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

const (
	whsecA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	whsecB = "whsec_c2Vjb25kLXNlY3JldA=="
)

// Every verify kind, through the real ingress: a valid request is
// accepted, a bad one answers exactly 401 {"error":"invalid_signature"},
// whatever was wrong, and is counted by reason.
func TestIngressVerification(t *testing.T) {
	a := newSink(t, "a", ok)
	set := withSink(t, a,
		verified("header-token", verify.Settings{Kind: verify.KindToken, Header: "X-Hoox-Token", Secrets: []string{"old-token", "new-token"}}),
		verified("query-token", verify.Settings{Kind: verify.KindToken, Secrets: []string{"url-token"}}),
		verified("hmac", verify.Settings{Kind: verify.KindHMACSHA256, Header: "X-Hoox-Signature", Secrets: []string{"hmac-key"}}),
		verified("std", verify.Settings{Kind: verify.KindStandardWebhooks, Secrets: []string{whsecA}, Tolerance: time.Minute}))
	h := startRelay(t, set, "")

	hmacHex := func(key, body string) string {
		m := hmac.New(sha256.New, []byte(key))
		io.WriteString(m, body)
		return hex.EncodeToString(m.Sum(nil))
	}
	stdSig := func(secret, id string, ts int64, body string) string {
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	now := time.Now().Unix()
	n := 0
	body := func() string { n++; return videoBody(fmt.Sprint("verify_", n)) }

	for _, tc := range []struct {
		name    string
		path    string
		header  func(body string) http.Header
		status  int
		reason  string // of the failure metric, for a 401
		sources string
	}{
		{"token in its header, first secret", "/hooks/header-token?x=1", func(string) http.Header { return http.Header{"X-Hoox-Token": {"old-token"}} }, 200, "", "header-token"},
		{"token in its header, second secret", "/hooks/header-token", func(string) http.Header { return http.Header{"X-Hoox-Token": {"new-token"}} }, 200, "", "header-token"},
		{"token wrong", "/hooks/header-token", func(string) http.Header { return http.Header{"X-Hoox-Token": {"new-tokeN"}} }, 401, "mismatch", "header-token"},
		{"token missing", "/hooks/header-token", func(string) http.Header { return nil }, 401, "missing", "header-token"},
		{"token in the query when the header is expected", "/hooks/header-token?token=old-token", func(string) http.Header { return nil }, 401, "missing", "header-token"},
		{"query token", "/hooks/query-token?token=url-token", func(string) http.Header { return nil }, 200, "", "query-token"},
		{"query token wrong", "/hooks/query-token?token=url-tokenx", func(string) http.Header { return nil }, 401, "mismatch", "query-token"},
		{"hmac hex with prefix", "/hooks/hmac", func(b string) http.Header {
			return http.Header{"X-Hoox-Signature": {"sha256=" + hmacHex("hmac-key", b)}}
		}, 200, "", "hmac"},
		{"hmac of another body", "/hooks/hmac", func(b string) http.Header {
			return http.Header{"X-Hoox-Signature": {hmacHex("hmac-key", b+" ")}}
		}, 401, "mismatch", "hmac"},
		{"hmac not hex", "/hooks/hmac", func(string) http.Header { return http.Header{"X-Hoox-Signature": {"sha256=zz"}} }, 401, "malformed", "hmac"},
		{"standard webhooks", "/hooks/std", func(b string) http.Header {
			return http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {strconv.FormatInt(now, 10)}, "Webhook-Signature": {"v1,bm9wZQ== " + stdSig(whsecA, "msg_1", now, b)}}
		}, 200, "", "std"},
		{"standard webhooks signed with another secret", "/hooks/std", func(b string) http.Header {
			return http.Header{"Webhook-Id": {"msg_2"}, "Webhook-Timestamp": {strconv.FormatInt(now, 10)}, "Webhook-Signature": {stdSig(whsecB, "msg_2", now, b)}}
		}, 401, "mismatch", "std"},
		{"standard webhooks replayed after the tolerance", "/hooks/std", func(b string) http.Header {
			old := now - 120
			return http.Header{"Webhook-Id": {"msg_3"}, "Webhook-Timestamp": {strconv.FormatInt(old, 10)}, "Webhook-Signature": {stdSig(whsecA, "msg_3", old, b)}}
		}, 401, "stale", "std"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := body()
			before := h.metric(t, "hooxrelay_ingress_verify_failures_total", map[string]string{"source": tc.sources, "reason": tc.reason})
			r := h.do(t, http.MethodPost, h.url+tc.path, strings.NewReader(b), tc.header(b))
			if r.status != tc.status {
				t.Fatalf("got %s, want %d", r, tc.status)
			}
			if tc.status == 401 {
				if got := strings.TrimSpace(string(r.body)); got != `{"error":"invalid_signature"}` {
					t.Errorf("401 body %s, want exactly {\"error\":\"invalid_signature\"}: the sender learns nothing of what failed", got)
				}
				if after := h.metric(t, "hooxrelay_ingress_verify_failures_total", map[string]string{"source": tc.sources, "reason": tc.reason}); after != before+1 {
					t.Errorf("failures{source=%s,reason=%s} went from %v to %v, want +1", tc.sources, tc.reason, before, after)
				}
			}
		})
	}
}

// allow_cidrs answers 403 to other addresses, before anything else is
// looked at; X-Forwarded-For counts only from a trusted proxy, and then
// its last address that is not a proxy is the client.
func TestAllowCIDRsAndTrustedProxies(t *testing.T) {
	a := newSink(t, "a", ok)
	local := source("local")
	local.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	partner := verified("partner", verify.Settings{Kind: verify.KindToken, Header: "X-Token", Secrets: []string{"s3cret"}})
	partner.Allow = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	set := withSink(t, a, local, partner)
	set.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	h := startRelay(t, set, "")
	for i, tc := range []struct {
		name, path, xff string
		token           string
		status          int
	}{
		{"local peer on the local source", "/hooks/local", "", "", 200},
		{"local peer on the partner source, no XFF", "/hooks/partner", "", "s3cret", 403},
		{"forbidden before the signature is looked at", "/hooks/partner", "", "wrong", 403},
		{"partner behind the trusted proxy", "/hooks/partner", "203.0.113.9", "s3cret", 200},
		{"partner over IPv6 behind the proxy", "/hooks/partner", "2001:db8::7", "s3cret", 200},
		{"allowed, then the signature decides", "/hooks/partner", "203.0.113.9", "wrong", 401},
		{"a spoofed first hop does not help", "/hooks/partner", "203.0.113.9, 198.51.100.7", "s3cret", 403},
		{"the proxy's own address is skipped", "/hooks/partner", "203.0.113.9, 127.0.0.1", "s3cret", 200},
		{"a garbled hop trusts nothing before it", "/hooks/partner", "203.0.113.9, junk", "s3cret", 403},
		{"the local source judges the client, not the proxy", "/hooks/local", "198.51.100.7", "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hd := http.Header{}
			if tc.xff != "" {
				hd.Set("X-Forwarded-For", tc.xff)
			}
			if tc.token != "" {
				hd.Set("X-Token", tc.token)
			}
			r := h.do(t, http.MethodPost, h.url+tc.path, strings.NewReader(videoBody(fmt.Sprint("cidr_", i))), hd)
			if r.status != tc.status {
				t.Fatalf("got %s, want %d", r, tc.status)
			}
			if tc.status == 403 && strings.TrimSpace(string(r.body)) != `{"error":"forbidden"}` {
				t.Errorf("403 body %s, want {\"error\":\"forbidden\"}", r.body)
			}
		})
	}
	if got := h.metric(t, "hooxrelay_ingress_requests_total", map[string]string{"source": "partner", "task": "none", "outcome": "forbidden"}); got != 4 {
		t.Errorf("forbidden requests counted %v, want 4", got)
	}
}

// Deliveries carry Webhook-Signature per docs/http.md, one v1 signature per
// secret, which a receiver checks with nothing but the secret.
func TestOutboundSignature(t *testing.T) {
	one, two := newSink(t, "one", ok), newSink(t, "two", ok)
	t1, t2 := target(one), target(two)
	t1.SigningSecrets = []string{whsecA}
	t2.SigningSecrets = []string{whsecA, whsecB}
	h := startRelay(t, settingsFor(t, t1, t2), "")
	body := videoBody("signed")
	id := h.send(t, body)
	one.waitCount(t, 1, 10*time.Second)
	two.waitCount(t, 1, 10*time.Second)

	// The receiver's side, from the documented words alone.
	valid := func(secret string, r recorded) bool {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(r.header.Get("Webhook-Id") + "." + r.header.Get("Webhook-Timestamp") + "."))
		m.Write(r.body)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		for _, sig := range strings.Fields(r.header.Get("Webhook-Signature")) {
			if hmac.Equal([]byte(sig), []byte(want)) {
				return true
			}
		}
		return false
	}
	r1, r2 := one.requests()[0], two.requests()[0]
	if r1.id() != id || string(r1.body) != body {
		t.Fatalf("target one got %s %q, want %s with the body as sent", r1.id(), r1.body, id)
	}
	if !valid(whsecA, r1) || strings.Count(r1.header.Get("Webhook-Signature"), "v1,") != 1 {
		t.Errorf("target one: Webhook-Signature %q does not verify with its one secret", r1.header.Get("Webhook-Signature"))
	}
	if !valid(whsecA, r2) || !valid(whsecB, r2) || len(strings.Fields(r2.header.Get("Webhook-Signature"))) != 2 {
		t.Errorf("target two (rotating): Webhook-Signature %q, want one valid signature per secret", r2.header.Get("Webhook-Signature"))
	}
	if valid(whsecB, r1) {
		t.Error("target one's signature verifies with a secret it was not given")
	}
	if ts, err := strconv.ParseInt(r1.header.Get("Webhook-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("Webhook-Timestamp %q is not the attempt's unix time", r1.header.Get("Webhook-Timestamp"))
	}
}

// tlsSink is an HTTPS target with a certificate from ca; with clients set,
// it requires a client certificate from that pool.
func tlsSink(t *testing.T, name string, ca *tlstest.CA, requireClient bool) *sink {
	t.Helper()
	s := &sink{name: name, respond: ok}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{at: time.Now(), header: r.Header.Clone(), body: body, status: 200})
		s.mu.Unlock()
	}))
	certFile, keyFile := ca.Server(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if requireClient {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = ca.Pool()
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/hook/" + name
	return s
}

// An HTTPS target behind a private CA, and an mTLS target: reached with the
// configured CA and client certificate; without the client certificate the
// attempts fail and are recorded.
func TestTargetTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir)
	clientCert, clientKey := ca.Client(t, dir)
	private, mtls, nocert := tlsSink(t, "private", ca, false), tlsSink(t, "mtls", ca, true), tlsSink(t, "nocert", ca, true)
	tp, tm, tn := target(private), target(mtls), target(nocert)
	tp.TLS = relay.TLSFiles{CAFile: caFile}
	tm.TLS = relay.TLSFiles{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey}
	tn.TLS = relay.TLSFiles{CAFile: caFile}
	tn.Retry.MaxAttempts = 1
	h := startRelay(t, settingsFor(t, tp, tm, tn), "")
	id := h.send(t, videoBody("tls"))
	private.waitCount(t, 1, 10*time.Second)
	mtls.waitCount(t, 1, 10*time.Second)
	h.waitDeliveries(t, "nocert", "dead", 1, 10*time.Second)
	if nocert.count() != 0 {
		t.Errorf("the mTLS target without a client certificate served %d requests, want none", nocert.count())
	}
	if got := private.requests()[0].id(); got != id {
		t.Errorf("private-CA target got %s, want %s", got, id)
	}
	ev, err := h.store.Event(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ev.Deliveries {
		if d.Target == "nocert" && (len(d.History) != 1 || d.History[0].Error == "" || d.History[0].Status != 0) {
			t.Errorf("the refused mTLS attempt is recorded as %+v, want one attempt with a TLS error", d.History)
		}
	}
}

// The ingress serves TLS 1.2+ from server.tls, and ReloadTLS swaps in a
// renewed certificate for new connections.
func TestIngressTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, dir)
	a := newSink(t, "a", ok)
	set := withSink(t, a, source("hoox"))
	set.Server.CertFile, set.Server.KeyFile = certFile, keyFile
	h := startRelay(t, set, "")
	if !strings.HasPrefix(h.url, "https://") {
		t.Fatalf("ingress URL %s, want https", h.url)
	}
	client := func(max uint16) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MaxVersion: max}, DisableKeepAlives: true}}
	}
	serial := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(h.url, "https://"), &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	h.client = client(0)
	h.send(t, videoBody("tls_ingress"))
	a.waitCount(t, 1, 10*time.Second)

	old := client(tls.VersionTLS11)
	if resp, err := old.Post(h.url+"/hooks/hoox", "application/json", strings.NewReader(videoBody("tls11"))); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 client was served; want TLS 1.2 at least")
	}
	if resp, err := http.Post(strings.Replace(h.url, "https", "http", 1)+"/hooks/hoox", "application/json", strings.NewReader(videoBody("plain"))); err == nil {
		if resp.StatusCode == 200 {
			t.Error("a plain HTTP request was accepted on the TLS ingress")
		}
		resp.Body.Close()
	}

	before := serial()
	newCert, newKey := ca.Server(t, t.TempDir())
	copyFile(t, newCert, certFile)
	copyFile(t, newKey, keyFile)
	if got := serial(); got != before {
		t.Fatalf("the certificate changed before ReloadTLS: %s -> %s", before, got)
	}
	if err := h.srv.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	if got := serial(); got == before {
		t.Errorf("after ReloadTLS new connections still get serial %s", got)
	}
	h.send(t, videoBody("tls_after_reload"))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A client that trickles its headers is cut off at read_header_timeout,
// and one that trickles its body at read_timeout.
func TestSlowClientsCutOff(t *testing.T) {
	a := newSink(t, "a", ok)
	set := withSink(t, a, source("hoox"))
	set.Server.ReadHeaderTimeout, set.Server.ReadTimeout = 300*time.Millisecond, 600*time.Millisecond
	h := startRelay(t, set, "")
	addr := strings.TrimPrefix(h.url, "http://")
	trickle := func(t *testing.T, head string, drip string) time.Duration {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		// One byte every 100ms, for up to 5s: far slower than allowed.
		for i := 0; i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte(drip)); err != nil {
				return time.Since(start)
			}
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := bufio.NewReader(conn).ReadByte(); err != nil && !isTimeout(err) {
				return time.Since(start) // closed by the server (or answered 408 and closed)
			}
		}
		t.Fatalf("the connection was still open after 5s of trickling")
		return 0
	}
	t.Run("headers", func(t *testing.T) {
		if d := trickle(t, "POST /hooks/hoox HTTP/1.1\r\nHost: x\r\n", "X"); d > 3*time.Second {
			t.Errorf("cut off after %v, want about read_header_timeout (300ms)", d)
		}
	})
	t.Run("body", func(t *testing.T) {
		if d := trickle(t, "POST /hooks/hoox HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", " "); d > 3*time.Second {
			t.Errorf("cut off after %v, want about read_timeout (600ms)", d)
		}
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// withSink are settings with the sources given, the config file's body
// limit, and one target, a, that every event goes to.
func withSink(t *testing.T, a *sink, sources ...relay.SourceSettings) relay.Settings {
	set := settingsFor(t, target(a))
	set.Server.MaxBodyBytes = 1 << 20
	set.Sources = sources
	return set
}

// verified is a source called name whose requests are verified as v says.
func verified(name string, v verify.Settings) relay.SourceSettings {
	s := source(name)
	s.Verify = v
	return s
}
