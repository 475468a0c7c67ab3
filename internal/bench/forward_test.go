package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// recorder is a target that keeps every delivery it answered 200 by
// Webhook-Id, and answers 503 to its first fail requests.
type recorder struct {
	mu     sync.Mutex
	fail   int
	got    map[string][][]byte // bodies by Webhook-Id
	badHdr string              // the first request with a wrong header
}

func newRecorder(t *testing.T, fail int) (*recorder, string) {
	rec := &recorder{fail: fail, got: map[string][][]byte{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv.URL + "/hook"
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.fail > 0 {
		rec.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if ct := r.Header.Get("Content-Type"); (ct != "application/json" || r.Method != http.MethodPost) && rec.badHdr == "" {
		rec.badHdr = r.Method + " with Content-Type " + ct
	}
	id := r.Header.Get("Webhook-Id")
	rec.got[id] = append(rec.got[id], body)
}

// delivered counts the ids received of want.
func (rec *recorder) delivered(want map[string][]byte) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for id := range want {
		if len(rec.got[id]) > 0 {
			n++
		}
	}
	return n
}

// Every webhook the forwarder acks reaches each target once, with its
// body, under an id of its own, through a target's failures.
func TestForwarder(t *testing.T) {
	first, u1 := newRecorder(t, 5)
	second, u2 := newRecorder(t, 0)
	f, err := newForwarder([]string{u1, u2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var workers sync.WaitGroup
	f.start(ctx, &workers)
	front := httptest.NewServer(f)
	defer front.Close()

	resp, err := http.Get(front.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405 (nothing to forward)", resp.StatusCode)
	}

	const n = 300
	var mu sync.Mutex
	acked := map[string][]byte{}
	var senders sync.WaitGroup
	for s := range 8 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := s; i < n; i += 8 {
				body := fmt.Appendf(nil, `{"job_id":"run_%d"}`, i)
				resp, err := http.Post(front.URL+"/hooks/any/path", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				var ack struct {
					EventID string `json:"event_id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || err != nil || ack.EventID == "" {
					t.Errorf("POST: %d, event id %q (%v); want 200 and an id", resp.StatusCode, ack.EventID, err)
					return
				}
				mu.Lock()
				if _, dup := acked[ack.EventID]; dup {
					t.Errorf("event id %s acked twice", ack.EventID)
				}
				acked[ack.EventID] = body
				mu.Unlock()
			}
		}()
	}
	senders.Wait()
	if len(acked) != n {
		t.Fatalf("%d distinct ids acked, want %d", len(acked), n)
	}
	for deadline := time.Now().Add(10 * time.Second); first.delivered(acked) < n || second.delivered(acked) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d and %d of %d within 10s", first.delivered(acked), second.delivered(acked), n)
		}
	}
	time.Sleep(100 * time.Millisecond) // for any repeat on its way
	cancel()
	workers.Wait()
	for name, rec := range map[string]*recorder{"first": first, "second": second} {
		rec.mu.Lock()
		if len(rec.got) != n || rec.badHdr != "" {
			t.Errorf("%s: %d ids delivered, want %d; wrong request: %q", name, len(rec.got), n, rec.badHdr)
		}
		for id, bodies := range rec.got {
			if len(bodies) != 1 || !bytes.Equal(bodies[0], acked[id]) {
				t.Errorf("%s: %s delivered %d times, first as %q; want once, as %q", name, id, len(bodies), bodies[0], acked[id])
			}
		}
		rec.mu.Unlock()
	}
}

// The forwarder posts only to loopback, and "bench bare --forward" says
// so before it listens.
func TestForwarderLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1/hook", "http://example.com/hook", "https://127.0.0.1/hook", "127.0.0.1:80"} {
		if _, err := newForwarder([]string{"http://127.0.0.1:1/hook", u}); err == nil {
			t.Errorf("newForwarder(%q): no error, want a refusal", u)
		}
		fs := pflag.NewFlagSet("bare", pflag.ContinueOnError)
		run := bare.Flags(fs)
		if err := fs.Parse([]string{"--forward", u}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run(t.Context(), &Env{Stdout: &out, Progress: io.Discard}); !errors.Is(err, ErrUsage) || out.Len() > 0 {
			t.Errorf("bench bare --forward %s = %v, printing %q; want an ErrUsage and nothing printed", u, err, out.String())
		}
	}
	if _, err := newForwarder(nil); err == nil {
		t.Error("newForwarder(nil): no error, want one")
	}
}

// "bench bare --forward" serves the forwarder: an ack's id is the
// Webhook-Id of the deliveries to every target named, by flag or list.
func TestBareForwards(t *testing.T) {
	recs := make([]*recorder, 3)
	urls := make([]string, 3)
	for i := range recs {
		recs[i], urls[i] = newRecorder(t, 0)
	}
	addr, stop := serveBare(t, "--forward", urls[0]+","+urls[1], "--forward", urls[2])
	defer stop()
	resp, err := http.Post("http://"+addr+"/hooks/hoox", "application/json", bytes.NewReader([]byte(`{"a":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	var ack struct {
		EventID string `json:"event_id"`
	}
	json.NewDecoder(resp.Body).Decode(&ack)
	resp.Body.Close()
	want := map[string][]byte{ack.EventID: nil}
	for i, rec := range recs {
		for deadline := time.Now().Add(5 * time.Second); rec.delivered(want) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("target %d: %q not delivered within 5s", i, ack.EventID)
			}
		}
	}
}
