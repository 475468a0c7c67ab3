package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
)

// TestShutdownWithAHungDisk runs the real serve() over an embedded store
// whose disk stops answering (every commit held, as under fsfreeze) while a
// webhook and a delivery's outcome wait on it: /readyz turns 503, and a
// shutdown still ends within server.shutdown_timeout, saying what the
// store did not write.
func TestShutdownWithAHungDisk(t *testing.T) {
	var frozen atomic.Bool
	held, release := make(chan struct{}, 100), make(chan struct{})
	hang := func(o *pebblestore.Options) {
		o.BeforeCommit = func() {
			if frozen.Load() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
			}
		}
	}
	defer close(release) // lets the stuck commit end once the test is over

	// The target holds the first attempt until the disk hangs, then fails
	// it, so that its outcome (a retry) must be written to a hung disk.
	arrived, answer := make(chan struct{}, 1), make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
			<-answer
		default:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer target.Close()
	cfg, err := config.Parse(fmt.Appendf(nil, `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", shutdown_timeout: 2s}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets: [{name: a, url: %q}]
routes: [{name: all, targets: [a]}]
`, filepath.Join(t.TempDir(), "relay"), target.URL), "hung.yaml")
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan [2]string, 1)
	served := make(chan error, 1)
	go func() {
		d := &daemon{cfg: cfg, log: log, embedded: hang, ready: func(in, admin string) { addrs <- [2]string{in, admin} }}
		served <- d.run(ctx)
	}()
	a := <-addrs
	ingest, admin := "http://"+a[0]+"/hooks/hoox", "http://"+a[1]+"/readyz"
	if _, err := postWebhook(ingest, 1); err != nil {
		t.Fatalf("webhook before the disk hangs: %v", err)
	}

	<-arrived
	frozen.Store(true)
	go postWebhook(ingest, 2) // its commit hangs
	<-held
	close(answer) // the attempt's outcome now waits on the disk too
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(admin)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still not 503 10s after the disk stopped answering (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel() // SIGTERM
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve returned %v after a shutdown with a hung disk, want nil (a clean exit)", err)
		}
	case <-time.After(cfg.Server.ShutdownTimeout.D() + 5*time.Second):
		t.Fatalf("serve still running %s after the shutdown began (shutdown_timeout %s)\n%s",
			cfg.Server.ShutdownTimeout.D()+5*time.Second, cfg.Server.ShutdownTimeout.D(), logs)
	}
	if !strings.Contains(logs.String(), "did not close within server.shutdown_timeout") {
		t.Errorf("no word of the store left unclosed in the log:\n%s", logs)
	}
}
