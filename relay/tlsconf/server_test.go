package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
	"github.com/hooxrelay/hooxrelay/relay/tlsconf/tlstest"
)

// ingress starts a real HTTPS server with a ServerCert loaded from a fresh
// server certificate, the way serve wires the ingress listener.
func ingress(t *testing.T) (ca *tlstest.CA, sc *tlsconf.ServerCert, addr, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	ca = tlstest.NewCA(t)
	certFile, keyFile = ca.Server(t, dir)
	sc, err := tlsconf.NewServerCert(certFile, keyFile)
	if err != nil {
		t.Fatalf("NewServerCert(%q, %q): %v", certFile, keyFile, err)
	}
	return ca, sc, serve(t, sc.TLSConfig()), certFile, keyFile
}

func TestServerCertServes(t *testing.T) {
	ca, sc, addr, certFile, _ := ingress(t)

	resp, err := get(t, "https://"+addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("GET https://%s trusting the CA: %v", addr, err)
	}
	if got, want := resp.TLS.PeerCertificates[0].SerialNumber, fileSerial(t, certFile); got.Cmp(want) != 0 {
		t.Errorf("served certificate serial = %x, want %x from %s", got, want, certFile)
	}
	if got, want := sc.NotAfter(), fileCert(t, certFile).NotAfter; !got.Equal(want) {
		t.Errorf("NotAfter() = %v, want %v", got, want)
	}

	var uae x509.UnknownAuthorityError
	if _, err := get(t, "https://"+addr, nil); !errors.As(err, &uae) {
		t.Errorf("GET https://%s with system roots = %v, want x509.UnknownAuthorityError", addr, err)
	}
}

func TestServerCertVersions(t *testing.T) {
	ca, sc, addr, _, _ := ingress(t)
	// Set explicitly, not left to Go's default, which GODEBUG=tls10server=1
	// would lower.
	if got := sc.TLSConfig().MinVersion; got != tls.VersionTLS12 {
		t.Errorf("TLSConfig().MinVersion = %s, want TLS 1.2", tls.VersionName(got))
	}
	cases := []struct {
		name    string
		version uint16
		wantOK  bool
	}{
		{"TLS 1.0", tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &net.Dialer{Timeout: 10 * time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
				RootCAs:    ca.Pool(),
				MinVersion: tc.version,
				MaxVersion: tc.version,
			})
			if !tc.wantOK {
				if err == nil {
					conn.Close()
					t.Fatalf("handshake offering only %s succeeded, want it refused", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake offering only %s: %v", tc.name, err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().Version; got != tc.version {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(got), tc.name)
			}
		})
	}
}

func TestServerCertReload(t *testing.T) {
	ca, sc, addr, certFile, keyFile := ingress(t)
	before := peerSerial(t, addr, ca.Pool())

	newCert, newKey := ca.Server(t, filepath.Dir(certFile))
	want := fileCert(t, newCert)
	replace(t, newCert, certFile)
	replace(t, newKey, keyFile)
	if got := peerSerial(t, addr, ca.Pool()); got.Cmp(before) != 0 {
		t.Fatalf("before Reload serial = %x, want the old %x: files must not be read on every handshake", got, before)
	}

	if err := sc.Reload(); err != nil {
		t.Fatalf("Reload after renewal: %v", err)
	}
	if got := peerSerial(t, addr, ca.Pool()); got.Cmp(want.SerialNumber) != 0 {
		t.Fatalf("after Reload serial = %x, want the new %x (old was %x)", got, want.SerialNumber, before)
	}
	if got := sc.NotAfter(); !got.Equal(want.NotAfter) {
		t.Errorf("NotAfter() after Reload = %v, want %v", got, want.NotAfter)
	}
}

func TestServerCertReloadKeepsOldOnError(t *testing.T) {
	cases := []struct {
		name       string
		breakFiles func(t *testing.T, ca *tlstest.CA, certFile, keyFile string)
		want       func(certFile, keyFile string) string // must appear in the error
	}{
		{
			"certificate file is not PEM",
			func(t *testing.T, _ *tlstest.CA, certFile, _ string) { writeFile(t, certFile, "garbage") },
			func(c, _ string) string { return c },
		},
		{
			"half-written certificate",
			func(t *testing.T, _ *tlstest.CA, certFile, _ string) {
				data, err := os.ReadFile(certFile)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, certFile, string(data[:len(data)/2]))
			},
			func(_, _ string) string { return "no complete PEM certificate" },
		},
		{
			"new certificate, old key",
			func(t *testing.T, ca *tlstest.CA, certFile, _ string) {
				c, _ := ca.Server(t, filepath.Dir(certFile))
				replace(t, c, certFile)
			},
			func(_, _ string) string { return "do not make a pair" },
		},
		{
			"key file removed",
			func(t *testing.T, _ *tlstest.CA, _, keyFile string) {
				if err := os.Remove(keyFile); err != nil {
					t.Fatal(err)
				}
			},
			func(_, k string) string { return k },
		},
		{
			"expired certificate",
			func(t *testing.T, ca *tlstest.CA, certFile, keyFile string) {
				c, k := ca.Issue(t, filepath.Dir(certFile), &x509.Certificate{
					Subject:     pkix.Name{CommonName: "localhost"},
					DNSNames:    []string{"localhost"},
					IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
					ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
					NotAfter:    time.Now().Add(-time.Minute),
				})
				replace(t, c, certFile)
				replace(t, k, keyFile)
			},
			func(_, _ string) string { return "expired" },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ca, sc, addr, certFile, keyFile := ingress(t)
			old := peerSerial(t, addr, ca.Pool())
			oldNotAfter := sc.NotAfter()

			tc.breakFiles(t, ca, certFile, keyFile)
			err := sc.Reload()
			if err == nil {
				t.Fatal("Reload of broken files = nil, want an error")
			}
			for _, w := range []string{tc.want(certFile, keyFile), "still serving the previous one"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Reload error %q does not mention %q", err, w)
				}
			}
			if got := peerSerial(t, addr, ca.Pool()); got.Cmp(old) != 0 {
				t.Fatalf("after a failed Reload serial = %x, want the old %x", got, old)
			}
			if got := sc.NotAfter(); !got.Equal(oldNotAfter) {
				t.Errorf("NotAfter() after a failed Reload = %v, want %v", got, oldNotAfter)
			}

			// Fixing the files and reloading again recovers.
			newCert, newKey := ca.Server(t, filepath.Dir(certFile))
			want := fileSerial(t, newCert)
			replace(t, newCert, certFile)
			replace(t, newKey, keyFile)
			if err := sc.Reload(); err != nil {
				t.Fatalf("Reload after fixing the files: %v", err)
			}
			if got := peerSerial(t, addr, ca.Pool()); got.Cmp(want) != 0 {
				t.Fatalf("after fixing and Reload serial = %x, want %x", got, want)
			}
		})
	}
}

// Handshakes and reloads at once, for the race detector.
func TestServerCertReloadConcurrent(t *testing.T) {
	ca, sc, addr, _, _ := ingress(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				peerSerial(t, addr, ca.Pool())
			}
		})
	}
	for range 20 {
		if err := sc.Reload(); err != nil {
			t.Errorf("Reload: %v", err)
		}
	}
	wg.Wait()
}

func TestNewServerCertErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	cert, key := ca.Server(t, dir)
	_, otherKey := ca.Server(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "not PEM at all")
	broken := filepath.Join(dir, "broken.pem")
	writeFile(t, broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")

	cases := []struct {
		name      string
		cert, key string
		want      []string
	}{
		{"missing certificate file", missing, key, []string{missing}},
		{"missing key file", cert, missing, []string{missing}},
		{"certificate file not PEM", garbage, key, []string{garbage, "no complete PEM certificate"}},
		{"certificate file with a broken certificate", broken, key, []string{broken, "x509"}},
		{"key file not PEM", cert, garbage, []string{cert, garbage}},
		{"key of another certificate", cert, otherKey, []string{cert, otherKey, "do not make a pair"}},
		{"swapped files", key, cert, []string{key, cert, "swapped"}},
		{"no key file", cert, "", []string{"key_file"}},
		{"no certificate file", "", key, []string{"cert_file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := tlsconf.NewServerCert(tc.cert, tc.key)
			if err == nil {
				t.Fatalf("NewServerCert(%q, %q) = %v, nil, want an error", tc.cert, tc.key, sc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewServerCert(%q, %q) error %q does not mention %q", tc.cert, tc.key, err, w)
				}
			}
		})
	}
}

func TestServerCertZeroValue(t *testing.T) {
	var sc tlsconf.ServerCert
	if got := sc.NotAfter(); !got.IsZero() {
		t.Errorf("zero ServerCert NotAfter() = %v, want the zero time", got)
	}
	addr := serve(t, sc.TLSConfig())
	d := &net.Dialer{Timeout: 10 * time.Second}
	if conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		conn.Close()
		t.Fatal("handshake with a zero ServerCert succeeded, want it refused")
	}
	if err := sc.Reload(); err == nil {
		t.Fatal("Reload of a zero ServerCert = nil, want an error")
	}
}
