package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

const benchConfig = `
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shutdown_timeout: 10s
store: %s
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: first
    url: http://%s/hook
    max_in_flight: 32
  - name: second
    url: http://%s/hook
    max_in_flight: 32
routes:
  - name: everything
    match: {}
    targets: [first, second]
`

// benchResult is one load run against one server.
type benchResult struct {
	Name       string        `json:"name"`
	Requests   int64         `json:"requests"`
	Errors     int64         `json:"errors"`
	Duration   time.Duration `json:"duration_ns"`
	ReqPerSec  float64       `json:"req_per_sec"`
	P50, P95   time.Duration `json:"-"`
	P99        time.Duration `json:"-"`
	P50ms      float64       `json:"p50_ms"`
	P95ms      float64       `json:"p95_ms"`
	P99ms      float64       `json:"p99_ms"`
	firstError string
}

// benchFlags are the flags of "bench" and "bench load".
type benchFlags struct {
	duration   time.Duration
	senders    int
	asJSON     bool
	redisURL   string
	dirFlag    string
	cpuProfile string
}

const benchLoadLong = `Measures the relay against a bare baseline in the same run. It starts a bare Go
HTTP server that only reads and parses the body, and a relay on an embedded
store in a temporary directory (durable: fsync'd before the ack; logging a
JSON line per webhook and per attempt to a file there) fanning out to two
local sinks. It drives each for --duration with --senders concurrent
senders posting unique Hoox webhooks of every task type, then waits for the
relay's deliveries to drain. It prints acked req/s, p50/p95/p99 ack latency
and errors for both, their ratio, and the drain time. Only loopback is used.`

// newBenchCmd is "bench", which runs the load scenario, with the other
// scenarios as its subcommands.
func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "bench [SCENARIO]",
		GroupID: groupTry,
		Short:   "measure the relay: load against a bare baseline, or a fault scenario with lost and duplicated deliveries",
		Long: `Measures the relay under load and under faults. Without a scenario it runs
load, whose flags follow.

Every scenario sends only to loopback addresses it opened itself, prints
its progress on stderr and a short table on stdout (--json: one JSON
object), and reports how many acked events were lost (never delivered:
must be 0, or the command fails) and how many were delivered twice.

` + benchLoadLong,
		Args: unknownSubcommand("scenario"),
	}
	benchLoadFlags(cmd, e)
	load := &cobra.Command{
		Use:   "load",
		Short: "the relay against a bare HTTP baseline: acked req/s, ack latency, drain time (the default)",
		Long:  benchLoadLong,
		Args:  noArgs,
	}
	benchLoadFlags(load, e)
	cmd.AddGroup(&cobra.Group{ID: "scenario", Title: "Scenarios (\"hooxrelay bench SCENARIO --help\" tells each one's flags):"})
	cmd.AddCommand(load, newBenchBurstCmd(e), newBenchDeadTargetCmd(e), newBenchCrashCmd(e), newBenchRedisOutageCmd(e), newBenchSoakCmd(e))
	for _, c := range cmd.Commands() {
		c.GroupID = "scenario"
	}
	return cmd
}

// benchLoadFlags gives cmd the load scenario's flags and makes it run it.
func benchLoadFlags(cmd *cobra.Command, e *env) {
	var o benchFlags
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to drive each server")
	f.IntVar(&o.senders, "senders", 64, "concurrent senders")
	f.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
	f.StringVar(&o.redisURL, "redis", "", "run the relay on the Redis at this loopback `URL` (e.g. redis://127.0.0.1:6379/15) instead of the embedded store; it writes keys under the prefix hooxrelay-bench")
	f.StringVar(&o.dirFlag, "dir", "", "keep the relay's store in `DIR` (default: a temporary directory; put it on the disk you want to measure)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the relay run to this `FILE`")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runBenchLoad(cmd.Context(), e, &o) }
}

func runBenchLoad(ctx context.Context, e *env, o *benchFlags) error {
	if o.senders < 1 || o.duration <= 0 {
		return usagef("--senders must be ≥ 1 and --duration > 0")
	}
	dir := o.dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "hooxrelay-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Everything started below stops when ctx does: cancel, then wait.
	var logf *os.File
	defer func() {
		cancel()
		wg.Wait()
		if logf != nil {
			logf.Close()
		}
	}()
	progress := e.stderr

	// Baseline: read and parse the body, answer 200.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &doc) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	wg.Add(1)
	go func() { defer wg.Done(); bsrv.Serve(bln) }()
	defer bsrv.Close()

	sinks := []*sink{{name: "first", countIDs: true}, {name: "second", countIDs: true}}
	var addrs []string
	for _, s := range sinks {
		a, err := s.start(ctx, "127.0.0.1:0", &wg)
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	// The relay logs as serve does (a JSON line per webhook and per
	// attempt), so that the figures include that cost.
	logf, err = os.Create(filepath.Join(dir, "relay.log"))
	if err != nil {
		return err
	}
	storeYAML := fmt.Sprintf("{path: %q}", filepath.Join(dir, "bench.db"))
	storeName := "the embedded store (fsync per commit)"
	if o.redisURL != "" {
		u, err := url.Parse(o.redisURL)
		if err != nil || !isLoopback(u.Hostname()) {
			return usagef("--redis %q: want a redis:// URL on a loopback address", o.redisURL)
		}
		storeYAML = fmt.Sprintf("{kind: redis, redis: {url: %q, prefix: hooxrelay-bench-%d}}", o.redisURL, time.Now().UnixNano())
		storeName = "Redis at " + u.Host
	}
	relayAddr, served, err := startLocal(ctx, &wg, fmt.Appendf(nil, benchConfig, storeYAML, addrs[0], addrs[1]),
		"bench.yaml", slog.New(slog.NewJSONHandler(logf, nil)))
	if err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.senders, MaxIdleConns: o.senders}}
	var seq atomic.Int64
	base := load(ctx, client, "baseline", "http://"+bln.Addr().String()+"/", o.senders, o.duration, &seq, progress)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	rel := load(ctx, client, "relay", "http://"+relayAddr+"/hooks/hoox", o.senders, o.duration, &seq, progress)

	pprof.StopCPUProfile()
	want := 2 * (rel.Requests - rel.Errors)
	drainStart := time.Now()
	var got int64
	for ctx.Err() == nil {
		got = sinks[0].distinct.Load() + sinks[1].distinct.Load()
		fmt.Fprintf(progress, "\rdraining: %d of %d deliveries", got, want)
		if got >= want || time.Since(drainStart) > 5*time.Minute {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(progress)
	drain := time.Since(drainStart)
	dups := sinks[0].dups.Load() + sinks[1].dups.Load()
	cancel()
	if err := <-served; err != nil {
		return fmt.Errorf("relay: %w", err)
	}

	ratio := rel.ReqPerSec / base.ReqPerSec
	// Deliveries run during the relay's load and its drain.
	perSec := float64(got) / (rel.Duration + drain).Seconds()
	// The relay shares this process with the sinks and the load generator:
	// its high-water mark bounds the relay's.
	peak := peakRSS()
	if o.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"senders": o.senders, "duration_s": o.duration.Seconds(), "baseline": base, "relay": rel,
			"ratio": ratio, "deliveries": got, "deliveries_expected": want, "duplicate_deliveries": dups, "drain_s": drain.Seconds(),
			"deliveries_per_sec": perSec, "peak_rss_bytes": peak,
		})
	}
	fmt.Fprintf(e.stdout, "%d senders, %s each, relay on %s, fan-out to 2 targets\n\n", o.senders, o.duration, storeName)
	fmt.Fprintf(e.stdout, "%-9s %10s %8s %9s %9s %9s %7s\n", "server", "req/s", "ratio", "p50", "p95", "p99", "errors")
	for _, r := range []benchResult{base, rel} {
		fmt.Fprintf(e.stdout, "%-9s %10.0f %8.2f %9s %9s %9s %7d\n", r.Name, r.ReqPerSec, r.ReqPerSec/base.ReqPerSec,
			r.P50.Round(10*time.Microsecond), r.P95.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Errors)
	}
	fmt.Fprintf(e.stdout, "\ndeliveries: %d of %d (%d delivered twice); drained %s after the load ended; %.0f deliveries/s\n", got, want, dups, drain.Round(time.Millisecond), perSec)
	if peak > 0 {
		fmt.Fprintf(e.stdout, "peak RSS: %.0f MiB (this process: relay, sinks, baseline and load generator)\n", float64(peak)/(1<<20))
	}
	for _, r := range []benchResult{base, rel} {
		if r.firstError != "" {
			fmt.Fprintf(e.stdout, "first %s error: %s\n", r.Name, r.firstError)
		}
	}
	return nil
}

var benchTasks = []string{
	`{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"video_%d","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`,
	`{"task":"video_export","job_id":"run_%d","status":"completed","result":{"video_id":"video_%d","cost":2}}`,
	`{"task":"avatar_create","avatar_id":"avtr_%d","look_id":"look_%d","status":"completed","result":{"preview_url":"https://cdn.example/a.jpg"}}`,
	`{"task":"avatar_edit","avatar_id":"avtr_%d","look_id":"look_%d","status":"error","error":{"code":"GENERATION_FAILED","message":"no"}}`,
}

// load drives url with n senders for d and measures each request.
func load(ctx context.Context, client *http.Client, name, url string, n int, d time.Duration, seq *atomic.Int64, progress io.Writer) benchResult {
	res := benchResult{Name: name}
	var mu sync.Mutex
	var lats []time.Duration
	var done atomic.Int64
	// Requests in flight at the deadline finish and are counted: a relay
	// that acked one owes its deliveries.
	deadline := time.Now().Add(d)
	timer, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 4096)
			var errs int64
			var firstErr string
			for timer.Err() == nil {
				i := seq.Add(1)
				body := fmt.Appendf(nil, benchTasks[i%int64(len(benchTasks))], i, i)
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs++
					firstErr = err.Error()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				own = append(own, time.Since(t0))
				done.Add(1)
				if resp.StatusCode != http.StatusOK {
					errs++
					firstErr = resp.Status
				}
			}
			mu.Lock()
			lats = append(lats, own...)
			res.Errors += errs
			if firstErr != "" {
				res.firstError = firstErr
			}
			mu.Unlock()
		}()
	}
	tick := time.NewTicker(time.Second)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-tick.C:
				fmt.Fprintf(progress, "\r%s: %d requests, %.0f/s  ", name, done.Load(), float64(done.Load())/time.Since(start).Seconds())
			case <-timer.Done():
				return
			}
		}
	}()
	wg.Wait()
	tick.Stop()
	fmt.Fprintln(progress)
	res.Duration = time.Since(start)
	res.Requests = int64(len(lats))
	res.ReqPerSec = float64(res.Requests) / res.Duration.Seconds()
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	res.P50, res.P95, res.P99 = pct(.50), pct(.95), pct(.99)
	res.P50ms, res.P95ms, res.P99ms = ms(res.P50), ms(res.P95), ms(res.P99)
	return res
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
