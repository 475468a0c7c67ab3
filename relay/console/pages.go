package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// page is what every template gets.
type page struct {
	Title  string
	Nav    string // the menu entry to mark
	CSRF   string
	AuthOn bool
	Flash  string
	Error  string
	Data   any
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return duration(time.Since(t)) + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur":  duration,
	"ms":   func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
	"q":    url.QueryEscape,
	"path": func(s string) string { return url.PathEscape(s) },
	"join": func(vs []string) string { return strings.Join(vs, ", ") },
}

// duration is d rounded for a reader: 3s, 4m12s, 2h5m, 3d4h.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
}

// parsePages parses each page with the layout.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "events", "event", "dead", "targets", "rejected", "replays", "error"} {
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}

// render writes a page, or its "content" block alone for an htmx request
// that asks for a fragment.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.log.Error("console page failed to render", "page", name, "err", err)
		http.Error(w, "the page failed to render; see the relay's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	c.render(w, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// backendError answers a failed read or action: 404 for an unknown id,
// 409 for a refused move, else 503 (the store did not answer).
func (c *Console) backendError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		c.fail(w, r, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrConflict):
		c.fail(w, r, http.StatusConflict, err.Error()+". Reload the page to see where it stands.")
		return
	}
	c.log.Warn("console: the store did not answer", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	c.fail(w, r, http.StatusServiceUnavailable, "The store did not answer ("+err.Error()+"). Reload in a moment.")
}

func ctxOf(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// overviewData is the overview's, rates and all.
type overviewData struct {
	Targets []targetRow
	Ingress []rateRow // by outcome
	Window  string    // what the rates are measured over, "" before two samples
}

type targetRow struct {
	Target
	OldestPending   string
	DeliveredPerSec string
	Latency         string
	Outcomes        []rateRow
}

type rateRow struct {
	Name string
	Rate string
}

func (c *Console) overviewData(r *http.Request) (overviewData, error) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	ts, err := c.backend.Targets(ctx)
	if err != nil {
		return overviewData{}, err
	}
	now, prev, window := c.rates.sample(c.backend.Counters())
	d := overviewData{}
	if window > 0 {
		d.Window = duration(window)
	}
	rate := func(a, b float64) string {
		if window <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f/s", (a-b)/window.Seconds())
	}
	for _, k := range sortedKeys(now.Ingress) {
		d.Ingress = append(d.Ingress, rateRow{Name: k, Rate: rate(now.Ingress[k], prev.Ingress[k])})
	}
	for _, t := range ts {
		row := targetRow{Target: t, DeliveredPerSec: rate(now.Deliveries[t.Name]["delivered"], prev.Deliveries[t.Name]["delivered"]),
			Latency: "—", OldestPending: "—"}
		if age, ok := now.OldestPending[t.Name]; ok && age > 0 {
			row.OldestPending = duration(max(age, time.Second))
		}
		for _, o := range sortedKeys(now.Deliveries[t.Name]) {
			row.Outcomes = append(row.Outcomes, rateRow{Name: o, Rate: rate(now.Deliveries[t.Name][o], prev.Deliveries[t.Name][o])})
		}
		if n := now.LatencyCount[t.Name] - prev.LatencyCount[t.Name]; window > 0 && n > 0 {
			sec := (now.LatencySum[t.Name] - prev.LatencySum[t.Name]) / n
			row.Latency = fmt.Sprintf("%.1f ms", sec*1000)
		}
		d.Targets = append(d.Targets, row)
	}
	return d, nil
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, st reqState) {
	d, err := c.overviewData(r)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	c.show(w, r, st, "overview", "overview", "Overview", d)
}

// live is the overview's table alone, which the page fetches every few
// seconds.
func (c *Console) live(w http.ResponseWriter, r *http.Request, st reqState) {
	d, err := c.overviewData(r)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	c.fragment(w, "overview", "live", page{CSRF: st.csrf, Data: d})
}

// fragment writes one block of a page alone, for an htmx refresh.
func (c *Console) fragment(w http.ResponseWriter, name, block string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, block, p); err != nil {
		c.log.Error("console fragment failed to render", "page", name, "block", block, "err", err)
		http.Error(w, "the page failed to render; see the relay's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

type deadData struct {
	Targets []Target
	Target  string
	Dead    []Delivery
	Next    template.URL // the next page, "" on the last
}

// targetList returns the targets, or answers the error and returns false.
func (c *Console) targetList(w http.ResponseWriter, r *http.Request) ([]Target, bool) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	ts, err := c.backend.Targets(ctx)
	if err != nil {
		c.backendError(w, r, err)
		return nil, false
	}
	return ts, true
}

// show renders a page with the session's CSRF token and the message of
// the action that led here.
func (c *Console) show(w http.ResponseWriter, r *http.Request, st reqState, name, nav, title string, data any) {
	c.render(w, http.StatusOK, name, page{Title: title, Nav: nav, CSRF: st.csrf, AuthOn: st.authOn,
		Flash: r.URL.Query().Get("done"), Data: data})
}

func (c *Console) dead(w http.ResponseWriter, r *http.Request, st reqState) {
	ts, ok := c.targetList(w, r)
	if !ok {
		return
	}
	d := deadData{Targets: ts, Target: r.URL.Query().Get("target")}
	if d.Target == "" {
		for _, t := range ts {
			if t.Dead > 0 {
				d.Target = t.Name
				break
			}
		}
	}
	if d.Target != "" {
		ctx, cancel := ctxOf(r)
		defer cancel()
		ds, err := c.backend.Dead(ctx, d.Target, r.URL.Query().Get("before"), pageSize+1)
		if err != nil {
			c.backendError(w, r, err)
			return
		}
		d.Dead = ds
		if len(ds) > pageSize {
			d.Dead = ds[:pageSize]
			d.Next = template.URL("/ui/dead?" + url.Values{"target": {d.Target}, "before": {ds[pageSize-1].ID}}.Encode())
		}
	}
	c.show(w, r, st, "dead", "dead", "Dead letters", d)
}

func (c *Console) targets(w http.ResponseWriter, r *http.Request, st reqState) {
	if ts, ok := c.targetList(w, r); ok {
		c.show(w, r, st, "targets", "targets", "Targets", ts)
	}
}

// maxRejected bounds the rejected page's limit, whatever the ring holds.
const maxRejected = 1000

type rejectedData struct {
	Rejected []Rejected
	Limit    int
	Next     template.URL // the page with more rows, "" when none are left
}

// rejected shows the newest refused requests: pageSize of them, more with
// ?limit= (the log is a ring in memory, so it has no stable cursor).
func (c *Console) rejected(w http.ResponseWriter, r *http.Request, st reqState) {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = pageSize
	}
	limit = min(limit, maxRejected)
	rs := c.backend.Rejected(limit + 1)
	d := rejectedData{Rejected: rs, Limit: limit}
	if len(rs) > limit {
		d.Rejected = rs[:limit]
		if limit < maxRejected {
			d.Next = template.URL("/ui/rejected?" + url.Values{"limit": {strconv.Itoa(min(limit+pageSize, maxRejected))}}.Encode())
		}
	}
	c.show(w, r, st, "rejected", "rejected", "Rejected requests", d)
}

// back is where an action returns: the form's "back" field when it is a
// console page, else fallback; done is shown there.
func back(w http.ResponseWriter, r *http.Request, fallback, done string) {
	to := r.PostFormValue("back")
	if !strings.HasPrefix(to, "/ui/") || strings.HasPrefix(to, "//") || strings.Contains(to, "\\") {
		to = fallback
	}
	u, err := url.Parse(to)
	if err != nil {
		u, _ = url.Parse(fallback)
	}
	q := u.Query()
	q.Set("done", done)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (c *Console) retry(w http.ResponseWriter, r *http.Request, _ reqState) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	id := r.PathValue("id")
	replay, err := c.backend.Retry(ctx, id)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	if replay != "" {
		back(w, r, "/ui/dead", "Delivery "+id+" is sent again by replay "+replay+".")
		return
	}
	back(w, r, "/ui/dead", "Delivery "+id+" is back in line.")
}

func (c *Console) retryDead(w http.ResponseWriter, r *http.Request, _ reqState) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	name := r.PathValue("name")
	n, err := c.backend.RetryDead(ctx, name)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	back(w, r, "/ui/dead?target="+url.QueryEscape(name), fmt.Sprintf("%d dead deliveries of %s are back in line.", n, name))
}

func (c *Console) pause(paused bool) handler {
	return func(w http.ResponseWriter, r *http.Request, _ reqState) {
		ctx, cancel := ctxOf(r)
		defer cancel()
		name := r.PathValue("name")
		if err := c.backend.Pause(ctx, name, paused); err != nil {
			c.backendError(w, r, err)
			return
		}
		verb := "resumed"
		if paused {
			verb = "paused"
		}
		back(w, r, "/ui/targets", "Target "+name+" is "+verb+".")
	}
}
