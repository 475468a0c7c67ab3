package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/testenv"
	"github.com/spf13/pflag"
)

// Every scenario has a unique name, help and flags, and refuses flags out
// of range with ErrUsage before it starts anything.
func TestScenarios(t *testing.T) {
	bad := map[string][]string{
		"load":         {"--senders", "0"},
		"sustain":      {"--from", "0.5", "--to", "0.1"},
		"backlog":      {"--events", "3"},
		"burst":        {"--events", "0"},
		"dead-target":  {"--as", "timeout"},
		"crash":        {"--kills", "0"},
		"redis-outage": {"--rate", "0"},
		"soak":         {"--every", "0s"},
		"bare":         {"--listen", "192.0.2.1:80"},
	}
	seen := map[string]bool{}
	for _, s := range Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			if s.Name == "" || seen[s.Name] || s.Short == "" || s.Long == "" || s.Flags == nil {
				t.Fatalf("scenario %+v: want a unique name, a short and a long help, and flags", s)
			}
			seen[s.Name] = true
			fs := pflag.NewFlagSet(s.Name, pflag.ContinueOnError)
			run := s.Flags(fs)
			if run == nil {
				t.Fatal("Flags returned no run")
			}
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Usage == "" {
					t.Errorf("--%s has no help", f.Name)
				}
			})
			args, ok := bad[s.Name]
			if !ok {
				t.Fatalf("no flags out of range to try for %s: add a case", s.Name)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			var out, progress bytes.Buffer
			err := run(t.Context(), &Env{Stdout: &out, Progress: &progress})
			if !errors.Is(err, ErrUsage) || out.Len()+progress.Len() > 0 {
				t.Errorf("run with %q = %v, printing %q; want an ErrUsage and nothing printed", args, err, out.String()+progress.String())
			}
		})
	}
	if Scenarios[0].Name != "load" {
		t.Errorf("the first scenario, run by \"hooxrelay bench\" alone, is %q; want load", Scenarios[0].Name)
	}
}

// A scenario that starts a relay in this process says so when the
// command gave it no way to.
func TestServeNeeded(t *testing.T) {
	fs := pflag.NewFlagSet("burst", pflag.ContinueOnError)
	run := burst.Flags(fs)
	fs.Parse([]string{"--events", "1"})
	var progress bytes.Buffer
	err := run(t.Context(), &Env{Stdout: new(bytes.Buffer), Progress: &progress})
	if err == nil || !strings.Contains(err.Error(), "Env.Serve is not set") {
		t.Errorf("burst without Env.Serve = %v, want an error saying so", err)
	}
}

// The baseline served by "bench bare" answers as the in-process one does.
func TestBareServes(t *testing.T) {
	addr, stop := serveBare(t)
	for body, want := range map[string]int{`{"task":"video_generate"}`: 200, `{not json`: 400} {
		resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	stop()
}

// serveBare runs "bench bare ARGS" in this process and returns the
// address it printed, and stop, which ends it and checks it ended well.
func serveBare(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	fs := pflag.NewFlagSet("bare", pflag.ContinueOnError)
	run := bare.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, &Env{Stdout: out, Progress: io.Discard}) }()
	for deadline := time.Now().Add(5 * time.Second); addr == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("bench bare printed no address within 5s (ended: %v)", <-done)
		}
		addr = strings.TrimSpace(out.String())
	}
	return addr, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bench bare after its context ended: %v", err)
		}
	}
}
