package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// bare serves the bare baseline, or the reference forwarder, in a
// process of its own for --process; it is hidden from the list of
// scenarios.
var bare = &Scenario{
	Name:   "bare",
	Hidden: true,
	Short:  "serve the bare baseline, or with --forward the reference forwarder, on --listen until interrupted (used by --process)",
	Long: `Serves the bare baseline of bench load on --listen until SIGTERM or SIGINT:
a Go HTTP server whose handler reads the body, parses it as JSON and
answers 200, and does nothing else.
With --forward it serves the reference forwarder of bench sustain
--reference instead: it answers every POST with an event id of its own
once it has read the body, and posts the body to every --forward URL (32
at a time for each, with a Webhook-Id header), retrying until delivered.
It keeps no store, does not dedup or parse, and queues in memory without
bound: the HTTP work of a relay alone, a ceiling rather than a relay.
The scenarios run it with --process, so that it is measured as a process
of its own, as the relay is.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		var listen string
		var forward []string
		f.StringVar(&listen, "listen", "127.0.0.1:0", "loopback `ADDR` to listen on")
		f.StringSliceVar(&forward, "forward", nil, "serve the reference forwarder, delivering to this loopback `URL` (repeat the flag or separate URLs with commas)")
		return func(ctx context.Context, env *Env) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil || !isLoopback(host) {
				return usagef("--listen %q: want a loopback host:port", listen)
			}
			var h http.Handler = bareHandler()
			var workers sync.WaitGroup
			defer workers.Wait()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel() // before the wait: it ends the workers
			if len(forward) > 0 {
				fw, err := newForwarder(forward)
				if err != nil {
					return usagef("--forward: %w", err)
				}
				fw.start(ctx, &workers)
				h = fw
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, ln.Addr())
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	},
}

// bareHandler is the baseline: it reads and parses the body and answers
// 200, and does nothing else.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &doc) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
}

// bareChild runs "BIN bench bare ARGS" on a free loopback port until the
// run ends and returns its address and process id once it answers.
func (r *run) bareChild(bin string, args ...string) (string, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(r.ctx, bin, append([]string{"bench", "bare", "--listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", 0, fmt.Errorf("start %s bench bare: %w", bin, err)
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); cmd.Wait() }()
	// A GET: the forwarder would deliver a POST.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := probeClient.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return addr, cmd.Process.Pid, nil
		}
	}
	return "", 0, fmt.Errorf("%s bench bare did not answer on %s within 10s", bin, addr)
}
