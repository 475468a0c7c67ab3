// Package tlstest makes throwaway certificates for tests: a private CA, and
// server and client certificates signed by it, written as PEM files so that
// they go through the same loading code as an operator's files.
//
// Keys are ECDSA P-256 and certificates live for an hour: enough for a test,
// and cheap to make, so that each test can have a CA of its own.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// CA is a private certificate authority held in memory. Create it with
// NewCA; the zero value has no key and cannot issue. It is safe for
// concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA with a name of its own, so that two CAs in
// one test never vouch for each other's certificates.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	serial := newSerial(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("hooxrelay test CA %x", serial.Bytes()[:4])},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse CA certificate: %v", err)
	}
	return &CA{cert: cert, key: key}
}

// Cert is the CA's own certificate. Do not modify it.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// Pool is a new pool holding only this CA, for a server's ClientCAs or a
// client's RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// WriteCA writes the CA certificate as PEM into dir and returns its path.
func (ca *CA) WriteCA(t testing.TB, dir string) string {
	t.Helper()
	return writeTemp(t, dir, "ca-*.pem", pemBytes("CERTIFICATE", ca.cert.Raw))
}

// Server issues a server certificate for localhost, 127.0.0.1 and ::1 and
// writes it and its key into dir. Each call makes a new key and serial, so
// a test can tell two certificates apart.
func (ca *CA) Server(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, dir, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate for mutual TLS and writes it and its
// key into dir.
func (ca *CA) Client(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, dir, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "hooxrelay test client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// Issue signs a certificate made from tmpl with a new key and writes both
// into dir, for the cases Server and Client do not cover, such as an
// expired certificate. A nil SerialNumber gets a random one, a zero NotAfter
// an hour from now and a zero NotBefore a time just before both now and
// NotAfter. tmpl is not modified.
func (ca *CA) Issue(t testing.TB, dir string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	c := *tmpl
	if c.SerialNumber == nil {
		c.SerialNumber = newSerial(t)
	}
	now := time.Now()
	if c.NotAfter.IsZero() {
		c.NotAfter = now.Add(time.Hour)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = now.Add(-time.Minute)
		if !c.NotBefore.Before(c.NotAfter) {
			c.NotBefore = c.NotAfter.Add(-time.Hour)
		}
	}
	if c.KeyUsage == 0 {
		c.KeyUsage = x509.KeyUsageDigitalSignature
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &c, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: issue certificate for %q: %v", c.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: marshal key: %v", err)
	}
	prefix := strings.NewReplacer(" ", "-", "/", "-", "*", "-").Replace(c.Subject.CommonName)
	if prefix == "" {
		prefix = "cert"
	}
	certFile = writeTemp(t, dir, prefix+"-*-cert.pem", pemBytes("CERTIFICATE", der))
	keyFile = strings.TrimSuffix(certFile, "-cert.pem") + "-key.pem"
	if err := os.WriteFile(keyFile, pemBytes("PRIVATE KEY", keyDER), 0o600); err != nil {
		t.Fatalf("tlstest: write key: %v", err)
	}
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return key
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	// Never below 2^120, so the serial always has the bytes NewCA names
	// the CA after.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("tlstest: serial: %v", err)
	}
	return n.Add(n, new(big.Int).Lsh(big.NewInt(1), 120))
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeTemp writes under a fresh name so that several certificates can
// share one t.TempDir().
func writeTemp(t testing.TB, dir, pattern string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("tlstest: write %s: %v", f.Name(), err)
	}
	return f.Name()
}
