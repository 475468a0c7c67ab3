package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

// explain: what happened to one event, as a story.

func newExplainCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("explain EVENT_ID", "tell what happened to one event: its trail at the ingress and each delivery's timeline",
		`Tells what happened to one event, in the order it happened. First its
trail: the source it came in on, how the request was verified, its dedup
key (and how many later requests with the same key were answered as its
duplicates, the last when), the routes that matched and the targets they
chose (and targets given a delivery later, by a replay). Then for each
delivery a timeline: when it became due, what held it back before an
attempt (a paused target, an open breaker, the rate limit) and for how
long, each attempt with its time, HTTP status, duration and an excerpt of
the error or the target's answer, the replay that requeued it, and where
it stands now. Waits are those the relay that made the attempt knew of;
events stored before this version have no trail, and their attempts no
waits. Calls GET /api/v1/events/EVENT_ID; --json prints that answer.

Example:
  hooxrelay events --job-id run_0123     # find the event
  hooxrelay explain evt_01HMC4ZP6S8J3W0V2K5Q9X7B1D`, oneArg("an EVENT_ID", `"hooxrelay events --job-id ID" finds one`))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := o.client(e)
		if err != nil {
			return err
		}
		ev, err := c.Event(cmd.Context(), args[0])
		if err != nil || o.json {
			return err
		}
		return explain(e.stdout, &ev)
	}
	return cmd
}

// stamp formats a time on a timeline, to the millisecond.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// waitReasons say what an attempt's Waited means.
var waitReasons = map[string]string{
	relay.WaitingPaused:      "the target was paused",
	relay.WaitingBreakerOpen: "the target's circuit breaker was open",
	relay.WaitRateLimit:      "the target's rate limit",
}

func explain(w io.Writer, ev *relay.EventDetailJSON) error {
	ids := ""
	for _, id := range []struct{ name, v string }{{"job", ev.JobID}, {"avatar", ev.AvatarID}, {"look", ev.LookID}} {
		if id.v != "" {
			ids += fmt.Sprintf(", %s %s", id.name, id.v)
		}
	}
	fmt.Fprintf(w, "event %s: %s %s%s, received %s\n", ev.EventID, ev.Task, ev.Status, ids, stamp(ev.ReceivedAt))
	tr := ev.Trail
	tw := newTable(w)
	fmt.Fprintln(tw, "\ntrail")
	from := ""
	if ev.RemoteAddr != "" {
		from = " from " + ev.RemoteAddr
	}
	fmt.Fprintf(tw, "  source\t%s%s\n", tr.Source, from)
	if tr.Verify != nil {
		fmt.Fprintf(tw, "  verify\t%s: %s\n", tr.Verify.Kind, strings.ReplaceAll(tr.Verify.Result, "_", " "))
	} else {
		fmt.Fprintf(tw, "  verify\tnot recorded (stored by an earlier hooxrelay)\n")
	}
	dedup := tr.DedupKey + " (new)"
	if tr.Duplicates > 0 {
		last := ""
		if tr.LastDuplicateAt != nil {
			last = ", the last at " + stamp(*tr.LastDuplicateAt)
		}
		what := plural(tr.Duplicates, "request", "requests") + " answered as duplicates"
		if tr.Duplicates == 1 {
			what = "1 request answered as a duplicate"
		}
		dedup = fmt.Sprintf("%s (new; then %s of this event%s)", tr.DedupKey, what, last)
	}
	fmt.Fprintf(tw, "  dedup key\t%s\n", dedup)
	fmt.Fprintf(tw, "  routes\t%s\n", orDefault(strings.Join(tr.Routes, ", "), "none matched"))
	targets := orDefault(strings.Join(tr.Targets, ", "), "none: nothing is delivered")
	if len(tr.AddedTargets) > 0 {
		targets += "; added later: " + strings.Join(tr.AddedTargets, ", ")
	}
	fmt.Fprintf(tw, "  targets\t%s\n", targets)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range ev.Deliveries {
		if err := timeline(w, ev, d); err != nil {
			return err
		}
	}
	return nil
}

// timeline prints one delivery's story: due, waits, attempts, now.
func timeline(w io.Writer, ev *relay.EventDetailJSON, d relay.DeliveryDetailJSON) error {
	fmt.Fprintf(w, "\ndelivery to %s: %s\n", d.Target, deliverySummary(d.DeliveryJSON))
	tw := newTable(w)
	fmt.Fprintf(tw, "  %s\tdue\n", stamp(ev.ReceivedAt))
	for _, a := range d.History {
		if a.Waited != "" {
			waited := time.Duration(a.WaitedMS * float64(time.Millisecond))
			reason := orDefault(waitReasons[a.Waited], a.Waited)
			fmt.Fprintf(tw, "  %s\twaited %s: %s\n", stamp(a.StartedAt.Add(-waited)), waited.Round(time.Millisecond), reason)
		}
		line := fmt.Sprintf("attempt %d\t%s\t%s", a.Attempt, statusString(a.Status),
			time.Duration(a.DurationMS*float64(time.Millisecond)).Round(time.Microsecond))
		switch {
		case a.Error != "" && a.Body != "":
			line += fmt.Sprintf("\terror: %s; answer: %s", oneLine(a.Error, 60), oneLine(a.Body, 40))
		case a.Error != "":
			line += "\terror: " + oneLine(a.Error, 80)
		case a.Body != "":
			line += "\tanswer: " + oneLine(a.Body, 60)
		default:
			line += "\t-"
		}
		if a.Replay != "" {
			line += " (replay " + a.Replay + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", stamp(a.StartedAt), line)
	}
	switch {
	case d.State == relay.Pending && d.Waiting != "":
		until := ""
		if d.WaitingUntil != nil {
			until = " until " + stamp(*d.WaitingUntil)
		}
		fmt.Fprintf(tw, "  %s\tnext attempt, held back: %s%s\n", stamp(d.NextAttemptAt), d.Waiting, until)
	case d.State == relay.Pending:
		fmt.Fprintf(tw, "  %s\tnext attempt\n", stamp(d.NextAttemptAt))
	default:
		fmt.Fprintf(tw, "  %s\t%s\n", stamp(d.UpdatedAt), d.State)
	}
	return tw.Flush()
}
