package tlsconf_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
)

// The ingress serves the certificate from server.tls and picks up a renewed
// one on SIGHUP; a failed reload is logged and the old certificate stays.
func ExampleServerCert() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	certs, err := tlsconf.NewServerCert("/etc/hooxrelay/tls.crt", "/etc/hooxrelay/tls.key")
	if err != nil {
		log.Error("server.tls", "err", err)
		return
	}
	log.Info("tls certificate loaded", "not_after", certs.NotAfter())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := certs.Reload(); err != nil {
					log.Error("tls certificate reload", "err", err)
					continue
				}
				log.Info("tls certificate reloaded", "not_after", certs.NotAfter())
			}
		}
	}()

	srv := &http.Server{Addr: ":8443", TLSConfig: certs.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	_ = srv.ListenAndServeTLS("", "") // the certificate comes from TLSConfig
}

// A target behind a private CA that asks for a client certificate.
func ExampleClientConfig() {
	cfg, err := tlsconf.ClientConfig("/etc/hooxrelay/media-ca.pem", "/etc/hooxrelay/relay.crt", "/etc/hooxrelay/relay.key")
	if err != nil {
		slog.Error("targets[0].tls", "err", err)
		return
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg // nil, when no file is set, keeps the system roots
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	_ = client
}
