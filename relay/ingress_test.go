package relay_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// slowPost posts body with its declared length, sending the first bytes,
// then nothing for pause, then the rest, as a sender on a bad link does.
func (h *relayHarness) slowPost(t *testing.T, body string, pause time.Duration) reply {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(body[:10]))
		time.Sleep(pause)
		pw.Write([]byte(body[10:]))
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/hooks/hoox", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("slow POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// A body that takes longer to arrive than the store's write wait (5s with
// the default write_timeout) still gets that whole wait for its write:
// the wait counts from the end of the body. Each answer says what
// happened: 200 and stored.
func TestSlowUploadIsStoredAndAnswered200(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, render(`
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shutdown_timeout: 2s
sources: [{name: hoox, path: /hooks/hoox}]
targets: [{name: a, url: "{{a}}"}]
routes: [{name: all, targets: [a]}]
`, a), "")
	const senders = 3
	var wg sync.WaitGroup
	replies := make([]reply, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = h.slowPost(t, videoBody(fmt.Sprintf("slow_%d", i)), 5500*time.Millisecond)
		}()
	}
	wg.Wait()
	for i, r := range replies {
		ans := r.answer(t)
		if r.status != http.StatusOK || ans.Status != "accepted" {
			t.Errorf("slow upload %d: %s, want 200 accepted", i, r)
			continue
		}
		if _, err := h.store.Event(t.Context(), ans.EventID); err != nil {
			t.Errorf("slow upload %d answered %s but its event is not stored: %v", i, r, err)
		}
	}
}
