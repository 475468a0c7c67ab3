package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// BenchmarkIngest posts unique webhooks over real HTTP, from many
// goroutines, to a bare handler that reads and parses the body (the
// baseline) and to the relay on the embedded store, acked after fsync and
// fanned out to two targets. Compare the two in the same run.
func BenchmarkIngest(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var doc map[string]any
			body, _ := io.ReadAll(r.Body)
			if json.Unmarshal(body, &doc) != nil {
				w.WriteHeader(http.StatusBadRequest)
			}
		}))
		defer srv.Close()
		postParallel(b, srv.URL)
	})
	b.Run("relay", func(b *testing.B) {
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		defer target.Close()
		set := settingsFor(b, benchTarget("a", target.URL+"/a"), benchTarget("b", target.URL+"/b"))
		url, _, stop := benchRelay(b, set)
		postParallel(b, url+"/hooks/hoox")
		stop()
	})
}

// benchRelay runs a relay with set on the embedded store until stop,
// and returns its ingress URL and store.
func benchRelay(b *testing.B, set relay.Settings) (url string, store relay.Store, stop func()) {
	return benchRelayWith(b, set, relay.ServerOptions{})
}

// benchRelayWith is benchRelay with opts.
func benchRelayWith(b *testing.B, set relay.Settings, opts relay.ServerOptions) (url string, store relay.Store, stop func()) {
	set.Server.MaxBodyBytes = 1 << 20
	st, err := pebblestore.Open(filepath.Join(b.TempDir(), "bench"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := relay.NewServer(set, st, opts)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil) }()
	return "http://" + ln.Addr().String(), st, func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
}

// benchTarget is a target with the config file's defaults.
func benchTarget(name, url string) relay.TargetSettings {
	return target(&sink{name: name, url: url})
}

// waitFinished waits until every target of targets has at least b.N
// deliveries in the state the map gives it (relay.Delivered or relay.Dead).
func waitFinished(b *testing.B, store relay.Store, targets map[string]relay.State) {
	storetest.Eventually(b, time.Minute, func() error {
		c, err := store.Counts(context.Background())
		if err != nil {
			return err
		}
		for name, state := range targets {
			n := c[name].Delivered
			if state == relay.Dead {
				n = c[name].Dead
			}
			if n < b.N {
				return fmt.Errorf("counts %+v, waiting for %d", c, b.N)
			}
		}
		return nil
	})
}

var benchSeq atomic.Int64

func postParallel(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	b.SetParallelism(32) // 64 senders on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := benchSeq.Add(1)
			body := fmt.Sprintf(`{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"v_%d","cost":5}}`, i, i)
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("answer %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkParsePayload parses the SPEC's video_generate example: the
// baseline is encoding/json alone into a map, which ParsePayload does too,
// before it checks the fields it reads and builds the dedup key.
func BenchmarkParsePayload(b *testing.B) {
	body := []byte(`{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`)
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := relay.ParsePayload(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The ingress's parse when no route has conditions: no map.
	b.Run("nodoc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := relay.ParsePayloadNoDoc(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
