package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
	"github.com/hooxrelay/hooxrelay/relay/tlsconf/tlstest"
)

// startTarget is an HTTPS target with a certificate from the given files;
// with a non-nil clientCAs it requires a client certificate signed by one
// of them.
func startTarget(t *testing.T, certFile, keyFile string, clientCAs *x509.CertPool) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(ok)
	srv.Config.ErrorLog = quietLog
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = clientCAs
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientConfigReachesTargets(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	caFile, otherCAFile := ca.WriteCA(t, dir), other.WriteCA(t, dir)
	srvCert, srvKey := ca.Server(t, dir)
	cliCert, cliKey := ca.Client(t, dir)
	strangerCert, strangerKey := other.Client(t, dir)

	plain := startTarget(t, srvCert, srvKey, nil)
	mtls := startTarget(t, srvCert, srvKey, ca.Pool())

	const (
		pass          = iota
		unknownIssuer // the relay does not trust the target
		refused       // the target does not accept the relay
	)
	cases := []struct {
		name              string
		url               string
		caFile, cert, key string
		want              int
	}{
		{"private CA", plain, caFile, "", "", pass},
		{"system roots only", plain, "", "", "", unknownIssuer},
		{"another private CA", plain, otherCAFile, "", "", unknownIssuer},
		{"client certificate where none is asked for", plain, caFile, cliCert, cliKey, pass},
		{"mTLS with client certificate", mtls, caFile, cliCert, cliKey, pass},
		{"mTLS without client certificate", mtls, caFile, "", "", refused},
		{"mTLS with certificate from another CA", mtls, caFile, strangerCert, strangerKey, refused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsconf.ClientConfig(tc.caFile, tc.cert, tc.key)
			if err != nil {
				t.Fatalf("ClientConfig(%q, %q, %q): %v", tc.caFile, tc.cert, tc.key, err)
			}
			resp, err := get(t, tc.url, cfg)
			switch tc.want {
			case pass:
				if err != nil {
					t.Fatalf("GET %s = %v, want 200", tc.url, err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s = %s, want 200", tc.url, resp.Status)
				}
			case unknownIssuer:
				var uae x509.UnknownAuthorityError
				if !errors.As(err, &uae) {
					t.Fatalf("GET %s = %v, want x509.UnknownAuthorityError", tc.url, err)
				}
			case refused:
				if err == nil {
					t.Fatalf("GET %s = %s, want the handshake refused by the target", tc.url, resp.Status)
				}
				var uae x509.UnknownAuthorityError
				if errors.As(err, &uae) {
					t.Fatalf("GET %s = %v, want the target to refuse the relay, not the reverse", tc.url, err)
				}
			}
		})
	}
}

func TestClientConfigNoneKeepsDefault(t *testing.T) {
	cfg, err := tlsconf.ClientConfig("", "", "")
	if cfg != nil || err != nil {
		t.Fatalf("ClientConfig(\"\", \"\", \"\") = %v, %v, want nil, nil", cfg, err)
	}
}

func TestClientConfigMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	cfg, err := tlsconf.ClientConfig(caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("ClientConfig MinVersion = %#x, want TLS 1.2 (%#x)", cfg.MinVersion, tls.VersionTLS12)
	}

	// A target stuck on TLS 1.1 is refused by the relay.
	certFile, keyFile := ca.Server(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if resp, err := get(t, "https://"+addr, cfg); err == nil {
		t.Fatalf("GET from a TLS 1.1 target = %s, want the handshake refused", resp.Status)
	}
}

func TestClientConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	cert, key := ca.Client(t, dir)
	_, otherKey := ca.Client(t, dir)
	expCert, expKey := ca.Issue(t, dir, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "expired"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotAfter:    time.Now().Add(-time.Hour),
	})
	missing := filepath.Join(dir, "missing.pem")
	empty := filepath.Join(dir, "empty.pem")
	writeFile(t, empty, "")
	broken := filepath.Join(dir, "broken.pem")
	writeFile(t, broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")

	cases := []struct {
		name              string
		caFile, cert, key string
		want              []string // all must appear in the error
	}{
		{"missing CA file", missing, "", "", []string{missing}},
		{"CA file without PEM", empty, "", "", []string{empty, "no complete PEM certificate"}},
		{"CA file with a broken certificate", broken, "", "", []string{broken}},
		{"key file is the CA", caFile, cert, caFile, []string{cert, caFile}},
		{"certificate without key", caFile, cert, "", []string{"key_file", cert}},
		{"key without certificate", caFile, "", key, []string{"cert_file", key}},
		{"missing certificate file", caFile, missing, key, []string{missing}},
		{"missing key file", caFile, cert, missing, []string{missing}},
		{"key of another certificate", "", cert, otherKey, []string{cert, otherKey, "do not make a pair"}},
		{"swapped files", "", key, cert, []string{"swapped"}},
		{"expired certificate", caFile, expCert, expKey, []string{expCert, "expired"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsconf.ClientConfig(tc.caFile, tc.cert, tc.key)
			if err == nil {
				t.Fatalf("ClientConfig(%q, %q, %q) = %v, nil, want an error", tc.caFile, tc.cert, tc.key, cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ClientConfig(%q, %q, %q) error %q does not mention %q", tc.caFile, tc.cert, tc.key, err, w)
				}
			}
		})
	}
}
