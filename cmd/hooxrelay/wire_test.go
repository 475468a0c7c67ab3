package main

import (
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// Every key of the file format reaches the relay's settings: a config
// with every key set maps onto settings without a zero field, so that a
// field added to the settings and forgotten here fails this test.
func TestRelaySettingsMapEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../config/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := relaySettings(cfg)
	if err != nil {
		t.Fatalf("relaySettings(full.yaml): %v", err)
	}
	zeroFields(t, "Settings", reflect.ValueOf(set))

	if got, want := set.Server.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::1/128")}; !slices.Equal(got, want) {
		t.Errorf("Server.TrustedProxies = %v, want %v", got, want)
	}
	if got := set.Sources[0].Verify; got.Kind != verify.KindStandardWebhooks || got.Tolerance != 2*time.Minute || len(got.Secrets) != 2 {
		t.Errorf("Sources[0].Verify = %+v, want standard-webhooks, 2m, two secrets", got)
	}
	want := relay.TargetSettings{
		Name: "media", URL: "https://media.internal/hooks/hoox", Timeout: 3 * time.Second, MaxInFlight: 4,
		RateLimit: relay.RateLimit{RPS: 2.5, Burst: 3},
		Retry: relay.RetryPolicy{MaxAttempts: 5, InitialInterval: 500 * time.Millisecond, MaxInterval: time.Minute,
			Multiplier: 1.5, Jitter: 0.1, MaxAge: 6 * time.Hour},
		Breaker:        relay.BreakerSettings{FailureRatio: 0.25, MinRequests: 20, Interval: 2 * time.Minute, OpenTimeout: 10 * time.Second},
		Headers:        map[string]string{"Authorization": "Bearer t0ken", "X-Team": "media"},
		SigningSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		TLS:            relay.TLSFiles{CAFile: "/etc/ca.pem", CertFile: "/etc/client.crt", KeyFile: "/etc/client.key"},
		Request: shape.Settings{Method: "PUT", Body: "{id: .job_id}", Format: "form", Headers: map[string]string{"X-Job": "{job_id}"},
			Auth: shape.Auth{Kind: "oauth2", Username: "u", Password: "p", Token: "t", TokenURL: "https://auth.internal/token",
				ClientID: "c", ClientSecret: "s", Scopes: []string{"a", "b"}}},
		Success: []int{200, 204},
	}
	if !reflect.DeepEqual(set.Targets[0], want) {
		t.Errorf("Targets[0] =\n %+v\nwant\n %+v", set.Targets[0], want)
	}
	if m := set.Routes.Match("video_generate", "completed", map[string]any{
		"status": "completed", "result": map[string]any{"cost": 2.0, "video_id": "v", "ratio": 0.1}}); !slices.Equal(m.Targets, []string{"media"}) {
		t.Errorf("the compiled routes send a matching event to %v, want [media]", m.Targets)
	}
}

// zeroFields reports every field under v, named from path, that holds its
// zero value.
func zeroFields(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				zeroFields(t, path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty: a key of the config file does not reach it", path)
		}
		for i := range v.Len() {
			zeroFields(t, path+"["+strconv.Itoa(i)+"]", v.Index(i))
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero: a key of the config file does not reach it", path)
		}
	}
}

// The verify kinds the config file accepts are the ones verify knows.
func TestVerifyKindsAgree(t *testing.T) {
	for _, kind := range []string{config.VerifyNone, config.VerifyToken, config.VerifyHMACSHA256, config.VerifyStandardWebhooks} {
		_, err := verify.New(verify.Settings{Kind: kind, Header: "X-Signature", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
		if err != nil {
			t.Errorf("verify.New refuses the config's kind %q: %v", kind, err)
		}
	}
}

// The settings that only a restart applies are named after a reload that
// changes them, and only those.
func TestRestartKeys(t *testing.T) {
	a, b := config.Default(), config.Default()
	if keys := restartKeys(a, b); len(keys) != 0 {
		t.Errorf("restartKeys of equal configs = %v, want none", keys)
	}
	b.Server.Listen = ":9999"
	b.Server.ShutdownTimeout = config.Duration(time.Minute)
	b.Store.Redis.Lease = config.Duration(time.Hour)
	b.Server.AdminToken = "reloadable"
	want := []string{"server.listen", "server.shutdown_timeout", "store"}
	if keys := restartKeys(a, b); !slices.Equal(keys, want) {
		t.Errorf("restartKeys = %v, want %v", keys, want)
	}
}
