// Package storetest is the conformance suite for relay.Store: the contract
// that relay.Store documents, checked through the interface alone, so that
// every store adapter is held to the same behaviour. It covers the queue
// and dedup, the admin queries and the compare-and-set of deliveries (with
// the operator's moves built on it), the retention contract, stores
// sharing one storage and their leases, outages, and closing. An adapter
// runs it from its own tests with a Harness that opens its stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{Open: open, Reopen: reopen})
//	}
//
// A Harness says what its store cannot do (share its storage, fail on
// demand, keep finished work for a short while only) by leaving those
// fields nil; the tests that need them skip, saying so. What only one
// adapter has (its files, its keys and their expiry, internals) is tested
// beside that adapter, not here.
package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Harness is how the suite gets stores of the adapter under test. Open and
// Reopen are required; the zero value is not usable. The other fields are
// what a store may not be able to do: a test that needs one that is nil is
// skipped, saying why.
type Harness struct {
	// Open returns a new, empty store. The suite closes it.
	Open func(t testing.TB) relay.Store
	// Reopen closes s, which may already be closed, and opens the same
	// storage again, as a restart of the process would: what s wrote is
	// there and the holds of s are dropped. The suite closes the store
	// it returns.
	Reopen func(t testing.TB, s relay.Store) relay.Store

	// Retained, when set, returns a new, empty store that keeps finished
	// work for a retention only, and prune, which runs the store's pruning
	// as it runs once that retention has passed for everything written
	// before the call: by moving the store's clock, or, for a storage that
	// expires keys on its own clock, by expiring what would expire by
	// then. The suite's dedup ttl is longer than the retention. The suite
	// closes the store. nil skips the retention test.
	Retained func(t testing.TB) (s relay.Store, prune func())

	// Shared, when set, makes a new, empty storage that several stores
	// share, as relays on one Redis do, and returns open, which opens one
	// more store on it at each call. A claim holds a delivery for lease
	// from the now given to Claim. A store opened live extends the holds it
	// keeps, by the wall clock, for as long as it is open, as a running
	// relay does; one opened not live never does, as a relay that died
	// without closing. The suite closes the stores. nil when the storage
	// cannot be shared (an embedded store) skips the tests of sharing.
	Shared func(t testing.TB, lease time.Duration) (open func(live bool) relay.Store)

	// Outage, when set, makes the storage of s fail until restore is
	// called, as a Redis server that stops or a disk that refuses writes
	// does; what it stored before stays stored. nil skips the tests of
	// failures.
	Outage func(t testing.TB, s relay.Store) (restore func())
}

// Run runs the conformance suite against the stores of h, one subtest per
// part of the contract, one after another, each on stores of its own.
//
// The suite's events were received in January 2024, and it claims at those
// times: a store must judge what is due by the now given to Claim, and a
// dedup mark by the ReceivedAt of the events, not by its own clock.
func Run(t *testing.T, h Harness) {
	if h.Open == nil || h.Reopen == nil {
		t.Fatal("storetest.Run: Harness.Open and Harness.Reopen must both be set")
	}
	for _, tc := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"IngestDedup", testIngestDedup},
		{"IngestConcurrentSameKey", testIngestConcurrentSameKey},
		{"IngestLongKeys", testIngestLongKeys},
		{"Claim", testClaim},
		{"NextDue", testNextDue},
		{"Backlog", testBacklog},
		{"Complete", testComplete},
		{"Release", testRelease},
		{"ReopenRestoresPending", testReopenRestoresPending},
		{"Closed", testClosed},
		{"Events", testEvents},
		{"Search", testSearch},
		{"SearchPaging", testSearchPaging},
		{"Trail", testTrail},
		{"AttemptWaits", testAttemptWaits},
		{"EventDetail", testEventDetail},
		{"Deliveries", testDeliveries},
		{"LoadDelivery", testLoadDelivery},
		{"SwapStates", testSwapStates},
		{"SwapRefusals", testSwapRefusals},
		{"SwapCreates", testSwapCreates},
		{"Requeue", testRequeue},
		{"RequeueDeadAndCounts", testRequeueDeadAndCounts},
		{"Paused", testPaused},
		{"ReplayRecords", testReplayRecords},
		{"DeliveryReplay", testDeliveryReplay},
		{"Retention", testRetention},
		{"SharedStorage", testSharedStorage},
		{"LeaseTakeover", testLeaseTakeover},
		{"LeaseRenewal", testLeaseRenewal},
		{"LostLease", testLostLease},
		{"Outage", testOutage},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, h) })
	}
}

// store is a store under test. The suite closes it when the test ends,
// unless the test closed it, or reopened it, first.
type store struct {
	relay.Store
	closed bool
}

func (s *store) Close() error {
	s.closed = true
	return s.Store.Close()
}

// open returns a new, empty store through h.
func open(t *testing.T, h Harness) *store {
	t.Helper()
	return track(t, h.Open(t), "Harness.Open")
}

// reopen closes s and returns the same storage opened again.
func reopen(t *testing.T, h Harness, s *store) *store {
	t.Helper()
	s.closed = true // by Reopen
	return track(t, h.Reopen(t, s.Store), "Harness.Reopen")
}

func track(t *testing.T, rs relay.Store, from string) *store {
	t.Helper()
	if rs == nil {
		t.Fatalf("%s returned a nil store", from)
	}
	s := &store{Store: rs}
	t.Cleanup(func() {
		if s.closed {
			return
		}
		if err := s.Store.Close(); err != nil {
			t.Errorf("Close at the end of the test: %v", err)
		}
	})
	return s
}

// Eventually polls cond until it returns nil, and fails t with cond's last
// error once timeout passes. Store effects that may land after a call
// returns (Complete's) are awaited with it.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Base is when the suite's events are received, on a millisecond (event
// ids keep ms): long ago, so that a store must take the time from the
// suite, not from its own clock. Adapter tests use it too.
var Base = time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)

// Event returns a new event received at at, with a dedup key and targets.
// Its payload has the whitespace and non-ASCII text that a store must keep
// byte for byte.
func Event(at time.Time, key string, targets ...string) *relay.Event {
	return &relay.Event{
		ID:         relay.NewEventID(at),
		Source:     "hoox",
		Task:       "video_generate",
		Status:     "completed",
		DedupKey:   key,
		ReceivedAt: at,
		Targets:    targets,
		Headers:    map[string]string{"User-Agent": "Hoox/1.0"},
		Trace:      Trace,
		Payload:    fmt.Appendf(nil, " {\"task\":\"video_generate\",\n\"job_id\":%q, \"status\":\"completed\",\"é\":\"🎬\"}\t", key),
	}
}

// Trace is the trace context of Event's events.
const Trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Ingest ingests ev into s, failing t on an error.
func Ingest(t testing.TB, s relay.Store, ev *relay.Event, ttl time.Duration) relay.IngestResult {
	t.Helper()
	res, err := s.Ingest(t.Context(), ev, ttl)
	if err != nil {
		t.Fatalf("Ingest(%s, key %q): %v", ev.ID, ev.DedupKey, err)
	}
	return res
}

// Claim claims deliveries of target in s, failing t on an error.
func Claim(t testing.TB, s relay.Store, target string, now time.Time, max int) []relay.Claim {
	t.Helper()
	cs, err := s.Claim(t.Context(), target, now, max)
	if err != nil {
		t.Fatalf("Claim(%q, %v, %d): %v", target, now, max, err)
	}
	return cs
}

// ClaimIDs returns the delivery ids of cs.
func ClaimIDs(cs []relay.Claim) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Delivery.ID()
	}
	return ids
}

func nextDue(t testing.TB, s relay.Store, target string) (time.Time, bool) {
	t.Helper()
	due, ok, err := s.NextDue(t.Context(), target)
	if err != nil {
		t.Fatalf("NextDue(%q): %v", target, err)
	}
	return due, ok
}

func backlog(t testing.TB, s relay.Store, target string) int {
	t.Helper()
	n, err := s.Backlog(t.Context(), target)
	if err != nil {
		t.Fatalf("Backlog(%q): %v", target, err)
	}
	return n
}

func complete(t testing.TB, s relay.Store, outcomes ...relay.Outcome) {
	t.Helper()
	if err := s.Complete(t.Context(), outcomes...); err != nil {
		t.Fatalf("Complete(%d outcomes): %v", len(outcomes), err)
	}
}
