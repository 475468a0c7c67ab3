package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// loadPair reads a certificate and its key. It checks more than
// tls.X509KeyPair does because an operator reads these errors: it names the
// file at fault, spots swapped files, and refuses an expired certificate,
// which would otherwise load and then fail every handshake.
func loadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := readFile("certificate file", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("key file", keyFile)
	if err != nil {
		return nil, err
	}
	first := firstBlock(certPEM, "CERTIFICATE")
	if first == nil && firstBlock(keyPEM, "CERTIFICATE") != nil {
		return nil, fmt.Errorf("certificate file %q and key file %q look swapped: cert_file must hold the certificate and key_file the key", certFile, keyFile)
	}
	if first == nil {
		return nil, fmt.Errorf("certificate file %q holds no complete PEM certificate: it should contain a \"-----BEGIN CERTIFICATE-----\" block", certFile)
	}
	leaf, err := x509.ParseCertificate(first.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate file %q: %w", certFile, err)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate file %q expired at %s: renew it", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate file %q and key file %q do not make a pair: %w; the key file must hold the PEM private key of the certificate", certFile, keyFile, err)
	}
	cert.Leaf = leaf // also under GODEBUG=x509keypairleaf=0; NotAfter reads it
	return &cert, nil
}

// loadCA reads a PEM bundle of CA certificates. Unlike
// x509.CertPool.AppendCertsFromPEM it does not skip a block it cannot parse:
// a silently missing CA would only show up later as refused deliveries.
func loadCA(caFile string) (*x509.CertPool, error) {
	data, err := readFile("CA file", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %q, certificate %d: %w", caFile, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %q holds no complete PEM certificate: it should contain at least one \"-----BEGIN CERTIFICATE-----\" block", caFile)
	}
	return pool, nil
}

// readFile names the file the way the other errors here do, quoted, rather
// than leaving it inside the *fs.PathError; errors.Is(err, fs.ErrNotExist)
// still holds.
func readFile(what, name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read %s %q: %w", what, name, err)
	}
	return data, nil
}

// firstBlock returns the first complete PEM block of type typ in data, so
// that a half-written file counts as holding none.
func firstBlock(data []byte, typ string) *pem.Block {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil || b.Type == typ {
			return b
		}
	}
}
