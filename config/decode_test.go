package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseFile parses a file under testdata, failing the test on error.
func parseFile(t *testing.T, name string) *Config {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, path)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return c
}

// parseErr parses a file under testdata and returns the error it must give.
func parseErr(t *testing.T, name string) error {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, path)
	if err == nil {
		t.Fatalf("Parse(%s) = %+v, nil; want an error", path, c)
	}
	if c != nil {
		t.Errorf("Parse(%s) returned a config along with its error", path)
	}
	return err
}

// withoutLines drops the line map, which a wanted Config cannot spell out.
func withoutLines(c *Config) Config {
	cc := *c
	cc.lines = nil
	return cc
}

func d(s string) Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration(v)
}

func TestParseFull(t *testing.T) {
	got := parseFile(t, "full.yaml")
	want := Config{
		File: filepath.Join("testdata", "full.yaml"),
		Server: Server{
			Listen: "0.0.0.0:8081", AdminListen: "127.0.0.1:9091", AdminToken: "admin-secret",
			TLS:            ServerTLS{CertFile: "/etc/hooxrelay/tls.crt", KeyFile: "/etc/hooxrelay/tls.key"},
			TrustedProxies: []string{"10.1.0.0/16", "fd00::1"},
			MaxBodyBytes:   2097152, MaxBufferedBodyBytes: 33554432, ReadHeaderTimeout: d("2s"), ReadTimeout: d("20s"),
			WriteTimeout: d("25s"), IdleTimeout: d("90s"), ShutdownTimeout: d("45s"), RejectedLog: 1000,
		},
		Store: Store{
			Kind: "redis", Path: "/var/lib/hooxrelay/store",
			Redis:     Redis{URL: "rediss://redis.internal:6380/2", Prefix: "relay-a", Lease: Duration(45 * time.Second)},
			Retention: d("72h"),
		},
		Dedup: Dedup{TTL: d("48h")},
		Sources: []Source{{
			Name: "hoox", Path: "/hooks/hoox",
			Verify: Verify{
				Kind: "standard-webhooks", Header: "webhook-signature",
				Secrets:   []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldA=="},
				Tolerance: d("2m"),
			},
			AllowCIDRs: []string{"10.0.0.0/8", "192.0.2.7"},
			RateLimit:  RateLimit{RPS: 50.5, Burst: 100},
		}},
		Targets: []Target{{
			Name: "media", URL: "https://media.internal/hooks/hoox",
			Timeout: d("3s"), MaxInFlight: 4, RateLimit: RateLimit{RPS: 2.5, Burst: 3},
			Retry: Retry{MaxAttempts: 5, InitialInterval: d("500ms"), MaxInterval: d("1m"),
				Multiplier: 1.5, Jitter: 0.1, MaxAge: d("6h")},
			Breaker:       Breaker{FailureRatio: 0.25, MinRequests: 20, Interval: d("2m"), OpenTimeout: d("10s")},
			Headers:       map[string]string{"Authorization": "Bearer t0ken", "X-Team": "media"},
			SigningSecret: Secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			TLS:           TargetTLS{CAFile: "/etc/ca.pem", CertFile: "/etc/client.crt", KeyFile: "/etc/client.key"},
			Request: Request{Method: "PUT", Body: "{id: .job_id}", Format: "form", Headers: map[string]string{"X-Job": "{job_id}"},
				Auth: RequestAuth{Kind: "oauth2", Username: "u", Password: "p", Token: "t", TokenURL: "https://auth.internal/token",
					ClientID: "c", ClientSecret: "s", Scopes: []string{"a", "b"}}},
			Success: []int{200, 204},
			Notify:  []string{"media-team"},
		}},
		Notify: []Notify{
			{Name: "media-team", URL: "https://media.internal/alerts", Kind: "webhook",
				SigningSecret: Secrets{"whsec_c2Vjb25kLXNlY3JldA=="},
				Events:        []string{"breaker_closed", "target_paused", "store_unavailable", "backlog_age"}, BacklogAge: d("20m"), MinInterval: d("1m")},
		},

		Tracing: Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.5},
		Routes: []Route{{
			Name: "finished-videos",
			Match: Match{
				Task:   []string{"video_generate", "video_export"},
				Status: []string{"completed"},
				Where: []Cond{
					{Path: "result.cost", Op: "gte", Value: 1},
					{Path: "result.video_id", Op: "exists"},
					{Path: "status", Op: "in", Value: []any{"completed", "done"}},
					{Path: "result.ratio", Op: "lt", Value: 0.5},
				},
			},
			Targets: []string{"media"},
		}},
	}
	if g := withoutLines(got); !reflect.DeepEqual(g, want) {
		t.Errorf("Parse(full.yaml) =\n%+v\nwant\n%+v", g, want)
	}
}

func TestParseDefaults(t *testing.T) {
	got := parseFile(t, "defaults.yaml")

	want := Default()
	want.File = filepath.Join("testdata", "defaults.yaml")

	hoox := DefaultSource()
	hoox.Name, hoox.Path = "hoox", "/hooks/hoox"
	other := DefaultSource()
	other.Name, other.Path = "other", "/hooks/other"
	other.Verify.Tolerance = d("1m")
	other.RateLimit = RateLimit{RPS: 5, Burst: 10}
	want.Sources = []Source{hoox, other}

	bare := DefaultTarget()
	bare.Name, bare.URL = "bare", "http://127.0.0.1:9101/hook"
	partial := DefaultTarget()
	partial.Name, partial.URL = "partial", "http://127.0.0.1:9102/hook"
	partial.Retry.MaxAttempts = 3
	partial.Breaker.OpenTimeout = d("5s")
	zeros := DefaultTarget()
	zeros.Name, zeros.URL = "zeros", "http://127.0.0.1:9103/hook"
	zeros.RateLimit = RateLimit{}
	zeros.Retry.Jitter = 0
	zeros.Breaker.Interval = 0
	want.Targets = []Target{bare, partial, zeros}
	want.Routes = []Route{{Name: "all", Targets: []string{"bare", "partial", "zeros"}}}

	if g := withoutLines(got); !reflect.DeepEqual(g, *want) {
		t.Errorf("Parse(defaults.yaml) =\n%+v\nwant\n%+v", g, *want)
	}
	// Spot checks that name the documented values, so that a wrong
	// default in Default itself is caught too.
	checks := []struct {
		what      string
		got, want any
	}{
		{"server.listen", got.Server.Listen, ":8080"},
		{"server.admin_listen", got.Server.AdminListen, "127.0.0.1:9090"},
		{"server.max_body_bytes", got.Server.MaxBodyBytes, int64(1048576)},
		{"server.max_buffered_body_bytes", got.Server.MaxBufferedBodyBytes, int64(64 << 20)},
		{"server.read_header_timeout", got.Server.ReadHeaderTimeout, d("5s")},
		{"server.read_timeout", got.Server.ReadTimeout, d("15s")},
		{"server.write_timeout", got.Server.WriteTimeout, d("15s")},
		{"server.idle_timeout", got.Server.IdleTimeout, d("60s")},
		{"server.shutdown_timeout", got.Server.ShutdownTimeout, d("30s")},
		{"server.rejected_log", got.Server.RejectedLog, 1000},
		{"store.kind", got.Store.Kind, "embedded"},
		{"store.path", got.Store.Path, "./data/store"},
		{"store.redis.url", got.Store.Redis.URL, "redis://127.0.0.1:6379/0"},
		{"store.redis.prefix", got.Store.Redis.Prefix, "hooxrelay"},
		{"store.retention", got.Store.Retention, d("168h")},
		{"dedup.ttl", got.Dedup.TTL, d("24h")},
		{"sources[1].verify.kind", got.Sources[1].Verify.Kind, "none"},
		{"sources[0].verify.tolerance", got.Sources[0].Verify.Tolerance, d("5m")},
		{"sources[1].verify.tolerance (set)", got.Sources[1].Verify.Tolerance, d("1m")},
		{"sources[0].rate_limit", got.Sources[0].RateLimit, RateLimit{}},
		{"targets[0].timeout", got.Targets[0].Timeout, d("10s")},
		{"targets[0].max_in_flight", got.Targets[0].MaxInFlight, 16},
		{"targets[0].rate_limit", got.Targets[0].RateLimit, RateLimit{RPS: 0, Burst: 1}},
		{"targets[0].retry", got.Targets[0].Retry, Retry{12, d("1s"), d("10m"), 2, 0.2, d("24h")}},
		{"targets[0].breaker", got.Targets[0].Breaker, Breaker{0.5, 10, d("60s"), d("30s")}},
		{"targets[1].retry (max_attempts set)", got.Targets[1].Retry, Retry{3, d("1s"), d("10m"), 2, 0.2, d("24h")}},
		{"targets[1].breaker (open_timeout set)", got.Targets[1].Breaker, Breaker{0.5, 10, d("60s"), d("5s")}},
		{"targets[2].rate_limit (explicit zeros)", got.Targets[2].RateLimit, RateLimit{}},
		{"targets[2].retry.jitter (explicit 0)", got.Targets[2].Retry.Jitter, 0.0},
		{"targets[2].retry.multiplier (left out)", got.Targets[2].Retry.Multiplier, 2.0},
		{"targets[2].breaker.interval (explicit 0s)", got.Targets[2].Breaker.Interval, Duration(0)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Parse(defaults.yaml): %s = %+v, want %+v", c.what, c.got, c.want)
		}
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() of defaults.yaml = %v, want nil", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		c, err := Parse([]byte(in), "e.yaml")
		if err != nil {
			t.Errorf("Parse(%q) error = %v, want nil", in, err)
			continue
		}
		want := Default()
		want.File = "e.yaml"
		if g := withoutLines(c); !reflect.DeepEqual(g, *want) {
			t.Errorf("Parse(%q) = %+v, want the defaults %+v", in, g, *want)
		}
	}
}

func TestParseUnknownKeys(t *testing.T) {
	err := parseErr(t, "unknown_keys.yaml")
	f := filepath.Join("testdata", "unknown_keys.yaml")
	want := []string{
		f + `:3: server.listn: unknown key; did you mean "listen"?`,
		f + `:4: storage: unknown key; did you mean "store"?`,
		f + `:10: sources[0].verify.knd: unknown key; did you mean "kind"?`,
		f + `:15: targets[0].retry.max_attemps: unknown key; did you mean "max_attempts"?`,
		f + `:16: targets[0].colour: unknown key; known keys here are name, url, timeout, max_in_flight, rate_limit, retry, breaker, headers, signing_secret, tls, request, success, notify`,
		f + `:21: routes[0].match.where[0].vaule: unknown key; did you mean "value"?`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Parse(unknown_keys.yaml) error =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if n := len(FieldErrors(err)); n != len(want) {
		t.Errorf("FieldErrors(Parse(unknown_keys.yaml)) has %d errors, want %d", n, len(want))
	}
}

func TestParseTypeErrors(t *testing.T) {
	err := parseErr(t, "type_errors.yaml")
	f := filepath.Join("testdata", "type_errors.yaml")
	want := []string{
		f + `:2: server.max_body_bytes: must be a whole number, got "lots"`,
		f + `:3: server.read_timeout: must be a duration such as "250ms", "10s" or "24h", got "10"`,
		f + `:4: server.listen: must be a string, got a list`,
		f + `:8: sources[0].rate_limit.rps: must be a number, got "fast"`,
		f + `:8: sources[0].rate_limit.burst: must be a whole number, got "1.5"`,
		f + `:11: targets[0].url: must be a string, got a mapping`,
		f + `:14: targets[0].retry.multiplier: must be a number, got "two"`,
		f + `:15: targets[0].retry.max_age: must be a duration such as "250ms", "10s" or "24h", got "1d"`,
		f + `:16: targets[0].headers: must be a mapping of names to values, got a list`,
		f + `:17: targets[0].signing_secret: must be a string or a list of strings, got a mapping`,
		f + `:18: routes: must be a list, got a mapping`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Parse(type_errors.yaml) error =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"top level list", "- a\n- b\n", "x.yaml:1: the config must be a mapping of keys such as server: and targets:, got a list"},
		{"top level scalar", "hello\n", `x.yaml:1: the config must be a mapping of keys such as server: and targets:, got "hello"`},
		{"second document", "server: {}\n---\nserver: {}\n", "x.yaml:2: a second YAML document (after ---) is not allowed; keep the whole config in one document"},
		{"duplicate key", "server:\n  listen: \":1\"\n  listen: \":2\"\n", "x.yaml:3: server.listen: duplicate key, already set on line 2; keep one"},
		{"bad indentation", "server:\n  listen: \":1\"\n  admin_listen: \"x:2\"\n idle_timeout: 1s\n", "x.yaml:4: invalid YAML: this line is indented 1 space, which lines it up with none of the blocks around it (0 or 2 spaces)"},
		{"indented under a value", "server:\n  listen: \":1\"\n   admin_listen: \"x:2\"\n", "x.yaml:3: invalid YAML: this line is indented 3 spaces, deeper than line 2 (2 spaces), which already has a value"},
		{"indented under a plain value", "server:\n  listen: x\n    admin_listen: y\n", "x.yaml:3: invalid YAML: this line is indented 4 spaces, deeper than line 2 (2 spaces), which already has a value"},
		{"list item key too shallow", "sources:\n  - name: a\n    path: /x\n   verify: {}\n", "x.yaml:4: invalid YAML: this line is indented 3 spaces, which lines it up with none of the blocks around it (0, 2 or 4 spaces)"},
		{"list item key too deep", "targets:\n  - name: a\n    url: b\n  - name: c\n     url: d\n", "x.yaml:5: invalid YAML: this line is indented 5 spaces, deeper than line 4 (4 spaces)"},
		{"key among list items", "routes:\n  - a\n  b: c\n", "x.yaml:3: invalid YAML: this line is at the indentation of the list items above it (2 spaces) but is not an item"},
		{"deep after block scalar and flow", "server:\n  admin_token: |\n    abc\n      def\n  listen: {a: 1,\n     b: 2}\n  max_body_bytes: 1\n   idle_timeout: 1s\n", "x.yaml:8: invalid YAML: this line is indented 3 spaces, deeper than line 7 (2 spaces)"},
		{"tab indenting a key", "server:\n  listen: x\n\tadmin_listen: y\n", "x.yaml:3: invalid YAML: a tab indents this line; YAML indents with spaces only"},
		{"missing colon", "server: {}\nstore: {}\nsources\ntargets: []\n", "x.yaml:3: invalid YAML: could not find expected ':'"},
		{"unquoted env in flow mapping", "targets:\n  - {name: a, max_in_flight: ${N:-1}}\n", `x.yaml:2: invalid YAML: did not find expected ',' or '}'`},
		{"tab", "server:\n\tlisten: x\n", "x.yaml:2: invalid YAML: a tab indents this line; YAML indents with spaces only, so replace the tab with spaces"},
		{"unknown anchor", "server: *nope\n", "x.yaml: invalid YAML: unknown anchor 'nope' referenced"},
		{"alias to an enclosing list", "routes: &r\n  - targets: *r\n", "x.yaml:2: routes[0].targets[0]: must be a string, got a mapping"},
		{"alias cycle in a value", "routes:\n  - match:\n      where:\n        - value: &v [1, *v]\n", "x.yaml:4: routes[0].match.where[0].value[1][1]: alias *v refers to a value that contains it"},
		{"null list item", "routes:\n  - name: a\n    targets: [a, ~]\n", "x.yaml:3: routes[0].targets[1]: empty item; remove it or give it a value"},
		{"int overflow", "targets:\n  - max_in_flight: 99999999999999999999\n", `x.yaml:2: targets[0].max_in_flight: must be a whole number, got "99999999999999999999"`},
		{"infinite rps", "targets:\n  - rate_limit: {rps: .inf}\n", `x.yaml:2: targets[0].rate_limit.rps: must be a number, got ".inf"`},
		{"key not a string", "server:\n  ? [a]\n  : b\n", "x.yaml:2: server: a key must be a plain string, got a list"},
		{"struct given a scalar", "store: embedded\n", `x.yaml:1: store: must be a mapping of keys (kind, path, redis, retention), got "embedded"`},
		{"secret list with a mapping", "targets:\n  - signing_secret: [a, {b: c}]\n", `x.yaml:2: targets[0].signing_secret: item 1 must be a string, got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in), "x.yaml")
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil; want error %q", tt.in, c, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error =\n%v\nwant it to start with\n%s", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseLenientForms(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*Config) (got, want any)
	}{
		{"scalar for a list", "routes: [{name: a, targets: media}]\n",
			func(c *Config) (any, any) { return c.Routes[0].Targets, []string{"media"} }},
		{"null keeps the default", "server:\n  listen:\n  max_body_bytes: ~\n",
			func(c *Config) (any, any) {
				return []any{c.Server.Listen, c.Server.MaxBodyBytes}, []any{":8080", int64(1048576)}
			}},
		{"underscores and exponent in numbers", "server: {max_body_bytes: 2_000_000}\ntargets: [{max_in_flight: 1e2}]\n",
			func(c *Config) (any, any) {
				return []any{c.Server.MaxBodyBytes, c.Targets[0].MaxInFlight}, []any{int64(2000000), 100}
			}},
		{"quoted number", "targets: [{max_in_flight: \"8\", rate_limit: {rps: \"1.5\"}}]\n",
			func(c *Config) (any, any) {
				return []any{c.Targets[0].MaxInFlight, c.Targets[0].RateLimit.RPS}, []any{8, 1.5}
			}},
		{"number for a string", "sources: [{name: 123}]\n",
			func(c *Config) (any, any) { return c.Sources[0].Name, "123" }},
		{"signing secret as a string", "targets: [{signing_secret: whsec_a}]\n",
			func(c *Config) (any, any) { return c.Targets[0].SigningSecret, Secrets{"whsec_a"} }},
		{"signing secret empty", "targets: [{signing_secret: \"\"}]\n",
			func(c *Config) (any, any) { return c.Targets[0].SigningSecret, Secrets(nil) }},
		{"signing secret list", "targets: [{signing_secret: [whsec_a, whsec_b]}]\n",
			func(c *Config) (any, any) { return c.Targets[0].SigningSecret, Secrets{"whsec_a", "whsec_b"} }},
		{"null list element starts from the defaults", "targets:\n  -\n",
			func(c *Config) (any, any) { return c.Targets, []Target{DefaultTarget()} }},
		{"where value kept as YAML typed it", "routes: [{match: {where: [{value: \"1\"}, {value: 1}, {value: true}, {value: 2024-01-15}]}}]\n",
			func(c *Config) (any, any) {
				var vs []any
				for _, w := range c.Routes[0].Match.Where {
					vs = append(vs, w.Value)
				}
				return vs, []any{"1", 1, true, "2024-01-15"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in), "x.yaml")
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.in, err)
			}
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q): got %#v, want %#v", tt.in, got, want)
			}
		})
	}
}

func TestParseAnchors(t *testing.T) {
	c := parseFile(t, "anchors.yaml")
	media, avatars := c.Targets[0], c.Targets[1]
	if got, want := media.Retry, (Retry{20, d("1s"), d("10m"), 2, 0.2, d("48h")}); got != want {
		t.Errorf("targets[0].retry = %+v, want %+v", got, want)
	}
	// The merged mapping brings max_age; the key written next to it wins.
	if got, want := avatars.Retry, (Retry{5, d("1s"), d("10m"), 2, 0.2, d("48h")}); got != want {
		t.Errorf("targets[1].retry = %+v, want %+v", got, want)
	}
	if got, want := avatars.Headers, map[string]string{"Authorization": "Bearer abc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("targets[1].headers = %v, want %v", got, want)
	}
	if got, want := c.Routes[1].Targets, []string{"media", "avatars"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routes[1].targets = %v, want %v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of anchors.yaml = %v, want nil", err)
	}
}

func TestLine(t *testing.T) {
	c := parseFile(t, "full.yaml")
	tests := []struct {
		path string
		want int
	}{
		{"server", 3},
		{"server.tls.key_file", 7},
		{"sources[0]", 30},
		{"sources[0].verify.secrets[1]", 35},
		{"targets[0].url", 42},
		{"targets[0].retry.max_attempts", 47},
		{"targets[0].headers.X-Team", 60},
		{"targets[0].request.body", 65},
		{"targets[0].success[1]", 69},
		{"routes[0]", 73},
		{"routes[0].match.where[1]", 79},
		{"routes[0].match.where[1].op", 79},
		{"routes[0].targets[0]", 82},
		{"targets[1]", 0},
		{"nope", 0},
	}
	for _, tt := range tests {
		if got := c.Line(tt.path); got != tt.want {
			t.Errorf("Line(%q) = %d, want %d", tt.path, got, tt.want)
		}
	}
	if got := Default().Line("server"); got != 0 {
		t.Errorf("Default().Line(\"server\") = %d, want 0", got)
	}
}

func TestParseAliasBombs(t *testing.T) {
	// Each anchor refers to the previous one twice: naive expansion takes
	// 2^60 steps. Parse must finish quickly, with or without an error.
	for _, name := range []string{"alias_bomb_merge.yaml", "alias_bomb_value.yaml"} {
		path := filepath.Join("testdata", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := Parse(data, path); done <- err }()
		select {
		case err := <-done:
			t.Logf("Parse(%s) error = %v", path, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse(%s) still running after 10s", path)
		}
	}
}
