package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The pieces of a valid config that each case below starts from.
const (
	okSources = "sources: [{name: hoox, path: /hooks/hoox}]\n"
	okTargets = "targets: [{name: media, url: \"http://127.0.0.1:9101/hook\"}]\n"
	okRoutes  = "routes: [{name: all, targets: [media]}]\n"
	okAll     = okSources + okTargets + okRoutes
)

// marker ends the line that the wanted error must point at.
const marker = "# <-"

// markedLine returns the 1-based line of in that carries marker, 0 if none.
func markedLine(in string) int {
	for i, l := range strings.Split(in, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	return 0
}

type validateCase struct {
	name string
	yaml string // the line to blame carries "# <-"
	want string // "path: start of the message"
	n    int    // errors expected in all; 0 means 1
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "v.yaml")
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.yaml, err)
			}
			err = c.Validate()
			if err == nil {
				t.Fatalf("Validate() of\n%s\n= nil, want an error %q", tt.yaml, tt.want)
			}
			want := "v.yaml: " + tt.want
			if line := markedLine(tt.yaml); line > 0 {
				want = fmt.Sprintf("v.yaml:%d: %s", line, tt.want)
			}
			errs := FieldErrors(err)
			found := false
			for _, fe := range errs {
				found = found || strings.HasPrefix(fe.Error(), want)
			}
			if !found {
				t.Errorf("Validate() of\n%s\n=\n%v\nwant an error starting with\n%s", tt.yaml, err, want)
			}
			n := max(tt.n, 1)
			if len(errs) != n {
				t.Errorf("Validate() of\n%s\n=\n%v\ngot %d errors, want %d", tt.yaml, err, len(errs), n)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Validate() error %v is not a *FieldError", err)
			}
		})
	}
}

func TestValidateOK(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"base", okAll},
		{"loopback listeners and urls", `
server: {listen: "[::]:0", admin_listen: "[::1]:9090"}
sources: [{name: a-b_1, path: /a/b.c~d-e_f}]
targets:
  - {name: l1, url: "http://localhost:9/x"}
  - {name: l2, url: "http://127.1.2.3/x"}
  - {name: l3, url: "http://[::1]:8080/x"}
  - {name: s, url: "https://media.internal/x?y=1"}
routes: [{name: r, targets: [l1, l2, l3, s]}]
`},
		{"admin on localhost", "server: {admin_listen: \"localhost:9090\"}\n" + okAll},
		{"zeros where zero is allowed", `
sources: [{name: hoox, path: /hooks/hoox, rate_limit: {rps: 0, burst: 0}}]
targets:
  - name: media
    url: "http://127.0.0.1:9101/hook"
    rate_limit: {rps: 0, burst: 0}
    retry: {jitter: 0, multiplier: 1, max_attempts: 1}
    breaker: {interval: 0s, failure_ratio: 1}
routes: [{name: all, targets: [media]}]
`},
		{"every condition form", okSources + okTargets + `
routes:
  - name: all
    match:
      task: [video_generate]
      status: [completed]
      where:
        - {path: a, op: eq, value: x}
        - {path: a, op: ne, value: 1.5}
        - {path: a, op: eq, value: false}
        - {path: a, op: in, value: [1, x, true]}
        - {path: a, op: exists}
        - {path: a.b, op: exists, value: false}
        - {path: a, op: gt, value: 1}
        - {path: a, op: gte, value: "2024-01-01"}
        - {path: a, op: lt, value: 2024-01-01}
        - {path: a, op: lte, value: -3}
        - {path: a, op: prefix, value: "run_"}
    targets: [media]
`},
		{"no routes", okSources + okTargets},
		{"unused target", okSources + "targets: [{name: media, url: \"http://127.0.0.1:9101/hook\"}, {name: spare, url: \"https://x.internal/\"}]\n" + okRoutes},
		{"headers", okSources + okRoutes + `
targets:
  - name: media
    url: "http://127.0.0.1:9101/hook"
    headers: {Authorization: "Bearer x", X-Team: media, "X-Odd!#$%&'*+.^_|~": y}
`},
		// What a condition means is for rules.Compile to say (see Check).
		{"conditions are left to the rules package", okSources + okTargets +
			"routes: [{name: r, targets: [media], match: {where: [{path: a, op: in, value: []}, {op: nope}, {path: ..}]}}]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "v.yaml")
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.yaml, err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() of\n%s\n= %v, want nil", tt.yaml, err)
			}
		})
	}
}

func TestValidateServerAndStore(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"listen without port", "server:\n  listen: \"8080\" # <-\n" + okAll,
			`server.listen: must be host:port such as ":8080" or "127.0.0.1:8080", got "8080"`, 0},
		{"admin_listen named port", "server:\n  admin_listen: \"localhost:http\" # <-\n" + okAll,
			`server.admin_listen: must be host:port`, 0},
		{"admin_listen without host", "server:\n  admin_listen: \"9090\" # <-\n" + okAll,
			`server.admin_listen: must be host:port such as ":8080" or "127.0.0.1:8080", got "9090"`, 0},
		{"admin on all interfaces without token", "server:\n  admin_listen: \":9090\" # <-\n" + okAll,
			`server.admin_token: is required when server.admin_listen (":9090") is not a loopback address`, 0},
		{"admin on a public address without token", "server:\n  admin_listen: \"192.0.2.1:9090\" # <-\n" + okAll,
			`server.admin_token: is required`, 0},
		{"max_body_bytes zero", "server:\n  max_body_bytes: 0 # <-\n" + okAll,
			`server.max_body_bytes: must be a positive number of bytes such as 1048576, got 0`, 0},
		{"max_buffered_body_bytes zero", "server:\n  max_buffered_body_bytes: 0 # <-\n" + okAll,
			`server.max_buffered_body_bytes: must be a number of bytes at least server.max_body_bytes (1048576), such as 67108864, got 0`, 0},
		{"max_buffered_body_bytes below max_body_bytes", "server:\n  max_body_bytes: 2048\n  max_buffered_body_bytes: 1024 # <-\n" + okAll,
			`server.max_buffered_body_bytes: must be a number of bytes at least server.max_body_bytes (2048)`, 0},
		{"read_header_timeout zero", "server:\n  read_header_timeout: 0s # <-\n" + okAll,
			`server.read_header_timeout: must be a positive duration such as "10s", got "0s"`, 0},
		{"read_timeout zero", "server:\n  read_timeout: 0s # <-\n" + okAll, `server.read_timeout: must be a positive duration`, 0},
		{"write_timeout zero", "server:\n  write_timeout: 0s # <-\n" + okAll, `server.write_timeout: must be a positive duration`, 0},
		{"idle_timeout zero", "server:\n  idle_timeout: 0s # <-\n" + okAll, `server.idle_timeout: must be a positive duration`, 0},
		{"shutdown_timeout negative", "server:\n  shutdown_timeout: -1s # <-\n" + okAll,
			`server.shutdown_timeout: must be a positive duration such as "10s", got "-1s"`, 0},
		{"rejected_log negative", "server:\n  rejected_log: -1 # <-\n" + okAll,
			`server.rejected_log: must be a number of requests from 0 (keep none) to 100000, such as 1000, got -1`, 0},
		{"rejected_log too large", "server:\n  rejected_log: 100001 # <-\n" + okAll,
			`server.rejected_log: must be a number of requests from 0 (keep none) to 100000`, 0},
		{"tls cert without key", "server:\n  tls: {cert_file: a.crt} # <-\n" + okAll,
			`server.tls.key_file: is required when server.tls.cert_file is set`, 1},
		{"tls key without cert", "server:\n  tls:\n    key_file: a.key # <-\n" + okAll,
			`server.tls.cert_file: is required when server.tls.key_file is set`, 1},
		{"trusted proxy not a cidr", "server:\n  trusted_proxies: [10.0.0.0/8, lb.internal] # <-\n" + okAll,
			`server.trusted_proxies[1]: must be an IP address or a CIDR such as "10.0.0.0/8", got "lb.internal"`, 1},
		{"store kind unknown", "store:\n  kind: bolt # <-\n" + okAll,
			`store.kind: must be "embedded" or "redis", got "bolt"`, 0},
		{"store path empty", "store:\n  path: \"\" # <-\n" + okAll,
			`store.path: is required for the embedded store`, 0},
		{"redis url scheme", "store:\n  kind: redis\n  redis:\n    url: \"http://u:pw@x:1\" # <-\n" + okAll,
			`store.redis.url: must be a URL such as "redis://127.0.0.1:6379/0" (or rediss:// for TLS, redis+sentinel:// or redis+cluster://), got "http://u:xxxxx@x:1"`, 1},
		{"sentinel url without master", "store:\n  kind: redis\n  redis: {url: \"redis+sentinel://10.0.0.1:26379\"} # <-\n" + okAll,
			`store.redis.url: must name the master after the sentinels`, 1},
		{"redis url without host", "store:\n  kind: redis\n  redis: {url: \"redis://\"} # <-\n" + okAll,
			`store.redis.url: must be a URL`, 1},
		{"redis prefix empty", "store:\n  kind: redis\n  redis: {prefix: \"\"} # <-\n" + okAll,
			`store.redis.prefix: must not be empty`, 1},
		{"redis lease too short", "store:\n  kind: redis\n  redis: {lease: 500ms} # <-\n" + okAll,
			`store.redis.lease: must be at least 1s (claims are renewed every third of it), got 500ms`, 1},
		{"retention zero", "store:\n  retention: 0s # <-\n" + okAll, `store.retention: must be a positive duration`, 0},
		{"dedup ttl zero", "dedup:\n  ttl: 0s # <-\n" + okAll, `dedup.ttl: must be a positive duration`, 0},
	})
}

func TestValidateSources(t *testing.T) {
	src := func(body string) string {
		return "sources:\n  - name: hoox\n    path: /hooks/hoox\n" + body + okTargets + okRoutes
	}
	runValidateCases(t, []validateCase{
		{"no sources key", okTargets + okRoutes, `sources: at least one source is required, such as {name: hoox, path: /hooks/hoox}`, 0},
		{"empty sources", "sources: [] # <-\n" + okTargets + okRoutes, `sources: at least one source is required`, 0},
		{"name missing", "sources:\n  - path: /hooks/hoox # <-\n" + okTargets + okRoutes,
			`sources[0].name: is required; use lowercase letters, digits, _ and -`, 0},
		{"name uppercase", "sources:\n  - name: Hoox # <-\n    path: /hooks/hoox\n" + okTargets + okRoutes,
			`sources[0].name: must be lowercase letters, digits, _ and - only, got "Hoox"`, 0},
		{"name duplicate", "sources:\n  - {name: hoox, path: /a}\n  - {name: hoox, path: /b} # <-\n" + okTargets + okRoutes,
			`sources[1].name: duplicate name "hoox", already used by sources[0]; names must be unique`, 0},
		{"path missing", "sources:\n  - name: hoox # <-\n" + okTargets + okRoutes, `sources[0].path: is required, such as /hooks/hoox`, 0},
		{"path relative", "sources:\n  - name: hoox\n    path: hooks/hoox # <-\n" + okTargets + okRoutes,
			`sources[0].path: must start with /, got "hooks/hoox"`, 0},
		{"path with a space", "sources:\n  - name: hoox\n    path: /hooks/a b # <-\n" + okTargets + okRoutes,
			`sources[0].path: must contain only letters, digits and / . _ ~ - (no spaces, query or wildcards), got "/hooks/a b"`, 0},
		{"path with a wildcard", "sources:\n  - name: hoox\n    path: /hooks/:id # <-\n" + okTargets + okRoutes,
			`sources[0].path: must contain only letters`, 0},
		{"path duplicate", "sources:\n  - {name: a, path: /h}\n  - {name: b, path: /h} # <-\n" + okTargets + okRoutes,
			`sources[1].path: duplicate path "/h", already used by sources[0]; each source needs its own path`, 0},
		{"verify kind unknown", src("    verify:\n      kind: basic # <-\n"),
			`sources[0].verify.kind: must be one of "none", "token", "hmac-sha256" or "standard-webhooks", got "basic"`, 0},
		{"token without secrets", src("    verify:\n      kind: token # <-\n"),
			`sources[0].verify.secrets: at least one secret is required for kind "token"`, 1},
		{"token with an empty secret", src("    verify:\n      kind: token\n      secrets: [\"\"] # <-\n"),
			`sources[0].verify.secrets[0]: is empty; remove it or set it`, 1},
		{"hmac without header", src("    verify:\n      kind: hmac-sha256 # <-\n      secrets: [s]\n"),
			`sources[0].verify.header: is required for kind "hmac-sha256": name the header that carries the signature`, 1},
		{"standard-webhooks secret without prefix", src("    verify:\n      kind: standard-webhooks\n      secrets:\n        - abc # <-\n"),
			`sources[0].verify.secrets[0]: must be a Standard Webhooks secret "whsec_<base64>"; the value given does not start with whsec_`, 1},
		{"standard-webhooks secret not base64", src("    verify:\n      kind: standard-webhooks\n      secrets:\n        - whsec_!!! # <-\n"),
			`sources[0].verify.secrets[0]: must be a Standard Webhooks secret "whsec_<base64>"; the part after whsec_ is not valid base64`, 1},
		{"tolerance zero", src("    verify:\n      tolerance: 0s # <-\n"),
			`sources[0].verify.tolerance: must be a positive duration`, 0},
		{"secrets with kind none", src("    verify:\n      secrets: [s] # <-\n"),
			`sources[0].verify.secrets: are set but verify.kind is "none", so no request is checked; set verify.kind or remove them`, 0},
		{"header with kind none", src("    verify:\n      header: X-Token # <-\n"),
			`sources[0].verify.header: is set but verify.kind is "none"`, 0},
		{"bad cidr", src("    allow_cidrs:\n      - 10.0.0.0/8\n      - 10.0.0.0/33 # <-\n"),
			`sources[0].allow_cidrs[1]: must be an IP address or a CIDR such as "10.0.0.0/8", got "10.0.0.0/33"`, 1},
		{"rps negative", src("    rate_limit:\n      rps: -1 # <-\n"), `sources[0].rate_limit.rps: must be 0 (unlimited) or more, got -1`, 0},
		{"burst negative", src("    rate_limit:\n      burst: -1 # <-\n"), `sources[0].rate_limit.burst: must be 0 or more, got -1`, 0},
		{"rps without burst", src("    rate_limit: {rps: 5} # <-\n"),
			`sources[0].rate_limit.burst: must be at least 1 when rps is set (5), got 0`, 0},
	})
}

func TestValidateTargets(t *testing.T) {
	tgt := func(body string) string {
		return okSources + "targets:\n  - name: media\n    url: \"http://127.0.0.1:9101/hook\"\n" + body + okRoutes
	}
	url := func(u string) string {
		return okSources + "targets:\n  - name: media\n    url: \"" + u + "\" # <-\n" + okRoutes
	}
	runValidateCases(t, []validateCase{
		{"no targets", okSources, `targets: at least one target is required`, 0},
		{"name missing", okSources + "targets:\n  - url: \"http://127.0.0.1:1/\" # <-\n",
			`targets[0].name: is required`, 0},
		{"name invalid", okSources + "targets:\n  - name: Media! # <-\n    url: \"http://127.0.0.1:1/\"\n",
			`targets[0].name: must be lowercase letters, digits, _ and - only, got "Media!"`, 0},
		{"name duplicate", okSources + "targets:\n  - {name: media, url: \"http://127.0.0.1:1/\"}\n  - {name: media, url: \"http://127.0.0.1:2/\"} # <-\n" + okRoutes,
			`targets[1].name: duplicate name "media", already used by targets[0]`, 0},
		{"url missing", okSources + "targets:\n  - name: media # <-\n" + okRoutes, `targets[0].url: is required`, 0},
		{"url relative", url("/hook"), `targets[0].url: must be an absolute URL such as https://media.internal/hooks/hoox, got "/hook"`, 0},
		{"url unparsable", url("http://[::1"), `targets[0].url: must be an absolute URL`, 0},
		{"url no host", url("https:///x"), `targets[0].url: must be an absolute URL`, 0},
		{"url ftp", url("ftp://media.internal/x"), `targets[0].url: must be an https URL, got scheme "ftp"`, 0},
		{"url http to a remote host", url("http://media.internal/x"),
			`targets[0].url: must be https, got "http://media.internal/x": plain http is only allowed to localhost, 127.0.0.0/8 and ::1`, 0},
		{"url http to 0.0.0.0", url("http://0.0.0.0:1/x"), `targets[0].url: must be https`, 0},
		{"url with credentials", url("https://u:p@media.internal/x"), `targets[0].url: must not contain credentials`, 0},
		{"timeout zero", tgt("    timeout: 0s # <-\n"), `targets[0].timeout: must be a positive duration`, 0},
		{"max_in_flight zero", tgt("    max_in_flight: 0 # <-\n"), `targets[0].max_in_flight: must be at least 1, got 0`, 0},
		{"rps negative", tgt("    rate_limit: {rps: -0.5} # <-\n"), `targets[0].rate_limit.rps: must be 0 (unlimited) or more, got -0.5`, 0},
		{"rps without burst", tgt("    rate_limit:\n      rps: 10\n      burst: 0 # <-\n"),
			`targets[0].rate_limit.burst: must be at least 1 when rps is set (10), got 0`, 0},
		{"max_attempts zero", tgt("    retry:\n      max_attempts: 0 # <-\n"),
			`targets[0].retry.max_attempts: must be at least 1 (the first attempt counts), got 0`, 0},
		{"initial_interval zero", tgt("    retry:\n      initial_interval: 0s # <-\n"),
			`targets[0].retry.initial_interval: must be a positive duration`, 0},
		{"max_interval below initial", tgt("    retry:\n      initial_interval: 2s\n      max_interval: 1s # <-\n"),
			`targets[0].retry.max_interval: must be at least initial_interval (2s), got "1s"`, 0},
		{"multiplier below 1", tgt("    retry:\n      multiplier: 0.5 # <-\n"),
			`targets[0].retry.multiplier: must be at least 1 (1 = constant delays), got 0.5`, 0},
		{"jitter 1", tgt("    retry:\n      jitter: 1 # <-\n"),
			`targets[0].retry.jitter: must be at least 0 and less than 1 (0 = exact delays), got 1`, 0},
		{"jitter negative", tgt("    retry:\n      jitter: -0.1 # <-\n"), `targets[0].retry.jitter: must be at least 0`, 0},
		{"max_age zero", tgt("    retry:\n      max_age: 0s # <-\n"), `targets[0].retry.max_age: must be a positive duration`, 0},
		{"failure_ratio zero", tgt("    breaker:\n      failure_ratio: 0 # <-\n"),
			`targets[0].breaker.failure_ratio: must be more than 0 and at most 1, such as 0.5, got 0`, 0},
		{"failure_ratio above 1", tgt("    breaker:\n      failure_ratio: 1.5 # <-\n"), `targets[0].breaker.failure_ratio: must be more than 0`, 0},
		{"min_requests zero", tgt("    breaker:\n      min_requests: 0 # <-\n"), `targets[0].breaker.min_requests: must be at least 1, got 0`, 0},
		{"interval negative", tgt("    breaker:\n      interval: -1s # <-\n"),
			`targets[0].breaker.interval: must be 0 (never reset the counts) or a positive duration, got "-1s"`, 0},
		{"open_timeout zero", tgt("    breaker:\n      open_timeout: 0s # <-\n"), `targets[0].breaker.open_timeout: must be a positive duration`, 0},
		{"signing secret malformed", tgt("    signing_secret: abc # <-\n"),
			`targets[0].signing_secret: must be a Standard Webhooks secret "whsec_<base64>"`, 1},
		{"signing secret one of two malformed", tgt("    signing_secret:\n      - whsec_c2VjcmV0\n      - whsec_??? # <-\n"),
			`targets[0].signing_secret[1]: must be a Standard Webhooks secret "whsec_<base64>"; the part after whsec_ is not valid base64`, 1},
		{"three signing secrets", tgt("    signing_secret: [whsec_c2VjcmV0, whsec_c2VjcmV0, whsec_c2VjcmV0] # <-\n"),
			`targets[0].signing_secret: has 3 secrets; give at most 2`, 1},
		{"tls cert without key", tgt("    tls: {cert_file: c.crt} # <-\n"),
			`targets[0].tls.key_file: is required when targets[0].tls.cert_file is set`, 1},
		{"header name invalid", tgt("    headers:\n      \"X Team\": a # <-\n"),
			`targets[0].headers.X Team: is not a valid HTTP header name: use letters, digits and !#$%&'*+-.^_` + "`|~ only, got \"X Team\"", 0},
		{"header owned by the relay", tgt("    headers:\n      content-type: text/plain # <-\n"),
			`targets[0].headers.content-type: is set by hooxrelay on every delivery and cannot be configured; remove it`, 0},
		{"header Webhook-Id", tgt("    headers:\n      WEBHOOK-ID: x # <-\n"), `targets[0].headers.WEBHOOK-ID: is set by hooxrelay`, 0},
		{"header twice in different case", tgt("    headers:\n      X-Team: a\n      x-team: b # <-\n"),
			`targets[0].headers.x-team: duplicates header "X-Team" (header names ignore case); keep one`, 0},
		{"header value with a line break", tgt("    headers:\n      X-Team: \"a\\r\\nInjected: b\" # <-\n"),
			`targets[0].headers.X-Team: value must not contain line breaks or NUL`, 0},
	})
}

func TestValidateRoutes(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"name missing", okSources + okTargets + "routes:\n  - targets: [media] # <-\n", `routes[0].name: is required`, 0},
		{"name duplicate", okSources + okTargets + "routes:\n  - {name: r, targets: [media]}\n  - {name: r, targets: [media]} # <-\n",
			`routes[1].name: duplicate name "r", already used by routes[0]; names must be unique`, 0},
		{"targets missing", okSources + okTargets + "routes:\n  - name: r # <-\n",
			`routes[0].targets: at least one target is required, such as targets: [media]`, 0},
		{"targets empty", okSources + okTargets + "routes:\n  - name: r\n    targets: [] # <-\n", `routes[0].targets: at least one target is required`, 0},
		{"unknown target", okSources + okTargets + "routes:\n  - name: r\n    targets:\n      - media\n      - meda # <-\n",
			`routes[0].targets[1]: unknown target "meda"; define it under targets: or use one of "media"`, 0},
		{"empty task", okSources + okTargets + "routes:\n  - name: r\n    targets: [media]\n    match:\n      task: [\"\"] # <-\n",
			`routes[0].match.task[0]: is empty and would never match; remove it`, 0},
		{"empty status", okSources + okTargets + "routes:\n  - name: r\n    targets: [media]\n    match:\n      status: [completed, \" \"] # <-\n",
			`routes[0].match.status[1]: is empty`, 0},
	})
}

// A public admin listener with a token is valid, so that probes and
// scrapers from outside the host can reach /readyz and /metrics.
func TestValidateAdminTokenAllowsPublicAdmin(t *testing.T) {
	cfg, err := Parse([]byte("server:\n  admin_listen: \":9090\"\n  admin_token: t\n"+okAll), "v.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() of a public admin_listen with admin_token = %v, want nil", err)
	}
}

func TestValidateRetentionCoversDedupTTL(t *testing.T) {
	cfg, err := Parse([]byte("store:\n  retention: 1h\ndedup:\n  ttl: 2h\n"+okAll), "v.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "store.retention: must be at least dedup.ttl") {
		t.Errorf("Validate() with retention 1h < ttl 2h = %v, want a store.retention error", err)
	}
}

func TestValidateAllAtOnce(t *testing.T) {
	in := `server: {listen: x, max_body_bytes: 0}
sources: [{name: Bad, path: nope}]
targets: [{name: m, url: "http://example.com/"}]
routes: [{name: r, targets: [zz]}]
`
	c, err := Parse([]byte(in), "v.yaml")
	if err != nil {
		t.Fatalf("Parse error = %v", err)
	}
	want := `v.yaml:1: server.listen: must be host:port such as ":8080" or "127.0.0.1:8080", got "x"
v.yaml:1: server.max_body_bytes: must be a positive number of bytes such as 1048576, got 0
v.yaml:2: sources[0].name: must be lowercase letters, digits, _ and - only, got "Bad"
v.yaml:2: sources[0].path: must start with /, got "nope"
v.yaml:3: targets[0].url: must be https, got "http://example.com/": plain http is only allowed to localhost, 127.0.0.0/8 and ::1
v.yaml:4: routes[0].targets[0]: unknown target "zz"; define it under targets: or use one of "m"`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	// A config built in code has no file or lines; its errors still name
	// the key.
	c := Default()
	c.Sources = []Source{DefaultSource()}
	c.Sources[0].Name, c.Sources[0].Path = "hoox", "/h"
	c.Targets = []Target{DefaultTarget()}
	c.Targets[0].Name = "t"
	c.Targets[0].URL = "http://127.0.0.1:1/"
	c.Targets[0].Retry.MaxAttempts = 0
	want := "targets[0].retry.max_attempts: must be at least 1 (the first attempt counts), got 0"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
	c.Targets[0].Retry.MaxAttempts = 1
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}
