package relay

import "time"

// Trail is how the ingress handled an event, kept with it: with the
// event's Source, DedupKey and Targets it answers "why did this go where it
// went?" (docs/http.md).
type Trail struct {
	// Verify is the source's verify kind when the event came in (the
	// request passed it: refused ones are not stored); "" for an event
	// stored before trails were kept.
	Verify string
	// Routes are the names of the routes that matched.
	Routes []string
	// Chosen is how many of the event's Targets, from the first, the
	// routes chose; the ones after were added later (by a replay).
	Chosen int
	// Duplicates counts the later requests with the event's dedup key
	// that were answered as its duplicates, the last at LastDuplicate.
	// Stores keep them apart from the event's record, written on the
	// duplicate path only.
	Duplicates    int
	LastDuplicate time.Time
}

// Verified is the result of the event's verification: "passed", or
// "not_checked" for a source whose verify kind is none, or "" when the
// trail was not kept.
func (t *Trail) Verified() string {
	switch t.Verify {
	case "":
		return ""
	case "none":
		return "not_checked"
	}
	return "passed"
}
