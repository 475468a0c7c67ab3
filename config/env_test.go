package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"HOST": "media.internal", "EMPTY": "", "PORT": "8443"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOST}", want: "media.internal"},
		{in: "https://${HOST}:${PORT}/x", want: "https://media.internal:8443/x"},
		{in: "${EMPTY}", want: ""},
		{in: "${MISSING:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${HOST:-fallback}", want: "media.internal"},
		{in: "${MISSING:-}", want: ""},
		{in: "${MISSING:-a:-b}", want: "a:-b"},
		{in: "$${HOST}", want: "${HOST}"},
		{in: "$$${HOST}", want: "$${HOST}"}, // read left to right: "$", then "$${"
		{in: "cost $5, $HOST, $$, $", want: "cost $5, $HOST, $$, $"},
		{in: "${MISSING}", wantErr: `environment variable "MISSING" is not set; export it or give a default with ${MISSING:-value}`},
		{in: "a ${HOST", wantErr: `unterminated "${HOST"`},
		{in: "${}", wantErr: `invalid environment variable reference "${}"`},
		{in: "${1X}", wantErr: `invalid environment variable reference "${1X}"`},
		{in: "${A-B}", wantErr: `invalid environment variable reference "${A-B}"`},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseEnv(t *testing.T) {
	t.Setenv("HOOXTEST_DATA", "/var/lib/hooxrelay")
	t.Setenv("HOOXTEST_PORT", "9101")
	t.Setenv("HOOXTEST_TOKEN", "s3cret")
	t.Setenv("HOOXTEST_BURST", "7")
	for _, k := range []string{"HOOXTEST_LISTEN", "HOOXTEST_SOURCE", "HOOXTEST_IN_FLIGHT", "HOOXTEST_RPS", "HOOXTEST_MIN_COST", "HOOXTEST_MIN_COUNT", "NOT_EXPANDED", "NOT_A_VAR"} {
		unsetenv(t, k)
	}
	c := parseFile(t, "env.yaml")
	checks := []struct {
		what      string
		got, want any
	}{
		{"server.listen (quoted default)", c.Server.Listen, ":8080"},
		{"store.path (set)", c.Store.Path, "/var/lib/hooxrelay/store"},
		{"sources[0].path (default inside a string)", c.Sources[0].Path, "/hooks/hoox"},
		{"targets[0].url", c.Targets[0].URL, "http://127.0.0.1:9101/hook"},
		{"targets[0].max_in_flight (default as an int)", c.Targets[0].MaxInFlight, 4},
		{"targets[0].rate_limit.rps (default as a float)", c.Targets[0].RateLimit.RPS, 2.5},
		{"targets[0].rate_limit.burst (set as an int)", c.Targets[0].RateLimit.Burst, 7},
		{"targets[0].headers.Authorization", c.Targets[0].Headers["Authorization"], "Bearer s3cret"},
		{"targets[0].headers.X-Literal ($${)", c.Targets[0].Headers["X-Literal"], "${NOT_A_VAR} costs $5"},
		// A quoted value stays a string; a plain one is typed after expansion.
		{"where[0].value (quoted)", c.Routes[0].Match.Where[0].Value, "1"},
		{"where[1].value (plain)", c.Routes[0].Match.Where[1].Value, 3},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("Parse(env.yaml): %s = %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
	if got, want := c.Line("targets[0].headers.Authorization"), 17; got != want {
		t.Errorf("Line(targets[0].headers.Authorization) = %d, want %d (expansion must not move lines)", got, want)
	}
}

func TestParseEnvUnset(t *testing.T) {
	for _, k := range []string{"HOOXTEST_DATA", "HOOXTEST_PORT", "HOOXTEST_TOKEN", "HOOXTEST_RPS", "HOOXTEST_BURST", "HOOXTEST_IN_FLIGHT"} {
		unsetenv(t, k)
	}
	err := parseErr(t, "env.yaml")
	f := filepath.Join("testdata", "env.yaml")
	want := []string{
		f + `:5: store.path: environment variable "HOOXTEST_DATA" is not set; export it or give a default with ${HOOXTEST_DATA:-value}`,
		f + `:11: targets[0].url: environment variable "HOOXTEST_PORT" is not set; export it or give a default with ${HOOXTEST_PORT:-value}`,
		f + `:17: targets[0].headers.Authorization: environment variable "HOOXTEST_TOKEN" is not set; export it or give a default with ${HOOXTEST_TOKEN:-value}`,
	}
	// Exactly these: the values that failed to expand must not also be
	// reported as type errors, and the comment must not be expanded.
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Parse(env.yaml) with variables unset: error =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestParseEnvTypes(t *testing.T) {
	tests := []struct {
		name, env, in string
		want          error
		check         func(*Config) any
		wantVal       any
	}{
		{name: "bad number from env", env: "fast", in: "targets:\n  - rate_limit:\n      rps: ${HOOXTEST_V}\n",
			want: &FieldError{File: "x.yaml", Line: 3, Path: "targets[0].rate_limit.rps", Msg: `must be a number, got "fast"`}},
		{name: "duration from env", env: "3s", in: "targets: [{timeout: \"${HOOXTEST_V}\"}]\n",
			check: func(c *Config) any { return c.Targets[0].Timeout }, wantVal: d("3s")},
		{name: "env cannot inject structure", env: "a\nb: c", in: "sources:\n  - name: ${HOOXTEST_V}\n",
			check: func(c *Config) any { return c.Sources[0].Name }, wantVal: "a\nb: c"},
		{name: "list item from env", env: "media", in: "routes: [{name: r, targets: [\"${HOOXTEST_V}\"]}]\n",
			check: func(c *Config) any { return c.Routes[0].Targets }, wantVal: []string{"media"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOOXTEST_V", tt.env)
			c, err := Parse([]byte(tt.in), "x.yaml")
			if tt.want != nil {
				if err == nil || err.Error() != tt.want.Error() {
					t.Fatalf("Parse(%q) with HOOXTEST_V=%q error = %v, want %v", tt.in, tt.env, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) with HOOXTEST_V=%q error = %v", tt.in, tt.env, err)
			}
			if got := tt.check(c); !reflect.DeepEqual(got, tt.wantVal) {
				t.Errorf("Parse(%q) with HOOXTEST_V=%q: got %#v, want %#v", tt.in, tt.env, got, tt.wantVal)
			}
		})
	}
}

// unsetenv unsets k for the duration of the test, restoring it after.
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "") // registers the restore
	os.Unsetenv(k)
}

// ReadSources expands only the values it reads: the rest of the file may
// name variables that are not set.
func TestReadSources(t *testing.T) {
	t.Setenv("HOOXTEST_HEADER", "X-Sig")
	in := `server:
  admin_token: ${HOOXTEST_UNSET_TOKEN}
store: {kind: redis, redis: {url: "${HOOXTEST_UNSET_URL}"}}
sources:
  - name: hoox
    path: /hooks/hoox
  - &signed
    name: partner
    path: /hooks/partner
    verify: {kind: hmac-sha256, header: "${HOOXTEST_HEADER}", secrets: ["${HOOXTEST_UNSET_SECRET}"]}
    rate_limit: {rps: "${HOOXTEST_UNSET_RPS}"}
  - <<: *signed
    name: other
    path: /hooks/other
    verify: {kind: token, header: ~}
targets: [{name: a, url: "${HOOXTEST_UNSET_TARGET}"}]
`
	entries, err := ReadSources([]byte(in), "s.yaml")
	if err != nil {
		t.Fatalf("ReadSources: %v", err)
	}
	want := []Source{
		{Name: "hoox", Path: "/hooks/hoox", Verify: Verify{Kind: VerifyNone}},
		{Name: "partner", Path: "/hooks/partner", Verify: Verify{Kind: VerifyHMACSHA256, Header: "X-Sig"}},
		{Name: "other", Path: "/hooks/other", Verify: Verify{Kind: VerifyToken}},
	}
	var got []Source
	for _, e := range entries {
		if e.Err != nil {
			t.Errorf("ReadSources: source %s: %v", e.Source.Name, e.Err)
		}
		e.Source.Verify.Tolerance = 0
		got = append(got, e.Source)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadSources =\n%+v\nwant\n%+v", got, want)
	}

	// An unset variable is the problem of the source that uses it only.
	entries, err = ReadSources([]byte("sources:\n  - name: a\n    verify: {kind: token, header: \"${HOOXTEST_UNSET_H}\"}\n  - name: b\n"), "u.yaml")
	if want := `u.yaml:3: sources[0].verify.header: environment variable "HOOXTEST_UNSET_H" is not set`; err != nil || len(entries) != 2 ||
		entries[0].Err == nil || !strings.HasPrefix(entries[0].Err.Error(), want) || entries[0].Source.Name != "a" || entries[1].Err != nil {
		t.Errorf("ReadSources with an unset variable in one header = %+v, %v; want the first source to hold %q", entries, err, want)
	}
}
