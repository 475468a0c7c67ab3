package sink

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/testenv"
)

func post(t *testing.T, ctx context.Context, url, id string) (int, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"task":"video_generate"}`))
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Hooxrelay-Attempt", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A sink fails its first requests with the status it was given, then
// answers 200, and records and prints each request.
func TestSinkFailsFirstAndRecords(t *testing.T) {
	var log syncBuffer
	s := &Sink{Name: "audit", FailFirst: 2, FailStatus: 502, Record: true, KeepBodies: true, Log: &log}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var got []int
	for _, id := range []string{"evt_1", "evt_1", "evt_1", "evt_2"} {
		code, err := post(t, t.Context(), srv.URL, id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, code)
	}
	if want := []int{502, 502, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[2].Status != 200 || reqs[3].Header.Get("Webhook-Id") != "evt_2" || reqs[0].Attempt != "1" || !bytes.Contains(reqs[0].Body, []byte("video_generate")) {
		t.Errorf("recorded %+v; want the 4 requests with their status, headers, attempt and body", reqs)
	}
	if lines := strings.Split(strings.TrimSpace(log.String()), "\n"); len(lines) != 4 || !strings.Contains(lines[0], " audit POST 502 webhook-id=evt_1 task= attempt=1 bytes=25") {
		t.Errorf("printed\n%s\nwant a line per request such as \"... audit POST 502 webhook-id=evt_1 task= attempt=1 bytes=25\"", log.String())
	}
}

// A request whose sender gave up while the sink was slow is neither
// answered nor recorded.
func TestSinkDelayGivesUpWithTheSender(t *testing.T) {
	s := &Sink{Delay: time.Minute, Record: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if code, err := post(t, ctx, srv.URL, "evt_1"); err == nil {
		t.Fatalf("post to a sink delayed 1m answered %d within 100ms", code)
	}
	srv.Close() // waits for the handler
	if n := len(s.Requests()); n != 0 {
		t.Errorf("recorded %d requests, want none", n)
	}
}

// Start serves until its context ends.
func TestSinkStart(t *testing.T) {
	s := &Sink{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	addr, err := s.Start(ctx, "127.0.0.1:0", &wg)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := post(t, t.Context(), "http://"+addr+"/hook", "evt_1"); err != nil || code != 200 {
		t.Fatalf("post: %d, %v; want 200", code, err)
	}
	if s.Started().IsZero() {
		t.Error("Started() is zero after Start")
	}
	cancel()
	wg.Wait()
	if _, err := post(t, t.Context(), "http://"+addr+"/hook", "evt_2"); err == nil {
		t.Error("the sink still answers after its context ended")
	}
}

type syncBuffer = testenv.Buffer
