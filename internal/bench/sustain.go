package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
)

var sustain = &Scenario{
	Name:  "sustain",
	Short: "open-loop webhooks at rising fixed rates: the highest rate the relay keeps up with, as a ratio of the bare baseline",
	Long: `Finds the highest rate at which the relay keeps up. It first measures the bare
baseline (the handler of "bench load") closed-loop with --senders senders,
then starts a relay (embedded store, fsync'd before each ack, or Redis with
--redis) fanning out to two local targets and sends it webhooks open-loop,
as Hoox does: at a fixed rate, each at its time, without waiting for the
answers to the earlier ones. The rate rises in steps of --step-duration,
from --from times the baseline by --by, until a step fails or --to is
reached. A step passes when every webhook sent in it was acked (no retry),
the p99 ack latency is at most --p99, and the delivery backlog at its end
(deliveries owed to the targets for the webhooks acked so far) is at most
one second's worth (the step's rate times the two targets). Between steps
the backlog is left to drain (up to --settle).
It prints each step (rate, ratio, sent, acked, failed, p50/p99/max ack
latency, backlog, verdict), the highest passing rate and its ratio to the
baseline, and how many acked events were lost (must be 0) or delivered
twice once everything drained.
For each step it also prints where the CPU went, per webhook sent, from
the step's start until its deliveries were made (the settling after it,
or the drain after the last): the relay's process (with --process),
Redis's main thread (with --redis) and this process (the senders and
the targets, and the relay too without --process); and how busy the
machine's cores were while the step sent and was answered. The CPU per
webhook is only comparable at one rate: at low rates much of it is the
cost of waking up for each request.
With --process the relay and the baseline run as processes of their own,
as in production; the senders and the targets stay in this one.
With --shaped the same steps run a second time, on a fresh relay and store,
with every target's request shaped (a PUT to a URL with a placeholder, a
header template, a jq body sent as a form); it prints that ladder too and
the shaped highest passing rates over the unshaped ones (summed). With
--rounds N it runs N such pairs against the one baseline, in the order
unshaped-shaped, then shaped-unshaped, and so on, so that a machine whose
load drifts during the run favours neither.
With --reference, after the baseline and before the relay's steps, the
same steps run against a reference forwarder with two fresh targets: a
server that does only the HTTP work of a relay (it reads the body,
answers 200 with an event id of its own and posts the body to both
targets, 32 at a time each over kept-alive connections, retrying until
delivered), with no store, no dedup and no parsing, its queues in memory
and unbounded. It is a ceiling, not a relay: the most that any relay
could reach on this machine with this harness. It prints that ladder
too, with its highest passing ratio and how many of its acked webhooks
were lost or delivered twice (it too must lose none), then
relay/reference: the relay's highest passing rate over the reference's
(with --shaped, that of the relay's first, unshaped, ladder). With
--process the forwarder runs as a process of its own as well, as the
hidden "bench bare --forward" of the binary that --process runs (this
one, or --relay-binary: a binary older than --reference cannot serve
it).`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &sustainFlags{}
		f.IntVar(&o.senders, "senders", 64, "concurrent senders of the closed-loop baseline")
		f.DurationVar(&o.baseline, "baseline", 5*time.Second, "how long to measure the baseline")
		f.DurationVar(&o.step, "step-duration", 10*time.Second, "how long each step sends")
		f.Float64Var(&o.from, "from", 0.05, "the first step's rate, as a ratio of the baseline's req/s")
		f.Float64Var(&o.by, "by", 0.05, "how much each step adds to the rate, as a ratio of the baseline")
		f.Float64Var(&o.to, "to", 1, "the highest rate to try, as a ratio of the baseline")
		f.DurationVar(&o.p99, "p99", 50*time.Millisecond, "the highest p99 ack latency a passing step may have")
		f.DurationVar(&o.settle, "settle", 30*time.Second, "longest wait for the backlog to drain between steps")
		waitFlag(f, &o.wait, "the last step")
		dirFlag(f, &o.dir, "the relay's store and log")
		jsonFlag(f, &o.asJSON)
		redisFlag(f, &o.redisURL)
		f.BoolVar(&o.shaped, "shaped", false, "run the steps again with every target's request shaped (URL template, header template, jq body as a form) and compare")
		f.IntVar(&o.rounds, "rounds", 1, "with --shaped: pairs of ladders (unshaped and shaped) to run, alternating which goes first")
		f.BoolVar(&o.reference, "reference", false, "first run the steps against a reference forwarder (the HTTP work alone: no store, no dedup, queues in memory; a ceiling, not a relay) and print the relay's highest passing rate over the forwarder's")
		o.processFlags.declare(f)
		f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the steps (relay, targets and senders: one process; with --shaped, of the last ladder) to this `FILE`")
		return o.run
	},
}

// sustainFlags are the flags of "bench sustain".
type sustainFlags struct {
	senders       int
	baseline      time.Duration
	step          time.Duration
	from, by, to  float64
	p99           time.Duration
	settle, wait  time.Duration
	dir, redisURL string
	cpuProfile    string
	asJSON        bool
	shaped        bool
	rounds        int
	reference     bool
	processFlags
}

// SustainStep is one step of "bench sustain".
type SustainStep struct {
	RatePerS float64 `json:"rate_per_s"`
	Ratio    float64 `json:"ratio"`
	// SentPerS is the rate the senders reached: below RatePerS when the
	// machine could not even send at the step's rate.
	SentPerS float64 `json:"sent_per_s"`
	Sent     int64   `json:"sent"`
	Acked    int64   `json:"acked"`
	Failed   int64   `json:"failed"` // answered other than 200, or not at all
	P50ms    float64 `json:"ack_p50_ms"`
	P99ms    float64 `json:"ack_p99_ms"`
	Maxms    float64 `json:"ack_max_ms"`
	// Backlog is the deliveries owed at the end of the step: for every
	// webhook acked so far, one per target not yet received there.
	Backlog    int64  `json:"backlog"`
	MaxBacklog int64  `json:"backlog_limit"`
	Pass       bool   `json:"pass"`
	Why        string `json:"why,omitempty"` // why it failed
	FirstError string `json:"first_error,omitempty"`
	// CPU is who used the cores while the step sent and was answered.
	CPU CPUShare `json:"cpu"`
}

// SustainResult is the outcome of "bench sustain".
type SustainResult struct {
	Scenario   string        `json:"scenario"`
	Store      string        `json:"store"`
	Baseline   LoadResult    `json:"baseline"`
	StepS      float64       `json:"step_s"`
	P99LimitMS float64       `json:"p99_limit_ms"`
	Steps      []SustainStep `json:"steps"`
	BestPerS   float64       `json:"highest_passing_per_s"`
	BestRatio  float64       `json:"highest_passing_ratio"`
	Delivery   Drain         `json:"delivery"`
	LoadAvg    string        `json:"loadavg,omitempty"` // /proc/loadavg at the end
	// IsShaped says that every target's request was shaped. Ladders are
	// the ladders run after this one (--shaped), and ShapedOverUnshaped
	// the sum of the shaped ladders' highest passing rates over that of
	// the unshaped ones, this one included.
	IsShaped           bool             `json:"shaped"`
	Ladders            []*SustainResult `json:"ladders,omitempty"`
	ShapedOverUnshaped float64          `json:"shaped_over_unshaped,omitempty"`
	// Reference is the ladder of the reference forwarder (--reference),
	// and RelayOverReference this ladder's highest passing rate over its,
	// when it passed a step.
	Reference          *SustainResult `json:"reference,omitempty"`
	RelayOverReference *float64       `json:"relay_over_reference,omitempty"`
	targetsServed      int
}

func (o *sustainFlags) run(ctx context.Context, env *Env) error {
	if o.senders < 1 || o.baseline <= 0 || o.step <= 0 || o.from <= 0 || o.by <= 0 || o.to < o.from || o.p99 <= 0 || o.settle < 0 {
		return usagef("--senders, --baseline, --step-duration, --from, --by and --p99 must be positive, and --to at least --from")
	}
	if o.process && o.cpuProfile != "" {
		return usagef("--cpuprofile profiles this process: it cannot be used with --process")
	}
	var seq atomic.Int64
	var base *LoadResult
	var ref *SustainResult
	if o.reference {
		var err error
		if _, ref, err = o.ladder(ctx, env, "reference", nil, &seq); err != nil {
			return err
		}
		base = &ref.Baseline
	}
	r, res, err := o.ladder(ctx, env, "", base, &seq)
	if err != nil {
		return err
	}
	d := res.Delivery
	if ref != nil {
		res.Reference = ref
		d.add(ref.Delivery)
		if ref.BestPerS > 0 {
			x := res.BestPerS / ref.BestPerS
			res.RelayOverReference = &x
		}
	}
	if o.shaped {
		var best [2]float64 // unshaped, shaped
		best[0] = res.BestPerS
		// Unshaped first in odd rounds, shaped first in even ones.
		for i := 1; i < 2*max(o.rounds, 1); i++ {
			shaped := (i%2 == 1) != ((i/2)%2 == 1)
			variant := "unshaped"
			if shaped {
				variant = "shaped"
			}
			var lr *SustainResult
			if r, lr, err = o.ladder(ctx, env, fmt.Sprintf("%s-%d", variant, i+1), &res.Baseline, &seq); err != nil {
				return err
			}
			lr.IsShaped = shaped
			res.Ladders = append(res.Ladders, lr)
			best[b2i(lr.IsShaped)] += lr.BestPerS
			d.add(lr.Delivery)
		}
		if best[0] > 0 {
			res.ShapedOverUnshaped = best[1] / best[0]
		}
	}
	return r.report(o.asJSON, res, d)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// add counts the deliveries of another ladder in d.
func (d *Drain) add(o Drain) {
	d.Lost, d.Dups = d.Lost+o.Lost, d.Dups+o.Dups
	d.Drained = d.Drained && o.Drained
}

// ladder runs the steps on a relay of its own (in a subdirectory named
// variant of --dir, when given), every target shaped when variant starts
// with "shaped", or on the reference forwarder when it is "reference".
// It measures the baseline first unless given one.
func (o *sustainFlags) ladder(ctx context.Context, env *Env, variant string, base *LoadResult, seq *atomic.Int64) (*run, *SustainResult, error) {
	isRef := variant == "reference"
	dir := o.dir
	switch {
	case isRef:
		dir = "" // the forwarder keeps nothing: a temporary directory
	case dir != "" && variant != "":
		dir = filepath.Join(dir, variant)
	}
	name := "sustain"
	if isRef {
		name = "sustain reference"
	}
	r, err := newRun(ctx, env, name, dir)
	if err != nil {
		return nil, nil, err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "bench"), 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	bin, err := o.binary()
	if err != nil {
		return nil, nil, err
	}
	if base == nil {
		baseURL, err := r.bareBaseline(bin)
		if err != nil {
			return nil, nil, err
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.senders, MaxIdleConns: o.senders}}
		b := measure(r.ctx, client, "baseline", baseURL, o.senders, o.baseline, seq, env.Progress)
		client.CloseIdleConnections()
		if b.ReqPerSec <= 0 {
			return nil, nil, fmt.Errorf("the baseline answered nothing in %s (first error: %s)", o.baseline, b.firstError)
		}
		base = &b
	}

	var targets []*target
	var rel servedRelay
	if isRef {
		if targets, err = r.fanOutTargets(); err != nil {
			return nil, nil, err
		}
		if rel.ingress, rel.pid, err = r.reference(bin, targets); err != nil {
			return nil, nil, err
		}
		rel.stop = func() error { return nil } // it ends with the run
		storeName = "none: the reference forwarder"
	} else {
		if targets, rel, err = r.fanOut(bin, storeYAML, strings.HasPrefix(variant, "shaped")); err != nil {
			return nil, nil, err
		}
		if variant != "" {
			storeName += ", ladder " + variant
		}
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return nil, nil, err
		}
		defer stopProfile()
	}
	meter := cpuMeter{relayPID: rel.pid}
	if o.redisURL != "" && !isRef {
		rdb, err := statsClient(o.redisURL)
		if err != nil {
			return nil, nil, err
		}
		defer rdb.Close()
		meter.rdb = rdb
	}
	res := &SustainResult{Scenario: "sustain", Store: storeName, Baseline: *base, StepS: o.step.Seconds(), P99LimitMS: ms(o.p99), targetsServed: len(targets)}
	acked := map[string]struct{}{}
	owed := func() int64 {
		var n int64
		for _, t := range targets {
			n += max(0, int64(len(acked))-t.distinct.Load())
		}
		return n
	}
	// Each step sends at its own rate, as one more step of the ratio: a
	// float sum would drift off the grid (0.15000000000000002).
	// A step's CPU is counted until its deliveries were made: to the end
	// of the settling after it (or of the drain after the last one), its
	// cores' busy share while it sent.
	var cpu0, cpu1 cpuSample
	finishCPU := func(drained bool) {
		if n := len(res.Steps); n > 0 {
			st := &res.Steps[n-1]
			st.CPU = stepCPU(cpu0, cpu1, meter.sample(r.ctx), st.Sent, drained)
		}
	}
	for i := 0; ; i++ {
		ratio := o.from + float64(i)*o.by
		if ratio > o.to+1e-9 || r.ctx.Err() != nil {
			break
		}
		if i > 0 {
			drained := settle(r.ctx, owed, o.settle)
			if !drained {
				fmt.Fprintf(env.Progress, "sustain: the backlog did not drain within --settle %s; the next step starts with it\n", o.settle)
			}
			finishCPU(drained)
		}
		var st SustainStep
		st, cpu0, cpu1 = o.runStep(r, rel.ingress, base.ReqPerSec*ratio, ratio, seq, acked, targets, meter)
		st.Backlog = owed()
		st.judge(o.p99)
		res.Steps = append(res.Steps, st)
		fmt.Fprintf(env.Progress, "%s: %.0f/s (%.2f): %s\n", r.name, st.RatePerS, st.Ratio, st.verdict())
		if !st.Pass {
			break
		}
		res.BestPerS, res.BestRatio = st.RatePerS, st.Ratio
	}
	res.Delivery = r.drain(targets, acked, time.Now(), o.wait)
	finishCPU(res.Delivery.Drained)
	if err := rel.stop(); err != nil {
		return nil, nil, err
	}
	res.LoadAvg = loadAvg()
	return r, res, nil
}

// runStep sends webhooks at rps for the step's duration and waits for
// their answers; the ids it acked join acked.
// It returns the CPU samples taken as it started and once the answers were
// in.
func (o *sustainFlags) runStep(r *run, ingress string, rps, ratio float64, seq *atomic.Int64, acked map[string]struct{}, targets []*target, meter cpuMeter) (SustainStep, cpuSample, cpuSample) {
	st := SustainStep{RatePerS: rps, Ratio: ratio, MaxBacklog: int64(rps * float64(len(targets)))}
	d, err := newPacedDriver(ingress, rps, 0)
	if err != nil {
		st.Why = err.Error()
		return st, cpuSample{}, cpuSample{}
	}
	d.retry, d.seq = false, seq
	tr := d.client.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost, tr.MaxIdleConns = 1024, 1024 // open loop: as many as are in flight
	stop := r.progress(func() string {
		return fmt.Sprintf("%.0f/s (%.2f of the baseline): %d sent, %d acked, %d in flight", rps, ratio, d.sent.Load(), d.acks.Load(), d.open.Load())
	})
	cpu0 := meter.sample(r.ctx)
	start := time.Now()
	sending, end := r.drive(d, o.step)
	<-sending.Done()
	sendTime := time.Since(start)
	end() // the answers of the webhooks in flight
	stop()
	s := d.stats()
	cpu1 := meter.sample(r.ctx)
	st.Sent, st.Acked, st.Failed = s.Sent, s.Acked, s.Unacked
	st.SentPerS = float64(s.Sent) / sendTime.Seconds()
	st.P50ms, st.P99ms, st.Maxms, st.FirstError = s.P50ms, s.P99ms, s.Maxms, s.FirstError
	for id := range d.ackedIDs() {
		acked[id] = struct{}{}
	}
	return st, cpu0, cpu1
}

// judge decides whether the step passed.
func (st *SustainStep) judge(p99 time.Duration) {
	var why []string
	if st.Failed > 0 || st.Acked < st.Sent {
		why = append(why, fmt.Sprintf("%d of %d not acked", st.Sent-st.Acked, st.Sent))
	}
	if st.Sent == 0 {
		why = append(why, "nothing sent")
	}
	if st.P99ms > ms(p99) {
		why = append(why, fmt.Sprintf("p99 %.1f ms > %.0f ms", st.P99ms, ms(p99)))
	}
	if st.Backlog > st.MaxBacklog {
		why = append(why, fmt.Sprintf("backlog %d > %d (1s of deliveries)", st.Backlog, st.MaxBacklog))
	}
	st.Pass, st.Why = len(why) == 0, strings.Join(why, "; ")
}

func (st SustainStep) verdict() string {
	if st.Pass {
		return fmt.Sprintf("pass (p99 %.1f ms, backlog %d)", st.P99ms, st.Backlog)
	}
	return "FAIL: " + st.Why
}

// settle waits until nothing is owed, or for at most d; it reports
// whether the backlog drained.
func settle(ctx context.Context, owed func() int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for owed() > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	return true
}

func (r SustainResult) table(w io.Writer) {
	b := r.Baseline
	to := "a relay"
	if r.Reference != nil {
		to = "the reference forwarder, then to a relay"
	}
	fmt.Fprintf(w, "sustain: open-loop webhooks at rising rates, %gs a step, to %s (%s) fanning out to %d targets\n", r.StepS, to, r.Store, r.targetsServed)
	fmt.Fprintf(w, "baseline: %.0f req/s closed-loop (bare handler; p50 %s, p99 %s)\n\n", b.ReqPerSec, b.P50.Round(10*time.Microsecond), b.P99.Round(10*time.Microsecond))
	if ref := r.Reference; ref != nil {
		fmt.Fprintf(w, "reference forwarder: the HTTP work alone (no store, no dedup, queues in memory), a ceiling for any relay here\n")
		ref.steps(w)
		fmt.Fprintf(w, "\nrelay (%s):\n", r.Store)
	}
	r.steps(w)
	r.ladders(w)
	if ref := r.Reference; ref != nil {
		fmt.Fprintln(w)
		if r.RelayOverReference == nil {
			fmt.Fprintf(w, "relay/reference  none: the reference forwarder passed no step; start lower (--from, --by)\n")
			return
		}
		fmt.Fprintf(w, "reference        highest passing %.0f/s = %.2f of the baseline\n", ref.BestPerS, ref.BestRatio)
		which := "the relay's"
		if len(r.Ladders) > 0 {
			which = "the relay's first ladder's"
		}
		fmt.Fprintf(w, "relay/reference  %.2f (%s highest passing rate over the reference forwarder's)\n", *r.RelayOverReference, which)
	}
}

// steps prints the ladder's steps, its highest passing rate and its
// deliveries.
func (r SustainResult) steps(w io.Writer) {
	fmt.Fprintf(w, "%9s %6s %9s %8s %8s %7s %8s %8s %8s %8s  %s\n", "rate/s", "ratio", "sent/s", "sent", "acked", "failed", "p50 ms", "p99 ms", "max ms", "backlog", "verdict")
	for _, s := range r.Steps {
		v := "pass"
		if !s.Pass {
			v = "FAIL: " + s.Why
		}
		fmt.Fprintf(w, "%9.0f %6.2f %9.0f %8d %8d %7d %8.1f %8.1f %8.1f %8d  %s\n", s.RatePerS, s.Ratio, s.SentPerS, s.Sent, s.Acked, s.Failed, s.P50ms, s.P99ms, s.Maxms, s.Backlog, v)
	}
	fmt.Fprintf(w, "\n%9s %6s  %s\n", "rate/s", "ratio", "CPU per webhook sent, until its deliveries were made; cores busy while it sent")
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%9.0f %6.2f  %s\n", s.RatePerS, s.Ratio, s.CPU)
	}
	fmt.Fprintln(w)
	if r.BestPerS > 0 {
		fmt.Fprintf(w, "highest passing  %.0f/s = %.2f of the baseline (p99 ≤ %.0f ms, every webhook acked, backlog ≤ 1s)\n", r.BestPerS, r.BestRatio, r.P99LimitMS)
	} else {
		fmt.Fprintf(w, "highest passing  none: the first step failed\n")
	}
	fmt.Fprintf(w, "lost             %d\nduplicated       %d\ndrain            %.1fs after the last step\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
	if r.LoadAvg != "" {
		fmt.Fprintf(w, "load average     %s (the machine's, at the end)\n", r.LoadAvg)
	}
}

// ladders prints the ladders of --shaped after this one and compares them.
func (r SustainResult) ladders(w io.Writer) {
	if len(r.Ladders) == 0 {
		return
	}
	bests := []string{fmt.Sprintf("unshaped %.0f/s", r.BestPerS)}
	unshaped := r.BestPerS
	for _, l := range r.Ladders {
		if !l.IsShaped {
			unshaped += l.BestPerS
		}
		fmt.Fprintln(w)
		l.table(w)
		bests = append(bests, fmt.Sprintf("%s %.0f/s", map[bool]string{true: "shaped", false: "unshaped"}[l.IsShaped], l.BestPerS))
	}
	fmt.Fprintf(w, "\nhighest passing  %s, in the order run\n", strings.Join(bests, ", "))
	if unshaped > 0 {
		fmt.Fprintf(w, "shaped/unshaped  %.2f (the shaped ladders' highest passing rates over the unshaped ones', summed)\n", r.ShapedOverUnshaped)
	} else {
		fmt.Fprintf(w, "shaped/unshaped  none: no unshaped ladder passed a step; start lower (--from, --by)\n")
	}
}
