package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/logwriter"
)

// run is the setup every scenario shares: a directory (the --dir flag's,
// or a temporary one that close removes), the relay's log in it, the
// targets, relays and drivers it starts, and the report. Everything it
// starts ends with its context; close cancels it and waits.
type run struct {
	env    *Env
	name   string // the scenario's, at the start of progress lines
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dir    string
	rmdir  func()
	logf   *os.File // relay.log, opened by the first relay in this process
	logw   *logwriter.Writer
	kids   []*childRelay // relay processes, killed by close if still running
}

// newRun makes the directory of a run of the scenario name.
func newRun(ctx context.Context, env *Env, name, dirFlag string) (*run, error) {
	r := &run{env: env, name: name, dir: dirFlag, rmdir: func() {}}
	if r.dir != "" {
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		d, err := os.MkdirTemp("", "hooxrelay-bench-")
		if err != nil {
			return nil, err
		}
		r.dir, r.rmdir = d, func() { os.RemoveAll(d) }
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r, nil
}

// close kills the relay processes, ends everything else the run started
// and waits for it, then closes the log and removes a temporary directory.
func (r *run) close() {
	for _, c := range r.kids {
		c.kill()
	}
	r.cancel()
	r.wg.Wait()
	if r.logf != nil {
		r.logw.Close()
		r.logf.Close()
	}
	r.rmdir()
}

// start serves the targets on free loopback ports.
func (r *run) start(targets ...*target) error {
	for _, t := range targets {
		if err := t.start(r.ctx, &r.wg); err != nil {
			return err
		}
	}
	return nil
}

// serve starts a relay in this process on store for targets, logging
// JSON lines to relay.log in the directory, as serve does.
func (r *run) serve(store string, targets ...targetConfig) (*localRelay, error) {
	if r.env.Serve == nil {
		return nil, errors.New("bench: Env.Serve is not set; this scenario runs the relay in this process")
	}
	if r.logf == nil {
		f, err := os.Create(filepath.Join(r.dir, "relay.log"))
		if err != nil {
			return nil, err
		}
		r.logf, r.logw = f, logwriter.New(f, logwriter.Every, logwriter.Size)
	}
	rel := &localRelay{}
	log := slog.New(&watchHandler{Handler: logwriter.Handler(slog.NewJSONHandler(r.logw, nil), r.logw), w: &rel.watch})
	cfg := relayConfig("127.0.0.1:0", "127.0.0.1:0", store, targets...)
	type addrs struct{ in, admin string }
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	rel.served = served
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		served <- r.env.Serve(r.ctx, cfg, log, func(in, admin string) { ready <- addrs{in, admin} })
	}()
	select {
	case a := <-ready:
		rel.ingress, rel.admin = a.in, a.admin
		return rel, nil
	case err := <-served:
		return nil, fmt.Errorf("start the relay: %w", err)
	}
}

// stop ends the run's context, which shuts rel down, and returns what
// its serve returned.
func (r *run) stop(rel *localRelay) error {
	r.cancel()
	if err := <-rel.served; err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// child starts the relay as a process of its own, running bin, on store
// for targets (see childRelay).
func (r *run) child(bin, store string, targets ...targetConfig) (*childRelay, error) {
	c, err := newChildRelay(bin, r.dir, store, targets...)
	if err != nil {
		return nil, err
	}
	r.kids = append(r.kids, c)
	return c, c.start(r.ctx)
}

// drive runs d in the background, sending for sendFor (0: until stop).
// stop ends the sending and waits for the webhooks in progress (see
// driver.run); sending ends when the sending does.
func (r *run) drive(d *driver, sendFor time.Duration) (sending context.Context, stop func()) {
	var stopSending context.CancelFunc
	if sendFor > 0 {
		sending, stopSending = context.WithTimeout(r.ctx, sendFor)
	} else {
		sending, stopSending = context.WithCancel(r.ctx)
	}
	driven := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(driven)
		d.run(r.ctx, sending)
	}()
	return sending, func() {
		stopSending()
		<-driven
	}
}

// progress redraws the line that line returns every second, after the
// scenario's name, until stop, which ends the line. stop may be called
// more than once.
func (r *run) progress(line func() string) (stop func()) {
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(r.env.Progress, "\r%s: %s   ", r.name, line())
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			fmt.Fprintln(r.env.Progress)
		})
	}
}

// drain waits until every acked event reached every target, or for wait;
// see waitDelivered.
func (r *run) drain(targets []*target, acked map[string]struct{}, since time.Time, wait time.Duration) Drain {
	return waitDelivered(r.ctx, targets, acked, since, wait, r.env.Progress, r.name)
}

// report prints a scenario's result, as one indented JSON object when
// asJSON and as its table otherwise, and fails when d lost an acked event
// or did not drain.
func (r *run) report(asJSON bool, res interface{ table(io.Writer) }, d Drain) error {
	if asJSON {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.table(r.env.Stdout)
	}
	return d.err()
}
