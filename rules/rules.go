// Package rules decides which targets a webhook event goes to.
//
// Routes are compiled once into a Table, which is then consulted for every
// event on the ingest hot path. The package is pure — no network, clock or
// logger — so that routing is deterministic, cheap to fuzz and can be run
// offline by `hooxrelay route` exactly as the relay would run it.
//
// Matching semantics (docs/configuration.md):
//
//   - A route matches when the event's task is one of Tasks (or Tasks is
//     empty), its status is one of Statuses (or Statuses is empty), and every
//     Where condition holds. A route with nothing set matches every event.
//   - The targets of an event are the union of the targets of all matching
//     routes, each once, in order of first appearance.
//
// Conditions address the payload with dot notation ("result.cost",
// "error.code"); a segment that is a decimal index ("items.0.id") indexes a
// JSON array, and is an ordinary key inside an object. Values compare as JSON
// values: every number compares numerically as a float64 whatever its Go
// representation (an int from YAML, a float64 or json.Number from JSON), and a
// string never equals a number. Being float64, integers beyond 2^53 compare
// only approximately, exactly as encoding/json itself decodes them.
//
// The operators:
//
//	eq, ne      the payload value equals (does not equal) a string, number, bool or null;
//	            a missing path is not equal to anything, so ne holds for it
//	in          the payload value equals one element of a list
//	exists      true (or no value): the path is present, even when its value is null;
//	            false: the path is absent
//	gt gte      against a number, the payload value must be a number; against a
//	lt lte      string, a string compared byte-wise, which orders ISO-8601 UTC
//	            timestamps correctly; anything else does not hold
//	prefix      the payload value is a string starting with the given string
//
// Apart from ne and exists: false, a condition on a missing path does not
// hold; apart from ne, neither does one on a value of the wrong type (an
// object, an array, a string where a number is wanted). Unquoted YAML timestamps
// (which the YAML decoder turns into time.Time) are compared as their RFC 3339
// text in UTC; quote a value to compare it exactly as written.
package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Route is one routing rule as configured. Its zero value matches every event
// and sends it nowhere.
type Route struct {
	Name     string
	Tasks    []string // any of; empty = any task
	Statuses []string // any of; empty = any status
	Where    []Cond   // all must hold; empty = no condition
	Targets  []string
}

// Cond is one condition on the payload, as configured. Its zero value is not
// a valid condition: Compile rejects its empty path and op.
type Cond struct {
	Path string // dot notation into the payload, e.g. "result.cost" or "items.0.id"
	Op   string // eq ne in exists gt gte lt lte prefix

	// Value is what the YAML decoder produced: string, int, int64, uint64,
	// float64, bool, time.Time, []any or nil. Other Go numeric types and
	// json.Number are accepted too, so that routes can be built in code.
	Value any
}

// Result is the outcome of matching one event.
//
// Its slices are never nil (so that they encode as [] in JSON) and may be
// shared with the Table and with other Results: treat them as read-only.
// Appending to them is safe, since their capacity is clipped to their length.
type Result struct {
	Routes  []string // names of the matching routes, in config order
	Targets []string // union of their targets, each once, in order of first appearance (route order, then target order)
}

// CompileError is one problem Compile found in a route's condition. Compile
// returns every one it finds, joined with errors.Join; use errors.As (or the
// Unwrap() []error method of the joined error) to map them back to
// configuration lines: Route, Cond and Field locate the key to fix.
type CompileError struct {
	Route int    // index of the route in the slice given to Compile
	Name  string // the route's name
	Cond  int    // index of the condition in the route's Where
	// Field is the key of the condition that is wrong: "path", "op",
	// "value", or "value[i]" for the element i of an in list.
	Field string
	Msg   string // what is wrong, and what is expected instead
}

// Error names the route by index and name, as an operator finds it in the
// config file, e.g. `routes[2] ("finished-videos"): where[0].op: must be one of …`.
func (e *CompileError) Error() string {
	return fmt.Sprintf("routes[%d] (%q): where[%d].%s: %s", e.Route, e.Name, e.Cond, e.Field, e.Msg)
}

// Compile checks routes and compiles them into a Table. It reports every
// problem at once, each as a *CompileError. The routes are copied: changing
// them afterwards does not change the Table.
//
// Compile is the one judge of conditions: the config package decodes them
// without checking their meaning, and "hooxrelay check" reports what
// Compile finds at the lines of the file.
func Compile(routes []Route) (*Table, error) {
	var errs []error
	compiled := make([]route, len(routes))
	for i, r := range routes {
		cr := route{name: r.Name, where: make([]cond, 0, len(r.Where))}
		for j, c := range r.Where {
			cc, problems := compileCond(c)
			for _, p := range problems {
				errs = append(errs, &CompileError{Route: i, Name: r.Name, Cond: j, Field: p.field, Msg: p.msg})
			}
			cr.where = append(cr.where, cc)
		}
		compiled[i] = cr
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newTable(copyRoutes(routes), compiled), nil
}

// Routes returns the routes the Table was compiled from, in config order, for
// printing a routing table. The slice is a fresh copy on every call.
func (t *Table) Routes() []Route {
	if t == nil {
		return nil
	}
	return copyRoutes(t.routes)
}

// String renders the condition the way an operator would write it, e.g.
// `result.cost gte 1` or `error.code in ["A", "B"]`.
func (c Cond) String() string {
	if c.Op == "exists" {
		if b, ok := c.Value.(bool); ok && !b {
			return c.Path + " exists false"
		}
		return c.Path + " exists"
	}
	return c.Path + " " + c.Op + " " + formatValue(c.Value)
}

// Describe renders what a route matches on, without its name or targets, e.g.
// `task in [video_generate, video_export], status in [completed], result.cost gte 1`.
// A route that matches every event is described as "any event".
func (r Route) Describe() string {
	var parts []string
	if len(r.Tasks) > 0 {
		parts = append(parts, "task in ["+strings.Join(r.Tasks, ", ")+"]")
	}
	if len(r.Statuses) > 0 {
		parts = append(parts, "status in ["+strings.Join(r.Statuses, ", ")+"]")
	}
	for _, c := range r.Where {
		parts = append(parts, c.String())
	}
	if len(parts) == 0 {
		return "any event"
	}
	return strings.Join(parts, ", ")
}

// copyRoutes copies routes deeply enough that neither side can change the
// other's slices: a Table is immutable and shared between goroutines.
func copyRoutes(routes []Route) []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = Route{
			Name:     r.Name,
			Tasks:    slices.Clone(r.Tasks),
			Statuses: slices.Clone(r.Statuses),
			Targets:  slices.Clone(r.Targets),
		}
		if r.Where != nil {
			out[i].Where = make([]Cond, len(r.Where))
			for j, c := range r.Where {
				if l, ok := c.Value.([]any); ok {
					c.Value = slices.Clone(l)
				}
				out[i].Where[j] = c
			}
		}
	}
	return out
}
