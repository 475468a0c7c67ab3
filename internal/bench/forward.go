package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// forwarder is the reference of "bench sustain --reference": the HTTP
// work of a relay and nothing else, so that the rate it keeps up with is
// the most that any relay could reach on this machine with this harness.
// It acks a POST on any path with an event id of its own once it has read
// the body, and posts the body to every target, retrying until delivered.
//
// It is a ceiling, not a relay: it keeps nothing on disk, does not dedup
// or parse the webhook, and its queues are in memory and unbounded, so
// what it acked is gone if it stops.
type forwarder struct {
	client *http.Client
	queues []*forwardQueue
	ids    atomic.Int64
}

// forwardQueue is what one target is owed, oldest first.
type forwardQueue struct {
	url string
	// wake holds a token per push, up to one per worker: a worker that
	// found the queue empty waits for one and looks again.
	wake chan struct{}

	mu    sync.Mutex
	items []forwardItem
}

type forwardItem struct {
	id   string
	body []byte
}

// newForwarder returns a forwarder to targets, which must be http URLs on
// loopback; start runs its workers.
func newForwarder(targets []string) (*forwarder, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("the reference forwarder needs a target")
	}
	f := &forwarder{client: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: fanOutInFlight, MaxIdleConns: fanOutInFlight * len(targets)},
		Timeout:   10 * time.Second,
	}}
	for _, t := range targets {
		u, err := url.Parse(t)
		if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("bench forwards only to http:// URLs on loopback, not %q", t)
		}
		f.queues = append(f.queues, &forwardQueue{url: t, wake: make(chan struct{}, fanOutInFlight)})
	}
	return f, nil
}

// start runs the workers of every target until ctx ends; wg owns them.
func (f *forwarder) start(ctx context.Context, wg *sync.WaitGroup) {
	for _, q := range f.queues {
		for range fanOutInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer f.client.CloseIdleConnections()
				for {
					it, ok := q.pop()
					if !ok {
						select {
						case <-q.wake:
							continue
						case <-ctx.Done():
							return
						}
					}
					if !f.deliver(ctx, q.url, it) {
						return
					}
				}
			}()
		}
	}
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := "evt_ref_" + strconv.FormatInt(f.ids.Add(1), 10)
	for _, q := range f.queues {
		q.push(forwardItem{id, body})
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"event_id":"`+id+`"}`)
}

// deliver posts it to u until a 2xx answer, pausing between tries; it
// reports false when ctx ended first.
func (f *forwarder) deliver(ctx context.Context, u string, it forwardItem) bool {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(it.body))
		if err != nil {
			return false // u was checked by newForwarder
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Webhook-Id", it.id)
		resp, err := f.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return true
			}
		}
		sleepCtx(ctx, 50*time.Millisecond)
		if ctx.Err() != nil {
			return false
		}
	}
}

func (q *forwardQueue) push(it forwardItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // enough tokens wait already for the workers
	}
}

func (q *forwardQueue) pop() (forwardItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return forwardItem{}, false
	}
	it := q.items[0]
	q.items[0] = forwardItem{} // let the body go
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the drained backing array go too
	}
	return it, true
}
