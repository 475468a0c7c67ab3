package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// driver sends unique Hoox webhooks to a relay's ingress for the fault
// scenarios and keeps what came back: the event id of every ack and its
// latency. Set the fields, then call run once; the counters may be read
// while it runs.
//
// Without a rate, senders goroutines send one webhook after another as
// fast as they can. With one, webhooks arrive at that rate, each sent by a
// goroutine of its own at its time on a fixed schedule, whatever became of
// the earlier ones (as from Hoox: an outage does not slow the arrivals
// down, it piles up webhooks being resent), up to maxOpen at once. A
// schedule that fell behind (the machine was busy) catches up at once, so
// that the rate holds on average.
type driver struct {
	client  *http.Client
	url     string
	senders int
	rps     float64 // webhooks per second on a schedule; 0: as fast as the senders can
	events  int64   // stop after this many webhooks; 0: when the send context ends
	// retry sends an unacked webhook again, same body, until it is acked,
	// as Hoox does; the relay's dedup answers a repeat of a stored one
	// with its event id. Without it, an unacked webhook is given up.
	retry bool
	// giveUp is how long retries go on after the send context ended;
	// 0 means 30s.
	giveUp time.Duration
	seq    *atomic.Int64 // numbers the webhooks, so that each is unique
	series *timeline     // nil: no time series

	next        atomic.Int64 // webhooks claimed by a sender
	sent        atomic.Int64 // webhooks sent at least once
	requests    atomic.Int64 // requests, retries included
	acks        atomic.Int64 // webhooks acked
	unavailable atomic.Int64 // 503 answers
	otherStatus atomic.Int64 // other answers that were not acks
	transport   atomic.Int64 // requests that got no answer at all
	unacked     atomic.Int64 // webhooks given up
	open        atomic.Int64 // webhooks in progress
	maxOpen     atomic.Int64 // the most at once

	mu       sync.Mutex
	acked    map[string]struct{} // event ids
	lats     []time.Duration     // of each ack
	first    time.Time           // when the first request went out
	lastAck  time.Time
	firstErr string
}

// newDriver returns a driver of n senders posting to the source path of a
// relay's ingress address; it refuses anything but loopback.
func newDriver(ingress string, n int) (*driver, error) {
	u := "http://" + ingress + "/hooks/hoox"
	pu, err := url.Parse(u)
	if err != nil || !isLoopback(pu.Hostname()) {
		return nil, fmt.Errorf("bench sends only to loopback, not %q", ingress)
	}
	return &driver{
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxIdleConns: n}, Timeout: 30 * time.Second},
		url:     u,
		senders: n,
		seq:     new(atomic.Int64),
		acked:   make(map[string]struct{}),
	}, nil
}

// newPacedDriver returns a driver of webhooks arriving at rps, each resent
// until acked, over at most conns connections (0: as many as it takes).
func newPacedDriver(ingress string, rps float64, conns int) (*driver, error) {
	d, err := newDriver(ingress, 64)
	if err != nil {
		return nil, err
	}
	d.client.Transport.(*http.Transport).MaxConnsPerHost = conns
	d.rps, d.retry = rps, true
	return d, nil
}

// maxOpen bounds the webhooks in progress of a paced driver; past it,
// arrivals wait (AckStats.MaxOpen tells).
const maxOpen = 20000

// run sends until sendCtx ends (or events are sent), then waits for the
// webhooks in progress: with retry, until acked or given up. ctx cuts
// everything short.
func (d *driver) run(ctx, sendCtx context.Context) {
	d.mu.Lock()
	d.first = time.Now()
	d.mu.Unlock()
	var wg sync.WaitGroup
	defer d.client.CloseIdleConnections()
	defer wg.Wait()
	if d.rps > 0 {
		sem := make(chan struct{}, maxOpen)
		start := time.Now()
		for sendCtx.Err() == nil {
			n := d.next.Add(1)
			if d.events > 0 && n > d.events {
				return
			}
			due := start.Add(time.Duration(float64(n-1) / d.rps * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				sleepCtx(sendCtx, wait)
				if sendCtx.Err() != nil {
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-sendCtx.Done():
				return
			}
			body := d.body()
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.send(ctx, sendCtx, body)
				<-sem
			}()
		}
		return
	}
	for range d.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sendCtx.Err() == nil {
				if n := d.next.Add(1); d.events > 0 && n > d.events {
					return
				}
				d.send(ctx, sendCtx, d.body())
			}
		}()
	}
}

// body returns a webhook unlike every other, of one of the four tasks.
func (d *driver) body() []byte {
	i := d.seq.Add(1)
	return fmt.Appendf(nil, tasks[i%int64(len(tasks))], i, i)
}

func (d *driver) send(ctx, sendCtx context.Context, body []byte) {
	d.sent.Add(1)
	for n, m := d.open.Add(1), d.maxOpen.Load(); n > m && !d.maxOpen.CompareAndSwap(m, n); m = d.maxOpen.Load() {
	}
	defer d.open.Add(-1)
	var giveUpAt time.Time
	backoff := 50 * time.Millisecond
	for {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := d.client.Do(req)
		d.requests.Add(1)
		wait := backoff
		backoff = min(2*backoff, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				d.unacked.Add(1)
				return
			}
			d.transport.Add(1)
			d.noteErr(err.Error())
		} else {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			now := time.Now()
			var ans struct {
				EventID string `json:"event_id"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &ans) == nil && ans.EventID != "" {
				d.ack(ans.EventID, now, now.Sub(t0))
				return
			}
			if resp.StatusCode == http.StatusServiceUnavailable {
				d.unavailable.Add(1)
			} else {
				d.otherStatus.Add(1)
			}
			d.noteErr(resp.Status)
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
		}
		if !d.retry {
			d.unacked.Add(1)
			return
		}
		if sendCtx.Err() != nil {
			if giveUpAt.IsZero() {
				giveUp := d.giveUp
				if giveUp == 0 {
					giveUp = 30 * time.Second
				}
				giveUpAt = time.Now().Add(giveUp)
			} else if time.Now().After(giveUpAt) {
				d.unacked.Add(1)
				return
			}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			d.unacked.Add(1)
			return
		}
	}
}

func (d *driver) ack(id string, at time.Time, lat time.Duration) {
	d.mu.Lock()
	d.acked[id] = struct{}{}
	d.lats = append(d.lats, lat)
	d.lastAck = at
	d.mu.Unlock()
	d.acks.Add(1)
	if d.series != nil {
		d.series.ack(at, lat)
	}
}

func (d *driver) noteErr(s string) {
	d.mu.Lock()
	if d.firstErr == "" {
		d.firstErr = s
	}
	d.mu.Unlock()
}

// ackedIDs returns a copy of the event ids acked so far.
func (d *driver) ackedIDs() map[string]struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]struct{}, len(d.acked))
	for id := range d.acked {
		m[id] = struct{}{}
	}
	return m
}

// AckStats are the figures of the acks of a run.
type AckStats struct {
	Sent        int64   `json:"sent"`
	Requests    int64   `json:"requests"`
	Acked       int64   `json:"acked"`
	Unacked     int64   `json:"unacked"`
	Unavailable int64   `json:"answers_503"`
	OtherStatus int64   `json:"answers_other"`
	NoAnswer    int64   `json:"no_answer"`
	MaxOpen     int64   `json:"max_in_progress"` // webhooks being sent or resent at once
	AckSeconds  float64 `json:"ack_s"`           // first request to last ack
	AckRate     float64 `json:"acks_per_s"`
	P50ms       float64 `json:"ack_p50_ms"`
	P99ms       float64 `json:"ack_p99_ms"`
	Maxms       float64 `json:"ack_max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func (d *driver) stats() AckStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	lats := slices.Clone(d.lats)
	slices.Sort(lats)
	s := AckStats{
		Sent: d.sent.Load(), Requests: d.requests.Load(), Acked: d.acks.Load(), Unacked: d.unacked.Load(),
		Unavailable: d.unavailable.Load(), OtherStatus: d.otherStatus.Load(), NoAnswer: d.transport.Load(), MaxOpen: d.maxOpen.Load(),
		P50ms: ms(percentile(lats, .50)), P99ms: ms(percentile(lats, .99)), FirstError: d.firstErr,
	}
	if len(lats) > 0 {
		s.Maxms = ms(lats[len(lats)-1])
		s.AckSeconds = d.lastAck.Sub(d.first).Seconds()
		if s.AckSeconds > 0 {
			s.AckRate = float64(s.Acked) / s.AckSeconds
		}
	}
	return s
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// timeline is a time series in fixed buckets from start: acks, deliveries and
// the ack latencies of each bucket. It is safe for concurrent use.
type timeline struct {
	start time.Time
	width time.Duration

	mu      sync.Mutex
	buckets []timelineBucket
}

type timelineBucket struct {
	acks, deliveries int
	lats             []time.Duration
}

func newTimeline(width time.Duration) *timeline { return &timeline{start: time.Now(), width: width} }

// bucket returns the bucket of t; called with s.mu held.
func (s *timeline) bucket(t time.Time) *timelineBucket {
	i := max(0, int(t.Sub(s.start)/s.width))
	for len(s.buckets) <= i {
		s.buckets = append(s.buckets, timelineBucket{})
	}
	return &s.buckets[i]
}

func (s *timeline) ack(t time.Time, lat time.Duration) {
	s.mu.Lock()
	b := s.bucket(t)
	b.acks++
	b.lats = append(b.lats, lat)
	s.mu.Unlock()
}

func (s *timeline) delivered(t time.Time) {
	s.mu.Lock()
	s.bucket(t).deliveries++
	s.mu.Unlock()
}

// Series is a timeline as rates per second and the p99 ack latency of
// each bucket (null where nothing was acked).
type Series struct {
	BucketMS      int64      `json:"bucket_ms"`
	AcksPerS      []float64  `json:"acks_per_s"`
	DeliveriesPS  []float64  `json:"deliveries_per_s"`
	AckP99ms      []*float64 `json:"ack_p99_ms"`
	AckP50ms      []*float64 `json:"ack_p50_ms"`
	lastAckBucket int
}

func (s *timeline) export() Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Series{BucketMS: s.width.Milliseconds(), lastAckBucket: -1}
	per := float64(time.Second) / float64(s.width)
	for i, b := range s.buckets {
		out.AcksPerS = append(out.AcksPerS, float64(b.acks)*per)
		out.DeliveriesPS = append(out.DeliveriesPS, float64(b.deliveries)*per)
		if len(b.lats) == 0 {
			out.AckP99ms = append(out.AckP99ms, nil)
			out.AckP50ms = append(out.AckP50ms, nil)
			continue
		}
		out.lastAckBucket = i
		lats := slices.Clone(b.lats)
		slices.Sort(lats)
		p99, p50 := ms(percentile(lats, .99)), ms(percentile(lats, .50))
		out.AckP99ms = append(out.AckP99ms, &p99)
		out.AckP50ms = append(out.AckP50ms, &p50)
	}
	return out
}
