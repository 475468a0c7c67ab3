package relay_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

func TestShutdown(t *testing.T) {
	t.Run("delivery in flight returns to pending", func(t *testing.T) {
		stuck := newSink(t, "t", always(answer{hang: true}))
		settings := func(s *sink) relay.Settings {
			tg := target(s)
			tg.Timeout = 30 * time.Second
			set := settingsFor(t, tg)
			set.Server.ShutdownTimeout = 500 * time.Millisecond
			return set
		}
		h := startRelay(t, settings(stuck), "")
		body := videoBody("in_flight")
		id := h.send(t, body)
		stuck.waitCount(t, 1, 3*time.Second)

		runDone := make(chan error, 1)
		stopped := time.Now()
		go func() { runDone <- h.stop() }()
		// Not ready means /readyz answers 503 or its listener is closed;
		// still answering 200 a moment after cancel is a failure.
		storetest.Eventually(t, 2*time.Second, func() error {
			resp, err := h.client.Get(h.adminURL + "/readyz")
			if err != nil {
				return nil // the admin listener is closed
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return nil
			}
			if since := time.Since(stopped); since > 100*time.Millisecond {
				t.Fatalf("GET /readyz %v after cancel answered %s, want 503 (or the listener closed)", since.Round(time.Millisecond), resp.Status)
			}
			return fmt.Errorf("GET /readyz after cancel answered %s, waiting for 503", resp.Status)
		})
		select {
		case err := <-runDone:
			if err != nil {
				t.Fatalf("Run after cancel returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of cancel (shutdown_timeout 500ms)")
		}
		if took := time.Since(stopped); took > 2*time.Second {
			t.Errorf("shutdown took %v, want about shutdown_timeout (500ms)", took)
		}
		if _, err := h.client.Post(h.url+"/hooks/hoox", "application/json", strings.NewReader(videoBody("late"))); err == nil {
			t.Error("ingress still accepts connections after Run returned")
		}
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}

		healthy := newSink(t, "t", ok)
		h2 := startRelay(t, settings(healthy), h.dbPath)
		healthy.waitCount(t, 1, 3*time.Second)
		r := healthy.requests()[0]
		if r.id() != id || string(r.body) != body {
			t.Errorf("after restart the target got Webhook-Id %q body %q, want %q %q", r.id(), r.body, id, body)
		}
		if r.attempt() != "1" {
			t.Errorf("after restart Hooxrelay-Attempt is %q, want 1: an attempt cut off by shutdown is not charged", r.attempt())
		}
		h2.waitDeliveries(t, "t", "delivered", 1, 2*time.Second)
	})

	t.Run("delivery in flight finishes", func(t *testing.T) {
		slowSink := newSink(t, "t", always(answer{delay: 300 * time.Millisecond}))
		settings := func(s *sink) relay.Settings {
			tg := target(s)
			tg.MaxInFlight = 1
			set := settingsFor(t, tg)
			set.Server.ShutdownTimeout = 3 * time.Second
			return set
		}
		h := startRelay(t, settings(slowSink), "")
		id := h.send(t, videoBody("finishes"))
		slowSink.waitCount(t, 1, 3*time.Second)
		if err := h.stop(); err != nil {
			t.Fatalf("Run after cancel returned %v, want nil", err)
		}
		if rs := slowSink.requests(); len(rs) != 1 || rs[0].status != http.StatusOK {
			t.Fatalf("slow target recorded %d requests before shutdown, want 1 answered 200", len(rs))
		}
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}

		after := newSink(t, "t", ok)
		h2 := startRelay(t, settings(after), h.dbPath)
		marker := h2.send(t, videoBody("marker"))
		storetest.Eventually(t, 3*time.Second, func() error {
			if after.ids()[marker] == 0 {
				return fmt.Errorf("restarted target has not received the marker %s yet (got %v)", marker, after.ids())
			}
			return nil
		})
		if n := after.ids()[id]; n != 0 {
			t.Errorf("event %s, delivered while shutting down, was delivered again %d times after restart; want 0", id, n)
		}
	})
}
