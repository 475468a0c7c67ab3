package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sink is a local test target: it records every request and can be told to
// fail, slow down or flap. It is safe for concurrent use.
type sink struct {
	name       string
	failFirst  int64         // answer failStatus to the first failFirst requests
	failRate   float64       // answer failStatus to this share of the rest
	failStatus int           // 0 means 503
	delay      time.Duration // before answering
	flap       time.Duration // alternate this long down, this long up
	started    time.Time
	log        io.Writer // one line per request; nil: silent
	record     bool      // keep each request's headers (tests, demo), not for load runs
	keepBodies bool      // and its body

	// countIDs counts distinct Webhook-Ids in distinct and repeats in
	// dups: the bench's check that nothing was lost or sent twice.
	countIDs bool

	n        atomic.Int64
	mu       sync.Mutex
	received []received
	seen     map[string]struct{}
	distinct atomic.Int64
	dups     atomic.Int64
}

type received struct {
	at      time.Time
	status  int
	header  http.Header
	body    []byte
	attempt string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := s.n.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	fail := s.failStatus
	if fail == 0 {
		fail = http.StatusServiceUnavailable
	}
	switch {
	case n <= s.failFirst:
		status = fail
	case s.failRate > 0 && rand.Float64() < s.failRate:
		status = fail
	case s.flap > 0 && (time.Since(s.started)/s.flap)%2 == 0:
		status = fail
	}
	now := time.Now()
	if s.countIDs && status == http.StatusOK {
		s.mu.Lock()
		if s.seen == nil {
			s.seen = make(map[string]struct{})
		}
		if _, ok := s.seen[r.Header.Get("Webhook-Id")]; ok {
			s.dups.Add(1)
		} else {
			s.seen[r.Header.Get("Webhook-Id")] = struct{}{}
			s.distinct.Add(1)
		}
		s.mu.Unlock()
	}
	if s.record {
		rec := received{at: now, status: status, header: r.Header.Clone(), attempt: r.Header.Get("Hooxrelay-Attempt")}
		if s.keepBodies {
			rec.body = body
		}
		s.mu.Lock()
		s.received = append(s.received, rec)
		s.mu.Unlock()
	}
	if s.log != nil {
		fmt.Fprintf(s.log, "%s %s %s %d webhook-id=%s task=%s attempt=%s bytes=%d\n",
			now.Format("15:04:05.000"), s.name, r.Method, status, r.Header.Get("Webhook-Id"),
			r.Header.Get("Hooxrelay-Task"), r.Header.Get("Hooxrelay-Attempt"), len(body))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status < 300 {
		io.WriteString(w, `{"ok":true}`)
	} else {
		io.WriteString(w, `{"ok":false,"error":"sink told to fail"}`)
	}
}

// snapshot returns what the sink received so far.
func (s *sink) snapshot() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

// start serves the sink on addr until ctx ends and returns its address.
func (s *sink) start(ctx context.Context, addr string, wg *sync.WaitGroup) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.started = time.Now()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	wg.Add(2)
	go func() {
		defer wg.Done()
		srv.Serve(ln)
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), nil
}

func runSink(ctx context.Context, args []string, e *env) error {
	fs := newFlags(e, "sink", "--listen ADDR [flags]", `Runs a local test target (a local RequestBin): it answers every POST and
prints one line per request (time, status, Webhook-Id, task, attempt, size).
Use it as a target's url to watch deliveries, and its flags to make it fail,
slow down or flap so that retries and the circuit breaker can be seen.`)
	s := &sink{name: "sink", log: e.stdout}
	listen := fs.String("listen", "127.0.0.1:9101", "address to listen on")
	fs.StringVar(&s.name, "name", "sink", "name printed on each line")
	fs.Int64Var(&s.failFirst, "fail-first", 0, "fail the first N requests")
	fs.Float64Var(&s.failRate, "fail-rate", 0, "fail this share of requests (0 to 1)")
	fs.IntVar(&s.failStatus, "fail-status", 503, "status code of a failure")
	fs.DurationVar(&s.delay, "delay", 0, "wait this long before answering (e.g. 2s)")
	fs.DurationVar(&s.flap, "flap", 0, "alternate: fail for this long, then succeed for this long, and so on")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if s.failRate < 0 || s.failRate > 1 {
		return usagef("--fail-rate %v: want a share between 0 and 1", s.failRate)
	}
	if s.failStatus < 100 || s.failStatus > 599 {
		return usagef("--fail-status %d: want an HTTP status code", s.failStatus)
	}
	var wg sync.WaitGroup
	addr, err := s.start(ctx, *listen, &wg)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	fmt.Fprintf(e.stderr, "sink %q listening on http://%s (Ctrl-C to stop)\n", s.name, addr)
	<-ctx.Done()
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
