package relay_test

// Handler tests of the web console under /ui/ over a real relay: access
// (login, session cookie, CSRF, cross-origin refusal), security headers,
// and hostile text shown as text.

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/rules"
)

// uiClient is a browser-like client of the console: it keeps cookies and
// does not follow redirects, so tests see them.
type uiClient struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newUIClient(t testing.TB, h *relayHarness) *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, base: h.adminURL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (u *uiClient) do(method, path string, form url.Values, header http.Header) reply {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(u.t.Context(), method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (u *uiClient) get(path string) reply { u.t.Helper(); return u.do(http.MethodGet, path, nil, nil) }

// login posts the token and fails the test unless a session starts.
func (u *uiClient) login(token string) {
	u.t.Helper()
	r := u.do(http.MethodPost, "/ui/login", url.Values{"token": {token}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		u.t.Fatalf("POST /ui/login with the right token: %s, want 303 to /ui/", r)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of a console page.
func (u *uiClient) csrf(path string) string {
	u.t.Helper()
	r := u.get(path)
	m := csrfRE.FindSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		u.t.Fatalf("GET %s: %d, no CSRF field in the page", path, r.status)
	}
	return string(m[1])
}

// checkHeaders fails unless r carries the console's security headers.
func checkHeaders(t testing.TB, what string, r reply) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got, v)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q allows inline or eval'd script", what, csp)
	}
}

func TestConsoleAccess(t *testing.T) {
	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", ok)
	h := startRelay(t, adminSettings(t, good, flaky), "")
	u := newUIClient(t, h)

	r := u.get("/ui/")
	checkHeaders(t, "GET /ui/ before login", r)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ before login: %s, want 303 to /ui/login", r)
	}
	if r := u.get("/ui/events"); r.status != http.StatusSeeOther {
		t.Errorf("GET /ui/events before login: %s, want 303 to the login", r)
	}
	r = u.get("/ui/login")
	checkHeaders(t, "GET /ui/login", r)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `type="password"`) {
		t.Fatalf("GET /ui/login: %s, want a form with a password input", r)
	}

	r = u.do(http.MethodPost, "/ui/login", url.Values{"token": {"not-" + adminToken}}, nil)
	if r.status != http.StatusUnauthorized || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("POST /ui/login with a wrong token: %s, cookies %q; want 401 and no cookie", r, r.header.Values("Set-Cookie"))
	}
	if r := u.get("/ui/"); r.status != http.StatusSeeOther {
		t.Fatalf("GET /ui/ after a wrong token: %s, want 303 to the login", r)
	}

	r = u.do(http.MethodPost, "/ui/login", url.Values{"token": {adminToken}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/login with the token: %s, want 303", r)
	}
	ck := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/ui/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("session cookie %q is Secure on a plain-HTTP admin listener; a browser would drop it", ck)
	}
	if strings.Contains(ck, adminToken) {
		t.Errorf("session cookie %q carries the admin token", ck)
	}

	for _, p := range []string{"/ui/", "/ui/events", "/ui/dead", "/ui/targets", "/ui/rejected", "/ui/live"} {
		r := u.get(p)
		checkHeaders(t, "GET "+p, r)
		if r.status != http.StatusOK {
			t.Errorf("GET %s logged in: %s, want 200", p, r)
		}
		if strings.Contains(string(r.body), adminToken) {
			t.Errorf("GET %s shows the admin token", p)
		}
	}

	// Through a proxy that ended TLS the cookie is Secure.
	proxied := newUIClient(t, h)
	r = proxied.do(http.MethodPost, "/ui/login", url.Values{"token": {adminToken}}, http.Header{"X-Forwarded-Proto": {"https"}})
	if ck := r.header.Get("Set-Cookie"); r.status != http.StatusSeeOther || !strings.Contains(ck, "; Secure") {
		t.Errorf("login with X-Forwarded-Proto: https: %s, cookie %q; want 303 and a Secure cookie", r, ck)
	}
	// The static files are there, their folder is not listed.
	if r := u.get("/ui/static/htmx.min.js"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("GET /ui/static/htmx.min.js: %d %q, want 200 JavaScript", r.status, r.header.Get("Content-Type"))
	}
	if r := u.get("/ui/static/"); r.status != http.StatusNotFound {
		t.Errorf("GET /ui/static/: %d, want 404 (no listing)", r.status)
	}

	// A state change without the CSRF token, or with another session's,
	// is refused and changes nothing.
	other := newUIClient(t, h)
	other.login(adminToken)
	for name, form := range map[string]url.Values{
		"no token":              {},
		"another session's":     {"csrf": {other.csrf("/ui/targets")}},
		"the token misspelled ": {"csrf": {"x" + u.csrf("/ui/targets")}},
	} {
		r := u.do(http.MethodPost, "/ui/targets/good/pause", form, nil)
		if r.status != http.StatusForbidden {
			t.Errorf("POST pause with %s CSRF token: %s, want 403", name, r)
		}
	}
	if h.srv.Dispatcher().Paused("good") {
		t.Fatal("a POST without the CSRF token paused the target")
	}
	// A cross-site POST is refused even with the token.
	r = u.do(http.MethodPost, "/ui/targets/good/pause", url.Values{"csrf": {u.csrf("/ui/targets")}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
	if r.status != http.StatusForbidden || h.srv.Dispatcher().Paused("good") {
		t.Fatalf("cross-site POST pause: %s, paused %v; want 403 and not paused", r, h.srv.Dispatcher().Paused("good"))
	}
	r = u.do(http.MethodPost, "/ui/targets/good/pause", url.Values{"csrf": {u.csrf("/ui/targets")}}, nil)
	if r.status != http.StatusSeeOther || !h.srv.Dispatcher().Paused("good") {
		t.Fatalf("POST pause with the CSRF token: %s, paused %v; want 303 and paused", r, h.srv.Dispatcher().Paused("good"))
	}
	if r := u.do(http.MethodPost, "/ui/targets/nope/pause", url.Values{"csrf": {u.csrf("/ui/targets")}}, nil); r.status != http.StatusNotFound {
		t.Errorf("POST pause of an unknown target: %s, want 404", r)
	}

	// Logging out ends the session for good.
	csrf := u.csrf("/ui/")
	if r := u.do(http.MethodPost, "/ui/logout", url.Values{"csrf": {csrf}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/logout: %s, want 303", r)
	}
	if r := u.get("/ui/"); r.status != http.StatusSeeOther {
		t.Errorf("GET /ui/ after logout: %s, want 303 to the login", r)
	}
}

// Without admin_token the console is open (the admin listener must then be
// loopback), but state changes still need the CSRF token.
func TestConsoleOpenWithoutToken(t *testing.T) {
	good := newSink(t, "good", ok)
	h := startRelay(t, settingsFor(t, target(good)), "")
	u := newUIClient(t, h)
	if r := u.get("/ui/login"); r.status != http.StatusSeeOther {
		t.Errorf("GET /ui/login without a token set: %s, want 303 to /ui/", r)
	}
	if r := u.get("/ui"); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %s, want 301 to /ui/", r)
	}
	if r := u.get("/ui/"); r.status != http.StatusOK {
		t.Fatalf("GET /ui/ without a token set: %s, want 200", r)
	}
	if r := u.get("/ui/nothing-here"); r.status != http.StatusNotFound {
		t.Errorf("GET /ui/nothing-here: %s, want 404", r)
	}
	if r := u.do(http.MethodPost, "/ui/targets/good/pause", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Errorf("POST pause without the CSRF token: %s, want 403", r)
	}
	if r := u.do(http.MethodPost, "/ui/targets/good/pause", url.Values{"csrf": {u.csrf("/ui/targets")}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("POST pause with the CSRF token: %s, want 303", r)
	}
	if !h.srv.Dispatcher().Paused("good") {
		t.Error("the target is not paused")
	}
}

// hostile is text that would run or inject markup if a page printed it
// unescaped.
const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

func TestConsoleHostileText(t *testing.T) {
	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", always(answer{status: http.StatusGone}))
	set := adminSettings(t, good, flaky)
	set.Routes = routes(t, rules.Route{Name: hostile, Targets: []string{"good", "flaky"}}) // a route's name is free text
	h := startRelay(t, set, "")
	flaky.setRespond(func(int) answer { return answer{status: http.StatusGone} })

	js := strings.ReplaceAll(hostile, `"`, `\"`)
	body := `{"task":"` + js + `","status":"` + js + `","job_id":"` + js + `","note":"` + js + `"}`
	id := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(body), http.Header{
		"User-Agent": {hostile}, "X-Request-Id": {hostile},
	}).answer(t).EventID
	// A known task's ids are read, and make its dedup key.
	video := h.send(t, `{"task":"video_generate","status":"completed","job_id":"`+js+`"}`)
	if id == "" {
		t.Fatal("the hostile event was not accepted")
	}
	h.waitDeliveries(t, "flaky", "dead", 2, 10*time.Second)

	u := newUIClient(t, h)
	u.login(adminToken)
	// Replays whose task, and a form whose since, are hostile: the list
	// and the form's error echo them.
	csrf := u.csrf("/ui/replays")
	if r := u.do(http.MethodPost, "/ui/replays", url.Values{"csrf": {csrf}, "since": {"1h"}, "task": {hostile}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("POST /ui/replays with a hostile task: %s, want 303", r)
	}
	plan := u.do(http.MethodPost, "/ui/replays/plan", url.Values{"csrf": {csrf}, "since": {hostile}, "task": {hostile}}, nil)
	q := url.QueryEscape(hostile)
	for p, r := range map[string]reply{
		"/ui/":                     u.get("/ui/"),
		"/ui/events":               u.get("/ui/events"),
		"/ui/events?task=&status=": u.get("/ui/events?task=" + q + "&status=" + q),
		"/ui/events?job_id=&dedup_key=&avatar_id=&look_id=&until=": u.get("/ui/events?job_id=" + q + "&dedup_key=" + q +
			"&avatar_id=" + q + "&look_id=" + q + "&until=" + q),
		"/ui/events/" + id:        u.get("/ui/events/" + id),
		"/ui/dead?target=flaky":   u.get("/ui/dead?target=flaky"),
		"/ui/targets":             u.get("/ui/targets"),
		"/ui/replays":             u.get("/ui/replays"),
		"/ui/replays/live":        u.get("/ui/replays/live"),
		"POST /ui/replays/plan":   plan,
		"/ui/events/(hostile id)": u.get("/ui/events/" + url.PathEscape(hostile)),
	} {
		page := string(r.body)
		if r.status != http.StatusOK && r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 200, 400 or 404", p, r.status)
		}
		for _, bad := range []string{"<script>alert", "<img src=x"} {
			if strings.Contains(page, bad) {
				t.Errorf("GET %s: the page holds %q unescaped:\n%s", p, bad, page)
			}
		}
		if n, own := strings.Count(page, "<script"), strings.Count(page, `<script src="/ui/static/`); n != own || own > 2 {
			t.Errorf("GET %s: %d script elements, %d of them the console's own; want only htmx and console.js", p, n, own)
		}
	}
	// The pages show the hostile text, escaped, in every field.
	for _, c := range []struct {
		what string
		page []byte
		want int
	}{
		// task, status, two headers, the dedup key (task:sha256), the
		// route in the trail
		{"the event page", u.get("/ui/events/" + id).body, 6},
		// job id, dedup key (task:job:status)
		{"the video's page", u.get("/ui/events/" + video).body, 2},
		// task, status, job id
		{"the events page", u.get("/ui/events").body, 3},
		// the task in the list
		{"the replay page", u.get("/ui/replays").body, 1},
		// the form keeps since and task
		{"the refused dry run", plan.body, 2},
	} {
		if n := strings.Count(string(c.page), html.EscapeString(hostile)); n < c.want {
			t.Errorf("%s shows the hostile text escaped %d times, want %d:\n%s", c.what, n, c.want, c.page)
		}
	}
}

var (
	eventLinkRE = regexp.MustCompile(`href="/ui/events/(evt_[0-9A-Z]+)"`)
	nextRE      = regexp.MustCompile(`href="(/ui/[a-z]+\?[^"]+)" rel="next"`)
)

// walkPages follows a list's "next" links from path and returns the
// event ids of each page; every link must keep keep (the filters).
func walkPages(t *testing.T, u *uiClient, path string, keep ...string) [][]string {
	t.Helper()
	var pages [][]string
	for path != "" {
		r := u.get(html.UnescapeString(path))
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		var ids []string
		for _, m := range eventLinkRE.FindAllSubmatch(r.body, -1) {
			ids = append(ids, string(m[1]))
		}
		pages = append(pages, ids)
		path = ""
		if m := nextRE.FindSubmatch(r.body); m != nil {
			path = string(m[1])
			for _, k := range keep {
				if !strings.Contains(path, k) {
					t.Errorf("the next page's link %s drops %s", path, k)
				}
			}
		}
		if len(pages) > 3 {
			t.Fatal("more than 3 pages")
		}
	}
	return pages
}

// checkPages fails unless pages are 50 ids then the rest, each of sent
// once.
func checkPages(t *testing.T, what string, pages [][]string, sent map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for i, p := range pages {
		for _, id := range p {
			if seen[id] || !sent[id] {
				t.Errorf("%s page %d lists %s again, or one it should not", what, i+1, id)
			}
			seen[id] = true
		}
	}
	if len(pages) != 2 || len(pages[0]) != 50 || len(seen) != len(sent) {
		t.Errorf("%s: %d pages listed %d of %d, want 2 pages, 50 on the first, listing all", what, len(pages), len(seen), len(sent))
	}
}

// The events and dead-letter pages show 50 a page, with a link to the
// next page that keeps the filter; together the pages list each once.
func TestConsolePaging(t *testing.T) {
	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", always(answer{status: http.StatusGone}))
	h := startRelay(t, adminSettings(t, good, flaky), "")
	const n = 53
	sent := map[string]bool{}
	for i := range n {
		sent[h.send(t, videoBody(fmt.Sprintf("page_%d", i)))] = true
	}
	h.send(t, `{"task":"avatar_create","avatar_id":"av_1","look_id":"l1","status":"completed"}`) // filtered out
	h.waitDeliveries(t, "flaky", "dead", n+1, 20*time.Second)
	u := newUIClient(t, h)
	u.login(adminToken)
	checkPages(t, "events", walkPages(t, u, "/ui/events?task=video_generate&since=1h&status=completed",
		"task=video_generate", "since=1h", "status=completed"), sent)
	avatar := eventLinkRE.FindAllSubmatch(u.get("/ui/events?task=avatar_create").body, -1)
	if len(avatar) != 1 || sent[string(avatar[0][1])] {
		t.Errorf("the task filter avatar_create lists %d events, want the 1 sent", len(avatar))
	} else {
		sent[string(avatar[0][1])] = true
	}
	checkPages(t, "dead letters", walkPages(t, u, "/ui/dead?target=flaky", "target=flaky"), sent)
}

// The rejected page lists a refused request with hostile headers and body
// as text, with its secrets masked, and pages with ?limit=.
func TestConsoleRejected(t *testing.T) {
	set := adminSettings(t, newSink(t, "good", ok), newSink(t, "flaky", ok))
	set.Server.RejectedLog = 100
	h := startRelay(t, set, "")
	secrets := []string{"bearer-secret-1", "key-secret-2", "cookie-secret-3"}
	r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(hostile+" not JSON"), http.Header{
		"User-Agent": {hostile}, "X-Request-Id": {hostile},
		"Authorization": {"Bearer " + secrets[0]}, "X-Api-Key": {secrets[1]}, "Cookie": {"s=" + secrets[2]},
	})
	if r.status != http.StatusBadRequest {
		t.Fatalf("POST a body that is not JSON: %s, want 400", r)
	}
	u := newUIClient(t, h)
	if r := u.get("/ui/rejected"); r.status != http.StatusSeeOther {
		t.Errorf("GET /ui/rejected before login: %s, want 303 to the login", r)
	}
	u.login(adminToken)
	r = u.get("/ui/rejected")
	checkHeaders(t, "GET /ui/rejected", r)
	page := string(r.body)
	if r.status != http.StatusOK || strings.Count(page, `<tr class="rejected">`) != 1 {
		t.Fatalf("GET /ui/rejected: %s, want 200 listing the one refused request:\n%s", r, page)
	}
	for _, bad := range append([]string{"<script>alert", "<img src=x"}, secrets...) {
		if strings.Contains(page, bad) {
			t.Errorf("the rejected page holds %q:\n%s", bad, page)
		}
	}
	if n := strings.Count(page, html.EscapeString(hostile)); n < 3 {
		t.Errorf("the rejected page shows the hostile text escaped %d times, want 3 (two headers, the body)", n)
	}
	for _, want := range []string{"invalid_payload", "400", "127.0.0.1", "POST /hooks/hoox", "<dt>Authorization</dt><dd>***</dd>", "<dt>X-Api-Key</dt><dd>***</dd>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rejected page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<script"); n != 2 {
		t.Errorf("the rejected page has %d script elements, want the console's 2", n)
	}

	// More refusals than a page: 50, then a link to more, newest first.
	for i := range 51 {
		h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(fmt.Sprintf("refused-%d", i)), nil)
	}
	page = string(u.get("/ui/rejected").body)
	m := nextRE.FindStringSubmatch(page)
	if n := strings.Count(page, `<tr class="rejected">`); n != 50 || m == nil || !strings.Contains(page, "refused-50") || strings.Contains(page, "refused-0<") {
		t.Fatalf("GET /ui/rejected with 52 kept: %d rows, next link %v; want the newest 50 and a link to more", n, m)
	}
	page = string(u.get(html.UnescapeString(m[1])).body)
	if n := strings.Count(page, `<tr class="rejected">`); n != 52 || nextRE.MatchString(page) {
		t.Errorf("GET %s: %d rows, want all 52 and no link to more", m[1], n)
	}
}
