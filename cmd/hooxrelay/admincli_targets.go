package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

// The admin commands that act on deliveries and targets, and status.

// retryDeadChunk is how many dead letters one request of retry-dead
// requeues. A variable for tests.
var retryDeadChunk = adminclient.DefaultChunk

func newRetryCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("retry DELIVERY_ID", "put one delivery back in line now, or send a delivered one again",
		`Puts one dead or pending delivery back in line, due now, with a fresh budget
(max_attempts and max_age count from now; attempt numbers go on).
DELIVERY_ID is EVENT_ID:TARGET, as "hooxrelay deliveries" lists it. A
delivered delivery is sent again the same way, as a replay of its event to
its target: its attempts carry Hooxrelay-Replay, and "hooxrelay replays"
lists it. One being attempted right now is refused; try again when the
attempt ends.
Calls POST /api/v1/deliveries/DELIVERY_ID/retry.`, oneArg("a DELIVERY_ID (EVENT_ID:TARGET)", `"hooxrelay deliveries --state dead" lists them`))
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return retry(cmd.Context(), e, o, args[0]) }
	return cmd
}

func retry(ctx context.Context, e *env, o *adminOpts, id string) error {
	if _, _, ok := relay.SplitDeliveryID(id); !ok {
		return usagef("DELIVERY_ID is EVENT_ID:TARGET, got %q; \"hooxrelay event %s\" lists that event's deliveries", id, id)
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	d, err := c.Retry(ctx, id)
	if err != nil || o.json {
		return err
	}
	if d.ReplayID != "" {
		fmt.Fprintf(e.stdout, "resending %s as replay %s: attempt %d is due now\n", d.DeliveryID, d.ReplayID, d.Attempts+1)
		return nil
	}
	fmt.Fprintf(e.stdout, "requeued %s: attempt %d is due now\n", d.DeliveryID, d.Attempts+1)
	return nil
}

func newRetryDeadCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("retry-dead --target NAME", "put every dead delivery of a target back in line, with progress",
		fmt.Sprintf(`Puts every dead delivery of a target back in line, due now, each with a fresh
budget, in chunks of %d, showing progress on standard error; then prints
how many were requeued. It stops after as many as were dead when it
started, so that a target that still fails (and kills them again) cannot
keep it going forever; run it again for any that are left.
Calls GET /api/v1/targets, then POST /api/v1/targets/NAME/retry-dead.`, retryDeadChunk), noArgs)
	target := cmd.Flags().String("target", "", "the target `NAME` whose dead deliveries to requeue (required)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return retryDead(cmd.Context(), e, o, *target) }
	return cmd
}

func retryDead(ctx context.Context, e *env, o *adminOpts, target string) error {
	if target == "" {
		return usagef("--target is required, e.g. hooxrelay retry-dead --target media (hooxrelay targets lists them)")
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	c.Answer = nil // --json prints the total, not each chunk's
	p := &progress{w: e.stderr, tty: interactive(e.stderr)}
	done, err := c.RetryDead(ctx, target, retryDeadChunk, p.show)
	p.end()
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(e.stdout, fmt.Appendf(nil, `{"requeued":%d}`, done))
	}
	if done == 0 {
		fmt.Fprintf(e.stdout, "no dead deliveries to %s\n", target)
		return nil
	}
	fmt.Fprintf(e.stdout, "requeued %s to %s; they are due now\n", plural(done, "dead delivery", "dead deliveries"), target)
	return nil
}

// progress shows "requeued X of N": redrawn in place with a bar on a
// terminal, one line per step elsewhere.
type progress struct {
	w     io.Writer
	tty   bool
	drawn bool
}

const barWidth = 30

func (p *progress) show(n, total int) {
	total = max(total, n)
	if !p.tty {
		fmt.Fprintf(p.w, "requeued %d of %d\n", n, total)
		return
	}
	fill := barWidth
	if total > 0 {
		fill = barWidth * n / total
	}
	fmt.Fprintf(p.w, "\r[%s%s] requeued %d of %d", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), n, total)
	p.drawn = true
}

// end moves past a bar drawn in place.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// newPauseCmd is "pause", or "resume" when pause is false.
func newPauseCmd(e *env, pause bool) *cobra.Command {
	verb, short := "pause", "stop attempts to a target; deliveries wait, nothing is dropped"
	desc := `Stops attempts to a target: webhooks keep being accepted and their
deliveries wait, pending, until "hooxrelay resume TARGET". Nothing is
dropped, and the pause outlasts a restart of the relay.
Calls POST /api/v1/targets/TARGET/pause.`
	if !pause {
		verb, short = "resume", "restart attempts to a paused target"
		desc = `Restarts attempts to a target paused by "hooxrelay pause"; its pending
deliveries are attempted again.
Calls POST /api/v1/targets/TARGET/resume.`
	}
	cmd, o := adminCmd(verb+" TARGET", short, desc, oneArg("a TARGET", `"hooxrelay targets" lists them`))
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return pauseTarget(cmd.Context(), e, o, verb, args[0]) }
	return cmd
}

func pauseTarget(ctx context.Context, e *env, o *adminOpts, verb, target string) error {
	c, err := o.client(e)
	if err != nil {
		return err
	}
	act := c.Pause
	if verb == "resume" {
		act = c.Resume
	}
	ans, err := act(ctx, target)
	if err != nil || o.json {
		return err
	}
	if ans.Paused {
		fmt.Fprintf(e.stdout, "paused %s: its deliveries wait until \"hooxrelay resume %s\"\n", ans.Name, ans.Name)
	} else {
		fmt.Fprintf(e.stdout, "resumed %s: its pending deliveries are attempted again\n", ans.Name)
	}
	return nil
}

func newTargetsCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("targets", "list the targets with their breaker, pause and pending/dead/delivered counts",
		`Lists the targets of a relay with their URL, circuit breaker state (closed,
open or half-open), whether they are paused, and how many of their
deliveries are pending, dead and delivered. Calls GET /api/v1/targets.`, noArgs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return listTargets(cmd.Context(), e, o) }
	return cmd
}

func listTargets(ctx context.Context, e *env, o *adminOpts) error {
	c, err := o.client(e)
	if err != nil {
		return err
	}
	ts, err := c.Targets(ctx)
	if err != nil || o.json {
		return err
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stdout, "no targets")
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "NAME\tURL\tBREAKER\tPAUSED\tPENDING\tDEAD\tDELIVERED")
	for _, t := range ts {
		paused := "no"
		if t.Paused {
			paused = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", t.Name, t.URL, t.Breaker, paused, t.Pending, t.Dead, t.Delivered)
	}
	return tw.Flush()
}

func newStatusCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("status", "show which relay answers at --admin: version, config hash, store, last reload",
		`Shows which relay answers at --admin: its version, when it started, the
hash of the config it runs, its store, and how its last config reload
(SIGHUP) went. Calls GET /api/v1/status.`, noArgs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return showStatus(cmd.Context(), e, o) }
	return cmd
}

func showStatus(ctx context.Context, e *env, o *adminOpts) error {
	c, err := o.client(e)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil || o.json {
		return err
	}
	tw := newTable(e.stdout)
	fmt.Fprintf(tw, "relay\t%s\n", c.URL)
	fmt.Fprintf(tw, "version\t%s\n", orDefault(st.Version, "-"))
	started := timeString(st.StartedAt)
	if !st.StartedAt.IsZero() {
		started += fmt.Sprintf(" (up %s)", time.Since(st.StartedAt).Round(time.Second))
	}
	fmt.Fprintf(tw, "started\t%s\n", started)
	fmt.Fprintf(tw, "config hash\t%s\n", orDefault(st.ConfigHash, "-"))
	fmt.Fprintf(tw, "store\t%s\n", orDefault(st.Store, "-"))
	fmt.Fprintf(tw, "reloads\t%d\n", st.Reloads)
	if r := st.LastReload; r != nil {
		outcome := "ok"
		if !r.OK {
			outcome = "failed: " + oneLine(r.Error, 100)
		}
		fmt.Fprintf(tw, "last reload\t%s %s\n", timeString(r.At), outcome)
	}
	return tw.Flush()
}
