package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tempConfig writes text to a file of the test's own and returns its path.
func tempConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A route condition is judged by rules.Compile alone, and check reports
// what it finds as FILE:LINE: KEY: PROBLEM, the line being the key's (or,
// when the key was left out, the condition's).
func TestCheckRouteConditions(t *testing.T) {
	const head = "sources: [{name: hoox, path: /hooks/hoox}]\ntargets: [{name: media, url: \"http://127.0.0.1:9101/hook\"}]\n" +
		"routes:\n  - name: r\n    targets: [media]\n    match:\n      where:\n"
	const line = 8 // of the condition: the last line of head plus one
	const ops = "eq ne in exists gt gte lt lte prefix"
	for _, tc := range []struct {
		name, cond string
		key, msg   string // "": check passes
	}{
		{"path missing", "{op: exists}", "path", "is required: a dot-separated path into the payload, such as result.cost"},
		{"path malformed", "{path: result..cost, op: exists}", "path", `must be field names separated by single dots, such as result.cost, got "result..cost"`},
		{"op missing", "{path: a}", "op", "is required: one of " + ops},
		{"op unknown", "{path: a, op: regex, value: x}", "op", `must be one of ` + ops + `, got "regex"`},
		{"in with a scalar", "{path: a, op: in, value: x}", "value", `must be a list such as [completed, error] for op "in", got string "x"`},
		{"in with a mapping item", "{path: a, op: in, value: [x, {y: z}]}", "value[1]", "must be a string, number, bool or null, got a map"},
		{"in with an empty list", "{path: a, op: in, value: []}", "value", `must not be empty for op "in": an empty list never matches`},
		{"ne with a list", "{path: a, op: ne, value: [1]}", "value", `must be a string, number, bool or null for op "ne", got a list [1]`},
		{"gt with a bool", "{path: a, op: gt, value: true}", "value", `must be a number or a string for op "gt", got bool true`},
		{"lte without value", "{path: a, op: lte}", "value", `must be a number or a string for op "lte", got null`},
		{"prefix with a number", "{path: a, op: prefix, value: 12}", "value", `must be a string for op "prefix", got number 12`},
		{"exists with a string", "{path: a, op: exists, value: \"yes\"}", "value", `must be true, false or left out for op "exists", got string "yes"`},
		{"eq null", "{path: result.error, op: eq, value: null}", "", ""},
		{"eq without value (null)", "{path: result.error, op: eq}", "", ""},
		{"in with null among others", "{path: a, op: in, value: [x, null, 1]}", "", ""},
		{"gte a date, kept as written", "{path: result.created_at, op: gte, value: 2024-01-15}", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempConfig(t, head+"        - "+tc.cond+"\n")
			out, stderr, code := runCmd(t, "", "check", "--config", path)
			if tc.key == "" {
				if code != 0 || stderr != "" || !strings.Contains(out, "valid") {
					t.Errorf("check of where [%s]: exit %d, stderr %q; want it valid", tc.cond, code, stderr)
				}
				return
			}
			want := fmt.Sprintf("%s:%d: routes[0].match.where[0].%s: %s\n%s: 1 problem;", path, line, tc.key, tc.msg, path)
			if code != 2 || !strings.HasPrefix(stderr, want) {
				t.Errorf("check of where [%s]: exit %d, stderr\n%s\nwant exit 2 and\n%s", tc.cond, code, stderr, want)
			}
		})
	}
}

// in: [] used to pass check and then stop serve without a line; now
// both refuse it at its line. eq: null used to be refused by config
// though rules matches JSON null with it; now both take it.
func TestServeAndCheckAgreeOnConditions(t *testing.T) {
	base := `server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets: [{name: media, url: "http://127.0.0.1:9101/hook"}]
routes:
  - name: r
    targets: [media]
    match:
      where:
        - path: result.error
          op: %s
`
	empty := tempConfig(t, fmt.Sprintf(base, filepath.Join(t.TempDir(), "a"), "in\n          value: []"))
	want := empty + `:12: routes[0].match.where[0].value: must not be empty for op "in": an empty list never matches`
	for _, cmd := range []string{"check", "serve", "route"} {
		_, stderr, code := runCmd(t, "{}", cmd, "--config", empty)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%s of in: []: exit %d, stderr %q; want exit 2 and %q", cmd, code, stderr, want)
		}
	}

	null := fmt.Sprintf(base, filepath.Join(t.TempDir(), "b"), "eq\n          value: null")
	if _, stderr, code := runCmd(t, "", "check", "--config", tempConfig(t, null)); code != 0 {
		t.Errorf("check of eq: null: exit %d, %s", code, stderr)
	}
	out, _, code := runCmd(t, `{"task":"video_generate","job_id":"run_1","status":"completed","result":{"error":null}}`,
		"route", "--config", tempConfig(t, null), "-")
	if code != 0 || !strings.Contains(out, "routes:    r\n") {
		t.Errorf("route of a payload whose result.error is null, on eq: null: exit %d\n%s\nwant it routed by r", code, out)
	}
	// serve's loading, as the demo and the bench start a relay: the relay
	// routes a webhook whose result.error is null by r.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ingress, served, err := startLocal(ctx, &wg, []byte(null), "null.yaml", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("serving eq: null: %v", err)
	}
	status, ans, err := post(ctx, "http://"+ingress+"/hooks/hoox", `{"task":"video_generate","job_id":"run_2","status":"completed","result":{"error":null}}`)
	if err != nil || status != 200 || strings.Join(ans.Targets, ",") != "media" {
		t.Errorf("post to a relay on eq: null: %d %+v %v; want 200, accepted for media", status, ans, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("relay on eq: null: %v", err)
	}
}

// Every kind of problem in one run, in line order: a decoding error, a
// validation error and rules.Compile's, each at its line.
func TestCheckConditionsGolden(t *testing.T) {
	path := tempConfig(t, `sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: media
    url: http://media.internal/hook
    max_in_flight: many
routes:
  - name: finished
    targets: [media]
    match:
      task: [video_generate]
      where:
        - {path: result.cost, op: gtx, value: 1}
        - path: error.code
          op: in
          value: []
        - {path: result..id, op: exists}
  - name: avatars
    targets: [avatars]
    match:
      where:
        - op: prefix
          value: 12
`)
	_, stderr, code := runCmd(t, "", "check", "--config", path)
	if code != 2 {
		t.Fatalf("check: exit %d, want 2\n%s", code, stderr)
	}
	golden(t, "check-conditions", strings.ReplaceAll(stderr, path, "bad.yaml"))
}
