package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/spf13/cobra"
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
	verbose    bool      // and, after it, the request's headers and body
	record     bool      // keep each request's headers (tests, demo), not for load runs
	keepBodies bool      // and its body

	// verifier, when set, checks each request's Webhook-Signature, and the
	// line says whether it holds.
	verifier *verify.Verifier

	n        atomic.Int64
	mu       sync.Mutex
	received []received
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

// print writes the line of one request and, with verbose, its headers
// and body.
func (s *sink) print(r *http.Request, body []byte, now time.Time, status int) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %d webhook-id=%s task=%s attempt=%s bytes=%d",
		now.Format("15:04:05.000"), s.name, r.Method, status, r.Header.Get("Webhook-Id"),
		r.Header.Get("Hooxrelay-Task"), r.Header.Get("Hooxrelay-Attempt"), len(body))
	if s.verifier != nil {
		if err := s.verifier.VerifyRequest(r, body, now); err != nil {
			fmt.Fprintf(&b, " signature=invalid (%s: %v)", verify.Reason(err), err)
		} else {
			b.WriteString(" signature=valid")
		}
	}
	b.WriteByte('\n')
	if s.verbose {
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
	io.WriteString(s.log, b.String())
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

func newSinkCmd(e *env) *cobra.Command {
	s := &sink{name: "sink", log: e.stdout}
	cmd := &cobra.Command{
		Use:     "sink [--listen ADDR]",
		GroupID: groupTry,
		Short:   "run a local test target that logs every request (can fail, slow down or flap)",
		Long: `Runs a local test target (a local RequestBin): it answers every POST and
prints one line per request (time, status, Webhook-Id, task, attempt, size).
Use it as a target's url to watch deliveries, and its flags to make it fail,
slow down or flap so that retries and the circuit breaker can be seen.

--verbose adds each request's headers and body below its line: exactly what
a target receives. --verify-secret checks each request's Webhook-Signature
against the target's signing_secret, as a target should, and adds
signature=valid or signature=invalid (with the reason) to the line.`,
		Example: `  hooxrelay sink --listen 127.0.0.1:9101 --verbose
  hooxrelay sink --listen 127.0.0.1:9101 --fail-first 3
  HOOXRELAY_SINK_SECRET=whsec_... hooxrelay sink --listen 127.0.0.1:9101`,
		Args: noArgs,
	}
	f := cmd.Flags()
	listen := f.String("listen", "127.0.0.1:9101", "listen on `ADDR` (host:port)")
	f.StringVar(&s.name, "name", "sink", "the `NAME` printed on each line")
	f.BoolVarP(&s.verbose, "verbose", "v", false, "print each request's headers and body too")
	secrets := f.StringArray("verify-secret", nil, "check Webhook-Signature with `SECRET` (the target's signing_secret; repeat it for two during a rotation), or set HOOXRELAY_SINK_SECRET")
	f.Int64Var(&s.failFirst, "fail-first", 0, "fail the first `N` requests")
	f.Float64Var(&s.failRate, "fail-rate", 0, "fail this `SHARE` of requests (0 to 1)")
	f.IntVar(&s.failStatus, "fail-status", 503, "the `STATUS` code of a failure")
	f.DurationVar(&s.delay, "delay", 0, "wait this long before answering (e.g. 2s)")
	f.DurationVar(&s.flap, "flap", 0, "alternate: fail for this long, then succeed for this long, and so on")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if s.failRate < 0 || s.failRate > 1 {
			return usagef("--fail-rate %v: want a share between 0 and 1", s.failRate)
		}
		if s.failStatus < 100 || s.failStatus > 599 {
			return usagef("--fail-status %d: want an HTTP status code", s.failStatus)
		}
		if len(*secrets) == 0 && os.Getenv("HOOXRELAY_SINK_SECRET") != "" {
			*secrets = []string{os.Getenv("HOOXRELAY_SINK_SECRET")}
		}
		if len(*secrets) > 0 {
			v, err := verify.New(config.Verify{Kind: config.VerifyStandardWebhooks, Secrets: *secrets})
			if err != nil {
				// err names verify.secrets[i]; here it is the i-th --verify-secret.
				_, msg, _ := strings.Cut(err.Error(), ": ")
				return usagef("--verify-secret: %s (the target's signing_secret)", msg)
			}
			s.verifier = v
		}
		ctx := cmd.Context()
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
	return cmd
}
