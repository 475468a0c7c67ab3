package logwriter

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records each write it gets.
type sink struct {
	mu     sync.Mutex
	writes []string
	fail   error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *sink) got() (n int, all string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes), strings.Join(s.writes, "")
}

func TestLinesAreBatchedInOrder(t *testing.T) {
	out := &sink{}
	w := New(out, time.Hour, 1<<20)
	var want bytes.Buffer
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := out.got(); n != 0 {
		t.Fatalf("%d writes before the interval or the size: want none", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n, all := out.got()
	if n != 1 || all != want.String() {
		t.Fatalf("after Close: %d writes of %q, want 1 of the 100 lines in order", n, all)
	}
	w.Write([]byte("after\n"))
	if _, all := out.got(); !strings.HasSuffix(all, "after\n") {
		t.Fatal("a write after Close was not passed through")
	}
}

func TestWrittenWithinTheInterval(t *testing.T) {
	out := &sink{}
	w := New(out, 20*time.Millisecond, 1<<20)
	defer w.Close()
	for round := range 3 {
		w.Write([]byte(fmt.Sprintf("round %d\n", round)))
		deadline := time.Now().Add(5 * time.Second)
		for {
			if n, _ := out.got(); n == round+1 {
				break
			}
			if time.Now().After(deadline) {
				n, all := out.got()
				t.Fatalf("round %d: %d writes (%q) 5s after a line: the interval did not write it", round, n, all)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestWrittenAtSize(t *testing.T) {
	out := &sink{}
	w := New(out, time.Hour, 64)
	defer w.Close()
	line := []byte(strings.Repeat("x", 40) + "\n")
	w.Write(line)
	if n, _ := out.got(); n != 0 {
		t.Fatalf("%d writes below the size", n)
	}
	w.Write(line)
	if n, all := out.got(); n != 1 || all != string(line)+string(line) {
		t.Fatalf("at the size: %d writes (%q), want both lines in one", n, all)
	}
}

func TestWriteErrorIsReported(t *testing.T) {
	boom := errors.New("disk full")
	out := &sink{fail: boom}
	w := New(out, time.Hour, 1<<20)
	w.Write([]byte("lost\n"))
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush: %v, want %v", err, boom)
	}
	out.mu.Lock()
	out.fail = nil
	out.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatalf("Close after a reported error: %v", err)
	}
}

func TestConcurrentWritersKeepWholeLines(t *testing.T) {
	out := &sink{}
	w := New(out, time.Millisecond, 512)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(w, "writer %d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	w.Close()
	_, all := out.got()
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q: %v", l, err)
		}
	}
}

func TestWarningsAreWrittenAtOnce(t *testing.T) {
	out := &sink{}
	w := New(out, time.Hour, 1<<20)
	log := slog.New(Handler(slog.NewJSONHandler(w, nil), w)).With("relay", "a")
	log.Info("webhook", "n", 1)
	if n, _ := out.got(); n != 0 {
		t.Fatalf("an info line was written at once (%d writes)", n)
	}
	log.Warn("store disk slow")
	n, all := out.got()
	if n != 1 || !strings.Contains(all, `"msg":"webhook"`) || !strings.Contains(all, `"msg":"store disk slow"`) || !strings.Contains(all, `"relay":"a"`) {
		t.Fatalf("after a warning: %d writes of %q, want the info line and the warning in one", n, all)
	}
}
