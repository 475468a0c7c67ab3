package relay_test

// The console's events page searches with every filter of GET
// /api/v1/events, shows a value it cannot read as an error on the page,
// and keeps the filters on the next page's link.

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/rules"
)

var errorRE = regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`)

func TestConsoleEventSearch(t *testing.T) {
	good := newSink(t, "good", ok)
	set := settingsFor(t, target(good))
	h := startRelay(t, set, "")
	job := h.send(t, videoBody("job_wanted"))
	h.send(t, videoBody("job_other"))
	avatar := h.send(t, `{"task":"avatar_create","avatar_id":"av_7","look_id":"look_a","status":"completed"}`)
	h.send(t, `{"task":"avatar_create","avatar_id":"av_7","look_id":"look_b","status":"completed"}`)
	h.waitDeliveries(t, "good", "delivered", 4, 10*time.Second)
	ev, err := h.store.Event(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	u := newUIClient(t, h)

	// listed returns the event ids the events page lists for query.
	listed := func(query string) []string {
		t.Helper()
		r := u.get("/ui/events?" + query)
		if r.status != http.StatusOK {
			t.Fatalf("GET /ui/events?%s: %s, want 200", query, r)
		}
		var ids []string
		for _, m := range eventLinkRE.FindAllSubmatch(r.body, -1) {
			ids = append(ids, string(m[1]))
		}
		return ids
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for query, want := range map[string]int{
		"job_id=job_wanted":                               1,
		"job_id=job_nobody":                               0,
		"avatar_id=av_7":                                  2,
		"avatar_id=av_7&look_id=look_a":                   1,
		"dedup_key=" + url.QueryEscape(ev.Event.DedupKey): 1,
		"since=1h":                                        4,
		"since=1h&task=avatar_create":                     2,
		"until=1h":                                        0,
		"since=" + url.QueryEscape(future):                0,
		"until=" + url.QueryEscape(future):                4,
		"task=video_generate&status=completed":            2,
		"job_id=+job_wanted+":                             1, // the form's stray spaces go
	} {
		if got := listed(query); len(got) != want {
			t.Errorf("GET /ui/events?%s lists %d events, want %d", query, len(got), want)
		}
	}
	if got := listed("job_id=job_wanted"); len(got) == 1 && got[0] != job {
		t.Errorf("the job id search found %s, want %s", got[0], job)
	}
	if got := listed("avatar_id=av_7&look_id=look_a"); len(got) == 1 && got[0] != avatar {
		t.Errorf("the avatar and look search found %s, want %s", got[0], avatar)
	}
	// The form shows the search it answers, and the event page links its
	// job id to the search for it.
	page := string(u.get("/ui/events?job_id=job_wanted&since=2h").body)
	for _, want := range []string{`name="job_id" value="job_wanted"`, `name="since" value="2h"`, `href="/ui/events">Clear</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the events page searching job_wanted lacks %s", want)
		}
	}
	if page := string(u.get("/ui/events/" + job).body); !strings.Contains(page, `href="/ui/events?job_id=job_wanted"`) {
		t.Errorf("the event page does not link its job id to the search for it:\n%s", page)
	}

	// A value the relay cannot read is an error on the page, the form kept.
	for _, query := range []string{"since=yesterday", "until=2026-13-01", "since=-2h"} {
		r := u.get("/ui/events?job_id=job_wanted&" + query)
		page := string(r.body)
		name := strings.SplitN(query, "=", 2)[0]
		msg := errorRE.FindStringSubmatch(page)
		if r.status != http.StatusBadRequest || msg == nil || !strings.HasPrefix(msg[1], name+": ") || !strings.Contains(page, `value="job_wanted"`) {
			t.Errorf("GET /ui/events?%s: %d, error %q; want 400 with an error naming %s above the form kept:\n%s", query, r.status, msg, name, page)
		}
	}
}

// The event page shows the trail (verification, routes, targets chosen,
// duplicates) and, per attempt, what held it back before.
func TestConsoleEventTrail(t *testing.T) {
	good, other := newSink(t, "good", ok), newSink(t, "other", ok)
	set := settingsFor(t, target(good), target(other))
	set.Routes = routes(t, rules.Route{Name: "videos", Tasks: []string{"video_generate"}, Targets: []string{"good"}},
		rules.Route{Name: "done", Statuses: []string{"completed"}, Targets: []string{"good"}})
	h := startRelay(t, set, "")
	if err := h.srv.Dispatcher().Pause(t.Context(), "good", true); err != nil {
		t.Fatal(err)
	}
	id := h.send(t, videoBody("trail"))
	h.post(t, "/hooks/hoox", videoBody("trail")) // a duplicate
	time.Sleep(300 * time.Millisecond)           // the delivery waits, paused
	if err := h.srv.Dispatcher().Pause(t.Context(), "good", false); err != nil {
		t.Fatal(err)
	}
	h.waitDeliveries(t, "good", "delivered", 1, 10*time.Second)
	u := newUIClient(t, h)
	page := string(u.get("/ui/events/" + id).body)
	trail := regexp.MustCompile(`(?s)<dl class="facts" id="trail">(.*?)</dl>`).FindStringSubmatch(page)
	if trail == nil {
		t.Fatalf("the event page has no trail:\n%s", page)
	}
	for _, want := range []string{"<dd>none: not_checked</dd>", "1 later request answered as duplicate, the last 20",
		"<code>videos</code>, <code>done</code>", "<dt>targets chosen</dt><dd>good</dd>"} {
		if !strings.Contains(trail[1], want) {
			t.Errorf("the trail lacks %q:\n%s", want, trail[1])
		}
	}
	if !regexp.MustCompile(`<td class="note">waited [0-9.]+ (ms|s): paused</td>`).MatchString(page) {
		t.Errorf("the attempt after the pause does not say it waited, paused:\n%s", page)
	}
}
