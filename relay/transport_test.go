package relay

import (
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// caFile writes the certificate of a TLS test server as a CA file.
func caFile(t *testing.T, srv *httptest.Server) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A target that offers HTTP/2 over TLS gets it; one that does not gets
// HTTP/1.1.
func TestClientSpeaksHTTP2ToTLSTargets(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprint("h2=", h2), func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Proto)
			}))
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			defer srv.Close()
			c, err := newClient(TargetSettings{MaxInFlight: 4, TLS: TLSFiles{CAFile: caFile(t, srv)}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Post(srv.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
			if resp.Proto != want || string(body) != want {
				t.Errorf("answer over %s, the server saw %s; want %s", resp.Proto, body, want)
			}
		})
	}
}

// Under load, attempts reuse the target's connections. A dial may race a
// connection going back to the pool, so a few more than run at once can be
// opened; a client that did not keep connections alive would open one per
// request.
func TestClientKeepsConnectionsAlive(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"status":"ok"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	const inFlight, each = 8, 200
	c, err := newClient(TargetSettings{MaxInFlight: inFlight})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for range each {
				resp, err := c.Post(srv.URL, "application/json", strings.NewReader("{}"))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > 2*inFlight {
		t.Errorf("%d requests, %d at a time, opened %d connections; want at most %d", inFlight*each, inFlight, n, 2*inFlight)
	}
}
