// Package demo is what "hooxrelay demo" shows a newcomer: a relay on an
// embedded store in a temporary directory, with three local sinks
// (internal/sink) as its targets, sample Hoox webhooks of every task type
// sent to it (a duplicate and a malformed one among them), and what each
// target received. Everything listens on 127.0.0.1 only.
package demo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/sink"
)

// config is the relay the demo runs. Targets fail fast and retry fast so
// that a newcomer sees retries within seconds.
const config = `
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shutdown_timeout: 5s
store:
  path: %q
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: media
    url: http://%s/hook
    rate_limit: {rps: 20, burst: 5}
  - name: avatars
    url: http://%s/hook
  - name: audit
    url: http://%s/hook
    retry: {initial_interval: 200ms, multiplier: 2, jitter: 0}
    breaker: {min_requests: 20}
routes:
  - name: finished-videos
    match: {task: [video_generate, video_export], status: [completed]}
    targets: [media]
  - name: avatars
    match: {task: [avatar_create, avatar_edit]}
    targets: [avatars]
  - name: audit-everything
    match: {}
    targets: [audit]
`

var sends = []struct{ what, body string }{
	{"video_generate completed", `{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`},
	{"video_export completed", `{"task":"video_export","job_id":"run_0456","status":"completed","result":{"video_id":"video_cd","cost":2}}`},
	{"avatar_create completed", `{"task":"avatar_create","avatar_id":"avtr_abc","look_id":"look_123","status":"completed","result":{"preview_url":"https://cdn.example/a.jpg"}}`},
	{"avatar_edit error", `{"task":"avatar_edit","avatar_id":"avtr_abc","look_id":"look_edit_789","status":"error","error":{"code":"GENERATION_FAILED","message":"the model gave up"}}`},
	{"voice_clone completed (unknown task)", `{"task":"voice_clone","status":"completed","result":{"voice_id":"vc_1"}}`},
	{"video_generate completed, again (Hoox retry)", `{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`},
	{"video_generate without job_id (malformed)", `{"task":"video_generate","status":"completed"}`},
}

// Env is what the demo needs from the command that runs it.
type Env struct {
	Stdout io.Writer
	// Redraw says that Stdout is a terminal, where the count of deliveries
	// updates in place; elsewhere each change is a line.
	Redraw bool
	// Start serves a relay for the content of a config file until ctx
	// ends, logging to log, in a goroutine that wg owns. It returns the
	// relay's ingress address once it listens, and a channel that receives
	// what serving returned. Its wiring belongs to the command; the demo
	// only writes the config.
	Start func(ctx context.Context, wg *sync.WaitGroup, config []byte, log *slog.Logger) (ingress string, served <-chan error, err error)
}

// Run runs the demo and prints its three steps on env.Stdout. It removes
// its temporary directory when it ends, unless keep is set.
func Run(ctx context.Context, env *Env, keep bool) error {
	if env.Start == nil {
		return errors.New("demo: Env.Start is not set")
	}
	dir, err := os.MkdirTemp("", "hooxrelay-demo-")
	if err != nil {
		return fmt.Errorf("create a temporary directory: %w", err)
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var logf *os.File
	// Everything started below stops when ctx does: cancel, wait, and only
	// then close the relay's log.
	defer func() {
		cancel()
		wg.Wait()
		if logf != nil {
			logf.Close()
		}
	}()

	sinks := []*sink.Sink{
		{Name: "media", Record: true, KeepBodies: true},
		{Name: "avatars", Record: true, KeepBodies: true},
		{Name: "audit", Record: true, KeepBodies: true, FailFirst: 3},
	}
	addrs := make([]string, len(sinks))
	for i, s := range sinks {
		if addrs[i], err = s.Start(ctx, "127.0.0.1:0", &wg); err != nil {
			return fmt.Errorf("start sink %s: %w", s.Name, err)
		}
	}
	logf, err = os.Create(filepath.Join(dir, "relay.log"))
	if err != nil {
		return err
	}
	ingress, served, err := env.Start(ctx, &wg, fmt.Appendf(nil, config, filepath.Join(dir, "store"), addrs[0], addrs[1], addrs[2]),
		slog.New(slog.NewJSONHandler(logf, nil)))
	if err != nil {
		return err
	}
	url := "http://" + ingress + "/hooks/hoox"
	w := env.Stdout
	fmt.Fprintf(w, "Relay listening on %s, store in %s\n", url, dir)
	fmt.Fprintf(w, "Targets: media ← finished videos; avatars ← avatar tasks; audit ← everything (fails its first 3 requests)\n\n")

	fmt.Fprintln(w, "1. Hoox sends webhooks; the relay answers once each is on disk")
	want, err := send(ctx, w, url)
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\n2. The relay fans the events out; audit fails, so its deliveries are retried\n")
	if err := wait(ctx, env, sinks, want, logf.Name()); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n3. What each target received\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TARGET\tTASK\tWEBHOOK-ID\tATTEMPT\tANSWER\tAT")
	start := sinks[0].Started()
	for _, s := range sinks {
		for _, r := range s.Requests() {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t+%s\n", s.Name, r.Header.Get("Hooxrelay-Task"),
				r.Header.Get("Webhook-Id"), r.Attempt, r.Status, r.At.Sub(start).Round(time.Millisecond))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery target got each of its events once with a 200, the duplicate was absorbed,\n"+
		"the malformed webhook was refused with 400, and audit recovered through retries.\n")
	cancel()
	if err := <-served; err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// send posts the sample webhooks to url, prints a line for each answer,
// and returns how many deliveries each target should get.
func send(ctx context.Context, w io.Writer, url string) (map[string]int, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  WEBHOOK\tANSWER\tDETAIL")
	want := map[string]int{}
	for _, s := range sends {
		status, ans, err := Post(ctx, url, s.body)
		if err != nil {
			return nil, fmt.Errorf("send %s: %w", s.what, err)
		}
		detail := ""
		switch {
		case ans.Status == "accepted":
			detail = fmt.Sprintf("%s → %s", ans.EventID, cmp.Or(strings.Join(ans.Targets, ", "), "-"))
			for _, t := range ans.Targets {
				want[t]++
			}
		case ans.Status == "duplicate":
			detail = "same event " + ans.EventID + ": absorbed, not delivered again"
		default:
			detail = fmt.Sprintf("%s: field %q %s", ans.Error, ans.Field, ans.Message)
		}
		fmt.Fprintf(tw, "  %s\t%d %s\t%s\n", s.what, status, cmp.Or(ans.Status, "-"), detail)
	}
	tw.Flush()
	return want, nil
}

// wait shows the count of deliveries until each sink has had the events
// it should get (want, by name), for at most 30s; past them, it points at
// the relay's log.
func wait(ctx context.Context, env *Env, sinks []*sink.Sink, want map[string]int, log string) error {
	deadline := time.Now().Add(30 * time.Second)
	total := 0
	for _, n := range want {
		total += n
	}
	shown := -1
	for {
		got := 0
		for _, s := range sinks {
			got += min(delivered(s), want[s.Name])
		}
		if got != shown {
			if env.Redraw {
				fmt.Fprintf(env.Stdout, "\r  delivered %d of %d", got, total)
			} else {
				fmt.Fprintf(env.Stdout, "  delivered %d of %d\n", got, total)
			}
			shown = got
		}
		if got == total {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(env.Stdout)
			return fmt.Errorf("only %d of %d deliveries arrived within 30s; see %s", got, total, log)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if env.Redraw {
		fmt.Fprintln(env.Stdout)
	}
	return nil
}

// delivered counts the distinct events a sink answered with 2xx.
func delivered(s *sink.Sink) int {
	ids := map[string]bool{}
	for _, r := range s.Requests() {
		if r.Status < 300 {
			ids[r.Header.Get("Webhook-Id")] = true
		}
	}
	return len(ids)
}

// Answer is the ingress's answer to a webhook: "accepted" with the event
// id and its targets, "duplicate" with the event id, or an error with its
// message and the payload field at fault.
type Answer struct {
	Status  string   `json:"status"`
	EventID string   `json:"event_id"`
	Targets []string `json:"targets"`
	Error   string   `json:"error"`
	Message string   `json:"message"`
	Field   string   `json:"field"`
}

// Post sends one webhook to a relay's ingress at url and returns the
// status and the answer.
func Post(ctx context.Context, url, body string) (int, Answer, error) {
	var ans Answer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, ans, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ans, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &ans); err != nil {
		return resp.StatusCode, ans, fmt.Errorf("answer %q is not JSON: %w", b, err)
	}
	return resp.StatusCode, ans, nil
}
