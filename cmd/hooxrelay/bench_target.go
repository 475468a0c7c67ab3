package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// benchTarget is a scenario's target: a sink that counts Webhook-Ids, which
// can be taken down (answering 503, or refusing connections) and notes when
// each delivery arrived. It is safe for concurrent use.
type benchTarget struct {
	sink      *sink
	refuse    bool    // down means connection refused rather than 503
	series    *series // nil: no time series
	keepTimes bool    // keep the time of every delivery

	down     atomic.Bool
	downHits atomic.Int64 // requests answered 503 while down

	mu     sync.Mutex
	addr   string
	srv    *http.Server
	closed bool
	wg     *sync.WaitGroup
	times  []time.Time // of each 2xx answer, repeats included
}

func newBenchTarget(name string) *benchTarget {
	return &benchTarget{sink: &sink{name: name, countIDs: true}}
}

// start serves the target on a free loopback port until ctx ends; wg owns
// its goroutines.
func (t *benchTarget) start(ctx context.Context, wg *sync.WaitGroup) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	t.sink.started = time.Now()
	t.mu.Lock()
	t.addr, t.wg = ln.Addr().String(), wg
	t.serve(ln)
	t.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		t.mu.Lock()
		defer t.mu.Unlock()
		t.closed = true
		if t.srv != nil {
			t.srv.Close()
		}
	}()
	return nil
}

// serve is called with t.mu held.
func (t *benchTarget) serve(ln net.Listener) {
	srv := &http.Server{Handler: t, ReadHeaderTimeout: 5 * time.Second}
	t.srv = srv
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		srv.Serve(ln)
	}()
}

func (t *benchTarget) url() string { return "http://" + t.addr + "/hook" }

// setDown takes the target down or brings it back. With refuse, down
// closes the listener and every connection, and up listens again on the
// same port.
func (t *benchTarget) setDown(down bool) error {
	t.down.Store(down)
	if !t.refuse {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if down {
		if t.srv != nil {
			t.srv.Close()
			t.srv = nil
		}
		return nil
	}
	if t.closed || t.srv != nil {
		return nil
	}
	var err error
	for range 50 { // the port was ours a moment ago; wait for it briefly
		var ln net.Listener
		if ln, err = net.Listen("tcp", t.addr); err == nil {
			t.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("listen again on %s: %w", t.addr, err)
}

func (t *benchTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t.down.Load() {
		io.Copy(io.Discard, r.Body)
		t.downHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	t.sink.ServeHTTP(sw, r)
	if sw.status == 0 || sw.status >= 300 {
		return
	}
	now := time.Now()
	if t.series != nil {
		t.series.delivered(now)
	}
	if t.keepTimes {
		t.mu.Lock()
		t.times = append(t.times, now)
		t.mu.Unlock()
	}
}

// statusWriter notes the status a handler answered; 0 means none (the
// sink gives up on a request whose sender went away).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// deliveryTimes returns the times of the deliveries so far, sorted.
func (t *benchTarget) deliveryTimes() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := slices.Clone(t.times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// tally compares what the target received with the acked event ids:
// missing were acked and never delivered (lost), extra were delivered but
// never acked (stored before a crash cut the answer off, for instance).
func (t *benchTarget) tally(acked map[string]struct{}) (missing, extra int) {
	t.sink.mu.Lock()
	defer t.sink.mu.Unlock()
	for id := range acked {
		if _, ok := t.sink.seen[id]; !ok {
			missing++
		}
	}
	for id := range t.sink.seen {
		if _, ok := acked[id]; !ok {
			extra++
		}
	}
	return missing, extra
}

// targetTally is what one target received, against the acks.
type targetTally struct {
	Name       string `json:"name"`
	Delivered  int64  `json:"delivered"` // distinct event ids
	Lost       int    `json:"lost"`      // acked, never delivered
	Duplicated int64  `json:"duplicated"`
	NotAcked   int    `json:"delivered_not_acked"`
}

// drainResult says how the wait for deliveries ended.
type drainResult struct {
	Targets  []targetTally `json:"targets"`
	Lost     int           `json:"lost"`
	Dups     int64         `json:"duplicated"`
	Drained  bool          `json:"drained"`
	DrainSec float64       `json:"drain_s"` // from since until the last one arrived
}

// waitDelivered waits until every acked event reached every target, or
// for timeout, printing progress; then it tallies. DrainSec counts from
// since.
func waitDelivered(ctx context.Context, targets []*benchTarget, acked map[string]struct{}, since time.Time, timeout time.Duration, progress io.Writer, label string) drainResult {
	start := time.Now()
	want := int64(len(acked))
	var res drainResult
	lastPrint := time.Time{}
	for {
		done := true
		var got int64
		for _, t := range targets {
			n := t.sink.distinct.Load()
			got += min(n, want)
			if n < want {
				done = false
			}
		}
		if done { // enough ids; are they the right ones?
			for _, t := range targets {
				if m, _ := t.tally(acked); m > 0 {
					done = false
				}
			}
		}
		if time.Since(lastPrint) >= time.Second || done {
			fmt.Fprintf(progress, "\r%s: draining, %d of %d deliveries (%s)   ", label, got, want*int64(len(targets)), time.Since(start).Round(time.Second))
			lastPrint = time.Now()
		}
		if done || ctx.Err() != nil || time.Since(start) > timeout {
			res.Drained = done
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(progress)
	res.DrainSec = time.Since(since).Seconds()
	// Let repeats that were on their way arrive before counting them.
	if res.Drained {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	for _, t := range targets {
		missing, extra := t.tally(acked)
		tt := targetTally{Name: t.sink.name, Delivered: t.sink.distinct.Load(), Lost: missing, Duplicated: t.sink.dups.Load(), NotAcked: extra}
		res.Targets = append(res.Targets, tt)
		res.Lost += missing
		res.Dups += tt.Duplicated
	}
	return res
}

// errLost is returned by a scenario in which acked events were lost, after
// its report: the relay broke its promise.
var errLost = errors.New("acked events were lost")

func lostError(r drainResult) error {
	if r.Lost > 0 {
		return fmt.Errorf("%w: %d acked deliveries never arrived", errLost, r.Lost)
	}
	if !r.Drained {
		return fmt.Errorf("deliveries did not drain within the wait (--wait)")
	}
	return nil
}
