package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// eventFilters are the events page's query parameters, as GET
// /api/v1/events names them, in the form's order.
var eventFilters = []string{"task", "status", "job_id", "avatar_id", "look_id", "dedup_key", "since", "until"}

type eventsData struct {
	Filter map[string]string // the form's values, by parameter
	Any    bool              // a filter is set
	Events []Event
	Next   template.URL // the next page, "" on the last
}

func (c *Console) events(w http.ResponseWriter, r *http.Request, st reqState) {
	q := r.URL.Query()
	d := eventsData{Filter: map[string]string{}}
	kept := url.Values{}
	for _, k := range eventFilters {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			d.Filter[k], d.Any = v, true
			kept.Set(k, v)
		}
	}
	f := d.Filter
	eq := EventQuery{Task: f["task"], Status: f["status"], JobID: f["job_id"], AvatarID: f["avatar_id"], LookID: f["look_id"],
		DedupKey: f["dedup_key"], Since: f["since"], Until: f["until"], Before: q.Get("before"), Limit: pageSize + 1}
	ctx, cancel := ctxOf(r)
	defer cancel()
	es, err := c.backend.Events(ctx, eq)
	if errors.Is(err, ErrBadQuery) {
		// The form again, with what to fix.
		c.render(w, http.StatusBadRequest, "events", page{Title: "Events", Nav: "events", CSRF: st.csrf, AuthOn: st.authOn,
			Error: strings.TrimPrefix(err.Error(), ErrBadQuery.Error()+": "), Data: d})
		return
	}
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	d.Events = es
	if len(es) > pageSize {
		d.Events = es[:pageSize]
		kept.Set("before", es[pageSize-1].ID)
		d.Next = template.URL("/ui/events?" + kept.Encode())
	}
	c.show(w, r, st, "events", "events", "Events", d)
}

type eventData struct {
	*EventDetail
	Payload string // pretty-printed when JSON
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, st reqState) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	e, err := c.backend.Event(ctx, r.PathValue("id"))
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	d := eventData{EventDetail: e, Payload: string(e.Payload)}
	var buf bytes.Buffer
	if json.Indent(&buf, e.Payload, "", "  ") == nil {
		d.Payload = buf.String()
	}
	c.show(w, r, st, "event", "events", "Event "+e.ID, d)
}
