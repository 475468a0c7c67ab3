package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// An open breaker lets exactly one probe through when it turns half-open;
// the other waiting deliveries go out only once that probe succeeds.
func TestHalfOpenSendsOneProbe(t *testing.T) {
	const failures = 3
	s := newSink(t, "t", func(n int) answer {
		switch {
		case n <= failures:
			return answer{status: http.StatusServiceUnavailable}
		case n == failures+1:
			return answer{delay: 700 * time.Millisecond} // the probe: slow, then fine
		}
		return answer{}
	})
	tg := target(s)
	tg.MaxInFlight = 1
	tg.Retry.MaxAttempts, tg.Retry.InitialInterval, tg.Retry.Jitter = 10, 50*time.Millisecond, 0
	tg.Breaker.MinRequests, tg.Breaker.FailureRatio, tg.Breaker.OpenTimeout = 3, 1, 300*time.Millisecond
	h := startRelay(t, settingsFor(t, tg), "")
	const events = 5
	for i := range events {
		h.send(t, videoBody(fmt.Sprintf("probe_%d", i)))
	}
	s.waitCount(t, failures+1, 3*time.Second) // the failures, then the probe
	// While the probe is out, nothing else may go to the target.
	time.Sleep(400 * time.Millisecond) // counting what happens during a window
	if got := s.count(); got != failures+1 {
		t.Fatalf("target received %d requests while the half-open probe was out, want %d (failures, then one probe)", got, failures+1)
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		if got := len(okIDs(s)); got < events {
			return fmt.Errorf("%d of %d events delivered after the probe succeeded (breaker %q)", got, events, h.srv.Dispatcher().BreakerState("t"))
		}
		return nil
	})
	if st := h.srv.Dispatcher().BreakerState("t"); st != "closed" {
		t.Errorf("breaker after a successful probe is %q, want closed", st)
	}
}

// A delivery whose next attempt would start past max_age goes dead at once.
func TestMaxAgeMakesDead(t *testing.T) {
	s := newSink(t, "t", always(answer{status: http.StatusServiceUnavailable}))
	tg := target(s)
	tg.Retry.MaxAttempts, tg.Retry.InitialInterval, tg.Retry.Multiplier, tg.Retry.Jitter, tg.Retry.MaxAge = 10, 200*time.Millisecond, 2, 0, 500*time.Millisecond
	h := startRelay(t, settingsFor(t, tg), "")
	h.send(t, videoBody("max_age"))
	h.waitDeliveries(t, "t", "dead", 1, 5*time.Second)
	// Attempts at about 0ms and 200ms; the next would be at 600ms > 500ms.
	if got := s.count(); got != 2 {
		t.Errorf("target received %d attempts before max_age (500ms) with delays 200ms, 400ms; want 2", got)
	}
}

// stalledStore is the embedded store with an ingest that never finishes,
// like a disk that stopped answering.
type stalledStore struct{ *pebblestore.Store }

func (s stalledStore) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	<-ctx.Done()
	return relay.IngestResult{}, ctx.Err()
}

// A write that does not finish in time is answered 503 with Retry-After
// while the connection can still carry the answer, so that the sender
// retries instead of timing out.
func TestIngressAnswers503WhenTheWriteStalls(t *testing.T) {
	set := settingsFor(t, target(&sink{name: "t", url: "http://127.0.0.1:1/hook"}))
	set.Server.MaxBodyBytes, set.Server.WriteTimeout = 1<<20, time.Second
	bs, err := pebblestore.Open(filepath.Join(t.TempDir(), "stall"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	srv, err := relay.NewServer(set, stalledStore{bs}, relay.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	start := time.Now()
	resp, err := http.Post("http://"+ln.Addr().String()+"/hooks/hoox", "application/json", strings.NewReader(videoBody("stall")))
	if err != nil {
		t.Fatalf("POST with a stalled store: %v; want a 503 answer, not a broken connection", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST with a stalled store: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("503 came after %s, past write_timeout (1s)", took)
	}
}

// pauseMarksLate is the embedded store with pause marks that cannot be read
// until ready is closed, like a store still coming up.
type pauseMarksLate struct {
	*pebblestore.Store
	ready chan struct{}
}

func (s pauseMarksLate) Paused(ctx context.Context) (map[string]bool, error) {
	select {
	case <-s.ready:
		return s.Store.Paused(ctx)
	default:
		return nil, fmt.Errorf("store not ready")
	}
}

// When the pause marks cannot be read at start, every target starts paused
// (an operator's pause must not be lifted by a restart); once the store
// answers, the targets that are not marked go, and a marked one stays held.
func TestPauseMarksUnreadableAtStart(t *testing.T) {
	good, held := newSink(t, "good", ok), newSink(t, "flaky", ok)
	set := adminSettings(t, good, held)
	bs, err := pebblestore.Open(filepath.Join(t.TempDir(), "late"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.SetPaused(t.Context(), "flaky", true); err != nil {
		t.Fatal(err)
	}
	store := pauseMarksLate{Store: bs, ready: make(chan struct{})}
	h := startRelayOn(t, set, store)
	h.send(t, videoBody("late_marks"))
	time.Sleep(1500 * time.Millisecond) // past a retry of the marks
	if good.count() != 0 || held.count() != 0 {
		t.Fatalf("delivered %d and %d while the pause marks were unreadable, want none", good.count(), held.count())
	}
	close(store.ready)
	good.waitCount(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if held.count() != 0 {
		t.Error("the target marked paused got a delivery once the marks were read")
	}
}

// An event whose request the relay cannot build (a task with a line break
// cannot go into Hooxrelay-Task) goes dead at once with the reason: the
// target is never asked, no attempt is charged, the breaker is not told,
// and the events after it are delivered. Such an event can no longer pass
// the ingress; it stands for one stored before that check.
func TestUnbuildableRequestGoesDeadUncharged(t *testing.T) {
	s := newSink(t, "t", ok)
	tg := target(s)
	tg.Retry.MaxAttempts, tg.Retry.InitialInterval, tg.Retry.Jitter = 5, 50*time.Millisecond, 0
	tg.Breaker.MinRequests, tg.Breaker.FailureRatio, tg.Breaker.OpenTimeout = 2, 0.5, time.Minute
	h := startRelay(t, settingsFor(t, tg), "")
	const bad = 6 // enough to open the breaker three times over if charged
	var badIDs []string
	for i := range bad {
		ev := storetest.Event(time.Now(), fmt.Sprintf("evil_%d", i), "t")
		ev.Task = "evil\r\nX-Injected: 1"
		if _, err := h.store.Ingest(t.Context(), ev, time.Hour); err != nil {
			t.Fatal(err)
		}
		badIDs = append(badIDs, ev.ID)
	}
	h.srv.Dispatcher().Kick("t")
	h.waitDeliveries(t, "t", "dead", bad, 5*time.Second)
	good := h.send(t, videoBody("after_the_bad_ones"))
	s.waitCount(t, 1, 5*time.Second)
	if got := s.requests(); len(got) != 1 || got[0].id() != good {
		t.Fatalf("target received %d requests, want only the good event's", len(got))
	}
	if st := h.srv.Dispatcher().BreakerState("t"); st != "closed" {
		t.Errorf("breaker is %q after %d unbuildable requests, want closed: they are not the target's failures", st, bad)
	}
	if n := h.metric(t, "hooxrelay_deliveries_total", map[string]string{"target": "t", "outcome": "retry"}); n != 0 {
		t.Errorf("hooxrelay_deliveries_total{outcome=retry} = %v, want 0: a local error is not retried", n)
	}
	for _, id := range badIDs {
		ev, err := h.store.Event(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		d := ev.Deliveries[0]
		if d.State != relay.Dead || d.Attempts != 0 || len(d.History) != 0 || !strings.Contains(d.LastError, "Hooxrelay-Task") {
			t.Errorf("delivery of %s: state %s, %d attempts, %d recorded, last_error %q; want dead, 0 attempts, none recorded, an error naming Hooxrelay-Task",
				id, d.State, d.Attempts, len(d.History), d.LastError)
		}
	}
}

// A pending delivery that is due but held back says why in the admin API:
// an open breaker (until its probe is due) or a pause.
func TestDeliveriesSayWhyTheyWait(t *testing.T) {
	down, held := newSink(t, "down", always(answer{status: http.StatusServiceUnavailable})), newSink(t, "held", ok)
	td := target(down)
	td.Retry.MaxAttempts, td.Retry.InitialInterval, td.Retry.MaxInterval, td.Retry.Jitter = 100, 10*time.Millisecond, 10*time.Millisecond, 0
	td.Breaker.MinRequests, td.Breaker.FailureRatio, td.Breaker.OpenTimeout = 2, 0.5, time.Minute
	h := startRelay(t, settingsFor(t, td, target(held)), "")
	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/held/pause", nil, nil); r.status != http.StatusOK {
		t.Fatalf("pause: %s", r)
	}
	h.send(t, videoBody("waits"))
	storetest.Eventually(t, 5*time.Second, func() error {
		if st := h.srv.Dispatcher().BreakerState("down"); st != "open" {
			return fmt.Errorf("breaker of down is %q, waiting for open", st)
		}
		return nil
	})
	var got struct{ Deliveries []relay.DeliveryJSON }
	r := h.admin(t, "/api/v1/deliveries?state=pending")
	if err := json.Unmarshal(r.body, &got); err != nil || len(got.Deliveries) != 2 {
		t.Fatalf("GET /api/v1/deliveries?state=pending: %s (%v), want 2 deliveries", r, err)
	}
	for _, d := range got.Deliveries {
		switch d.Target {
		case "down":
			if d.Waiting != relay.WaitingBreakerOpen || d.WaitingUntil == nil || !d.WaitingUntil.After(time.Now().Add(30*time.Second)) {
				t.Errorf("delivery to down behind an open breaker (open_timeout 1m): waiting %q until %v, want breaker_open until about a minute from now", d.Waiting, d.WaitingUntil)
			}
		case "held":
			if d.Waiting != relay.WaitingPaused || d.WaitingUntil != nil {
				t.Errorf("delivery to a paused target: waiting %q until %v, want paused, no end", d.Waiting, d.WaitingUntil)
			}
		}
	}
	if !strings.Contains(string(r.body), `"waiting":"breaker_open","waiting_until":"`) {
		t.Errorf("answer %s lacks the waiting and waiting_until fields", r)
	}
}

// runDispatcher runs a dispatcher of targets over a new embedded store
// until the test ends or stop is called; stop returns what Run returned.
func runDispatcher(t *testing.T, opts relay.DispatcherOptions, targets ...relay.TargetSettings) (d *relay.Dispatcher, store relay.Store, stop func() error) {
	t.Helper()
	bs, err := pebblestore.Open(filepath.Join(t.TempDir(), "dispatch"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	d, err = relay.NewDispatcher(bs, targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx, t.Context()) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-ran
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return d, bs, stop
}

// Once Run has stopped claiming, a reconfiguration is refused: a reload
// racing a shutdown must not start a feeder that nothing waits for. Run
// runs once.
func TestReconfigureAfterRunIsRefused(t *testing.T) {
	a, b := newSink(t, "a", ok), newSink(t, "b", ok)
	d, store, stop := runDispatcher(t, relay.DispatcherOptions{}, target(a))
	if _, err := store.Ingest(t.Context(), storetest.Event(time.Now(), "before", "a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	d.Kick("a")
	a.waitCount(t, 1, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run after its context ended: %v, want nil", err)
	}
	if err := d.Reconfigure([]relay.TargetSettings{target(a), target(b)}); err == nil {
		t.Fatal("Reconfigure after Run returned succeeded, want it refused")
	}
	if _, err := store.Ingest(t.Context(), storetest.Event(time.Now(), "after", "b"), time.Hour); err != nil {
		t.Fatal(err)
	}
	d.Kick("b")
	time.Sleep(300 * time.Millisecond) // counting what happens during a window
	if n := b.count(); n != 0 {
		t.Errorf("a target added after Run returned received %d requests, want none", n)
	}
	if err := d.Run(t.Context(), t.Context()); err == nil {
		t.Error("a second Run succeeded, want it refused")
	}
}

// refusingMarks is the embedded store with pause marks that cannot be
// written, like a store that is down.
type refusingMarks struct{ *pebblestore.Store }

func (refusingMarks) SetPaused(context.Context, string, bool) error {
	return errors.New("store down")
}

// Pause keeps the mark in the store and applies it, in one call; when the
// mark cannot be kept, nothing is paused.
func TestPauseKeepsTheMarkAndApplies(t *testing.T) {
	a := newSink(t, "a", ok)
	d, store, _ := runDispatcher(t, relay.DispatcherOptions{}, target(a))
	if err := d.Pause(t.Context(), "a", true); err != nil {
		t.Fatalf("Pause(a, true): %v", err)
	}
	if marks, err := store.Paused(t.Context()); err != nil || !marks["a"] || !d.Paused("a") {
		t.Fatalf("after Pause(a, true): store marks %v (%v), Paused(a) %v; want a marked and paused", marks, err, d.Paused("a"))
	}
	ev := storetest.Event(time.Now(), "held", "a")
	if _, err := store.Ingest(t.Context(), ev, time.Hour); err != nil {
		t.Fatal(err)
	}
	d.Kick("a")
	time.Sleep(300 * time.Millisecond) // counting what happens during a window
	if n := a.count(); n != 0 {
		t.Fatalf("a paused target received %d requests", n)
	}
	if err := d.Pause(t.Context(), "a", false); err != nil {
		t.Fatalf("Pause(a, false): %v", err)
	}
	a.waitCount(t, 1, 5*time.Second)
	if marks, _ := store.Paused(t.Context()); marks["a"] || d.Paused("a") {
		t.Errorf("after Pause(a, false): store marks %v, Paused(a) %v; want neither", marks, d.Paused("a"))
	}

	bs, err := pebblestore.Open(filepath.Join(t.TempDir(), "refusing"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	d2, err := relay.NewDispatcher(refusingMarks{bs}, []relay.TargetSettings{target(a)}, relay.DispatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Pause(t.Context(), "a", true); err == nil || d2.Paused("a") {
		t.Errorf("Pause with a store that cannot keep the mark: %v, Paused %v; want the store's error and not paused", err, d2.Paused("a"))
	}
}

// OnBreakerChange hears of a breaker opening, and OnDead of each delivery
// that went dead, after its outcome was handed to the store.
func TestDispatcherHooks(t *testing.T) {
	down := newSink(t, "down", always(answer{status: http.StatusServiceUnavailable}))
	var mu sync.Mutex
	var changes []string
	dead := make(chan relay.Delivery, 10)
	opts := relay.DispatcherOptions{
		OnBreakerChange: func(target, from, to string) {
			mu.Lock()
			changes = append(changes, target+": "+from+" -> "+to)
			mu.Unlock()
		},
		OnDead: func(d relay.Delivery) { dead <- d },
	}
	tg := target(down)
	tg.Retry.MaxAttempts = 1
	tg.Breaker.MinRequests, tg.Breaker.FailureRatio, tg.Breaker.OpenTimeout = 2, 0.5, time.Minute
	d, store, _ := runDispatcher(t, opts, tg)
	var ids []string
	for i := range 2 {
		ev := storetest.Event(time.Now(), fmt.Sprintf("hook_%d", i), "down")
		if _, err := store.Ingest(t.Context(), ev, time.Hour); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	d.Kick("down")
	got := map[string]bool{}
	for range ids {
		select {
		case dd := <-dead:
			if dd.State != relay.Dead || dd.Target != "down" || dd.LastStatus != http.StatusServiceUnavailable {
				t.Errorf("OnDead got %+v, want a dead delivery to down after a 503", dd)
			}
			got[dd.EventID] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("OnDead heard of %d of %d dead deliveries within 5s", len(got), len(ids))
		}
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("OnDead never heard of the delivery of %s", id)
		}
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(changes, "down: closed -> open") {
			return fmt.Errorf("OnBreakerChange heard %q, waiting for down: closed -> open", changes)
		}
		return nil
	})
}
