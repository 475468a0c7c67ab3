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
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// replayBenchEvents is how many stored events the replay goes over.
const replayBenchEvents = 10000

// BenchmarkIngestDuringReplay measures the ingest rate of a relay on the
// embedded store with 10k stored events, first alone, then while a replay
// of those events runs (at the default rate and at the fastest one, its
// deliveries going out to two targets), and reports both rates and their
// ratio (during/idle: 1 is no slowdown), and how many events the replay
// handled meanwhile. Run it with a fixed count for steady numbers, e.g.
// -benchtime=3000x.
func BenchmarkIngestDuringReplay(b *testing.B) {
	for _, rate := range []int{relay.DefaultReplayRate, 1000, relay.MaxReplayRate} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchIngestDuringReplay(b, rate) })
	}
}

func benchIngestDuringReplay(b *testing.B, rate int) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer target.Close()
	set := settingsFor(b, benchTarget("a", target.URL+"/a"), benchTarget("b", target.URL+"/b"))
	set.Server.MaxBodyBytes = 1 << 20
	st, err := pebblestore.Open(filepath.Join(b.TempDir(), "bench"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Stored without deliveries: the replay creates one per target.
	at := time.Now().Add(-time.Minute)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < replayBenchEvents; i += 32 {
				if _, err := st.Ingest(context.Background(), storetest.Event(at, fmt.Sprintf("bench_%d", i)), time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	srv, err := relay.NewServer(set, st, relay.ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	admin := httptest.NewServer(srv.AdminHandler())
	defer admin.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil) }()
	defer func() {
		cancel()
		<-done
	}()
	url := "http://" + ln.Addr().String() + "/hooks/hoox"

	postN(b, url, 500) // warm: connections, caches, the first deliveries
	// Idle and replay phases alternate, so that the noise of a shared
	// machine falls on both alike; each replay phase starts a replay and
	// cancels it at its end. Events handled before the phase (while the
	// replay counted them) are not counted.
	const rounds = 4
	var idleTime, duringTime time.Duration
	replayed := 0
	b.ResetTimer()
	for i := range rounds {
		n := b.N / rounds
		if i == rounds-1 {
			n = b.N - n*(rounds-1)
		}
		start := time.Now()
		postN(b, url, n/2)
		idleTime += time.Since(start)
		id := adminReplay(b, "POST", admin.URL+"/api/v1/replays", fmt.Sprintf(`{"since":"1h","rate":%d}`, rate)).ReplayID
		// Untimed: the replay counts its events first, once, and the
		// phase measures it working through them.
		b.StopTimer()
		for adminReplay(b, "GET", admin.URL+"/api/v1/replays/"+id, "").EventsTotal == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		before := adminReplay(b, "GET", admin.URL+"/api/v1/replays/"+id, "").EventsDone
		b.StartTimer()
		start = time.Now()
		postN(b, url, n-n/2)
		duringTime += time.Since(start)
		replayed += adminReplay(b, "DELETE", admin.URL+"/api/v1/replays/"+id, "").EventsDone - before
	}
	b.StopTimer()
	idle := float64(b.N/2) / idleTime.Seconds()
	during := float64(b.N-b.N/2) / duringTime.Seconds()
	b.ReportMetric(idle, "idle_req/s")
	b.ReportMetric(during, "replay_req/s")
	b.ReportMetric(during/idle, "during/idle")
	// Events the replays handled while ingest was measured.
	b.ReportMetric(float64(replayed), "replayed_events")
}

// adminReplay calls a replay endpoint and decodes its answer.
func adminReplay(b *testing.B, method, url, body string) relay.ReplayJSON {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var rp relay.ReplayJSON
	if err := json.NewDecoder(resp.Body).Decode(&rp); err != nil || resp.StatusCode/100 != 2 {
		b.Fatalf("%s %s: %d %v", method, url, resp.StatusCode, err)
	}
	return rp
}

// postN posts n unique webhooks to url from 64 goroutines.
func postN(b *testing.B, url string, n int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	next := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range next {
				i := benchSeq.Add(1)
				body := fmt.Sprintf(`{"task":"video_generate","job_id":"rb_%d","status":"completed"}`, i)
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
