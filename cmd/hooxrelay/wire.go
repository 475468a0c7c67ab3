package main

// The one place where the config file meets the relay: the decoded config
// is mapped onto the relay's own settings here, and nowhere else.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/notify"
	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/relay/tracing"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
)

// relaySettings maps a validated cfg onto the relay's settings, with its
// routes compiled.
func relaySettings(cfg *config.Config) (relay.Settings, error) {
	table, err := compileRoutes(cfg)
	if err != nil {
		return relay.Settings{}, fmt.Errorf("compile routes: %w", err)
	}
	sc := cfg.Server
	proxies, err := prefixes(sc.TrustedProxies)
	if err != nil {
		return relay.Settings{}, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	set := relay.Settings{
		Server: relay.ServerSettings{
			AdminToken:           sc.AdminToken,
			CertFile:             sc.TLS.CertFile,
			KeyFile:              sc.TLS.KeyFile,
			TrustedProxies:       proxies,
			MaxBodyBytes:         sc.MaxBodyBytes,
			MaxBufferedBodyBytes: sc.MaxBufferedBodyBytes,
			ReadHeaderTimeout:    sc.ReadHeaderTimeout.D(),
			ReadTimeout:          sc.ReadTimeout.D(),
			WriteTimeout:         sc.WriteTimeout.D(),
			IdleTimeout:          sc.IdleTimeout.D(),
			ShutdownTimeout:      sc.ShutdownTimeout.D(),
			RejectedLog:          sc.RejectedLog,
		},
		DedupTTL:  cfg.Dedup.TTL.D(),
		StoreKind: cfg.Store.Kind,
		Sources:   make([]relay.SourceSettings, len(cfg.Sources)),
		Targets:   make([]relay.TargetSettings, len(cfg.Targets)),
		Routes:    table,
	}
	for i, s := range cfg.Sources {
		allow, err := prefixes(s.AllowCIDRs)
		if err != nil {
			return relay.Settings{}, fmt.Errorf("sources[%d].allow_cidrs: %w", i, err)
		}
		set.Sources[i] = relay.SourceSettings{
			Name: s.Name,
			Path: s.Path,
			Verify: verify.Settings{
				Kind:      s.Verify.Kind,
				Header:    s.Verify.Header,
				Secrets:   s.Verify.Secrets,
				Tolerance: s.Verify.Tolerance.D(),
			},
			Allow:     allow,
			RateLimit: relay.RateLimit(s.RateLimit),
		}
	}
	for i, t := range cfg.Targets {
		set.Targets[i] = targetSettings(t)
	}
	set.Notify = notifySettings(cfg)
	return set, nil
}

func targetSettings(t config.Target) relay.TargetSettings {
	r, b := t.Retry, t.Breaker
	return relay.TargetSettings{
		Name:        t.Name,
		URL:         t.URL,
		Timeout:     t.Timeout.D(),
		MaxInFlight: t.MaxInFlight,
		RateLimit:   relay.RateLimit(t.RateLimit),
		Retry: relay.RetryPolicy{
			MaxAttempts:     r.MaxAttempts,
			InitialInterval: r.InitialInterval.D(),
			MaxInterval:     r.MaxInterval.D(),
			Multiplier:      r.Multiplier,
			Jitter:          r.Jitter,
			MaxAge:          r.MaxAge.D(),
		},
		Breaker: relay.BreakerSettings{
			FailureRatio: b.FailureRatio,
			MinRequests:  b.MinRequests,
			Interval:     b.Interval.D(),
			OpenTimeout:  b.OpenTimeout.D(),
		},
		Headers:        t.Headers,
		SigningSecrets: t.SigningSecret,
		TLS:            relay.TLSFiles{CAFile: t.TLS.CAFile, CertFile: t.TLS.CertFile, KeyFile: t.TLS.KeyFile},
		Request:        shapeSettings(t.Request),
		Success:        t.Success,
	}
}

func notifySettings(cfg *config.Config) notify.Settings {
	var set notify.Settings
	for _, n := range cfg.Notify {
		if len(n.Events) == 0 {
			n.Events = notify.Types
		}
		set.Endpoints = append(set.Endpoints, notify.Endpoint{
			Name: n.Name, URL: n.URL, Kind: n.Kind, SigningSecrets: n.SigningSecret,
			Events: n.Events, BacklogAge: n.BacklogAge.D(), MinInterval: n.MinInterval.D(),
		})
	}
	for _, t := range cfg.Targets {
		if len(t.Notify) > 0 {
			if set.Targets == nil {
				set.Targets = map[string][]string{}
			}
			set.Targets[t.Name] = t.Notify
		}
	}
	return set
}

// startTracing returns the exporting tracer when tracing.otlp_endpoint or
// OTEL_EXPORTER_OTLP_ENDPOINT (or its traces variant) is set, else nil:
// deliveries then carry the traceparent ids only.
func startTracing(ctx context.Context, cfg *config.Config) (*tracing.Tracer, error) {
	if cfg.Tracing.OTLPEndpoint == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	tr, err := tracing.New(ctx, tracing.Settings{Endpoint: cfg.Tracing.OTLPEndpoint, SampleRatio: cfg.Tracing.SampleRatio, Version: versionString()})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w (check tracing.otlp_endpoint and the OTEL_EXPORTER_OTLP_* variables)", err)
	}
	return tr, nil
}

func shapeSettings(r config.Request) shape.Settings {
	a := r.Auth
	return shape.Settings{
		Method:  r.Method,
		Headers: r.Headers,
		Body:    r.Body,
		Format:  r.Format,
		Auth: shape.Auth{
			Kind: a.Kind, Username: a.Username, Password: a.Password, Token: a.Token,
			TokenURL: a.TokenURL, ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: a.Scopes,
		},
	}
}

// compileRoutes compiles the routing table of cfg. Its error is
// rules.Compile's, unchanged, so that a caller can place each
// *rules.CompileError in the file.
func compileRoutes(cfg *config.Config) (*rules.Table, error) {
	rs := make([]rules.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rs[i] = rules.Route{Name: r.Name, Tasks: r.Match.Task, Statuses: r.Match.Status, Targets: r.Targets}
		for _, c := range r.Match.Where {
			rs[i].Where = append(rs[i].Where, rules.Cond{Path: c.Path, Op: c.Op, Value: c.Value})
		}
	}
	return rules.Compile(rs)
}

func prefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := config.ParseCIDR(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// restartKeys names the settings that differ between a and b and that only
// a restart applies: a reload leaves them as they were.
func restartKeys(a, b *config.Config) []string {
	var keys []string
	for _, c := range []struct {
		key  string
		same bool
	}{
		{"server.listen", a.Server.Listen == b.Server.Listen},
		{"server.admin_listen", a.Server.AdminListen == b.Server.AdminListen},
		{"server.tls", a.Server.TLS == b.Server.TLS},
		{"server.read_header_timeout", a.Server.ReadHeaderTimeout == b.Server.ReadHeaderTimeout},
		{"server.read_timeout", a.Server.ReadTimeout == b.Server.ReadTimeout},
		{"server.write_timeout", a.Server.WriteTimeout == b.Server.WriteTimeout},
		{"server.idle_timeout", a.Server.IdleTimeout == b.Server.IdleTimeout},
		{"server.shutdown_timeout", a.Server.ShutdownTimeout == b.Server.ShutdownTimeout},
		{"store", reflect.DeepEqual(a.Store, b.Store)},
		{"tracing", a.Tracing == b.Tracing},
	} {
		if !c.same {
			keys = append(keys, c.key)
		}
	}
	return keys
}
