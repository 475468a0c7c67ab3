package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a whole relay: the ingress, the dispatcher and the admin
// endpoints over one store. Build it with NewServer and run it once with Run.
type Server struct {
	// settings and ingress are swapped whole by Reload; the listeners,
	// the store and the certificate files are those of the first settings.
	settings   atomic.Pointer[Settings]
	ingress    atomic.Pointer[Ingress]
	store      Store
	log        *slog.Logger
	registry   *prometheus.Registry
	metrics    *Metrics
	dispatcher *Dispatcher
	cert       *tlsconf.ServerCert // nil: plain HTTP ingress
	ready      atomic.Bool
	budget     *bodyBudget // shared by every ingress a reload builds
	version    string
	started    time.Time

	reloadMu   sync.Mutex // one reload at a time; guards the fields below
	hash       string
	reloads    int
	lastReload *ReloadJSON
}

// ReloadJSON is what the last reload did, in /api/v1/status.
type ReloadJSON struct {
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// ServerOptions are the parts of a Server that are not in its Settings.
type ServerOptions struct {
	Logger *slog.Logger // nil discards
	// Registry receives the metrics; nil means a new one, with the Go
	// runtime and process collectors.
	Registry *prometheus.Registry
	// Version goes into the User-Agent of deliveries.
	Version string
	// Reserve is the rate limit shared by every relay; see
	// DispatcherOptions.
	Reserve func(ctx context.Context, target string, rps float64, burst int) (time.Duration, error)
	// ConfigHash names the config in use on /api/v1/status and in
	// hooxrelay_config_info; see ConfigHash.
	ConfigHash string
}

// ConfigHash returns the name of a config file's content: the first 12 hex
// digits of its sha256, which an operator can compare with sha256sum.
func ConfigHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// NewServer builds a relay with set over store.
func NewServer(set Settings, store Store, opts ServerOptions) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ua := "hooxrelay"
	if opts.Version != "" {
		ua += "/" + opts.Version
	}
	s := &Server{
		store:    store,
		log:      opts.Logger,
		registry: opts.Registry,
		metrics:  NewMetrics(opts.Registry),
		version:  opts.Version,
		started:  time.Now(),
		hash:     opts.ConfigHash,
		budget:   newBodyBudget(set.Server.MaxBufferedBodyBytes),
	}
	opts.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hooxrelay_ingress_buffered_body_bytes",
		Help: "Bytes of webhook bodies being read or held until answered, bounded by server.max_buffered_body_bytes (past it: 503, outcome overloaded).",
	}, func() float64 { return float64(s.budget.used.Load()) }))
	s.settings.Store(&set)
	s.metrics.ConfigInfo.WithLabelValues(opts.ConfigHash).Set(1)
	// Counters exist from the start, so that increase() sees the first one.
	s.metrics.ConfigReloads.WithLabelValues("success")
	s.metrics.ConfigReloads.WithLabelValues("failure")
	var err error
	if set.Server.CertFile != "" || set.Server.KeyFile != "" {
		if s.cert, err = tlsconf.NewServerCert(set.Server.CertFile, set.Server.KeyFile); err != nil {
			return nil, fmt.Errorf("server.tls: %w", err)
		}
	}
	s.dispatcher, err = NewDispatcher(store, set.Targets, DispatcherOptions{
		Logger:    opts.Logger,
		Metrics:   s.metrics,
		UserAgent: ua,
		Busy: func() bool {
			in := s.ingress.Load()
			return in != nil && in.Busy()
		},
		Reserve: opts.Reserve,
	})
	if err != nil {
		return nil, err
	}
	in, err := s.newIngress(&set)
	if err != nil {
		return nil, err
	}
	s.ingress.Store(in)
	return s, nil
}

func (s *Server) newIngress(set *Settings) (*Ingress, error) {
	return NewIngress(set, s.store, IngressOptions{
		Logger:  s.log,
		Metrics: s.metrics,
		budget:  s.budget,
		Accepted: func(ev *Event) {
			for _, t := range ev.Targets {
				s.dispatcher.Kick(t)
			}
		},
	})
}

// Reload replaces the sources, routes and targets with those of set, the
// settings of the config file with the given hash. Everything is built
// before anything is swapped, so a config that cannot be applied leaves the
// running one untouched and returns why. Accepted events and attempts in
// flight are not disturbed: requests in progress finish on the ingress they
// started on, and a removed target's attempts finish and are recorded.
// Server settings read only at start (the timeouts and the certificate
// files) keep their old values until a restart.
func (s *Server) Reload(set Settings, hash string) error {
	return s.ReloadFrom(func() (Settings, string, error) { return set, hash, nil })
}

// ReloadFrom is Reload of the settings that load returns; an error from
// load (an unreadable or invalid file) counts as a failed reload.
func (s *Server) ReloadFrom(load func() (Settings, string, error)) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	set, hash, err := load()
	if err == nil {
		err = s.reload(&set, hash)
	}
	s.reloads++
	s.lastReload = &ReloadJSON{At: time.Now(), OK: err == nil}
	if err != nil {
		s.lastReload.Error = err.Error()
		s.metrics.ConfigReloads.WithLabelValues("failure").Inc()
		return err
	}
	s.metrics.ConfigReloads.WithLabelValues("success").Inc()
	return nil
}

func (s *Server) reload(set *Settings, hash string) error {
	in, err := s.newIngress(set)
	if err != nil {
		return err
	}
	if err := s.dispatcher.Reconfigure(set.Targets); err != nil {
		return err
	}
	old := s.settings.Load()
	s.settings.Store(set)
	s.budget.setMax(set.Server.MaxBufferedBodyBytes)
	if st, ok := s.store.(interface{ SetDedupTTL(time.Duration) }); ok {
		st.SetDedupTTL(set.DedupTTL) // a store that prunes marks itself
	}
	s.ingress.Store(in)
	s.logRemovedTargets(old, set)
	s.metrics.ConfigInfo.DeleteLabelValues(s.hash)
	s.metrics.ConfigInfo.WithLabelValues(hash).Set(1)
	s.hash = hash
	s.log.Info("config reloaded", "hash", hash, "sources", len(set.Sources), "targets", len(set.Targets), "routes", len(set.Routes.Routes()))
	return nil
}

// logRemovedTargets says what becomes of the deliveries of targets that a
// reload removed: they stay stored, pending, until the target comes back or
// an operator looks at them.
func (s *Server) logRemovedTargets(old, set *Settings) {
	kept := make(map[string]bool, len(set.Targets))
	for _, t := range set.Targets {
		kept[t.Name] = true
	}
	var counts map[string]StateCounts
	for _, t := range old.Targets {
		if kept[t.Name] {
			continue
		}
		if counts == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			counts, _ = s.store.Counts(ctx)
			cancel()
		}
		s.log.Warn("target removed by the reload; its deliveries stay stored (GET /api/v1/deliveries?target=NAME) and go out if it comes back",
			"target", t.Name, "pending", counts[t.Name].Pending, "dead", counts[t.Name].Dead)
	}
}

func (s *Server) configHash() string {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.hash
}

// ReloadTLS reads the ingress certificate files again, for a renewed
// certificate to take effect without a restart; on error the certificate in
// use stays. Without server.tls it does nothing.
func (s *Server) ReloadTLS() error {
	if s.cert == nil {
		return nil
	}
	if err := s.cert.Reload(); err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	s.log.Info("ingress TLS certificate reloaded", "not_after", s.cert.NotAfter())
	return nil
}

// Ingress returns the webhook handler, for tests and embedding.
func (s *Server) Ingress() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ingress.Load().ServeHTTP(w, r) })
}

// Dispatcher returns the dispatcher.
func (s *Server) Dispatcher() *Dispatcher { return s.dispatcher }

// AdminHandler serves /healthz, /readyz, /metrics and the admin API under
// /api/v1 (see admin.go).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			writeRaw(w, http.StatusServiceUnavailable, []byte(`{"status":"shutting_down"}`+"\n"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			writeRaw(w, http.StatusServiceUnavailable, []byte(`{"status":"store_unavailable"}`+"\n"))
			return
		}
		writeRaw(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.Handle("/api/v1/", s.apiHandler())
	return mux
}

// Run serves webhooks on ln and the admin endpoints on adminLn (nil: none)
// until ctx ends, then shuts down in order: not ready, listeners closed,
// requests in progress finished, deliveries in flight finished or returned
// to the queue, all within server.shutdown_timeout. It returns nil after a
// clean shutdown; the caller closes the store.
func (s *Server) Run(ctx context.Context, ln, adminLn net.Listener) error {
	set := s.settings.Load()
	sc := set.Server
	ingress := &http.Server{
		Handler:           s.Ingress(),
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		ReadTimeout:       sc.ReadTimeout,
		WriteTimeout:      sc.WriteTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	admin := &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       sc.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// Claims stop once the ingress has finished its requests, not with ctx.
	claiming, stopClaiming := context.WithCancel(context.WithoutCancel(ctx))
	defer stopClaiming()
	drain, endDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer endDrain()
	dispatched := make(chan error, 1)
	go func() { dispatched <- s.dispatcher.Run(claiming, drain) }()
	errc := make(chan error, 2)
	if s.cert != nil {
		ingress.TLSConfig = s.cert.TLSConfig()
	}
	serve := func(srv *http.Server, l net.Listener, name string) {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(l, "", "") // the certificate comes from TLSConfig
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s listener: %w", name, err)
			return
		}
		errc <- nil
	}
	go serve(ingress, ln, "ingress")
	running := 1
	if adminLn != nil {
		go serve(admin, adminLn, "admin")
		running++
	}
	s.ready.Store(true)
	s.log.Info("relay started", "listen", ln.Addr().String(), "tls", s.cert != nil, "admin", addrOf(adminLn),
		"sources", len(set.Sources), "targets", len(set.Targets), "routes", len(set.Routes.Routes()), "config_hash", s.configHash())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		running--
	}
	s.ready.Store(false)
	s.log.Info("shutting down", "timeout", sc.ShutdownTimeout)
	// A fresh context: ctx is already done, and Shutdown would then wait
	// for nothing.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.ShutdownTimeout)
	defer cancel()
	if err := ingress.Shutdown(sctx); err != nil {
		s.log.Warn("ingress requests cut off by the shutdown timeout", "err", err)
		ingress.Close()
	}
	defer context.AfterFunc(sctx, endDrain)()
	stopClaiming()
	if err := <-dispatched; err != nil {
		s.log.Warn("deliveries in flight returned to the queue", "err", err)
	}
	if adminLn != nil {
		admin.Close()
	}
	for ; running > 0; running-- {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	s.log.Info("shutdown complete")
	return nil
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
