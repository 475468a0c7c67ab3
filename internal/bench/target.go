package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is a scenario's target: it counts the distinct Webhook-Ids it
// answered 200 and the repeats, can be slow, can be taken down (answering
// 503, or refusing connections) and can note when each delivery arrived.
// Set its fields before start; it is safe for concurrent use after.
type target struct {
	name      string
	delay     time.Duration // before answering
	refuse    bool          // down means connection refused rather than 503
	series    *timeline     // nil: no time series
	keepTimes bool          // keep the time of every delivery

	down     atomic.Bool
	downHits atomic.Int64 // requests answered 503 while down
	distinct atomic.Int64 // Webhook-Ids delivered
	dups     atomic.Int64 // deliveries of a Webhook-Id delivered before

	mu     sync.Mutex
	seen   map[string]struct{}
	times  []time.Time // of each 200, repeats included
	addr   string
	srv    *http.Server
	closed bool
	wg     *sync.WaitGroup
}

// start serves the target on a free loopback port until ctx ends; wg owns
// its goroutines.
func (t *target) start(ctx context.Context, wg *sync.WaitGroup) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.addr, t.wg, t.seen = ln.Addr().String(), wg, make(map[string]struct{})
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
func (t *target) serve(ln net.Listener) {
	srv := &http.Server{Handler: t, ReadHeaderTimeout: 5 * time.Second}
	t.srv = srv
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		srv.Serve(ln)
	}()
}

func (t *target) url() string { return "http://" + t.addr + "/hook" }

// setDown takes the target down or brings it back. With refuse, down
// closes the listener and every connection, and up listens again on the
// same port.
func (t *target) setDown(down bool) error {
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

func (t *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if t.down.Load() {
		t.downHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if t.delay > 0 {
		select {
		case <-time.After(t.delay):
		case <-r.Context().Done():
			return // the relay gave up: not a delivery
		}
	}
	now := time.Now()
	id := r.Header.Get("Webhook-Id")
	t.mu.Lock()
	if _, ok := t.seen[id]; ok {
		t.dups.Add(1)
	} else {
		t.seen[id] = struct{}{}
		t.distinct.Add(1)
	}
	if t.keepTimes {
		t.times = append(t.times, now)
	}
	t.mu.Unlock()
	if t.series != nil {
		t.series.delivered(now)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// deliveryTimes returns the times of the deliveries so far, sorted.
func (t *target) deliveryTimes() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := slices.Clone(t.times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// tally compares what the target received with the acked event ids:
// missing were acked and never delivered (lost), extra were delivered but
// never acked (stored before a crash cut the answer off, for instance).
func (t *target) tally(acked map[string]struct{}) (missing, extra int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range acked {
		if _, ok := t.seen[id]; !ok {
			missing++
		}
	}
	for id := range t.seen {
		if _, ok := acked[id]; !ok {
			extra++
		}
	}
	return missing, extra
}

// TargetTally is what one target received, against the acks.
type TargetTally struct {
	Name       string `json:"name"`
	Delivered  int64  `json:"delivered"` // distinct event ids
	Lost       int    `json:"lost"`      // acked, never delivered
	Duplicated int64  `json:"duplicated"`
	NotAcked   int    `json:"delivered_not_acked"`
}

// Drain says how the wait for the deliveries of a scenario ended.
type Drain struct {
	Targets  []TargetTally `json:"targets"`
	Lost     int           `json:"lost"`
	Dups     int64         `json:"duplicated"`
	Drained  bool          `json:"drained"`
	DrainSec float64       `json:"drain_s"` // from since until the last one arrived
}

// waitDelivered waits until every acked event reached every target, or
// for timeout, printing progress; then it tallies. DrainSec counts from
// since.
func waitDelivered(ctx context.Context, targets []*target, acked map[string]struct{}, since time.Time, timeout time.Duration, progress io.Writer, label string) Drain {
	start := time.Now()
	want := int64(len(acked))
	var res Drain
	lastPrint := time.Time{}
	for {
		done := true
		var got int64
		for _, t := range targets {
			n := t.distinct.Load()
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
		tt := TargetTally{Name: t.name, Delivered: t.distinct.Load(), Lost: missing, Duplicated: t.dups.Load(), NotAcked: extra}
		res.Targets = append(res.Targets, tt)
		res.Lost += missing
		res.Dups += tt.Duplicated
	}
	return res
}

// err is the verdict of a drain: acked events lost, or deliveries still
// missing when the wait ended.
func (d Drain) err() error {
	if d.Lost > 0 {
		return fmt.Errorf("%w: %d acked deliveries never arrived", errLost, d.Lost)
	}
	if !d.Drained {
		return fmt.Errorf("deliveries did not drain within the wait (--wait)")
	}
	return nil
}
