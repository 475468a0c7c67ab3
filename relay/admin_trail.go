package relay

import (
	"time"
)

// TrailJSON is the "trail" of GET /api/v1/events/{event_id}: how the
// ingress handled the event.
type TrailJSON struct {
	Source string `json:"source"`
	// Verify is left out for an event stored before trails were kept.
	Verify   *TrailVerifyJSON `json:"verify,omitempty"`
	DedupKey string           `json:"dedup_key"`
	// New is true: a request whose key was live wrote no event, and is
	// counted in Duplicates of the first one instead.
	New             bool       `json:"new"`
	Routes          []string   `json:"routes"`
	Targets         []string   `json:"targets"`
	AddedTargets    []string   `json:"added_targets,omitempty"`
	Duplicates      int        `json:"duplicates"`
	LastDuplicateAt *time.Time `json:"last_duplicate_at,omitempty"`
}

// TrailVerifyJSON is how the request proved its sender.
type TrailVerifyJSON struct {
	Kind   string `json:"kind"`
	Result string `json:"result"` // passed or not_checked
}

// trailJSON builds the trail of ev.
func trailJSON(ev *Event) TrailJSON {
	tr := &ev.Trail
	out := TrailJSON{Source: ev.Source, DedupKey: ev.DedupKey, New: true, Routes: tr.Routes, Targets: ev.Targets,
		Duplicates: tr.Duplicates}
	if tr.Verify != "" {
		out.Verify = &TrailVerifyJSON{Kind: tr.Verify, Result: tr.Verified()}
		n := min(tr.Chosen, len(ev.Targets))
		out.Targets, out.AddedTargets = ev.Targets[:n], ev.Targets[n:]
	}
	if out.Routes == nil {
		out.Routes = []string{}
	}
	if out.Targets == nil {
		out.Targets = []string{}
	}
	if len(out.AddedTargets) == 0 {
		out.AddedTargets = nil
	}
	if !tr.LastDuplicate.IsZero() {
		t := tr.LastDuplicate
		out.LastDuplicateAt = &t
	}
	return out
}
