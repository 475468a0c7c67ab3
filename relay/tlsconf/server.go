package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ServerCert is the ingress certificate, read from a certificate file and a
// key file and swapped in place by Reload, so that a renewed certificate
// takes effect on SIGHUP without a restart: connections already open keep
// the certificate they were set up with, new handshakes get the new one.
//
// Create it with NewServerCert; the zero value has no certificate and fails
// every handshake. It is safe for concurrent use.
type ServerCert struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewServerCert loads the certificate (with any intermediates after it) and
// its private key, both PEM. It fails on a missing or unreadable file, on a
// key that does not belong to the certificate and on an expired certificate.
func NewServerCert(certFile, keyFile string) (*ServerCert, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("server TLS needs both cert_file and key_file, got cert_file %q and key_file %q", certFile, keyFile)
	}
	cert, err := loadPair(certFile, keyFile, time.Now())
	if err != nil {
		return nil, err
	}
	c := &ServerCert{certFile: certFile, keyFile: keyFile}
	c.cert.Store(cert)
	return c, nil
}

// TLSConfig returns a new config for the ingress listener that asks c for
// the certificate on every handshake, which is what lets Reload work. Pass
// it as http.Server.TLSConfig and call ServeTLS(ln, "", "").
func (c *ServerCert) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert := c.cert.Load()
			if cert == nil {
				return nil, errors.New("no server certificate loaded: create the ServerCert with NewServerCert")
			}
			return cert, nil
		},
	}
}

// Reload reads both files again and, if they make a valid pair, serves the
// new certificate from the next handshake on. On error nothing changes: a
// half-written renewal must not take the ingress down.
func (c *ServerCert) Reload() error {
	cert, err := loadPair(c.certFile, c.keyFile, time.Now())
	if err != nil {
		if old := c.cert.Load(); old != nil {
			return fmt.Errorf("reload server certificate: %w; still serving the previous one, which expires at %s", err, old.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("reload server certificate: %w", err)
	}
	c.cert.Store(cert)
	return nil
}

// NotAfter is when the certificate now served expires, for a log line at
// start and after each reload. It is the zero time when none is loaded.
func (c *ServerCert) NotAfter() time.Time {
	if cert := c.cert.Load(); cert != nil {
		return cert.Leaf.NotAfter
	}
	return time.Time{}
}
