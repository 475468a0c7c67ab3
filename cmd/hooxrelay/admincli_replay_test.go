package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay"
)

// replay shows its dry run, runs the replay with progress until it is
// done; replays lists it; replay cancel of an ended one says so.
func TestReplayCommands(t *testing.T) {
	ingestURL, target := adminRelay(t)
	target.gone.Store(false)
	sendHoox(t, ingestURL, `{"task":"video_generate","job_id":"rp_1","status":"completed"}`)
	sendHoox(t, ingestURL, `{"task":"video_generate","job_id":"rp_2","status":"completed"}`)
	sendHoox(t, ingestURL, `{"task":"avatar_create","avatar_id":"av_1","look_id":"l","status":"completed"}`)
	waitCounts(t, map[string][2]int{"media": {0, 2}, "audit": {0, 3}})

	out, _ := cli(t, "replay", "--since", "1h", "--dry-run")
	if out != "3 events; the replay would requeue or create 5 deliveries\n" {
		t.Errorf("replay --dry-run printed %q", out)
	}
	out, _ = cli(t, "replay", "--since", "1h", "--task", "video_generate", "--target", "media", "--dry-run")
	if out != "2 events; the replay would requeue or create 2 deliveries\n" {
		t.Errorf("replay --task --target --dry-run printed %q", out)
	}
	out, stderr := cli(t, "replay", "--since", "1h", "--rate", "1000")
	id := regexp.MustCompile(`rpl_[0-9A-Z]{26}`).FindString(out)
	want := "3 events; the replay would requeue or create 5 deliveries\nreplay " + id + " started at 1000 events a second\nreplay " + id +
		" done: 3 events, 5 deliveries requeued or created\n"
	if id == "" || out != want {
		t.Errorf("replay printed %q, want %q", out, want)
	}
	if !strings.Contains(stderr, "replay "+id+": 3 of 3 events, 5 deliveries requeued or created\n") {
		t.Errorf("replay showed the progress %q, want a line per step ending at 3 of 3", stderr)
	}
	waitCounts(t, map[string][2]int{"media": {0, 2}, "audit": {0, 3}})

	args := []string{"replays", "--json"}
	out, _ = cli(t, args...)
	var ans struct{ Replays []relay.ReplayJSON }
	decodeStrict(t, args, out, &ans)
	if len(ans.Replays) != 1 || ans.Replays[0].ReplayID != id || ans.Replays[0].State != relay.ReplayDone {
		t.Errorf("replays --json = %+v, want the one replay, done", ans.Replays)
	}
	out, _ = cli(t, "replays")
	if !strings.Contains(out, id+"  done   3/3") {
		t.Errorf("replays printed %q, want %s done 3/3", out, id)
	}
	out, _ = cli(t, "replay", "cancel", id)
	if out != "replay "+id+" had already ended: done\n" {
		t.Errorf("replay cancel of a done replay printed %q", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"replay"}, 2, "--since is required"},
		{[]string{"replay", "--since", "1h", "--rate", "0"}, 2, "--rate must be above 0"},
		{[]string{"replay", "--since", "1h", "--target", "nobody"}, 1, `targets: "nobody" is not a target of the config`},
		{[]string{"replay", "cancel", "rpl_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1, "not found"},
	} {
		_, stderr, code := runCmd(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("hooxrelay %q: exit %d, stderr %q; want exit %d saying %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}

// On a terminal the progress is a bar redrawn in place.
func TestReplayProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := &replayProgress{w: &b, tty: true}
	p.show(relay.ReplayJSON{ReplayID: "rpl_x", State: relay.ReplayRunning})
	p.show(relay.ReplayJSON{ReplayID: "rpl_x", State: relay.ReplayRunning, EventsTotal: 4, EventsDone: 1, Deliveries: 1})
	p.show(relay.ReplayJSON{ReplayID: "rpl_x", State: relay.ReplayRunning, EventsTotal: 4, EventsDone: 1, Deliveries: 1})
	p.end()
	want := "\r[..............................] counting the events\033[K" +
		"\r[#######.......................] 1 of 4 events, 1 delivery requeued or created\033[K\n"
	if b.String() != want {
		t.Errorf("progress drew %q, want %q", b.String(), want)
	}
}
