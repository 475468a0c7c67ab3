package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/oklog/run"
)

// Add adds the relay to g as three execute/interrupt pairs: the ingress on
// ln, the dispatcher, and the admin endpoints on adminLn (nil: none). They
// run until g is interrupted, then shut down in order, within the
// shutdown timeout counted from the first of their interrupts: the relay
// turns not ready; the ingress stops taking connections and finishes the
// requests in progress; the dispatcher stops claiming and waits for its
// attempts, cutting off those still running at the timeout (their
// deliveries go back to the queue uncharged); then the admin endpoints
// close. Add marks the relay ready: its listeners are bound. ctx carries
// values only. The caller closes the store once g.Run has returned.
func (s *Server) Add(ctx context.Context, g *run.Group, ln, adminLn net.Listener) {
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
	if s.cert != nil {
		ingress.TLSConfig = s.cert.TLSConfig()
	}
	admin := &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       sc.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// The shutdown context is not the caller's: that one has ended when
	// the shutdown starts, and http.Server.Shutdown would then wait for
	// nothing. It ends the timeout after the first interrupt.
	stopping, stopped := context.WithCancel(context.WithoutCancel(ctx))
	var once sync.Once
	begin := func() {
		once.Do(func() {
			s.ready.Store(false)
			s.log.Info("shutting down", "timeout", sc.ShutdownTimeout)
			time.AfterFunc(sc.ShutdownTimeout, stopped)
		})
	}

	g.Add(func() error {
		return serveHTTP(ingress, ln, "ingress")
	}, func(error) {
		begin()
		if err := ingress.Shutdown(stopping); err != nil {
			s.log.Warn("ingress requests cut off by the shutdown timeout", "err", err)
			ingress.Close()
		}
	})

	// Claims stop once the ingress has finished its requests (its
	// interrupt comes first), not when the caller's ctx ends.
	claiming, stopClaiming := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	g.Add(func() error {
		defer close(dispatched)
		if err := s.dispatcher.Run(claiming, stopping); err != nil {
			s.log.Warn("deliveries in flight returned to the queue", "err", err)
		}
		return nil
	}, func(error) {
		begin()
		stopClaiming()
		<-dispatched // the admin endpoints answer until the attempts end
	})

	// Replays resume at start and stop, still running, at shutdown.
	replaying := make(chan struct{})
	g.Add(func() error {
		s.replays.resume()
		<-replaying
		return nil
	}, func(error) {
		s.replays.shutdown()
		close(replaying)
	})

	watching, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	g.Add(func() error {
		s.watch(watching)
		s.notifier.Close()
		return nil
	}, func(error) { stopWatching() })

	if adminLn != nil {
		g.Add(func() error {
			return serveHTTP(admin, adminLn, "admin")
		}, func(error) {
			begin()
			admin.Close()
		})
	}
	s.ready.Store(true)
	s.log.Info("relay started", "listen", ln.Addr().String(), "tls", s.cert != nil, "admin", addrOf(adminLn),
		"sources", len(set.Sources), "targets", len(set.Targets), "routes", len(set.Routes.Routes()), "config_hash", s.configHash())
}

// Run runs the relay alone (see Add) until ctx ends, and returns nil after
// a clean shutdown, or why a listener failed. The caller closes the store.
func (s *Server) Run(ctx context.Context, ln, adminLn net.Listener) error {
	var g run.Group
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) { cancel() })
	s.Add(ctx, &g, ln, adminLn)
	if err := g.Run(); err != nil {
		return err
	}
	s.log.Info("shutdown complete")
	return nil
}

// serveHTTP serves srv on l until srv is shut down, over TLS when srv has
// a TLS config (its certificate comes from there).
func serveHTTP(srv *http.Server, l net.Listener, name string) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	return nil
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
