package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

// The replay commands: replay (with cancel) and replays.

// replayPoll is how often "replay" asks how far the replay got. A
// variable for tests.
var replayPoll = 500 * time.Millisecond

type replayFlags struct {
	since, until            string
	tasks, statuses, target []string
	rate                    float64
	dryRun, noWait          bool
}

func newReplayCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("replay --since WHEN [flags]", "send stored events again through the routes as they are now, with progress",
		fmt.Sprintf(`Sends the events received since --since (and before --until, default now)
again, oldest first, through the routes of the relay's config as they are
now: for each event and each target the routes give it (only the --target
ones, when given), a delivered or dead delivery is put back in line with a
fresh budget, a target without a delivery for the event gets one, and a
pending delivery is left alone. The attempts carry the header
Hooxrelay-Replay with the replay's id. A target added to a route last week
gets last week's events this way.

WHEN is an RFC 3339 time (2026-12-01T08:00:00Z) or a duration back from
now (2h, 90m). --task and --status (the payload's) narrow the events;
each can be given more than once.

It first shows what the replay would do (a dry run: how many events, and
how many deliveries it would requeue or create), then, unless --dry-run,
starts it and shows its progress (a bar on a terminal, a line per step
elsewhere) until it ends. The replay runs in the relay, paced at --rate
events a second (default %d), and goes on if this command is stopped or
the relay restarts; "hooxrelay replay cancel ID" stops it and
"hooxrelay replays" lists them. Exit status 1 when it is cancelled or
fails. Calls POST /api/v1/replays, then GET /api/v1/replays/ID.`, relay.DefaultReplayRate), noArgs)
	var fl replayFlags
	f := cmd.Flags()
	f.StringVar(&fl.since, "since", "", "replay the events received since `WHEN`: an RFC 3339 time or a duration back from now (required)")
	f.StringVar(&fl.until, "until", "", "and before `WHEN` (default now)")
	f.StringArrayVar(&fl.tasks, "task", nil, "only events of this payload `TASK` (repeatable)")
	f.StringArrayVar(&fl.statuses, "status", nil, "only events of this payload `STATUS` (repeatable)")
	f.StringArrayVar(&fl.target, "target", nil, "only to this target `NAME`, among those the routes give each event (repeatable)")
	f.Float64Var(&fl.rate, "rate", relay.DefaultReplayRate, fmt.Sprintf("events per second, above 0 and at most %d", relay.MaxReplayRate))
	f.BoolVar(&fl.dryRun, "dry-run", false, "show what the replay would do, and send nothing")
	f.BoolVar(&fl.noWait, "no-wait", false, "start the replay and return without following it")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return replay(cmd.Context(), e, o, fl) }
	cancel, co := adminCmd("cancel REPLAY_ID", "stop a running replay",
		`Stops a running replay after the batch in progress. What it already put
back in line stays there. Calls DELETE /api/v1/replays/REPLAY_ID.`, oneArg("a REPLAY_ID", `"hooxrelay replays" lists them`))
	cancel.GroupID = ""
	cancel.RunE = func(cmd *cobra.Command, args []string) error { return cancelReplay(cmd.Context(), e, co, args[0]) }
	cmd.AddCommand(cancel)
	return cmd
}

func replay(ctx context.Context, e *env, o *adminOpts, fl replayFlags) error {
	if fl.since == "" {
		return usagef("--since is required, e.g. hooxrelay replay --since 2h --dry-run")
	}
	if !(fl.rate > 0 && fl.rate <= relay.MaxReplayRate) {
		return usagef("--rate must be above 0 and at most %d, got %v", relay.MaxReplayRate, fl.rate)
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	c.Answer = nil // --json prints the answers that matter, not each poll
	req := relay.ReplayRequestJSON{Since: fl.since, Until: fl.until, Task: fl.tasks, Status: fl.statuses, Targets: fl.target, Rate: &fl.rate}
	dry, err := c.DryRunReplay(ctx, req)
	if err != nil {
		return err
	}
	if o.json && fl.dryRun {
		return writeJSONOut(e.stdout, dry)
	}
	if !o.json {
		fmt.Fprintf(e.stdout, "%s; the replay would requeue or create %s\n", plural(dry.Events, "event", "events"),
			plural(dry.Deliveries, "delivery", "deliveries"))
	}
	if fl.dryRun {
		return nil
	}
	r, err := c.StartReplay(ctx, req)
	if err != nil {
		return err
	}
	if !o.json {
		fmt.Fprintf(e.stdout, "replay %s started at %v events a second\n", r.ReplayID, r.Rate)
	}
	if !fl.noWait {
		if r, err = followReplay(ctx, e, c, r); err != nil {
			return err
		}
	}
	if o.json {
		return writeJSONOut(e.stdout, r)
	}
	return replayOutcome(e.stdout, r, fl.noWait)
}

// followReplay shows r's progress until it ends, or ctx does (the replay
// then goes on in the relay).
func followReplay(ctx context.Context, e *env, c *adminclient.Client, r relay.ReplayJSON) (relay.ReplayJSON, error) {
	p := &replayProgress{w: e.stderr, tty: interactive(e.stderr)}
	defer p.end()
	t := time.NewTicker(replayPoll)
	defer t.Stop()
	for r.State == relay.ReplayRunning {
		p.show(r)
		select {
		case <-ctx.Done():
			p.end()
			fmt.Fprintf(e.stderr, "stopped following; replay %s goes on in the relay (hooxrelay replay cancel %s stops it)\n", r.ReplayID, r.ReplayID)
			return r, ctx.Err()
		case <-t.C:
		}
		next, err := c.Replay(ctx, r.ReplayID)
		var ae *adminclient.APIError
		if errors.As(err, &ae) && ae.StatusCode == 503 {
			continue // the relay is busy or restarting; the replay resumes with it
		}
		if err != nil {
			return r, fmt.Errorf("%w; replay %s goes on in the relay (hooxrelay replays shows it)", err, r.ReplayID)
		}
		r = next
	}
	p.show(r)
	return r, nil
}

// replayOutcome prints how r ended; cancelled and failed are errors.
func replayOutcome(w io.Writer, r relay.ReplayJSON, started bool) error {
	switch r.State {
	case relay.ReplayRunning:
		if started {
			fmt.Fprintf(w, "follow it with: hooxrelay replays; stop it with: hooxrelay replay cancel %s\n", r.ReplayID)
		}
		return nil
	case relay.ReplayDone:
		fmt.Fprintf(w, "replay %s done: %s, %s requeued or created\n", r.ReplayID, plural(r.EventsDone, "event", "events"),
			plural(r.Deliveries, "delivery", "deliveries"))
		return nil
	case relay.ReplayCancelled:
		return fmt.Errorf("replay %s was cancelled after %d of %d events (%s requeued or created)", r.ReplayID, r.EventsDone, r.EventsTotal,
			plural(r.Deliveries, "delivery", "deliveries"))
	}
	return fmt.Errorf("replay %s failed after %d of %d events: %s; start a new one for the rest with --since set to the last event's time",
		r.ReplayID, r.EventsDone, r.EventsTotal, orDefault(r.Error, "no reason given"))
}

func writeJSONOut(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printJSON(w, b)
}

// replayProgress shows "X of N events": redrawn in place with a bar on a
// terminal, a line per change elsewhere.
type replayProgress struct {
	w     io.Writer
	tty   bool
	drawn bool
	last  string
}

func (p *replayProgress) show(r relay.ReplayJSON) {
	line := fmt.Sprintf("%d of %d events, %s requeued or created", r.EventsDone, r.EventsTotal, plural(r.Deliveries, "delivery", "deliveries"))
	if r.EventsTotal == 0 && r.State == relay.ReplayRunning {
		line = "counting the events"
	}
	if line == p.last {
		return
	}
	p.last = line
	if !p.tty {
		fmt.Fprintf(p.w, "replay %s: %s\n", r.ReplayID, line)
		return
	}
	fill := 0
	if r.EventsTotal > 0 {
		fill = barWidth * min(r.EventsDone, r.EventsTotal) / r.EventsTotal
	}
	fmt.Fprintf(p.w, "\r[%s%s] %s\033[K", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), line)
	p.drawn = true
}

func (p *replayProgress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func cancelReplay(ctx context.Context, e *env, o *adminOpts, id string) error {
	c, err := o.client(e)
	if err != nil {
		return err
	}
	r, err := c.CancelReplay(ctx, id)
	if err != nil || o.json {
		return err
	}
	if r.State == relay.ReplayCancelled {
		fmt.Fprintf(e.stdout, "cancelled replay %s after %d of %d events (%s requeued or created)\n", r.ReplayID, r.EventsDone, r.EventsTotal,
			plural(r.Deliveries, "delivery", "deliveries"))
		return nil
	}
	fmt.Fprintf(e.stdout, "replay %s had already ended: %s\n", r.ReplayID, r.State)
	return nil
}

func newReplaysCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("replays", "list the replays, newest first, with their progress",
		`Lists the replays, newest first: id, state (running, done, cancelled or
failed), events done of the total, deliveries requeued or created, the
time range, and the filters. A resend of one delivered delivery
("hooxrelay retry") is a replay of one event and shows here too.
Calls GET /api/v1/replays.`, noArgs)
	var limit int
	limitFlag(cmd.Flags(), &limit, "replays")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return listReplays(cmd.Context(), e, o, limit) }
	return cmd
}

func listReplays(ctx context.Context, e *env, o *adminOpts, limit int) error {
	rs, err := fetchRows(ctx, e, o, limit, "no replays", func(c *adminclient.Client) ([]relay.ReplayJSON, error) { return c.Replays(ctx, limit) })
	if err != nil || len(rs) == 0 {
		return err
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "REPLAY\tSTATE\tEVENTS\tDELIVERIES\tSINCE\tUNTIL\tFILTERS")
	for _, r := range rs {
		var filters []string
		for name, vs := range map[string][]string{"task": r.Task, "status": r.Status, "target": r.Targets} {
			if len(vs) > 0 {
				filters = append(filters, name+"="+strings.Join(vs, ","))
			}
		}
		if r.EventID != "" {
			filters = append(filters, "event="+r.EventID)
		}
		slices.Sort(filters)
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\n", r.ReplayID, r.State, r.EventsDone, r.EventsTotal, r.Deliveries,
			timeString(r.Since), timeString(r.Until), orDefault(strings.Join(filters, " "), "-"))
	}
	return tw.Flush()
}

// fetchRows is the first half of a list command: it checks --limit, calls
// fetch, and returns the rows to print as a table: none with --json (the
// answer is printed) or when there are none (none is printed).
func fetchRows[T any](ctx context.Context, e *env, o *adminOpts, limit int, none string, fetch func(*adminclient.Client) ([]T, error)) ([]T, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	c, err := o.client(e)
	if err != nil {
		return nil, err
	}
	rows, err := fetch(c)
	if err != nil || o.json {
		return nil, err
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, none)
	}
	return rows, nil
}
