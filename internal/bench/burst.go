package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
)

var burst = &Scenario{
	Name:  "burst",
	Short: "20,000 webhooks at once to a target limited to 200/s: ack latency, delivery rate, a time series and its SVG plot",
	Long: `Sends --events webhooks as fast as --senders senders can to a relay (embedded
store, fsync'd before each ack) whose one target is limited to --rate
deliveries per second. Every webhook must be acked fast, whatever the
target's pace, and delivered at the limit afterwards.
It prints the ack latency (p50, p99, max) and ack rate, the delivery rate
over the steady part (from the 10th to the 90th percentile of delivery
times; it should be within 5% of the limit), how many acked events were
lost (must be 0) or delivered twice, and how long delivery went on after
the last ack. It records acks/s, deliveries/s and the p99 ack latency per
--bucket and, with --svg, plots them.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &burstFlags{}
		f.Int64Var(&o.events, "events", 20000, "webhooks to send")
		f.Float64Var(&o.rps, "rate", 200, "the target's rate limit, deliveries per second")
		f.IntVar(&o.senders, "senders", 64, "concurrent senders")
		f.StringVar(&o.svgPath, "svg", "", "write a plot of the time series to this SVG file")
		f.DurationVar(&o.bucket, "bucket", 100*time.Millisecond, "width of a time-series bucket")
		f.DurationVar(&o.wait, "wait", 0, "longest wait for the deliveries after the last ack (default: twice events/rate, at least 1m)")
		dirFlag(f, &o.dir, "the relay's store and log")
		jsonFlag(f, &o.asJSON)
		redisFlag(f, &o.redisURL)
		return o.run
	},
}

// BurstResult is the outcome of "bench burst".
type BurstResult struct {
	Scenario  string   `json:"scenario"`
	Events    int64    `json:"events"`
	Senders   int      `json:"senders"`
	LimitPerS float64  `json:"limit_per_s"`
	Acks      AckStats `json:"acks"`
	// DeliveryRate is measured between the 10th and the 90th percentile
	// of the delivery times: the steady part, without the start and the
	// tail.
	DeliveryRate         float64 `json:"delivery_rate_per_s"`
	DeliveryRateOff      float64 `json:"delivery_rate_off_pct"`
	LastDeliveryS        float64 `json:"last_delivery_s"`
	DrainAfterAcksS      float64 `json:"drain_after_last_ack_s"`
	Delivery             Drain   `json:"delivery"`
	Series               Series  `json:"series"`
	SVG                  string  `json:"svg,omitempty"`
	firstDeliveryS       float64
	steadyFrom, steadyTo float64
}

// burstFlags are the flags of "bench burst".
type burstFlags struct {
	events   int64
	rps      float64
	senders  int
	svgPath  string
	bucket   time.Duration
	wait     time.Duration
	dir      string
	asJSON   bool
	redisURL string
}

func (o *burstFlags) run(ctx context.Context, env *Env) error {
	if o.events < 1 || o.rps <= 0 || o.senders < 1 || o.bucket <= 0 {
		return usagef("--events, --rate, --senders and --bucket must be positive")
	}
	if o.wait == 0 {
		o.wait = max(time.Minute, time.Duration(2*float64(o.events)/o.rps*float64(time.Second)))
	}
	r, err := newRun(ctx, env, "burst", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "bench"), 30*time.Second)
	if err != nil {
		return err
	}
	ser := newTimeline(o.bucket)
	tgt := &target{name: "limited", series: ser, keepTimes: true}
	if err := r.start(tgt); err != nil {
		return err
	}
	rel, err := r.serve(storeYAML, targetConfig{"limited", tgt.url(), fmt.Sprintf("rate_limit: {rps: %g, burst: 1}, max_in_flight: 32", o.rps)})
	if err != nil {
		return err
	}
	d, err := newDriver(rel.ingress, o.senders)
	if err != nil {
		return err
	}
	d.events, d.series = o.events, ser

	fmt.Fprintf(env.Progress, "burst: %d webhooks from %d senders; the target takes %g/s\n", o.events, o.senders, o.rps)
	ser.mu.Lock()
	ser.start = time.Now()
	ser.mu.Unlock()
	stopProgress := r.progress(func() string {
		return fmt.Sprintf("%d acked, %d delivered (%s)", d.acks.Load(), tgt.distinct.Load(), time.Since(ser.start).Round(time.Second))
	})
	defer stopProgress()
	d.run(r.ctx, r.ctx)
	stopProgress()
	acks := d.stats()
	drain := r.drain([]*target{tgt}, d.ackedIDs(), time.Now(), o.wait)
	if err := r.stop(rel); err != nil {
		return err
	}

	res := BurstResult{Scenario: "burst", Events: o.events, Senders: o.senders, LimitPerS: o.rps, Acks: acks, Delivery: drain, Series: ser.export()}
	if ts := tgt.deliveryTimes(); len(ts) > 0 {
		res.firstDeliveryS = ts[0].Sub(ser.start).Seconds()
		res.LastDeliveryS = ts[len(ts)-1].Sub(ser.start).Seconds()
		res.DrainAfterAcksS = max(0, ts[len(ts)-1].Sub(d.lastAck).Seconds())
		if i10, i90 := len(ts)/10, len(ts)*9/10; i90 > i10 && ts[i90].After(ts[i10]) {
			res.DeliveryRate = float64(i90-i10) / ts[i90].Sub(ts[i10]).Seconds()
			res.DeliveryRateOff = 100 * (res.DeliveryRate - o.rps) / o.rps
			res.steadyFrom, res.steadyTo = ts[i10].Sub(ser.start).Seconds(), ts[i90].Sub(ser.start).Seconds()
		}
	}
	if o.svgPath != "" {
		note := fmt.Sprintf("%d webhooks from %d senders at once; one target limited to %g deliveries/s; %s; lost %d, duplicated %d",
			o.events, o.senders, o.rps, storeName, drain.Lost, drain.Dups)
		if err := writeSVGFile(o.svgPath, "hooxrelay bench burst", note, burstPanels(res)); err != nil {
			return fmt.Errorf("--svg %q: %w", o.svgPath, err)
		}
		res.SVG = o.svgPath
	}
	return r.report(o.asJSON, res, drain)
}

func (r BurstResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "burst: %d webhooks from %d senders at once; the target is limited to %g/s\n\n", r.Events, r.Senders, r.LimitPerS)
	fmt.Fprintf(w, "acked       %d of %d in %.1fs (%.0f/s); p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", a.Acked, r.Events, a.AckSeconds, a.AckRate, a.P50ms, a.P99ms, a.Maxms)
	if a.Unacked > 0 {
		fmt.Fprintf(w, "not acked   %d (503: %d, other answers: %d, no answer: %d; first: %s)\n", a.Unacked, a.Unavailable, a.OtherStatus, a.NoAnswer, a.FirstError)
	}
	verdict := "within 5% of the limit"
	if math.Abs(r.DeliveryRateOff) > 5 {
		verdict = fmt.Sprintf("%+.1f%%: NOT within 5%% of the limit", r.DeliveryRateOff)
	}
	fmt.Fprintf(w, "delivered   %d at %.1f/s over the steady part, %.1fs to %.1fs (%s)\n", r.Delivery.Targets[0].Delivered, r.DeliveryRate, r.steadyFrom, r.steadyTo, verdict)
	fmt.Fprintf(w, "lost        %d\n", r.Delivery.Lost)
	fmt.Fprintf(w, "duplicated  %d\n", r.Delivery.Dups)
	fmt.Fprintf(w, "drain       the last delivery came %.1fs after the last ack (%.1fs after the first request)\n", r.DrainAfterAcksS, r.LastDeliveryS)
	if r.SVG != "" {
		fmt.Fprintf(w, "plot        %s\n", r.SVG)
	}
}

// burstPanels are the two charts of a burst: throughput over the whole
// run, and the ack latency while acks came in.
func burstPanels(r BurstResult) []plotPanel {
	s := r.Series
	width := float64(s.BucketMS) / 1000
	n := len(s.AcksPerS)
	xs := make([]float64, n)
	acks, dels, p99, p50, limit := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		xs[i] = (float64(i) + 0.5) * width
		acks[i], dels[i], limit[i] = s.AcksPerS[i], s.DeliveriesPS[i], r.LimitPerS
		if i > s.lastAckBucket {
			acks[i] = math.NaN() // nothing left to ack: no line along the floor
		}
		// Only whole buckets from the first delivery to the last.
		if float64(i+1)*width < r.firstDeliveryS || float64(i+1)*width > r.LastDeliveryS {
			dels[i] = math.NaN()
		}
		p99[i], p50[i] = math.NaN(), math.NaN()
		if s.AckP99ms[i] != nil {
			p99[i], p50[i] = *s.AckP99ms[i], *s.AckP50ms[i]
		}
	}
	total := float64(n) * width
	ackEnd := float64(s.lastAckBucket+1) * width
	return []plotPanel{
		{
			title:  fmt.Sprintf("Throughput: acked at once, delivered at the target's limit (per %d ms, log scale)", s.BucketMS),
			xlabel: "seconds since the first webhook", ylabel: "per second", logY: true, xmax: total,
			shade: [2]float64{0, ackEnd}, shadeLabel: "acking",
			lines: []plotLine{
				{label: "acked/s", color: "#1f77b4", xs: xs, ys: acks},
				{label: "delivered/s", color: "#2ca02c", xs: xs, ys: dels},
				{label: fmt.Sprintf("limit %g/s", r.LimitPerS), color: "#d62728", dash: true, xs: xs, ys: limit},
			},
		},
		{
			title: fmt.Sprintf("Ack latency while acking (per %d ms bucket; in all p50 %.1f ms, p99 %.1f ms, max %.1f ms)",
				s.BucketMS, r.Acks.P50ms, r.Acks.P99ms, r.Acks.Maxms),
			xlabel: "seconds since the first webhook", ylabel: "milliseconds", xmax: max(ackEnd*1.05, width),
			lines: []plotLine{
				{label: "p99 ack latency", color: "#9467bd", xs: xs[:s.lastAckBucket+1], ys: p99[:s.lastAckBucket+1]},
				{label: "p50 ack latency", color: "#8c564b", xs: xs[:s.lastAckBucket+1], ys: p50[:s.lastAckBucket+1]},
			},
		},
	}
}
