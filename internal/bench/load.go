package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

var load = &Scenario{
	Name:  "load",
	Short: "the relay against a bare HTTP baseline: acked req/s, ack latency, drain time (the default)",
	Long: `Measures the relay against a bare baseline in the same run. It starts a bare Go
HTTP server that only reads and parses the body, and a relay on an embedded
store in a temporary directory (durable: fsync'd before the ack; logging a
JSON line per webhook and per attempt to a file there) fanning out to two
local sinks. It drives each for --duration with --senders concurrent
senders posting unique Hoox webhooks of every task type, then waits for the
relay's deliveries to drain. With --process the relay and the baseline run
as processes of their own (the generator and the targets stay in this
one), as a relay runs in production. The relay delivers while it is driven, so the
deliveries share the two cores with the ingest; with --hold it pauses both
targets for the load and resumes them for the drain, which measures the
ingest alone (every event is still delivered to both targets afterwards). It prints acked req/s, p50/p95/p99 ack latency
and errors for both, their ratio, and the drain time. Only loopback is used.
It also prints the CPU time per acked webhook while the relay was driven:
of the relay's process (with --process), of Redis's main thread (with
--redis) and of this process (the senders and the targets, and the relay
too without --process), and how busy the machine's cores were.
With --redis it also prints what the Redis store costs Redis: the CPU of
Redis's main thread per acked webhook during the relay's run (INFO cpu),
and, measured afterwards on the store alone (10,000 events of two targets
ingested, then both deliveries completed as delivered), Redis's time per
ingest script (INFO commandstats), the commands it runs, and used_memory
per pending and per delivered event (kept for the retention).`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &loadFlags{}
		f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to drive each server")
		f.IntVar(&o.senders, "senders", 64, "concurrent senders")
		f.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
		f.StringVar(&o.redisURL, "redis", "", "run the relay on the Redis at this loopback `URL` (e.g. redis://127.0.0.1:6379/15) instead of the embedded store; it writes keys under the prefix hooxrelay-bench")
		f.StringVar(&o.dir, "dir", "", "keep the relay's store in `DIR` (default: a temporary directory; put it on the disk you want to measure)")
		f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the relay run to this `FILE`")
		o.processFlags.declare(f)
		f.BoolVar(&o.hold, "hold", false, "pause both targets while the relay is driven and resume them for the drain: the ingest alone, without deliveries sharing the CPU")
		return o.run
	},
}

// loadFlags are the flags of "bench" and "bench load".
type loadFlags struct {
	duration   time.Duration
	senders    int
	asJSON     bool
	redisURL   string
	dir        string
	cpuProfile string
	hold       bool
	processFlags
}

// processFlags are --process and --relay-binary.
type processFlags struct {
	process  bool
	relayBin string
}

func (p *processFlags) declare(f *pflag.FlagSet) {
	f.BoolVar(&p.process, "process", false, "run the relay, the baseline and (sustain --reference) the reference forwarder as processes of their own (this binary, or --relay-binary), as in production, instead of in this process beside the load generator and the targets")
	f.StringVar(&p.relayBin, "relay-binary", "", "hooxrelay binary to run with --process (default: this one)")
}

// binary is the binary --process runs, or "" without --process.
func (p *processFlags) binary() (string, error) {
	if !p.process {
		return "", nil
	}
	return relayBinary(p.relayBin)
}

// servedRelay is the relay under test, in this process or as a child.
type servedRelay struct {
	ingress, admin string
	stop           func() error
	peak           func() int64 // its peak RSS, or that of the process it shares
	pid            int          // its process; 0 when it is served in this one
}

// LoadResult is one load run against one server.
type LoadResult struct {
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

func (o *loadFlags) run(ctx context.Context, env *Env) error {
	if o.senders < 1 || o.duration <= 0 {
		return usagef("--senders must be ≥ 1 and --duration > 0")
	}
	r, err := newRun(ctx, env, "load", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "bench"), 30*time.Second)
	if err != nil {
		return err
	}

	if o.process && o.cpuProfile != "" {
		return usagef("--cpuprofile profiles this process: it cannot be used with --process")
	}
	bin, err := o.binary()
	if err != nil {
		return err
	}
	baseURL, err := r.bareBaseline(bin)
	if err != nil {
		return err
	}
	targets, sut, err := r.fanOut(bin, storeYAML, false)
	if err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.senders, MaxIdleConns: o.senders}}
	var seq atomic.Int64
	base := measure(r.ctx, client, "baseline", baseURL, o.senders, o.duration, &seq, env.Progress)
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	var stats *redis.Client
	if o.redisURL != "" {
		if stats, err = statsClient(o.redisURL); err != nil {
			return err
		}
		defer stats.Close()
		if _, err := readRedisStats(r.ctx, stats); err != nil {
			return err
		}
	}
	if err := pauseAll(sut.admin, targets, o.hold, "pause"); err != nil {
		return err
	}
	meter := cpuMeter{relayPID: sut.pid, rdb: stats}
	cpu0 := meter.sample(r.ctx)
	res := measure(r.ctx, client, "relay", "http://"+sut.ingress+"/hooks/hoox", o.senders, o.duration, &seq, env.Progress)
	cpu := share(cpu0, meter.sample(r.ctx), res.Requests-res.Errors)

	stopProfile()
	var cost *RedisCost
	if stats != nil {
		// The window of the CPU line: the two figures are one.
		cost = &RedisCost{USPerWebhook: cpu.RedisUS}
	}
	if err := pauseAll(sut.admin, targets, o.hold, "resume"); err != nil {
		return err
	}
	want := 2 * (res.Requests - res.Errors)
	drainStart := time.Now()
	var got int64
	for r.ctx.Err() == nil {
		got = targets[0].distinct.Load() + targets[1].distinct.Load()
		fmt.Fprintf(env.Progress, "\rdraining: %d of %d deliveries", got, want)
		if got >= want || time.Since(drainStart) > 5*time.Minute {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(env.Progress)
	drain := time.Since(drainStart)
	dups := targets[0].dups.Load() + targets[1].dups.Load()
	peak := sut.peak()
	if err := sut.stop(); err != nil {
		return err
	}

	if cost != nil {
		c, err := measureRedisCost(ctx, o.redisURL, redisCostEvents)
		if err != nil {
			return fmt.Errorf("measure the Redis store alone: %w", err)
		}
		c.USPerWebhook = cost.USPerWebhook
		*cost = c
	}
	ratio := res.ReqPerSec / base.ReqPerSec
	// Deliveries run during the relay's load and its drain.
	perSec := float64(got) / (res.Duration + drain).Seconds()
	if o.asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"senders": o.senders, "duration_s": o.duration.Seconds(), "baseline": base, "relay": res,
			"ratio": ratio, "held": o.hold, "processes": o.process, "deliveries": got, "deliveries_expected": want, "duplicate_deliveries": dups, "drain_s": drain.Seconds(),
			"deliveries_per_sec": perSec, "peak_rss_bytes": peak, "redis": cost, "cpu": cpu,
		})
	}
	w := env.Stdout
	mode := "in this process, delivering while driven"
	if o.process {
		mode = "as processes of their own, delivering while driven"
	}
	if o.hold {
		mode = strings.Replace(mode, "delivering while driven", "targets paused while driven (--hold): ingest alone", 1)
	}
	fmt.Fprintf(w, "%d senders, %s each, relay (%s), fan-out to 2 targets, %s\n\n", o.senders, o.duration, storeName, mode)
	fmt.Fprintf(w, "%-9s %10s %8s %9s %9s %9s %7s\n", "server", "req/s", "ratio", "p50", "p95", "p99", "errors")
	for _, x := range []LoadResult{base, res} {
		fmt.Fprintf(w, "%-9s %10.0f %8.2f %9s %9s %9s %7d\n", x.Name, x.ReqPerSec, x.ReqPerSec/base.ReqPerSec,
			x.P50.Round(10*time.Microsecond), x.P95.Round(10*time.Microsecond), x.P99.Round(10*time.Microsecond), x.Errors)
	}
	fmt.Fprintf(w, "\ndeliveries: %d of %d (%d delivered twice); drained %s after the load ended; %.0f deliveries/s\n", got, want, dups, drain.Round(time.Millisecond), perSec)
	fmt.Fprintf(w, "CPU per webhook acked while the relay was driven: %s\n", cpu)
	if peak > 0 && o.process {
		fmt.Fprintf(w, "peak RSS: %.0f MiB (the relay process)\n", float64(peak)/(1<<20))
	} else if peak > 0 {
		fmt.Fprintf(w, "peak RSS: %.0f MiB (this process: relay, targets, baseline and load generator)\n", float64(peak)/(1<<20))
	}
	if cost != nil {
		cost.table(w)
	}
	for _, x := range []LoadResult{base, res} {
		if x.firstError != "" {
			fmt.Fprintf(w, "first %s error: %s\n", x.Name, x.firstError)
		}
	}
	return nil
}

// pauseAll posts action ("pause" or "resume") for every target to the
// relay's admin API when on is set.
func pauseAll(admin string, targets []*target, on bool, action string) error {
	if !on {
		return nil
	}
	for _, t := range targets {
		if err := adminPost(admin, "/api/v1/targets/"+t.name+"/"+action); err != nil {
			return err
		}
	}
	return nil
}

// baseline serves the bare baseline on a free loopback port until the run
// ends and returns its URL: a handler that reads and parses the body and
// answers 200, and does nothing else.
func (r *run) baseline() (string, error) {
	addr, err := r.listen(bareHandler())
	if err != nil {
		return "", err
	}
	return "http://" + addr + "/", nil
}

// listen serves h on a free loopback port until the run ends and returns
// its address.
func (r *run) listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); srv.Serve(ln) }()
	go func() { defer r.wg.Done(); <-r.ctx.Done(); srv.Close() }()
	return ln.Addr().String(), nil
}

// shapedRequest shapes a target's requests as a legacy endpoint would
// want them, valid for every task the bench sends: a PUT to a URL with a
// placeholder, a header template, a jq body sent as a form.
const shapedRequest = `request: {method: PUT, format: form, headers: {X-Task: '{task}'}, ` +
	`body: '{id: (.job_id // .avatar_id), state: (if .status == "completed" then "DONE" else "FAILED" end), cost: (.result.cost // 0)}'}`

// fanOutInFlight is how many deliveries the relay of fanOut, and the
// reference forwarder, have in flight per target (max_in_flight).
const fanOutInFlight = 32

// fanOutTargets starts the two targets of a fan-out, "first" and "second".
func (r *run) fanOutTargets() ([]*target, error) {
	targets := []*target{{name: "first"}, {name: "second"}}
	return targets, r.start(targets...)
}

// fanOut starts two targets (fanOutTargets) and a relay on store sending
// every webhook to both, up to fanOutInFlight attempts in flight each,
// every request shaped when shaped. The relay runs in this process, logging as
// serve does (a JSON line per webhook and per attempt), or with bin set,
// as "bin serve", a process of its own.
func (r *run) fanOut(bin, store string, shaped bool) ([]*target, servedRelay, error) {
	targets, err := r.fanOutTargets()
	if err != nil {
		return nil, servedRelay{}, err
	}
	inFlight := fmt.Sprintf("max_in_flight: %d", fanOutInFlight)
	cfgs := []targetConfig{{"first", targets[0].url(), inFlight}, {"second", targets[1].url(), inFlight}}
	if shaped {
		for i := range cfgs {
			cfgs[i].url += "/{task}"
			cfgs[i].extra += ", " + shapedRequest
		}
	}
	if bin != "" {
		c, err := r.child(bin, store, cfgs...)
		if err != nil {
			return nil, servedRelay{}, err
		}
		pid := strconv.Itoa(c.pid())
		return targets, servedRelay{c.ingress, c.admin, c.stop, func() int64 { return procStatus(pid)["VmHWM"] }, c.pid()}, nil
	}
	rel, err := r.serve(store, cfgs...)
	if err != nil {
		return nil, servedRelay{}, err
	}
	// The relay shares this process with the targets and the load
	// generator: its high-water mark bounds the relay's.
	return targets, servedRelay{rel.ingress, rel.admin, func() error { return r.stop(rel) }, func() int64 { return procStatus("self")["VmHWM"] }, 0}, nil
}

// bareBaseline serves the bare baseline in this process, or with bin set
// as "bin bench bare", and returns its URL.
func (r *run) bareBaseline(bin string) (string, error) {
	if bin != "" {
		addr, _, err := r.bareChild(bin)
		return "http://" + addr + "/", err
	}
	return r.baseline()
}

// reference serves the reference forwarder (see forwarder) to targets, in
// this process or with bin set as "bin bench bare --forward", and returns
// its address.
func (r *run) reference(bin string, targets []*target) (addr string, pid int, err error) {
	var urls []string
	for _, t := range targets {
		urls = append(urls, t.url())
	}
	if bin != "" {
		return r.bareChild(bin, "--forward", strings.Join(urls, ","))
	}
	f, err := newForwarder(urls)
	if err != nil {
		return "", 0, err
	}
	f.start(r.ctx, &r.wg)
	addr, err = r.listen(f)
	return addr, 0, err
}

// tasks are the bodies of the webhooks the bench sends, one of each task
// type; each takes a number twice, which makes it unique.
var tasks = []string{
	`{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"video_%d","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`,
	`{"task":"video_export","job_id":"run_%d","status":"completed","result":{"video_id":"video_%d","cost":2}}`,
	`{"task":"avatar_create","avatar_id":"avtr_%d","look_id":"look_%d","status":"completed","result":{"preview_url":"https://cdn.example/a.jpg"}}`,
	`{"task":"avatar_edit","avatar_id":"avtr_%d","look_id":"look_%d","status":"error","error":{"code":"GENERATION_FAILED","message":"no"}}`,
}

// measure sends to url from n senders for d as fast as they can and
// measures each request.
func measure(ctx context.Context, client *http.Client, name, url string, n int, d time.Duration, seq *atomic.Int64, progress io.Writer) LoadResult {
	res := LoadResult{Name: name}
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
				body := fmt.Appendf(nil, tasks[i%int64(len(tasks))], i, i)
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
	res.P50, res.P95, res.P99 = percentile(lats, .50), percentile(lats, .95), percentile(lats, .99)
	res.P50ms, res.P95ms, res.P99ms = ms(res.P50), ms(res.P95), ms(res.P99)
	return res
}
