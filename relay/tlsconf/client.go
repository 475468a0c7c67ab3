package tlsconf

import (
	"crypto/tls"
	"fmt"
	"time"
)

// ClientConfig builds the TLS config for requests to one target. It returns
// nil and no error when all three files are empty: the caller then keeps the
// default transport's TLS, that is the system roots and no client
// certificate.
//
// A caFile replaces the system roots instead of adding to them: a private CA
// is there to pin whom the relay trusts, and a target behind it should not
// also be reachable with any public certificate for its name. certFile and
// keyFile give the client certificate for mutual TLS; both or neither.
//
// Set the result as TLSClientConfig on a clone of http.DefaultTransport,
// which keeps HTTP/2 enabled.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both cert_file and key_file, got cert_file %q and key_file %q", certFile, keyFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCA(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := loadPair(certFile, keyFile, time.Now())
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg, nil
}
