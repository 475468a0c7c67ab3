package relay_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/storetest"
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
	set := settingsFor(t, target(a))
	set.Server.MaxBodyBytes = 1 << 20
	h := startRelay(t, set, "")
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

// Many slow uploads at once are bounded by server.max_buffered_body_bytes:
// past the budget a webhook is refused at once with 503 and Retry-After,
// before its body is read; the bytes held never exceed the budget; once
// the held bodies are answered the budget is free again. Both a declared
// length and a chunked body are bounded.
func TestBodyBudgetBoundsSlowUploads(t *testing.T) {
	a := newSink(t, "a", ok)
	set := settingsFor(t, target(a))
	set.Server.MaxBodyBytes, set.Server.MaxBufferedBodyBytes = 1000, 4096
	h := startRelay(t, set, "")
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "content-length", true: "chunked"}[chunked], func(t *testing.T) {
			const uploads = 10
			// A declared 1000 bytes each: 4 fit in 4096. A chunked body
			// reserves max_body_bytes+1 before its first read: 4 fit too.
			const fit = 4
			release := make(chan struct{})
			var once sync.Once
			letGo := func() { once.Do(func() { close(release) }) }
			defer letGo()
			replies := make(chan reply, uploads)
			for i := range uploads {
				body := videoBody(fmt.Sprintf("budget_%t_%d", chunked, i))
				body += strings.Repeat(" ", 1000-len(body))
				pr, pw := io.Pipe()
				go func() {
					pw.Write([]byte(body[:10]))
					<-release
					pw.Write([]byte(body[10:]))
					pw.Close()
				}()
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/hooks/hoox", pr)
				if err != nil {
					t.Fatal(err)
				}
				if !chunked {
					req.ContentLength = int64(len(body))
				}
				go func() {
					resp, err := h.client.Do(req)
					if err != nil {
						replies <- reply{status: -1, body: []byte(err.Error())}
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					replies <- reply{status: resp.StatusCode, header: resp.Header, body: b}
				}()
			}
			for i := range uploads - fit {
				var r reply
				select {
				case r = <-replies: // the refusals come while the others still upload
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d uploads past the body budget answered within 10s, all waiting on their bodies", i, uploads-fit)
				}
				if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
					string(bytes.TrimSpace(r.body)) != `{"error":"unavailable"}` {
					t.Fatalf("upload past the body budget: %s, want 503 {\"error\":\"unavailable\"} with Retry-After", r)
				}
			}
			if held := h.metric(t, "hooxrelay_ingress_buffered_body_bytes", nil); held <= 0 || held > 4096 {
				t.Errorf("hooxrelay_ingress_buffered_body_bytes = %v while %d uploads are held, want within (0, 4096]", held, fit)
			}
			letGo()
			for range fit {
				if r := <-replies; r.status != http.StatusOK || r.answer(t).Status != "accepted" {
					t.Errorf("upload within the body budget: %s, want 200 accepted", r)
				}
			}
			storetest.Eventually(t, 5*time.Second, func() error {
				if held := h.metric(t, "hooxrelay_ingress_buffered_body_bytes", nil); held != 0 {
					return fmt.Errorf("hooxrelay_ingress_buffered_body_bytes = %v after every upload was answered, want 0", held)
				}
				return nil
			})
		})
	}
	if n := h.metric(t, "hooxrelay_ingress_requests_total", map[string]string{"outcome": "overloaded"}); n != 12 {
		t.Errorf("hooxrelay_ingress_requests_total{outcome=overloaded} = %v, want 12 (6 per kind of body)", n)
	}
}
