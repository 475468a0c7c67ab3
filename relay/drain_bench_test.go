package relay_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// drainTargetEnv makes the test binary a bare target instead of running
// tests: BenchmarkDrain starts it so that the target's CPU is not the
// relay's. "tls" serves HTTP/2 over TLS and writes its certificate.
const drainTargetEnv = "HOOXRELAY_DRAIN_TARGET"

func TestMain(m *testing.M) {
	if mode := os.Getenv(drainTargetEnv); mode != "" {
		serveDrainTarget(mode)
		return
	}
	os.Exit(m.Run())
}

// serveDrainTarget answers every request 200 after reading its body, and
// prints its URL (and, over TLS, the path of its CA file) on stdout.
func serveDrainTarget(mode string) {
	var conns, h2 atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		io.Copy(io.Discard, r.Body)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if mode == "tls" {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		ca := filepath.Join(os.TempDir(), fmt.Sprintf("drain-ca-%d.pem", os.Getpid()))
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			panic(err)
		}
		fmt.Println(srv.URL, ca)
	} else {
		srv.Start()
		fmt.Println(srv.URL, "")
	}
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	fmt.Println(conns.Load(), h2.Load())
}

// startDrainTarget runs the test binary as a target and returns its URL,
// its CA file ("" without TLS), and what stops it and returns how many
// connections it accepted and how many requests came over HTTP/2.
func startDrainTarget(b *testing.B, mode string) (url, ca string, stop func() (conns, h2 int)) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), drainTargetEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	url, ca, _ = strings.Cut(strings.TrimSpace(line), " ")
	if ca != "" {
		b.Cleanup(func() { os.Remove(ca) })
	}
	return url, ca, func() (conns, h2 int) {
		stdin.Close()
		line, _ := r.ReadString('\n')
		fmt.Sscan(line, &conns, &h2)
		return conns, h2
	}
}

// BenchmarkDrain measures the dispatcher alone: b.N events of two targets
// are stored first, then a dispatcher delivers them to a target in
// another process. It reports the process's CPU time (user and system)
// per delivery, the part of a relay's CPU that deliveries take.
func BenchmarkDrain(b *testing.B) {
	for _, mode := range []string{"http", "tls"} {
		b.Run(mode, func(b *testing.B) { benchDrain(b, mode) })
	}
}

func benchDrain(b *testing.B, mode string) {
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as the relay runs
	url, ca, stopTarget := startDrainTarget(b, mode)
	st, err := pebblestore.Open(filepath.Join(b.TempDir(), "drain"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if _, err := st.Ingest(ctx, storetest.Event(now, fmt.Sprintf("drain-%d", i), "a", "b"), time.Hour); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	var targets []relay.TargetSettings
	for _, name := range []string{"a", "b"} {
		tg := benchTarget(name, url+"/"+name)
		tg.TLS.CAFile = ca
		targets = append(targets, tg)
	}
	d, err := relay.NewDispatcher(st, targets, relay.DispatcherOptions{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	if path := os.Getenv("HOOXRELAY_DRAIN_PROFILE"); path != "" {
		// The drain's alone: -test.cpuprofile would count the ingests.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	cpu0, t0 := cpuTime(b), time.Now()
	go func() { done <- d.Run(runCtx, ctx) }()
	storetest.Eventually(b, 10*time.Minute, func() error {
		c, err := st.Counts(ctx)
		if err != nil {
			return err
		}
		if c["a"].Delivered < b.N || c["b"].Delivered < b.N {
			return fmt.Errorf("counts %+v, waiting for %d each", c, b.N)
		}
		return nil
	})
	cpu, wall := cpuTime(b)-cpu0, time.Since(t0)
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	n := float64(2 * b.N)
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/delivery")
	b.ReportMetric(n/wall.Seconds(), "deliveries/s")
	conns, h2 := stopTarget()
	b.ReportMetric(float64(conns), "conns")
	b.ReportMetric(float64(h2)/n, "h2-share")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
