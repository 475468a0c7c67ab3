// Package logwriter batches a process's log lines into fewer writes.
//
// A relay logs a line per webhook and per delivery attempt; written one
// write(2) each, the lines cost a system call apiece on the hot paths.
// A Writer keeps them in memory and writes them together, at most Every
// after the first line it holds or once it holds Size bytes. Handler
// makes warnings and errors go out at once.
package logwriter

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of New.
const (
	Every = 100 * time.Millisecond
	Size  = 64 << 10
)

// Writer buffers whole writes (log lines) and passes them on in batches.
// It is safe for concurrent use. Close writes what it still holds.
type Writer struct {
	out   io.Writer
	every time.Duration
	size  int

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds lines
	closed bool
	err    error // the last write error, reported by the next Write
}

// New returns a Writer that passes its lines to out at most every after
// the first one it holds, or once it holds size bytes.
func New(out io.Writer, every time.Duration, size int) *Writer {
	return &Writer{out: out, every: every, size: size}
}

// Write holds a copy of p. Once closed, it writes p through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.out.Write(p)
	}
	if err := w.err; err != nil {
		w.err = nil
		return 0, err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.size {
		w.flushLocked()
	} else if w.timer == nil {
		w.timer = time.AfterFunc(w.every, w.tick)
	} else if len(w.buf) == len(p) {
		w.timer.Reset(w.every)
	}
	return len(p), nil
}

func (w *Writer) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

// flushLocked writes what w holds. Called with w.mu held, so that lines
// keep their order.
func (w *Writer) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	if _, err := w.out.Write(w.buf); err != nil {
		w.err = err
	}
	if cap(w.buf) > 4*w.size {
		w.buf = nil // a burst's buffer is not kept
	} else {
		w.buf = w.buf[:0]
	}
}

// Flush writes what w holds now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	err := w.err
	w.err = nil
	return err
}

// Close writes what w holds; later writes go straight through.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.flushLocked()
	w.closed = true
	err := w.err
	w.err = nil
	return err
}

// Handler wraps h, which writes to w, so that a record at level Warn or
// above is written at once with the lines held before it: an operator
// watching the log sees a problem when it happens, and a process that dies
// after logging one has written it.
func Handler(h slog.Handler, w *Writer) slog.Handler { return &handler{h, w} }

type handler struct {
	slog.Handler
	w *Writer
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{h.Handler.WithAttrs(as), h.w}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h.Handler.WithGroup(name), h.w}
}
