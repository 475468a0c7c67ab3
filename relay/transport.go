package relay

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
)

// newClient returns the HTTP client of target ts: its own connection pool,
// sized to its attempts in flight, with its TLS files loaded. It fails when
// they cannot be.
func newClient(ts TargetSettings) (*http.Client, error) {
	tlsCfg, err := tlsconf.ClientConfig(ts.TLS.CAFile, ts.TLS.CertFile, ts.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:       tlsCfg,
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          ts.MaxInFlight,
			MaxIdleConnsPerHost:   ts.MaxInFlight,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// Redirects are never followed (docs/http.md): a 3xx is an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
