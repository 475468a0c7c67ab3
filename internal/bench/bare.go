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
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// bare serves the bare baseline in a process of its own, for load
// --process; it is hidden from the list of scenarios.
var bare = &Scenario{
	Name:   "bare",
	Hidden: true,
	Short:  "serve the bare baseline on --listen until interrupted (used by bench load --process)",
	Long: `Serves the bare baseline of bench load on --listen until SIGTERM or SIGINT:
a Go HTTP server whose handler reads the body, parses it as JSON and
answers 200, and does nothing else. bench load --process runs it as a
process of its own, so that it is measured as the relay is.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		var listen string
		f.StringVar(&listen, "listen", "127.0.0.1:0", "loopback `ADDR` to listen on")
		return func(ctx context.Context, env *Env) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil || !isLoopback(host) {
				return usagef("--listen %q: want a loopback host:port", listen)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, ln.Addr())
			srv := &http.Server{Handler: bareHandler(), ReadHeaderTimeout: 5 * time.Second}
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

// bareChild runs "BIN bench bare" on a free loopback port until ctx ends
// and returns its URL once it answers.
func (r *run) bareChild(bin string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(r.ctx, bin, "bench", "bare", "--listen", addr)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s bench bare: %w", bin, err)
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); cmd.Wait() }()
	url := "http://" + addr + "/"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := probeClient.Post(url, "application/json", nil)
		if err == nil {
			resp.Body.Close()
			return url, nil
		}
	}
	return "", fmt.Errorf("%s bench bare did not answer on %s within 10s", bin, addr)
}
