package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/console"
	"github.com/hooxrelay/hooxrelay/relay/notify"
	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a whole relay: the ingress, the dispatcher and the admin
// endpoints over one store. Build it with NewServer, then run it once:
// with Run, or as part of a larger group with Add.
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
	notifier   *notify.Notifier
	replays    *replayer
	tracer     Tracer
	cert       *tlsconf.ServerCert // nil: plain HTTP ingress
	ready      atomic.Bool
	budget     *bodyBudget // shared by every ingress a reload builds
	rejected   *rejectedLog
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
	// Tracer starts the spans of each webhook; nil makes the traceparent
	// ids only and records nothing.
	Tracer Tracer
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
		rejected: newRejectedLog(set.Server.RejectedLog),
		tracer:   opts.Tracer,
	}
	opts.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hooxrelay_ingress_buffered_body_bytes",
		Help: "Bytes of webhook bodies being read or held until answered, bounded by server.max_buffered_body_bytes (past it: 503, outcome overloaded).",
	}, func() float64 { return float64(s.budget.used.Load()) }))
	s.settings.Store(&set)
	opts.Registry.MustRegister(newBacklogAge(s))
	s.metrics.ConfigInfo.WithLabelValues(opts.ConfigHash).Set(1)
	// Counters exist from the start, so that increase() sees the first one.
	s.metrics.ConfigReloads.WithLabelValues("success")
	s.metrics.ConfigReloads.WithLabelValues("failure")
	s.notifier = notify.New(notify.Options{Logger: opts.Logger, Registry: opts.Registry})
	if err := s.notifier.Configure(set.Notify); err != nil {
		return nil, err
	}
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
		Reserve:         opts.Reserve,
		OnBreakerChange: s.breakerChanged,
		OnDead:          s.deliveryDead,
		Tracer:          opts.Tracer,
	})
	if err != nil {
		return nil, err
	}
	in, err := s.newIngress(&set)
	if err != nil {
		return nil, err
	}
	s.ingress.Store(in)
	s.replays = newReplayer(s)
	return s, nil
}

func (s *Server) newIngress(set *Settings) (*Ingress, error) {
	return NewIngress(set, s.store, IngressOptions{
		Logger:      s.log,
		Metrics:     s.metrics,
		budget:      s.budget,
		rejected:    s.rejected,
		StoreFailed: s.storeFailed,
		Tracer:      s.tracer,
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
// ctx bounds what a reload asks of the store.
func (s *Server) Reload(ctx context.Context, set Settings, hash string) error {
	return s.ReloadFrom(ctx, func() (Settings, string, error) { return set, hash, nil })
}

// ReloadFrom is Reload of the settings that load returns; an error from
// load (an unreadable or invalid file) counts as a failed reload.
func (s *Server) ReloadFrom(ctx context.Context, load func() (Settings, string, error)) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	set, hash, err := load()
	if err == nil {
		err = s.reload(ctx, &set, hash)
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

func (s *Server) reload(ctx context.Context, set *Settings, hash string) error {
	in, err := s.newIngress(set)
	if err != nil {
		return err
	}
	if err := notify.Check(set.Notify); err != nil {
		return err
	}
	if err := s.dispatcher.Reconfigure(set.Targets); err != nil {
		return err
	}
	if err := s.notifier.Configure(set.Notify); err != nil {
		return err
	}
	old := s.settings.Load()
	s.settings.Store(set)
	s.budget.setMax(set.Server.MaxBufferedBodyBytes)
	s.rejected.resize(set.Server.RejectedLog)
	if st, ok := s.store.(interface{ SetDedupTTL(time.Duration) }); ok {
		st.SetDedupTTL(set.DedupTTL) // a store that prunes marks itself
	}
	s.ingress.Store(in)
	s.logRemovedTargets(ctx, old, set)
	s.metrics.ConfigInfo.DeleteLabelValues(s.hash)
	s.metrics.ConfigInfo.WithLabelValues(hash).Set(1)
	s.hash = hash
	s.log.Info("config reloaded", "hash", hash, "sources", len(set.Sources), "targets", len(set.Targets), "routes", len(set.Routes.Routes()))
	return nil
}

// logRemovedTargets says what becomes of the deliveries of targets that a
// reload removed: they stay stored, pending, until the target comes back or
// an operator looks at them.
func (s *Server) logRemovedTargets(ctx context.Context, old, set *Settings) {
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
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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
// /api/v1 (see admin.go), and the web console under /ui/.
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
	mux.Handle("/ui/", console.New(consoleBackend{s}, s.log))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	return mux
}
