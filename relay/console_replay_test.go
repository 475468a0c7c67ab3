package relay_test

// The console's replay page and the resend of a delivered delivery, over
// a real relay: the dry run counts first, its confirm button starts the
// replay it counted, the list shows progress and cancels, and every state
// change needs the CSRF token.

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

var (
	planRE    = regexp.MustCompile(`goes over <strong class="num">(\d+)</strong> events? .*puts <strong class="num">(\d+)</strong>`)
	confirmRE = regexp.MustCompile(`(?s)<form method="post" action="/ui/replays">(.*?)</form>`)
	hiddenRE  = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)
	startedRE = regexp.MustCompile(`Replay (rpl_[0-9A-Z]+) started`)
)

// confirmForm returns the fields of a dry run page's confirm form.
func confirmForm(t *testing.T, page string) url.Values {
	t.Helper()
	m := confirmRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the dry run's page has no confirm form:\n%s", page)
	}
	form := url.Values{}
	for _, f := range hiddenRE.FindAllStringSubmatch(m[1], -1) {
		form.Add(f[1], html.UnescapeString(f[2]))
	}
	return form
}

func TestConsoleReplay(t *testing.T) {
	good, other := newSink(t, "good", ok), newSink(t, "other", ok)
	h := startRelay(t, adminSettings(t, good, other), "")
	for _, job := range []string{"r1", "r2", "r3"} {
		h.send(t, videoBody(job))
	}
	h.send(t, `{"task":"avatar_create","avatar_id":"av_1","look_id":"l1","status":"completed"}`)
	h.waitDeliveries(t, "good", "delivered", 4, 10*time.Second)
	h.waitDeliveries(t, "other", "delivered", 4, 10*time.Second)
	u := newUIClient(t, h)
	u.login(adminToken)

	r := u.get("/ui/replays")
	checkHeaders(t, "GET /ui/replays", r)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "No replay yet.") {
		t.Fatalf("GET /ui/replays: %s, want 200 and no replay listed", r)
	}
	csrf := u.csrf("/ui/replays")
	plan := url.Values{"csrf": {csrf}, "since": {"1h"}, "task": {"video_generate"}, "targets": {"good"}, "rate": {"100"}}

	// Without the CSRF token neither the dry run nor the replay runs.
	for _, p := range []string{"/ui/replays/plan", "/ui/replays"} {
		form := url.Values{"since": {"1h"}}
		if r := u.do(http.MethodPost, p, form, nil); r.status != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %s, want 403", p, r)
		}
	}
	// A form the relay refuses is an error on the page, the form kept.
	for _, bad := range []url.Values{{"since": {"yesterday"}}, {"since": {"1h"}, "rate": {"fast"}}, {"since": {"1h"}, "targets": {"nope"}}, {}} {
		bad.Set("csrf", csrf)
		bad.Set("task", "video_generate")
		r := u.do(http.MethodPost, "/ui/replays/plan", bad, nil)
		if page := string(r.body); r.status != http.StatusBadRequest || !strings.Contains(page, `class="error"`) || !strings.Contains(page, `value="video_generate"`) {
			t.Errorf("POST /ui/replays/plan with %v: %d, want 400 with the error on the form:\n%s", bad, r.status, page)
		}
	}
	if good.count() != 4 {
		t.Fatalf("good received %d requests before any replay, want 4", good.count())
	}

	// The dry run counts 3 events and 3 deliveries, and sends nothing.
	r = u.do(http.MethodPost, "/ui/replays/plan", plan, nil)
	page := string(r.body)
	m := planRE.FindStringSubmatch(page)
	if r.status != http.StatusOK || m == nil || m[1] != "3" || m[2] != "3" {
		t.Fatalf("POST /ui/replays/plan: %d, counts %v; want 200, 3 events and 3 deliveries:\n%s", r.status, m, page)
	}
	confirm := confirmForm(t, page)
	if _, err := time.Parse(time.RFC3339Nano, confirm.Get("since")); err != nil || confirm.Get("task") != "video_generate" ||
		confirm.Get("targets") != "good" || confirm.Get("rate") != "100" || confirm.Get("csrf") != csrf {
		t.Errorf("the confirm form %v does not carry the dry run's resolved times, filters and the CSRF token", confirm)
	}
	time.Sleep(100 * time.Millisecond) // a dry run that sent would show by now
	if good.count() != 4 || other.count() != 4 {
		t.Fatalf("after the dry run good has %d and other %d requests, want 4 each: a dry run sends nothing", good.count(), other.count())
	}

	// The confirm button starts the replay: good gets the 3 videos again.
	r = u.do(http.MethodPost, "/ui/replays", confirm, nil)
	loc, _ := url.QueryUnescape(r.header.Get("Location"))
	sm := startedRE.FindStringSubmatch(loc)
	if r.status != http.StatusSeeOther || sm == nil {
		t.Fatalf("POST /ui/replays: %s to %q, want 303 saying the replay started", r, loc)
	}
	id := sm[1]
	good.waitCount(t, 7, 10*time.Second)
	for _, req := range good.requests()[4:] {
		if got := req.header.Get("Hooxrelay-Replay"); got != id {
			t.Errorf("a replayed request carries Hooxrelay-Replay %q, want %s", got, id)
		}
	}
	storetest.Eventually(t, 10*time.Second, func() error {
		page := string(u.get("/ui/replays/live").body)
		if !strings.Contains(page, `data-replay="`+id+`"`) || !strings.Contains(page, "3/3") || !strings.Contains(page, "state-done") {
			return fmt.Errorf("the replay list does not show %s done, 3/3:\n%s", id, page)
		}
		if strings.Contains(page, "hx-trigger") {
			return fmt.Errorf("the list still refreshes itself with no replay running")
		}
		return nil
	})
	if other.count() != 4 {
		t.Errorf("other received %d requests, want 4: the replay was narrowed to good", other.count())
	}

	// A slow replay runs, refreshes its list, and cancels.
	slow := url.Values{"csrf": {csrf}, "since": {"1h"}, "rate": {"0.2"}, "targets": {"other"}}
	if r := u.do(http.MethodPost, "/ui/replays", slow, nil); r.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/replays at 0.2/s: %s, want 303", r)
	}
	page = string(u.get("/ui/replays").body)
	running := regexp.MustCompile(`data-replay="(rpl_[0-9A-Z]+)"`).FindStringSubmatch(page)
	if running == nil || running[1] == id || !strings.Contains(page, `hx-get="/ui/replays/live?limit=50"`) || !strings.Contains(page, "Cancel "+running[1]) {
		t.Fatalf("the list does not show the new replay first, running, refreshing itself, with a cancel button:\n%s", page)
	}
	if r := u.do(http.MethodPost, "/ui/replays/"+running[1]+"/cancel", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Errorf("POST cancel without the CSRF token: %s, want 403", r)
	}
	if r := u.do(http.MethodPost, "/ui/replays/"+running[1]+"/cancel", url.Values{"csrf": {csrf}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("POST cancel: %s, want 303", r)
	}
	h.waitReplay(t, running[1], relay.ReplayCancelled)
	if r := u.do(http.MethodPost, "/ui/replays/rpl_NOPE/cancel", url.Values{"csrf": {csrf}}, nil); r.status != http.StatusNotFound {
		t.Errorf("POST cancel of an unknown replay: %s, want 404", r)
	}
}

// A delivered delivery has a "Send again" button on its event's page: a
// replay of that event to its target.
func TestConsoleResend(t *testing.T) {
	good := newSink(t, "good", ok)
	set := settingsFor(t, target(good))
	h := startRelay(t, set, "")
	id := h.send(t, videoBody("resend"))
	h.waitDeliveries(t, "good", "delivered", 1, 10*time.Second)
	u := newUIClient(t, h)
	page := string(u.get("/ui/events/" + id).body)
	if !strings.Contains(page, `aria-label="Send `+id+`:good again"`) {
		t.Fatalf("the event page of a delivered delivery has no Send again button:\n%s", page)
	}
	if r := u.do(http.MethodPost, "/ui/deliveries/"+id+":good/retry", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Errorf("POST resend without the CSRF token: %s, want 403", r)
	}
	r := u.do(http.MethodPost, "/ui/deliveries/"+id+":good/retry", url.Values{"csrf": {u.csrf("/ui/events/" + id)}, "back": {"/ui/events/" + id}}, nil)
	loc, _ := url.QueryUnescape(r.header.Get("Location"))
	m := regexp.MustCompile(`sent again by replay (rpl_[0-9A-Z]+)`).FindStringSubmatch(loc)
	if r.status != http.StatusSeeOther || m == nil || !strings.HasPrefix(loc, "/ui/events/"+id) {
		t.Fatalf("POST resend: %s to %q, want 303 back to the event naming the replay", r, loc)
	}
	good.waitCount(t, 2, 10*time.Second)
	if got := good.requests()[1]; got.id() != id || got.header.Get("Hooxrelay-Replay") != m[1] {
		t.Errorf("the target received %s with Hooxrelay-Replay %q, want %s with %s", got.id(), got.header.Get("Hooxrelay-Replay"), id, m[1])
	}
	storetest.Eventually(t, 10*time.Second, func() error {
		if page := string(u.get("/ui/events/" + id).body); !strings.Contains(page, `<td class="note">replay <a href="/ui/replays"><code>`+m[1]+`</code>`) {
			return fmt.Errorf("the event page's second attempt does not name the replay %s that sent it again:\n%s", m[1], page)
		}
		return nil
	})
}
