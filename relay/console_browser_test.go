package relay_test

// The web console in a real browser: Debian's chromium, driven over the
// DevTools protocol by chromedp, against a real relay and real targets.
// One browser serves every step, so the test adds little time.
//
// HOOXRELAY_SCREENSHOTS=1 also writes a screenshot of each page to
// docs/screenshots/, as the README shows them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/hooxrelay/hooxrelay/internal/testenv"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// browserLog records what the page asked for and what went wrong in it.
type browserLog struct {
	mu       sync.Mutex
	requests []string
	problems []string
}

func (l *browserLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.requests = append(l.requests, e.Request.URL)
	case *runtime.EventExceptionThrown:
		l.problems = append(l.problems, "exception: "+e.ExceptionDetails.Text)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			l.problems = append(l.problems, "console.error called")
		}
	case *cdplog.EventEntryAdded:
		// Network errors are the answers the test asks for (a 401 to a
		// wrong token); anything else, a CSP violation above all, is not.
		if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
			l.problems = append(l.problems, fmt.Sprintf("console %s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	}
}

func (l *browserLog) seen(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.requests {
		if strings.Contains(r, substr) {
			return true
		}
	}
	return false
}

// startBrowser starts chromium with a fresh profile until the test ends
// and returns a tab's context.
func startBrowser(t *testing.T, log *browserLog) context.Context {
	t.Helper()
	path := testenv.LookPath(t, "chromium", testenv.InstallChromium)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(log.listen))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first action starts the browser, bound to the context it gets:
	// this one, which lives as long as the test.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return ctx
}

// run runs browser steps with a deadline, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs one browser action that reads a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// shoot writes a screenshot of the whole page (PNG) to docs/screenshots/name.png when
// HOOXRELAY_SCREENSHOTS is set.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("HOOXRELAY_SCREENSHOTS") == "" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleBrowser(t *testing.T) {
	var blog browserLog
	ctx := startBrowser(t, &blog)

	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", always(answer{status: http.StatusGone}))
	set := adminSettings(t, good, flaky)
	set.Server.RejectedLog = 100
	h := startRelay(t, set, "")
	ui := h.adminURL + "/ui/"
	events := []string{h.send(t, videoBody("job_1")), h.send(t, videoBody("job_2")), h.send(t, videoBody("job_3"))}
	h.waitDeliveries(t, "good", "delivered", 3, 10*time.Second)
	h.waitDeliveries(t, "flaky", "dead", 3, 10*time.Second)
	// text reads an element's text in one step in the page, so that a
	// live refresh swapping it between a lookup and a read cannot fail it.
	text := func(what string, sel chromedp.CSS) string {
		t.Helper()
		q, _ := json.Marshal(string(sel))
		return get(t, ctx, what, chromedp.Evaluate[string](`(document.querySelector(`+string(q)+`) || {innerText: ""}).innerText`))
	}
	// Each step needs the one before (the login above all): stop at the
	// first that fails.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("wrong token refused", func(t *testing.T) {
		run(t, ctx, "log in with a wrong token",
			chromedp.Navigate(ui),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
			chromedp.Submit(chromedp.ID("token")),
			chromedp.WaitVisible(chromedp.CSS("p.error")),
		)
		msg, loc := text("read the error", "p.error"), get(t, ctx, "location", chromedp.Location())
		if !strings.Contains(msg, "not the admin token") || !strings.HasSuffix(loc, "/ui/login") {
			t.Fatalf("after a wrong token the page is %s saying %q; want the login page saying it is not the admin token", loc, msg)
		}
		shoot(t, ctx, "login")
	})

	step("log in, overview lists targets and breakers", func(t *testing.T) {
		run(t, ctx, "log in",
			chromedp.SendKeys(chromedp.ID("token"), adminToken),
			chromedp.Submit(chromedp.ID("token")),
			chromedp.WaitVisible(chromedp.CSS(`#targets tr[data-target="flaky"]`)),
		)
		goodRow, flakyRow := text("good's row", `#targets tr[data-target="good"]`), text("flaky's row", `#targets tr[data-target="flaky"]`)
		if loc := get(t, ctx, "location", chromedp.Location()); strings.Contains(loc, adminToken) {
			t.Errorf("the admin token is in the URL %s", loc)
		}
		for row, want := range map[string][]string{goodRow: {"good", "closed", "running"}, flakyRow: {"flaky", "closed", "running", "3"}} {
			for _, w := range want {
				if !strings.Contains(row, w) {
					t.Errorf("overview row %q lacks %q", row, w)
				}
			}
		}
		if html := get(t, ctx, "read the page", chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, adminToken) {
			t.Error("the overview page holds the admin token")
		}
		// htmx refreshes the table: the live updates work under the CSP.
		storetest.Eventually(t, 10*time.Second, func() error {
			if !blog.seen("/ui/live") {
				return fmt.Errorf("no request to /ui/live yet: htmx's live update has not run")
			}
			return nil
		})
		run(t, ctx, "wait for the rates", chromedp.WaitVisible(chromedp.Search(`//p[contains(., "Rates over the last")]`)))

		// Traffic while flaky is paused: good's rate and latency move,
		// flaky's deliveries wait and age.
		if err := h.srv.Dispatcher().Pause(t.Context(), "flaky", true); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			h.send(t, videoBody(fmt.Sprintf("paused_%d", i)))
		}
		h.waitDeliveries(t, "good", "delivered", 7, 10*time.Second)
		storetest.Eventually(t, 10*time.Second, func() error {
			good, flaky := text("good's row", `#targets tr[data-target="good"]`), text("flaky's row", `#targets tr[data-target="flaky"]`)
			if strings.Contains(good, "\t0.00/s\t") || !strings.Contains(good, " ms") {
				return fmt.Errorf("good's row %q shows no delivered rate or latency yet", good)
			}
			if !strings.Contains(flaky, "paused") || !strings.Contains(flaky, "\t4\t") || !regexp.MustCompile(`\t[1-9][0-9]*s\t`).MatchString(flaky) {
				return fmt.Errorf("flaky's row %q does not show it paused with 4 pending, the oldest some seconds old", flaky)
			}
			return nil
		})
		shoot(t, ctx, "overview")
	})

	step("search an event by job id and open it", func(t *testing.T) {
		id := events[1]
		run(t, ctx, "list events", chromedp.Navigate(ui+"events"), chromedp.WaitVisible(chromedp.ID("events")))
		shoot(t, ctx, "events")
		run(t, ctx, "search job_2",
			chromedp.SendKeys(chromedp.CSS(`input[name="job_id"]`), "job_2"),
			chromedp.Submit(chromedp.CSS(`input[name="job_id"]`)),
			chromedp.WaitVisible(chromedp.Search(`//form[@role="search"]//a[.="Clear"]`)), // the page of a search
		)
		if rows := get(t, ctx, "count rows", chromedp.Evaluate[int](`document.querySelectorAll("#events tbody a").length`)); rows != 1 {
			t.Fatalf("searching job_2 lists %d events, want 1", rows)
		}
		run(t, ctx, "open event "+id,
			chromedp.Click(chromedp.CSS(`a[href="/ui/events/`+id+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("pre.payload")),
		)
		h1, payload := text("heading", "h1"), text("payload", "pre.payload")
		if !strings.Contains(h1, id) || !strings.Contains(payload, `"job_id": "job_2"`) {
			t.Fatalf("event page: heading %q, payload %q; want event %s with job_2 pretty-printed", h1, payload, id)
		}
		if att := text("attempts", "section.delivery table"); !strings.Contains(att, "200") {
			t.Errorf("the event page's attempts %q lack good's 200", att)
		}
		if trail := text("trail", "#trail"); !strings.Contains(trail, "routes matched\nall") || !strings.Contains(trail, "good, flaky") {
			t.Errorf("the event page's trail %q lacks the route all and the targets good, flaky", trail)
		}
		// Send the delivered delivery to good again: a replay of it.
		before := good.count()
		run(t, ctx, "send "+id+" to good again",
			chromedp.Click(chromedp.CSS(`button[aria-label="Send `+id+`:good again"]`)),
			chromedp.WaitVisible(chromedp.Search(`//p[contains(@class, "flash") and contains(., "sent again by replay rpl_")]`)),
		)
		good.waitCount(t, before+1, 10*time.Second)
		if r := good.requests()[before]; r.id() != id || !strings.HasPrefix(r.header.Get("Hooxrelay-Replay"), "rpl_") {
			t.Errorf("good received %s with Hooxrelay-Replay %q, want %s sent again by a replay", r.id(), r.header.Get("Hooxrelay-Replay"), id)
		}
		storetest.Eventually(t, 10*time.Second, func() error {
			run(t, ctx, "reload the event", chromedp.Navigate(ui+"events/"+id), chromedp.WaitVisible(chromedp.CSS("pre.payload")))
			if note := text("the attempt's note", "section.delivery tbody tr:last-child td.note"); !strings.Contains(note, "rpl_") {
				return fmt.Errorf("good's attempts do not name the replay yet (%q)", note)
			}
			return nil
		})
		shoot(t, ctx, "event")
	})

	step("retry a dead letter", func(t *testing.T) {
		flaky.setRespond(ok)
		if err := h.srv.Dispatcher().Pause(t.Context(), "flaky", false); err != nil {
			t.Fatal(err)
		}
		h.waitDeliveries(t, "flaky", "delivered", 4, 10*time.Second) // those that waited
		before := flaky.count()
		id := events[0] + ":flaky"
		run(t, ctx, "list dead letters", chromedp.Navigate(ui+"dead?target=flaky"), chromedp.WaitVisible(chromedp.ID("dead")))
		shoot(t, ctx, "dead")
		run(t, ctx, "retry "+id,
			chromedp.Click(chromedp.CSS(`button[aria-label="Retry `+id+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
		)
		if flash := text("the flash", "p.flash"); !strings.Contains(flash, id) {
			t.Errorf("after retry the page says %q, want it to name %s", flash, id)
		}
		flaky.waitCount(t, before+1, 10*time.Second)
		if got := flaky.requests()[before].id(); got != events[0] {
			t.Errorf("the target received %s after the retry, want %s", got, events[0])
		}
		// Retry all: the other two go out too.
		run(t, ctx, "retry all dead of flaky",
			chromedp.Click(chromedp.Search(`//button[contains(., "Retry all dead of flaky")]`)),
			chromedp.WaitVisible(chromedp.Search(`//p[contains(@class, "flash") and contains(., "2 dead deliveries")]`)),
		)
		flaky.waitCount(t, before+3, 10*time.Second)
	})

	step("pause and resume a target", func(t *testing.T) {
		run(t, ctx, "pause good",
			chromedp.Navigate(ui+"targets"),
			chromedp.WaitVisible(chromedp.ID("targets")),
			chromedp.Click(chromedp.CSS(`button[aria-label="Pause good"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Resume good"]`)),
		)
		if !h.srv.Dispatcher().Paused("good") {
			t.Fatal("the page says good is paused, the dispatcher does not")
		}
		shoot(t, ctx, "targets")
		run(t, ctx, "resume good",
			chromedp.Click(chromedp.CSS(`button[aria-label="Resume good"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Pause good"]`)),
		)
		if h.srv.Dispatcher().Paused("good") {
			t.Fatal("the page says good is running, the dispatcher says paused")
		}
	})

	step("replay: dry run, then the replay", func(t *testing.T) {
		before := good.count()
		dryRun := func() {
			t.Helper()
			run(t, ctx, "dry run of the videos to good",
				chromedp.Navigate(ui+"replays"),
				chromedp.WaitVisible(chromedp.ID("replay-form")),
				chromedp.SetValue(chromedp.CSS(`#replay-form input[name="task"]`), "video_generate"),
				chromedp.SetValue(chromedp.CSS(`#replay-form input[name="rate"]`), "1000"),
				chromedp.Click(chromedp.CSS(`#replay-form input[name="targets"][value="good"]`)),
				chromedp.Click(chromedp.Search(`//button[contains(., "Dry run")]`)),
				chromedp.WaitVisible(chromedp.ID("plan")),
			)
		}
		dryRun()
		// 7 videos so far (3, then 4 while flaky was paused), each to good.
		if plan := text("the dry run", "#plan"); !strings.Contains(plan, "over 7 events") || !strings.Contains(plan, "puts 7 deliveries") {
			t.Fatalf("the dry run says %q, want 7 events and 7 deliveries", plan)
		}
		if n := good.count(); n != before {
			t.Fatalf("good received %d requests after a dry run, want none", n-before)
		}
		run(t, ctx, "start the replay",
			chromedp.Click(chromedp.ID("confirm")),
			chromedp.WaitVisible(chromedp.Search(`//p[contains(@class, "flash") and contains(., "started")]`)),
		)
		good.waitCount(t, before+7, 10*time.Second)
		for _, r := range good.requests()[before:] {
			if !strings.HasPrefix(r.header.Get("Hooxrelay-Replay"), "rpl_") {
				t.Errorf("a replayed request to good carries Hooxrelay-Replay %q", r.header.Get("Hooxrelay-Replay"))
			}
		}
		// The list catches up by itself.
		run(t, ctx, "see the replay done", chromedp.WaitVisible(chromedp.Search(`//tr[@data-replay][.//span[contains(@class, "state-done")]]//span[contains(@class, "progress") and .="7/7"]`)))
		dryRun()
		shoot(t, ctx, "replays")

		// A POST without the CSRF token is refused, and nothing is sent.
		before = good.count()
		run(t, ctx, "post the confirm form without its CSRF token",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="/ui/replays"] input[name="csrf"]').remove()`),
			chromedp.Click(chromedp.ID("confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.error")),
		)
		if msg := text("the error", "p.error"); !strings.Contains(msg, "CSRF") {
			t.Errorf("a POST without the CSRF token shows %q, want a refusal naming it", msg)
		}
		time.Sleep(200 * time.Millisecond)
		if n := good.count(); n != before {
			t.Errorf("good received %d requests after a refused POST", n-before)
		}
	})

	step("hostile text shown, never run", func(t *testing.T) {
		js := strings.ReplaceAll(hostile, `"`, `\"`)
		id := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(`{"task":"`+js+`","status":"`+js+`","job_id":"`+js+`"}`),
			http.Header{"User-Agent": {hostile}}).answer(t).EventID
		if id == "" {
			t.Fatal("the hostile event was not accepted")
		}
		run(t, ctx, "open the hostile event", chromedp.Navigate(ui+"events/"+id), chromedp.WaitVisible(chromedp.CSS("pre.payload")))
		if n := get(t, ctx, "count injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main img, main script, body > script:not([src])").length`)); n != 0 {
			t.Errorf("the hostile event's page has %d injected img or script elements", n)
		}
		if facts := text("the event's facts", "dl.facts"); strings.Count(facts, hostile) < 3 {
			t.Errorf("the facts %q show the hostile text as text fewer than 3 times (task, status, User-Agent)", facts)
		}
		run(t, ctx, "list events with it", chromedp.Navigate(ui+"events"), chromedp.WaitVisible(chromedp.ID("events")))
		if n := get(t, ctx, "count injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main img, main script").length`)); n != 0 {
			t.Errorf("the events page has %d injected img or script elements", n)
		}
	})

	step("rejected requests listed", func(t *testing.T) {
		r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(`{"task":"video_generate",`+hostile),
			http.Header{"User-Agent": {hostile}, "Authorization": {"Bearer refused-secret"}})
		if r.status != http.StatusBadRequest {
			t.Fatalf("POST a broken body: %s, want 400", r)
		}
		run(t, ctx, "open the rejected page and a request's details",
			chromedp.Navigate(ui+"rejected"),
			chromedp.WaitVisible(chromedp.ID("rejected")),
			chromedp.Click(chromedp.CSS("#rejected tr.rejected summary")),
			chromedp.WaitVisible(chromedp.CSS("#rejected tr.rejected pre.payload")),
		)
		row := text("the newest refused request", "#rejected tr.rejected")
		for _, want := range []string{"hoox", "127.0.0.1", "400", "invalid_payload", "User-Agent\n" + hostile, "Authorization\n***", hostile} {
			if !strings.Contains(row, want) {
				t.Errorf("the rejected row %q lacks %q", row, want)
			}
		}
		if strings.Contains(row, "refused-secret") {
			t.Errorf("the rejected row %q shows the Authorization header's secret", row)
		}
		if n := get(t, ctx, "count injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main img, main script").length`)); n != 0 {
			t.Errorf("the rejected page has %d injected img or script elements", n)
		}
		shoot(t, ctx, "rejected")
	})

	step("keyboard and a phone's width", func(t *testing.T) {
		run(t, ctx, "tab to the first link",
			chromedp.Navigate(ui),
			chromedp.WaitVisible(chromedp.ID("targets")),
			chromedp.KeyEvent("\t"),
		)
		if focused := get(t, ctx, "focused", chromedp.Evaluate[string](`document.activeElement.textContent`)); !strings.Contains(focused, "Skip to content") {
			t.Errorf("the first Tab focuses %q, want the skip link", focused)
		}
		// Focus in the live table holds its refresh, so the focus stays.
		run(t, ctx, "focus flaky's dead count", chromedp.Focus(chromedp.CSS(`#targets a[href="/ui/dead?target=flaky"]`)))
		storetest.Eventually(t, 10*time.Second, func() error {
			if n := get(t, ctx, "skipped", chromedp.Evaluate[int](`Number(document.getElementById("live").dataset.skipped || 0)`)); n < 2 {
				// Two: a refresh that went ahead would have dropped the
				// focus, and no later one would be skipped.
				return fmt.Errorf("%d live refreshes skipped, waiting for 2", n)
			}
			return nil
		})
		if href := get(t, ctx, "focused", chromedp.Evaluate[string](`document.activeElement.getAttribute("href") || ""`)); href != "/ui/dead?target=flaky" {
			t.Errorf("after refreshes with the focus in the live table, the focus is on %q", href)
		}
		run(t, ctx, "narrow the window", chromedp.EmulateViewport(390, 800))
		for _, p := range []string{"", "events", "events/" + events[0], "dead?target=flaky", "replays", "targets", "rejected"} {
			run(t, ctx, "open /ui/"+p+" at 390 px", chromedp.Navigate(ui+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
			if get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
				wide := get(t, ctx, "wide elements", chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.parentElement.closest(".scroll")).map(e => e.tagName + "." + e.className + ":" + Math.round(e.getBoundingClientRect().right)).join(" ")`))
				t.Errorf("at 390 px /ui/%s scrolls sideways (too wide: %s); only its tables may", p, wide)
			}
		}
		run(t, ctx, "back to desktop width", chromedp.EmulateViewport(1000, 760))
	})

	step("no request to another origin", func(t *testing.T) {
		blog.mu.Lock()
		defer blog.mu.Unlock()
		admin, _ := url.Parse(h.adminURL)
		for _, r := range blog.requests {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "data" && r != "about:blank" && u.Host != admin.Host) {
				t.Errorf("the page requested %s, not on the relay's origin %s", r, h.adminURL)
			}
		}
		if len(blog.requests) < 10 {
			t.Errorf("only %d requests recorded; the recording is broken", len(blog.requests))
		}
		for _, p := range blog.problems {
			t.Errorf("the browser reported: %s", p)
		}
	})
}
