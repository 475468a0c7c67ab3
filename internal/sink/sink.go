// Package sink is a local test target: an HTTP handler that answers every
// POST, records and prints what it received, and can be told to fail, slow
// down or flap. "hooxrelay sink" serves one, and "hooxrelay demo" three.
package sink

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// Sink is a local test target. Set its fields before it serves; it is
// safe for concurrent use after. Its zero value answers 200 to everything
// and keeps nothing.
type Sink struct {
	Name       string        // printed on each line
	FailFirst  int64         // answer FailStatus to the first FailFirst requests
	FailRate   float64       // answer FailStatus to this share of the rest
	FailStatus int           // 0 means 503
	Delay      time.Duration // before answering
	Flap       time.Duration // alternate this long failing, this long not
	Log        io.Writer     // one line per request; nil: silent
	Verbose    bool          // and, after it, the request's headers and body
	Record     bool          // keep each request's headers (tests, demo), not for load runs
	KeepBodies bool          // and its body
	// Verifier, when set, checks each request's Webhook-Signature, and
	// the line says whether it holds.
	Verifier *verify.Verifier

	started  time.Time
	n        atomic.Int64
	mu       sync.Mutex
	received []Request
}

// Request is what a Sink recorded of one request.
type Request struct {
	At      time.Time
	Status  int // the answer
	Header  http.Header
	Body    []byte // with KeepBodies
	Attempt string // its Hooxrelay-Attempt
}

// ServeHTTP answers, records and prints one request.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := s.n.Add(1)
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	fail := s.FailStatus
	if fail == 0 {
		fail = http.StatusServiceUnavailable
	}
	switch {
	case n <= s.FailFirst:
		status = fail
	case s.FailRate > 0 && rand.Float64() < s.FailRate:
		status = fail
	case s.Flap > 0 && (time.Since(s.started)/s.Flap)%2 == 0:
		status = fail
	}
	now := time.Now()
	if s.Record {
		rec := Request{At: now, Status: status, Header: r.Header.Clone(), Attempt: r.Header.Get("Hooxrelay-Attempt")}
		if s.KeepBodies {
			rec.Body = body
		}
		s.mu.Lock()
		s.received = append(s.received, rec)
		s.mu.Unlock()
	}
	if s.Log != nil {
		s.print(r, body, now, status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status < 300 {
		io.WriteString(w, `{"ok":true}`)
	} else {
		io.WriteString(w, `{"ok":false,"error":"sink told to fail"}`)
	}
}

// print writes the line of one request and, with Verbose, its headers
// and body.
func (s *Sink) print(r *http.Request, body []byte, now time.Time, status int) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %d webhook-id=%s task=%s attempt=%s bytes=%d",
		now.Format("15:04:05.000"), s.Name, r.Method, status, r.Header.Get("Webhook-Id"),
		r.Header.Get("Hooxrelay-Task"), r.Header.Get("Hooxrelay-Attempt"), len(body))
	if s.Verifier != nil {
		if err := s.Verifier.VerifyRequest(r, body, now); err != nil {
			fmt.Fprintf(&b, " signature=invalid (%s: %v)", verify.Reason(err), err)
		} else {
			b.WriteString(" signature=valid")
		}
	}
	b.WriteByte('\n')
	if s.Verbose {
		fmt.Fprintf(&b, "  %s %s\n", r.Method, r.URL.RequestURI())
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&b, "  %s: %s\n", k, v)
			}
		}
		b.WriteString("\n")
		if !utf8.Valid(body) {
			fmt.Fprintf(&b, "  (%d bytes, not UTF-8)\n", len(body))
		} else if len(body) > 0 {
			text := strings.TrimRight(string(body), "\n")
			b.WriteString("  " + strings.ReplaceAll(text, "\n", "\n  ") + "\n")
		}
		b.WriteString("\n")
	}
	s.mu.Lock() // one request's lines stay together
	defer s.mu.Unlock()
	io.WriteString(s.Log, b.String())
}

// Requests returns what the sink recorded so far (with Record).
func (s *Sink) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Started returns when Start was called.
func (s *Sink) Started() time.Time { return s.started }

// Start serves the sink on addr until ctx ends and returns its address;
// wg owns its goroutines.
func (s *Sink) Start(ctx context.Context, addr string, wg *sync.WaitGroup) (string, error) {
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
