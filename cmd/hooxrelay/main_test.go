package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/demo"
	"github.com/hooxrelay/hooxrelay/internal/testenv"
	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite golden files")

// binary is the hooxrelay binary built once for the tests that need a real
// process (crash and signal tests).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "hooxrelay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hooxrelay")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hooxrelay: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	err := run(t.Context(), args, strings.NewReader(stdin), &o, &e)
	code = exitCode(err, &e)
	return o.String(), e.String(), code
}

// Every command, scenario included, has a --help that shows its usage
// line, and the root --help lists every command.
func TestHelpOfEveryCommand(t *testing.T) {
	root := newRootCmd(&env{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			t.Run(sub.CommandPath(), func(t *testing.T) {
				args := append(strings.Fields(strings.TrimPrefix(sub.CommandPath(), "hooxrelay ")), "--help")
				out, stderr, code := runCmd(t, "", args...)
				if code != 0 || !strings.Contains(out, "Usage:\n  "+sub.CommandPath()) || !strings.Contains(out, "--help") || stderr != "" {
					t.Errorf("hooxrelay %s: exit %d, stdout\n%s\nstderr %q; want exit 0 and a usage line", strings.Join(args, " "), code, out, stderr)
				}
			})
			walk(sub)
		}
	}
	walk(root)
	out, _, code := runCmd(t, "", "help")
	for _, c := range root.Commands() {
		if !c.Hidden && !strings.Contains(out, "\n  "+c.Name()+" ") {
			t.Errorf("hooxrelay help does not list %q:\n%s", c.Name(), out)
		}
	}
	if code != 0 {
		t.Errorf("hooxrelay help: exit %d", code)
	}
}

// The root --help, a command's --help and a did-you-mean stay as they
// are unless the golden files are refreshed with -update.
func TestHelpGolden(t *testing.T) {
	t.Setenv("HOOXRELAY_CONFIG", "")
	for _, tc := range []struct {
		golden string
		args   []string
		code   int
		stderr bool
	}{
		{"help-root", []string{"--help"}, 0, false},
		{"help-route", []string{"route", "--help"}, 0, false},
		{"did-you-mean", []string{"chek", "--config", "x.yaml"}, 2, true},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, stderr, code := runCmd(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("hooxrelay %q: exit %d, want %d", tc.args, code, tc.code)
			}
			if tc.stderr {
				out = stderr
			}
			golden(t, tc.golden, out)
		})
	}
}

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("server:\n  listen: nowhere\n  bogus: 1\nsources: []\n"), 0o600)
	payload := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(payload, []byte(`{"task":"video_generate","job_id":"run_1","status":"completed"}`), 0o600)
	cfg := "../../deploy/examples/hooxrelay.yaml"
	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no command", nil, 2, "no command given"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"; "hooxrelay --help" lists them all`},
		{"mistyped command", []string{"chek"}, 2, `unknown command "chek"; did you mean "check"?`},
		{"bad flag", []string{"check", "--nope"}, 2, `unknown flag: --nope; "hooxrelay check --help" lists its flags`},
		{"single-dash long flag", []string{"check", "-config", cfg}, 2, "-config: long flags take two dashes: --config"},
		{"bad flag value", []string{"send", "--timeout", "soon"}, 2, `invalid argument "soon" for "--timeout"`},
		{"extra argument", []string{"check", "extra"}, 2, `hooxrelay check takes no arguments, got ["extra"]`},
		{"missing argument", []string{"event"}, 2, `hooxrelay event needs an EVENT_ID; "hooxrelay events" lists them`},
		{"unknown scenario", []string{"bench", "burts"}, 2, `unknown scenario "burts"; did you mean "burst"?`},
		{"completion without a shell", []string{"completion", "tcsh"}, 2, "completion needs one shell: bash, zsh or fish"},
		{"missing config", []string{"check", "--config", "/nonexistent.yaml"}, 2, "not found"},
		{"invalid config", []string{"check", "--config", bad}, 2, "bogus"},
		{"send without url", []string{"send"}, 2, "--url is required"},
		{"send to nowhere", []string{"send", "--url", "http://127.0.0.1:1/x"}, 1, "is the relay running"},
		{"flags after the payload", []string{"route", payload, "--config", "/nonexistent.yaml"}, 2, `config file "/nonexistent.yaml" not found`},
		{"flags after the payload, send", []string{"send", payload, "--timeout", "2s", "--url", "http://127.0.0.1:1/x"}, 1, "is the relay running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCmd(t, "", tc.args...)
			if code != tc.want || !strings.Contains(stderr, tc.msg) || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("hooxrelay %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.want, tc.msg)
			}
			if tc.name != "no command" && tc.name != "invalid config" && strings.Count(stderr, "\n") != 1 {
				t.Errorf("hooxrelay %q: stderr %q is not one line", tc.args, stderr)
			}
		})
	}
}

// Flags go before or after the arguments, and "--" ends them.
func TestFlagsAnywhere(t *testing.T) {
	cfg := "../../deploy/examples/hooxrelay.yaml"
	payload := `{"task":"video_generate","job_id":"run_1","status":"completed","result":{"cost":5}}`
	file := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(file, []byte(payload), 0o600)
	want, _, _ := runCmd(t, payload, "route", "--config", cfg, "-")
	if !strings.Contains(want, "targets:   media, audit") {
		t.Fatalf("route --config %s -: %q", cfg, want)
	}
	for _, args := range [][]string{
		{"route", file, "--config", cfg},
		{"route", "--config=" + cfg, file},
		{"route", file, "--config", cfg, "--"},
		{"route", "--config", cfg, "--", file},
	} {
		out, stderr, code := runCmd(t, "", args...)
		if code != 0 || out != want {
			t.Errorf("hooxrelay %q: exit %d, stdout %q, stderr %q; want the same as with the flags first", args, code, out, stderr)
		}
	}
}

// The completion scripts come out for each shell and name the commands.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, stderr, code := runCmd(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "hooxrelay") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), stderr)
		}
	}
	// What the scripts ask the binary: the commands that start with "re".
	out, _, code := runCmd(t, "", "__complete", "re")
	for _, want := range []string{"resume", "retry", "retry-dead"} {
		if code != 0 || !strings.Contains(out, want+"\t") {
			t.Errorf("__complete re: exit %d, missing %q in\n%s", code, want, out)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is right):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestCheckGolden(t *testing.T) {
	out, stderr, code := runCmd(t, "", "check", "--config", "../../deploy/examples/hooxrelay.yaml")
	if code != 0 {
		t.Fatalf("check: exit %d: %s", code, stderr)
	}
	golden(t, "check", out)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: media
    url: http://media.internal/hook
    timeout: -1s
    retry: {max_atempts: 3}
routes:
  - name: r
    targets: [nowhere]
`), 0o600)
	_, stderr, code = runCmd(t, "", "check", "--config", bad)
	if code != 2 {
		t.Fatalf("check of a bad config: exit %d, want 2", code)
	}
	golden(t, "check-errors", strings.ReplaceAll(stderr, bad, "bad.yaml"))
}

func TestRouteGolden(t *testing.T) {
	cfg := "../../deploy/examples/hooxrelay.yaml"
	for _, tc := range []struct{ name, payload string }{
		{"video", `{"task":"video_generate","job_id":"run_1","status":"completed","result":{"cost":5}}`},
		{"avatar-error", `{"task":"avatar_edit","avatar_id":"a","look_id":"l","status":"error","error":{"code":"X"}}`},
		{"unknown", `{"task":"voice_clone","status":"completed"}`},
		{"invalid", `{"task":"video_export","status":"completed"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, code := runCmd(t, tc.payload, "route", "--config", cfg, "-")
			want := 0
			if tc.name == "invalid" {
				want = 1
			}
			if code != want {
				t.Errorf("route: exit %d, want %d", code, want)
			}
			golden(t, "route-"+tc.name, out)
		})
	}
}

func TestDemo(t *testing.T) {
	out, stderr, code := runCmd(t, "", "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"200 accepted", "200 duplicate", "400", `field "job_id"`, "delivered 9 of 9"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// post sends one webhook to a relay's ingress and decodes the answer.
var post = demo.Post

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// relayProc is the built binary serving a config.
type relayProc struct {
	cmd           *exec.Cmd
	ingest, admin string
	stderr        *syncBuffer
}

// syncBuffer is the relay's stderr, which tests read while it runs.
type syncBuffer = testenv.Buffer

func startRelay(t *testing.T, cfgPath, ingest, admin string, extraArgs ...string) *relayProc {
	t.Helper()
	p := &relayProc{ingest: ingest, admin: admin, stderr: new(syncBuffer)}
	p.cmd = exec.Command(binary, append([]string{"serve", "--config", cfgPath, "--log-format", "json"}, extraArgs...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not ready within 20s: %v\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recorder is a target that can be down (503) and remembers which event
// ids it has answered 200.
type recorder struct {
	down      atomic.Bool
	mu        sync.Mutex
	delivered map[string]int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	if r.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.mu.Lock()
	r.delivered[req.Header.Get("Webhook-Id")]++
	r.mu.Unlock()
}

func (r *recorder) missing(ids []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range ids {
		if r.delivered[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func writeConfig(t *testing.T, dir, ingest, admin, targetURL string) string {
	t.Helper()
	path := filepath.Join(dir, "hooxrelay.yaml")
	cfg := fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  shutdown_timeout: 5s
store:
  path: %q
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: a
    url: %s
    retry: {initial_interval: 100ms, max_interval: 500ms, max_attempts: 1000}
    breaker: {min_requests: 1000}
  - name: b
    url: %s
    retry: {initial_interval: 100ms, max_interval: 500ms, max_attempts: 1000}
    breaker: {min_requests: 1000}
routes:
  - name: all
    targets: [a, b]
`, ingest, admin, filepath.Join(dir, "relay"), targetURL+"/a", targetURL+"/b")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func postWebhook(url string, i int) (string, error) {
	body := fmt.Sprintf(`{"task":"video_generate","job_id":"run_%d","status":"completed"}`, i)
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 || ans.Status != "accepted" {
		return "", fmt.Errorf("answer %d %+v (%v)", resp.StatusCode, ans, err)
	}
	return ans.EventID, nil
}

// TestCrashLosesNothingAcked SIGKILLs the relay while webhooks pour in and
// its targets are down, restarts it on the same file, and expects every
// acked event delivered to both targets.
func TestCrashLosesNothingAcked(t *testing.T) {
	rec := &recorder{delivered: map[string]int{}}
	rec.down.Store(true)
	target := httptest.NewServer(rec)
	defer target.Close()
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, ingest, admin, target.URL)
	p := startRelay(t, cfg, ingest, admin)

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	var seq atomic.Int64
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := postWebhook("http://"+ingest+"/hooks/hoox", int(seq.Add(1)))
				if err != nil {
					return // the relay was killed mid-request: not acked
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("killed the relay with %d acked events and both targets down", len(acked))

	rec.down.Store(false)
	startRelay(t, cfg, ingest, admin)
	deadline := time.Now().Add(60 * time.Second)
	var miss []string
	for {
		// Both targets record into one map: an event delivered to both
		// counts 2.
		rec.mu.Lock()
		miss = miss[:0]
		for _, id := range acked {
			if rec.delivered[id] < 2 {
				miss = append(miss, id)
			}
		}
		rec.mu.Unlock()
		if len(miss) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acked events not delivered to both targets after restart, e.g. %v", len(miss), len(acked), miss[:min(3, len(miss))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGTERMExitsZero sends SIGTERM to a serving relay with deliveries in
// flight and expects a clean exit within the shutdown timeout.
func TestSIGTERMExitsZero(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, ingest, admin, slow.URL)
	p := startRelay(t, cfg, ingest, admin)
	for i := range 20 {
		if _, err := postWebhook("http://"+ingest+"/hooks/hoox", i); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("relay exited with %v after SIGTERM, want status 0\n%s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("relay still running 10s after SIGTERM (shutdown_timeout 5s)\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "shutdown complete") {
		t.Errorf("no 'shutdown complete' in the log:\n%s", p.stderr)
	}
	t.Logf("exited 0 in %s", time.Since(start).Round(time.Millisecond))
}
