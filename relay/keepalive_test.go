package relay_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A drain through the dispatcher keeps its connections to the target
// alive (a few more than max_in_flight may be dialled while one goes back
// to the pool; one per attempt would be hundreds), and a TLS target that
// offers HTTP/2, with the target's own CA file, gets every attempt over it.
func TestDrainReusesConnections(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", tlsOn), func(t *testing.T) {
			var conns, requests, h1 atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if tlsOn && r.ProtoMajor != 2 {
					h1.Add(1)
				}
				io.Copy(io.Discard, r.Body)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			tg := relay.TargetSettings{}
			if tlsOn {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				tg.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
				if err := os.WriteFile(tg.TLS.CAFile, pemBytes, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				srv.Start()
			}
			defer srv.Close()
			ca := tg.TLS.CAFile
			tg = benchTarget("t", srv.URL)
			tg.TLS.CAFile, tg.MaxInFlight = ca, 8
			st, err := pebblestore.Open(filepath.Join(t.TempDir(), "s"), pebblestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			const n = 400
			now := time.Now()
			for i := range n {
				if _, err := st.Ingest(ctx, storetest.Event(now, fmt.Sprint("k", i), "t"), time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			d, err := relay.NewDispatcher(st, []relay.TargetSettings{tg}, relay.DispatcherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- d.Run(runCtx, ctx) }()
			storetest.Eventually(t, 30*time.Second, func() error {
				c, err := st.Counts(ctx)
				if err != nil || c["t"].Delivered < n {
					return fmt.Errorf("counts %+v (%v), waiting for %d delivered", c, err, n)
				}
				return nil
			})
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := requests.Load(); got != n {
				t.Errorf("%d requests for %d deliveries", got, n)
			}
			if c := conns.Load(); c > 2*int64(tg.MaxInFlight) {
				t.Errorf("%d deliveries, %d at a time, opened %d connections; want at most %d", n, tg.MaxInFlight, c, 2*tg.MaxInFlight)
			}
			if h := h1.Load(); h > 0 {
				t.Errorf("%d of %d requests to a TLS target offering HTTP/2 came over HTTP/1", h, n)
			}
		})
	}
}
