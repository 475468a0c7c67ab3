package demo_test

// The whole demo, over the command's wiring of a relay, is
// cmd/hooxrelay's TestDemo; these are the parts that need no relay.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hooxrelay/hooxrelay/internal/demo"
)

func TestPost(t *testing.T) {
	bodies := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- r.Header.Get("Content-Type") + " " + string(b)
		switch r.URL.Path {
		case "/html":
			io.WriteString(w, "<html>")
		default:
			io.WriteString(w, `{"status":"accepted","event_id":"evt_1","targets":["media","audit"]}`)
		}
	}))
	defer srv.Close()
	body := `{"task":"video_generate","job_id":"run_1","status":"completed"}`
	status, ans, err := demo.Post(t.Context(), srv.URL, body)
	if err != nil || status != http.StatusOK || ans.Status != "accepted" || ans.EventID != "evt_1" || !slices.Equal(ans.Targets, []string{"media", "audit"}) {
		t.Errorf("Post() = %d, %+v, %v; want 200 accepted evt_1 for media and audit", status, ans, err)
	}
	if got := <-bodies; got != "application/json "+body {
		t.Errorf("Post() sent %q, want %q", got, "application/json "+body)
	}
	if status, _, err := demo.Post(t.Context(), srv.URL+"/html", body); status != http.StatusOK || err == nil || !strings.Contains(err.Error(), `answer "<html>" is not JSON`) {
		t.Errorf("Post() to a server answering HTML = %d, %v; want 200 and an error saying the answer is not JSON", status, err)
	}
}

// TestRunCleansUp checks that a demo whose relay does not start says why
// and removes its directory unless told to keep it; that it returns at all
// means that its sinks have stopped.
func TestRunCleansUp(t *testing.T) {
	startErr := errors.New("start the relay: listen tcp 127.0.0.1:0: no ports left")
	for _, keep := range []bool{false, true} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		var config []byte
		var out bytes.Buffer
		env := &demo.Env{Stdout: &out, Start: func(ctx context.Context, wg *sync.WaitGroup, cfg []byte, _ *slog.Logger) (string, <-chan error, error) {
			config = cfg
			return "", nil, startErr
		}}
		if err := demo.Run(t.Context(), env, keep); !errors.Is(err, startErr) {
			t.Errorf("Run(keep %v) with a relay that does not start = %v, want %v", keep, err, startErr)
		}
		if !bytes.Contains(config, []byte("audit-everything")) || !bytes.Contains(config, []byte("url: http://127.0.0.1:")) {
			t.Errorf("Run(keep %v) gave Start the config\n%s\nwant the demo's routes and its sinks on loopback", keep, config)
		}
		left, _ := filepath.Glob(filepath.Join(tmp, "hooxrelay-demo-*", "relay.log"))
		if keep != (len(left) == 1) {
			t.Errorf("Run(keep %v) left %v behind", keep, left)
		}
		if out.Len() != 0 {
			t.Errorf("Run(keep %v) printed %q before its relay started", keep, out.String())
		}
	}
	if err := demo.Run(t.Context(), &demo.Env{Stdout: io.Discard}, false); err == nil || !strings.Contains(err.Error(), "Env.Start is not set") {
		t.Errorf("Run() without Env.Start = %v, want an error saying so", err)
	}
	if entries, _ := os.ReadDir(os.TempDir()); len(entries) > 1 {
		t.Errorf("the temp dir holds %d entries after the runs, want the kept one at most", len(entries))
	}
}
