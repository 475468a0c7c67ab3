package relay_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// Retries

// A retry must go out when it is due, not at the dispatcher's next poll
// (PollInterval, 5s): the store has to have the delivery back in line when
// Complete returns.
func TestRetryGoesOutWhenDueNotAtNextPoll(t *testing.T) {
	s := newSink(t, "t", failFirst(1, http.StatusServiceUnavailable))
	tg := target(s)
	tg.Retry.InitialInterval, tg.Retry.MaxInterval, tg.Retry.Multiplier, tg.Retry.Jitter = 100*time.Millisecond, time.Second, 2, 0
	h := startRelay(t, settingsFor(t, tg), "")
	h.send(t, videoBody("wake"))
	s.waitCount(t, 1, 2*time.Second)
	storetest.Eventually(t, 2*time.Second, func() error {
		reqs := s.requests()
		if len(reqs) < 2 {
			return fmt.Errorf("%v after a 503, with initial_interval 100ms, the retry has not come (the dispatcher polls every 5s)", time.Since(reqs[0].at).Round(time.Millisecond))
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap > time.Second {
			return fmt.Errorf("the retry came %v after the first attempt, want about 100ms", gap)
		}
		return nil
	})
}

func TestRetryBackoffGrowsByMultiplier(t *testing.T) {
	s := newSink(t, "flaky", failFirst(4, http.StatusServiceUnavailable))
	tg := target(s)
	tg.Retry = relay.RetryPolicy{MaxAttempts: 10, InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second, Multiplier: 2, MaxAge: 24 * time.Hour}
	h := startRelay(t, settingsFor(t, tg), "")
	id := h.send(t, videoBody("backoff"))
	s.waitCount(t, 5, 5*time.Second)
	h.waitDeliveries(t, "flaky", "delivered", 1, 2*time.Second)

	reqs := s.requests()
	if len(reqs) != 5 {
		t.Fatalf("target received %d requests, want 5 (4 failures then a success)", len(reqs))
	}
	for i, r := range reqs {
		if r.id() != id || r.attempt() != strconv.Itoa(i+1) {
			t.Errorf("request %d: Webhook-Id %q Hooxrelay-Attempt %q, want %q and %d", i+1, r.id(), r.attempt(), id, i+1)
		}
	}
	const slack = 5 * time.Millisecond
	var gaps []time.Duration
	for i := 1; i < len(reqs); i++ {
		gaps = append(gaps, reqs[i].at.Sub(reqs[i-1].at))
	}
	for i, g := range gaps {
		want := 100 * time.Millisecond << i
		if g < want-slack {
			t.Errorf("gap between attempts %d and %d is %v, want at least %v (initial 100ms × 2^%d); all gaps %v", i+1, i+2, g, want, i, gaps)
		}
	}
	// Only the lower bounds are checked: a loaded machine may delay an
	// attempt, never make it early. TestBackoff checks the exact delays.
	m := h.metrics(t)
	for outcome, want := range map[string]float64{"retry": 4, "delivered": 1, "dead": 0} {
		if v, _ := m.value("hooxrelay_deliveries_total", map[string]string{"target": "flaky", "outcome": outcome}); v != want {
			t.Errorf("hooxrelay_deliveries_total{outcome=%q} = %v, want %v", outcome, v, want)
		}
	}
}

func TestRetryAfterLengthensDelay(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		maxInt     time.Duration
		wantMin    time.Duration
		wantMax    time.Duration
	}{
		{"429 Retry-After 1 over a 50ms backoff", http.StatusTooManyRequests, "1", 10 * time.Second, time.Second, 2 * time.Second},
		{"503 Retry-After 1 over a 50ms backoff", http.StatusServiceUnavailable, "1", 10 * time.Second, time.Second, 2 * time.Second},
		{"429 Retry-After capped at max_interval", http.StatusTooManyRequests, "30", 300 * time.Millisecond, 300 * time.Millisecond, 1200 * time.Millisecond},
		{"500 Retry-After ignored", http.StatusInternalServerError, "30", 10 * time.Second, 50 * time.Millisecond, 900 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, "t", func(n int) answer {
				if n == 1 {
					return answer{status: tc.status, retryAfter: tc.retryAfter}
				}
				return answer{}
			})
			tg := target(s)
			tg.Retry = relay.RetryPolicy{MaxAttempts: 5, InitialInterval: 50 * time.Millisecond, MaxInterval: tc.maxInt, Multiplier: 2, MaxAge: 24 * time.Hour}
			h := startRelay(t, settingsFor(t, tg), "")
			h.send(t, videoBody("retry_after"))
			s.waitCount(t, 2, tc.wantMax+3*time.Second)
			reqs := s.requests()
			gap := reqs[1].at.Sub(reqs[0].at)
			if gap < tc.wantMin-5*time.Millisecond || gap > tc.wantMax {
				t.Errorf("first answer %d with Retry-After %s (initial_interval 50ms, max_interval %s): second attempt came %v later, want between %v and %v",
					tc.status, tc.retryAfter, tc.maxInt, gap, tc.wantMin, tc.wantMax)
			}
			if a := reqs[1].attempt(); a != "2" {
				t.Errorf("second attempt has Hooxrelay-Attempt %q, want 2", a)
			}
		})
	}
}

func TestDeadDeliveries(t *testing.T) {
	cases := []struct {
		name         string
		answer       answer
		maxAttempts  int
		wantAttempts int
	}{
		{"400 is dead after one attempt", answer{status: http.StatusBadRequest}, 5, 1},
		{"404 is dead after one attempt", answer{status: http.StatusNotFound}, 5, 1},
		{"422 is dead after one attempt", answer{status: http.StatusUnprocessableEntity}, 5, 1},
		{"redirect is not followed and is dead", answer{status: http.StatusFound, location: "/elsewhere"}, 5, 1},
		{"500 until max_attempts 3", answer{status: http.StatusInternalServerError}, 3, 3},
		{"408 until max_attempts 2", answer{status: http.StatusRequestTimeout}, 2, 2},
		{"425 until max_attempts 2", answer{status: http.StatusTooEarly}, 2, 2},
		{"max_attempts 1 never retries", answer{status: http.StatusBadGateway}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, "t", always(tc.answer))
			tg := target(s)
			tg.Retry = relay.RetryPolicy{MaxAttempts: tc.maxAttempts, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAge: 24 * time.Hour}
			h := startRelay(t, settingsFor(t, tg), "")
			id := h.send(t, videoBody("dead"))
			h.waitDeliveries(t, "t", "dead", 1, 5*time.Second)
			// Dead is final: no attempt can follow once it is recorded.
			reqs := s.requests()
			if len(reqs) != tc.wantAttempts {
				t.Fatalf("target answering %d (max_attempts %d) got %d attempts before the delivery went dead, want %d",
					tc.answer.status, tc.maxAttempts, len(reqs), tc.wantAttempts)
			}
			for i, r := range reqs {
				if r.id() != id || r.attempt() != strconv.Itoa(i+1) {
					t.Errorf("attempt %d: Webhook-Id %q Hooxrelay-Attempt %q, want %q and %d", i+1, r.id(), r.attempt(), id, i+1)
				}
				if strings.HasPrefix(string(r.body), "sink") || r.header.Get("Referer") != "" {
					t.Errorf("attempt %d looks like a followed redirect: %v", i+1, r.header)
				}
			}
			m := h.metrics(t)
			if v, _ := m.value("hooxrelay_deliveries_total", map[string]string{"target": "t", "outcome": "retry"}); v != float64(tc.wantAttempts-1) {
				t.Errorf("hooxrelay_deliveries_total{outcome=retry} = %v, want %d", v, tc.wantAttempts-1)
			}
		})
	}
}

// Circuit breaker

func TestBreakerStopsAttemptsWhileOpen(t *testing.T) {
	s := newSink(t, "down", always(answer{status: http.StatusServiceUnavailable}))
	tg := target(s)
	tg.Retry = relay.RetryPolicy{MaxAttempts: 4, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAge: 24 * time.Hour}
	tg.Breaker = relay.BreakerSettings{MinRequests: 3, FailureRatio: 0.5, Interval: 60 * time.Second, OpenTimeout: 500 * time.Millisecond}
	h := startRelay(t, settingsFor(t, tg), "")
	const events = 10
	var ids []string
	for i := range events {
		ids = append(ids, h.send(t, videoBody(fmt.Sprintf("breaker_%d", i))))
	}
	storetest.Eventually(t, 3*time.Second, func() error {
		if st := h.srv.Dispatcher().BreakerState("down"); st != "open" {
			return fmt.Errorf("breaker of target down is %q after %d failed attempts, waiting for open", st, s.count())
		}
		return nil
	})
	storetest.Eventually(t, time.Second, func() error {
		if v := h.metric(t, "hooxrelay_breaker_state", map[string]string{"target": "down"}); v != 2 {
			return fmt.Errorf("hooxrelay_breaker_state{target=down} = %v, waiting for 2 (open)", v)
		}
		return nil
	})

	// While open, at most one probe per open_timeout. Without a breaker,
	// 10 events retried at 50ms, 100ms, 200ms would make dozens of
	// attempts in this window.
	const window = 1250 * time.Millisecond
	before := s.count()
	time.Sleep(window) // counting what happens during a window: no outcome to poll for
	during := s.count() - before
	if limit := int(window/(500*time.Millisecond)) + 2; during > limit {
		t.Errorf("target down, breaker open (open_timeout 500ms): %d attempts in %v, want at most %d (one probe per open_timeout)", during, window, limit)
	}
	if v, _ := h.metrics(t).value("hooxrelay_deliveries_total", map[string]string{"target": "down", "outcome": "dead"}); v != 0 {
		t.Errorf("%v deliveries went dead while the breaker was open; waiting deliveries must not be charged", v)
	}

	s.setRespond(ok)
	storetest.Eventually(t, 5*time.Second, func() error {
		var missing []string
		got := okIDs(s)
		for _, id := range ids {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("after the target recovered, %d of %d events not delivered yet (breaker %q)", len(missing), events, h.srv.Dispatcher().BreakerState("down"))
		}
		return nil
	})
	maxAttempt := map[string]int{}
	for _, r := range s.requests() {
		n, _ := strconv.Atoi(r.attempt())
		maxAttempt[r.id()] = max(maxAttempt[r.id()], n)
	}
	for id, n := range maxAttempt {
		if n > 4 {
			t.Errorf("event %s reached Hooxrelay-Attempt %d, want at most max_attempts 4", id, n)
		}
	}
	h.waitDeliveries(t, "down", "delivered", events, 2*time.Second)
	if v, _ := h.metrics(t).value("hooxrelay_deliveries_total", map[string]string{"target": "down", "outcome": "dead"}); v != 0 {
		t.Errorf("hooxrelay_deliveries_total{target=down,outcome=dead} = %v, want 0", v)
	}
	storetest.Eventually(t, 2*time.Second, func() error {
		st := h.srv.Dispatcher().BreakerState("down")
		v := h.metric(t, "hooxrelay_breaker_state", map[string]string{"target": "down"})
		if st != "closed" || v != 0 {
			return fmt.Errorf("after recovery breaker is %q and hooxrelay_breaker_state %v, want closed and 0", st, v)
		}
		return nil
	})
}

// okIDs returns the event ids that the sink answered with a 2xx.
func okIDs(s *sink) map[string]bool {
	got := map[string]bool{}
	for _, r := range s.requests() {
		if r.status >= 200 && r.status < 300 {
			got[r.id()] = true
		}
	}
	return got
}

// Rate-limited target

func TestTargetRateLimit(t *testing.T) {
	slow, fast := newSink(t, "paced", ok), newSink(t, "fast", ok)
	paced := target(slow)
	paced.RateLimit = relay.RateLimit{RPS: 20, Burst: 1}
	h := startRelay(t, settingsFor(t, paced, target(fast)), "")
	const n = 40
	start := make(chan struct{})
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := range n {
		wg.Go(func() {
			<-start
			r := h.post(t, "/hooks/hoox", videoBody(fmt.Sprintf("paced_%d", i)))
			if r.status == http.StatusOK && r.answer(t).Status == "accepted" {
				accepted.Add(1)
			} else {
				t.Errorf("burst POST %d: got %s, want 200 accepted", i, r)
			}
		})
	}
	sent := time.Now()
	close(start)
	wg.Wait()
	acked := time.Since(sent)
	atAck := slow.count()
	if accepted.Load() != n {
		t.Fatalf("%d of %d burst webhooks accepted", accepted.Load(), n)
	}
	if atAck >= n/2 {
		t.Errorf("all %d acks took %v; by then the paced target (20 rps) had received %d, want fewer than %d: ingest must not wait on a target",
			n, acked, atAck, n/2)
	}
	fast.waitCount(t, n, 3*time.Second)
	if got := slow.count(); got >= n {
		t.Errorf("the unlimited target got its %d events only after the paced one had all %d: a target's rate limit slowed another", n, got)
	}
	slow.waitCount(t, n, 5*time.Second)
	reqs := slow.requests()
	// From the second arrival on: the first one also waits for a new
	// connection, which shortens the measured span by that much.
	span := reqs[len(reqs)-1].at.Sub(reqs[1].at)
	if want := time.Duration(n-2) * time.Second / 20; span < want-150*time.Millisecond {
		t.Errorf("paced target (rps 20, burst 1) received events 2 to %d within %v, want them spread over about %v (at least %v)",
			n, span, want, want-150*time.Millisecond)
	}
	// No window of one second holds more than rps + burst requests.
	for i := range reqs {
		j := i
		for j < len(reqs) && reqs[j].at.Sub(reqs[i].at) < time.Second {
			j++
		}
		if j-i > 21+2 {
			t.Errorf("paced target received %d requests within one second from request %d; want at most about 21 (rps 20 + burst 1)", j-i, i+1)
			break
		}
	}
	if ids := slow.ids(); len(ids) != n {
		t.Errorf("paced target received %d distinct events, want %d (rate limiting must not fail or drop deliveries)", len(ids), n)
	}
}

// Isolation between targets

func TestSlowTargetNeverDelaysAnother(t *testing.T) {
	cases := []struct {
		name string
		bad  func(t *testing.T) *sink
	}{
		{"hangs until timeout", func(t *testing.T) *sink { return newSink(t, "bad", always(answer{hang: true})) }},
		{"answers after 2.5s", func(t *testing.T) *sink { return newSink(t, "bad", always(answer{delay: 2500 * time.Millisecond})) }},
		{"connection refused", func(t *testing.T) *sink { return &sink{name: "bad", url: refusedURL(t)} }},
		{"failing with 503", func(t *testing.T) *sink {
			return newSink(t, "bad", always(answer{status: http.StatusServiceUnavailable}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad, good := tc.bad(t), newSink(t, "good", ok)
			tb, tg := target(bad), target(good)
			tb.Timeout, tb.MaxInFlight = 3*time.Second, 2
			tb.Retry.InitialInterval, tb.Retry.MaxInterval, tb.Retry.Jitter = 50*time.Millisecond, time.Second, 0
			tg.MaxInFlight = 2
			h := startRelay(t, settingsFor(t, tb, tg), "")
			start := time.Now()
			const n = 8
			for i := range n {
				h.send(t, videoBody(fmt.Sprintf("isolation_%d", i)))
			}
			good.waitCount(t, n, 2*time.Second)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("healthy target got its %d events %v after they were sent while target bad %s; want well under bad's 3s timeout", n, took, tc.name)
			}
		})
	}
}
