package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/internal/logwriter"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	rungroup "github.com/oklog/run"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "serve",
		GroupID: groupRelay,
		Short:   "run the relay",
		Long: `Runs the relay: webhook ingress on server.listen, admin endpoints (/healthz,
/readyz, /metrics and the /api/v1 admin API) on server.admin_listen, and
delivery to every target.
SIGHUP re-reads the config file: a valid one replaces sources, routes,
targets and notify entries without dropping anything accepted or in
flight; an invalid one is logged with every problem and the running config
stays. It also re-reads the server.tls certificate. Listen addresses,
server timeouts, the store and tracing take effect at the next restart.
Spans are exported over OTLP/HTTP when tracing.otlp_endpoint or the
OTEL_EXPORTER_OTLP_ENDPOINT environment variable is set (the other
OTEL_EXPORTER_OTLP_* variables, such as _HEADERS, apply too).
SIGTERM or SIGINT shut it down cleanly within server.shutdown_timeout.`,
		Args: noArgs,
	}
	f := cmd.Flags()
	cfgPath := configFlag(f)
	cmd.MarkFlagFilename("config", "yaml", "yml")
	logFormat := f.String("log-format", "auto", "log `FORMAT`: json, text, or auto (text on a terminal, json otherwise)")
	logLevel := f.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		tuneGC()
		out := e.stderr
		if !interactive(out) {
			// A line per webhook and per attempt: written in batches,
			// not a system call each (see "Logs" in the README).
			lw := logwriter.New(out, logwriter.Every, logwriter.Size)
			defer lw.Close()
			out = lw
		}
		log, err := newLogger(out, *logFormat, *logLevel)
		if err != nil {
			return err
		}
		cfg, hash, err := loadConfigHash(cfgPath())
		if err != nil {
			return err
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		return serve(cmd.Context(), cfg, hash, log, nil, hup)
	}
	return cmd
}

// gcPercent is the garbage collector's target (GOGC) of a process that
// runs a relay, unless GOGC is set. The relay's Go heap is a few MB live
// (the store's cache and memtables are outside it), so at Go's default of
// 100 it collected about 12 times a second under load; at 400, a relay
// process used about a tenth less CPU per webhook for some MB more heap.
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// loadConfigHash is loadConfig that also names the file's content (see
// relay.ConfigHash), from one read of the file.
func loadConfigHash(path string) (*config.Config, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, "", usagef("config file %q not found; pass --config FILE or set HOOXRELAY_CONFIG", path)
		}
		return nil, "", usagef("read config: %v", err)
	}
	cfg, err := checkConfig(data, path)
	if err != nil {
		return nil, "", usageError{err}
	}
	return cfg, relay.ConfigHash(data), nil
}

// serve runs a relay for cfg (whose file has hash) until ctx ends. ready,
// when not nil, receives the bound addresses once the relay answers; each
// signal on hup (nil: none) reloads the config file and the ingress
// certificate.
func serve(ctx context.Context, cfg *config.Config, hash string, log *slog.Logger, ready func(ingress, admin string), hup <-chan os.Signal) error {
	d := &daemon{cfg: cfg, hash: hash, log: log, ready: ready, hup: hup}
	return d.run(ctx)
}

// daemon is one `hooxrelay serve`: a relay over the store its config
// names, run as one group of goroutines. Tests set its fields.
type daemon struct {
	cfg   *config.Config
	hash  string // of the config file
	log   *slog.Logger
	ready func(ingress, admin string) // nil: not told
	hup   <-chan os.Signal            // nil: no reloads
	// embedded, when set, adjusts the embedded store's options (tests
	// make its disk hang).
	embedded func(*pebblestore.Options)
}

// run serves until ctx ends. The signal, the SIGHUP loop, the ingress, the
// dispatcher and the admin endpoints are one oklog/run group: when one
// ends, all are interrupted in that order, and run returns once every one
// has. A reload under way finishes before the relay shuts down, and none
// starts after. Then the store is closed, within the shutdown timeout
// counted from the signal.
func (d *daemon) run(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	set, err := relaySettings(cfg)
	if err != nil {
		return err
	}
	store, err := d.openStore(ctx)
	if err != nil {
		return err
	}
	storeClosed := false
	defer func() {
		if !storeClosed {
			store.Close()
		}
	}()
	opts := relay.ServerOptions{Logger: log, Version: versionString(), ConfigHash: d.hash}
	if rs, ok := store.(*redisstore.Store); ok {
		opts.Reserve = rs.Reserve // rate limits hold across every relay on the Redis
	}
	if tr, err := startTracing(ctx, cfg); err != nil {
		return err
	} else if tr != nil {
		opts.Tracer = tr
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tr.Close(ctx); err != nil {
				log.Warn("spans not exported at shutdown", "err", err)
			}
		}()
	}
	srv, err := relay.NewServer(set, store, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen %q: %w (is another process using the port?)", cfg.Server.Listen, err)
	}
	var adminLn net.Listener
	if cfg.Server.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.Server.AdminListen); err != nil {
			ln.Close()
			return fmt.Errorf("server.admin_listen %q: %w (is another process using the port?)", cfg.Server.AdminListen, err)
		}
	}

	var g rungroup.Group
	// The shutdown timeout counts from the signal, store included.
	var stopAt time.Time
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) {
		stopAt = time.Now()
		cancel()
	})
	if d.hup != nil {
		looped := make(chan struct{})
		g.Add(func() error {
			defer close(looped)
			current := cfg
			for {
				select {
				case <-d.hup:
					current = reload(ctx, srv, current, log)
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) {
			cancel()
			<-looped // a reload under way ends before the relay shuts down
		})
	}
	srv.Add(ctx, &g, ln, adminLn)
	if d.ready != nil {
		d.ready(ln.Addr().String(), addrString(adminLn))
	}
	if err := g.Run(); err != nil {
		return err
	}
	log.Info("shutdown complete")
	storeClosed = true
	return closeStore(store, stopAt.Add(cfg.Server.ShutdownTimeout.D()), log)
}

// closeStore closes store, waiting until deadline at most (and at least
// 100ms, the time a healthy disk needs to take the last outcomes): a disk
// that stopped answering must not keep the process past its shutdown
// timeout. Nothing acked is lost by leaving: acked events are on disk
// already, and deliveries whose outcome was not written go out again.
func closeStore(store relay.Store, deadline time.Time, log *slog.Logger) error {
	closed := make(chan error, 1)
	go func() { closed <- store.Close() }()
	timer := time.NewTimer(max(time.Until(deadline), 100*time.Millisecond))
	defer timer.Stop()
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		return nil
	case <-timer.C:
	}
	attrs := []any{}
	if u, ok := store.(interface{ Unwritten() (writes, outcomes int) }); ok {
		w, o := u.Unwritten()
		attrs = append(attrs, "writes_not_committed", w, "outcomes_not_written", o)
	}
	log.Error("the store did not close within server.shutdown_timeout (is its disk answering?); exiting anyway: "+
		"acked webhooks are on disk, unanswered ones were not acked, and deliveries whose outcome was not written go out again at the next start", attrs...)
	return nil
}

// reload applies SIGHUP to a relay running cfg: the config file again,
// then the certificate. An invalid file is logged with every problem, and
// the running config stays. It returns the config now in use.
func reload(ctx context.Context, srv *relay.Server, cfg *config.Config, log *slog.Logger) *config.Config {
	log.Info("SIGHUP: reloading the config", "file", cfg.File)
	var next *config.Config
	err := srv.ReloadFrom(ctx, func() (relay.Settings, string, error) {
		c, hash, err := loadConfigHash(cfg.File)
		if err != nil {
			for _, fe := range config.FieldErrors(err) {
				log.Error("config reload refused", "problem", fe.Error())
			}
			return relay.Settings{}, "", err
		}
		set, err := relaySettings(c)
		next = c
		return set, hash, err
	})
	if err != nil {
		log.Error("config reload failed; the previous config stays in use", "err", err)
	} else {
		for _, key := range restartKeys(cfg, next) {
			log.Warn("config reloaded, but this setting takes effect at the next restart", "key", key)
		}
		cfg = next
	}
	if err := srv.ReloadTLS(); err != nil {
		log.Error("reloading the TLS certificate failed; the previous one stays in use", "err", err)
	}
	return cfg
}

func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

func (d *daemon) openStore(ctx context.Context) (relay.Store, error) {
	cfg, log := d.cfg, d.log
	switch cfg.Store.Kind {
	case "embedded":
		opts := pebblestore.Options{
			Logger:    log,
			Retention: cfg.Store.Retention.D(),
			DedupTTL:  cfg.Dedup.TTL.D(),
		}
		if d.embedded != nil {
			d.embedded(&opts)
		}
		if err := refuseOldDefault(cfg.Store.Path); err != nil {
			return nil, err
		}
		return pebblestore.Open(cfg.Store.Path, opts)
	case "redis":
		redisstore.SetLogger(log)
		rdb, err := redisstore.NewClient(cfg.Store.Redis.URL)
		if err != nil {
			return nil, usagef("store.redis.url: %v", err)
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		warnings, err := redisstore.Preflight(ctx, rdb, time.Now)
		if err == nil {
			err = redisstore.CheckLayout(ctx, rdb, cfg.Store.Redis.Prefix)
		}
		cancel()
		if err != nil {
			rdb.Close()
			return nil, err
		}
		for _, w := range warnings {
			log.Warn("redis: " + w)
		}
		return redisstore.New(rdb, redisstore.Options{
			Prefix:    cfg.Store.Redis.Prefix,
			Lease:     cfg.Store.Redis.Lease.D(),
			Retention: cfg.Store.Retention.D(),
			Logger:    log,
		}), nil
	}
	return nil, usagef("store.kind %q is not supported by this build", cfg.Store.Kind)
}

// oldDefaultPath is where earlier versions kept the embedded store (one
// bbolt file) when store.path was not set.
const oldDefaultPath = "./data/hooxrelay.db"

// refuseOldDefault refuses to start a new, empty store at the default path
// while the earlier versions' default file is beside it: the relay would
// otherwise start without the events and deliveries kept there.
func refuseOldDefault(path string) error {
	if filepath.Clean(path) != filepath.Clean(config.Default().Store.Path) {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil // the store is there already
	}
	if fi, err := os.Stat(oldDefaultPath); err == nil && !fi.IsDir() {
		return fmt.Errorf("store.path %s does not exist yet, but %s, the store of an earlier hooxrelay, does: run `hooxrelay store migrate --from %s --to %s` first (or set store.path to start empty)", path, oldDefaultPath, oldDefaultPath, path)
	}
	return nil
}

// loadConfig loads and validates a config; its problems are usage errors.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, configChecks...)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, usagef("config file %q not found; pass --config FILE or set HOOXRELAY_CONFIG", path)
		}
		return nil, usageError{err}
	}
	return cfg, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationString}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "auto":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			h = slog.NewTextHandler(w, opts)
		} else {
			h = slog.NewJSONHandler(w, opts)
		}
	default:
		return nil, usagef("--log-format %q: want json, text or auto", format)
	}
	if lw, ok := w.(*logwriter.Writer); ok {
		h = logwriter.Handler(h, lw)
	}
	return slog.New(h), nil
}

// durationString writes durations as Go duration strings ("1.032ms", "30s")
// to the microsecond: the JSON handler would write bare nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		d := a.Value.Duration()
		if d >= time.Microsecond || d <= -time.Microsecond {
			d = d.Round(time.Microsecond)
		}
		return slog.String(a.Key, d.String())
	}
	return a
}

// startLocal parses and validates a generated config and serves it in the
// background until ctx ends; wg owns the goroutine. It returns the ingress
// address and a channel that receives serve's result.
func startLocal(ctx context.Context, wg *sync.WaitGroup, yamlText []byte, name string, log *slog.Logger) (string, <-chan error, error) {
	cfg, err := checkConfig(yamlText, name)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	ready := make(chan string, 1)
	served := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		served <- serve(ctx, cfg, "", log, func(in, _ string) { ready <- in }, nil)
	}()
	select {
	case addr := <-ready:
		return addr, served, nil
	case err := <-served:
		return "", nil, fmt.Errorf("start the relay: %w", err)
	}
}
