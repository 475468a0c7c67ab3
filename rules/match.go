package rules

import "slices"

// Table is a compiled routing table. It is immutable once Compile returns it
// and safe for concurrent use. A nil or zero Table matches nothing.
//
// Matching never walks the full route list: Compile indexes the routes by
// task and then by status, and for each (task, status) pair precomputes the
// Result of the routes that have no Where condition. An event whose candidate
// routes have no conditions is thus routed with two map lookups and no
// allocation; otherwise only the conditional candidates are evaluated.
type Table struct {
	routes      []Route  // as given to Compile, for Routes
	compiled    []route  // by config index
	targetNames []string // by target id
	byTask      map[string]*taskIndex
	anyTask     *taskIndex // tasks no route names: only routes without a task filter
}

// route is a compiled Route.
type route struct {
	name    string
	where   []cond
	targets []int // target ids, in the route's order
}

func (r *route) holds(doc map[string]any) bool {
	for i := range r.where {
		if !r.where[i].holds(doc) {
			return false
		}
	}
	return true
}

// taskIndex holds the entries of one task value.
type taskIndex struct {
	byStatus map[string]*entry
	other    *entry // statuses no candidate route names
}

// entry is what one (task, status) pair needs at match time.
type entry struct {
	// static is the Result when no conditional route matches, which is also
	// the Result when the pair has no conditional route at all.
	static Result
	// steps are the routes that pass the task and status filters, in config
	// order; nil when none of them has a condition, since static then says
	// everything.
	steps []step
	// maxTargets bounds the number of distinct targets of steps, so that a
	// dynamic Result is built in one allocation.
	maxTargets int
}

type step struct {
	route int
	cond  bool // the route has Where conditions
}

// emptyResult is returned for no match. Zero-length, non-nil slices cost no
// allocation and encode as [] rather than null.
var emptyResult = Result{Routes: []string{}, Targets: []string{}}

func newTable(routes []Route, compiled []route) *Table {
	t := &Table{routes: routes, compiled: compiled, byTask: map[string]*taskIndex{}}
	targetID := map[string]int{}
	for i, r := range routes {
		for _, name := range r.Targets {
			id, ok := targetID[name]
			if !ok {
				id = len(t.targetNames)
				targetID[name] = id
				t.targetNames = append(t.targetNames, name)
			}
			compiled[i].targets = append(compiled[i].targets, id)
		}
	}

	var anyTask []int
	tasks := map[string][]int{}
	var taskOrder []string
	for i, r := range routes {
		if len(r.Tasks) == 0 {
			anyTask = append(anyTask, i)
			continue
		}
		for _, task := range r.Tasks {
			if _, ok := tasks[task]; !ok {
				taskOrder = append(taskOrder, task)
			}
			if l := tasks[task]; len(l) == 0 || l[len(l)-1] != i { // a task listed twice
				tasks[task] = append(l, i)
			}
		}
	}
	t.anyTask = t.newTaskIndex(anyTask)
	for _, task := range taskOrder {
		// Merge the task's own routes with the wildcard ones, keeping config
		// order, since that is the order of Result.Routes.
		t.byTask[task] = t.newTaskIndex(merge(tasks[task], anyTask))
	}
	return t
}

// newTaskIndex builds the per-status entries for the candidate routes of one
// task.
func (t *Table) newTaskIndex(candidates []int) *taskIndex {
	ti := &taskIndex{byStatus: map[string]*entry{}}
	var statuses []int
	for _, i := range candidates {
		if len(t.routes[i].Statuses) == 0 {
			statuses = append(statuses, i)
		}
	}
	ti.other = t.newEntry(statuses)
	for _, i := range candidates {
		for _, status := range t.routes[i].Statuses {
			if _, ok := ti.byStatus[status]; ok {
				continue
			}
			var matching []int
			for _, j := range candidates {
				if len(t.routes[j].Statuses) == 0 || slices.Contains(t.routes[j].Statuses, status) {
					matching = append(matching, j)
				}
			}
			ti.byStatus[status] = t.newEntry(matching)
		}
	}
	return ti
}

func (t *Table) newEntry(routes []int) *entry {
	e := &entry{static: emptyResult}
	var static []int
	conditional := false
	for _, i := range routes {
		if len(t.compiled[i].where) == 0 {
			static = append(static, i)
		} else {
			conditional = true
		}
	}
	if len(static) > 0 {
		e.static = t.result(static)
	}
	if conditional {
		e.steps = make([]step, len(routes))
		for k, i := range routes {
			e.steps[k] = step{route: i, cond: len(t.compiled[i].where) > 0}
		}
		e.maxTargets = len(t.result(routes).Targets)
	}
	return e
}

// result builds the Result of a fixed set of matching routes, at compile
// time.
func (t *Table) result(routes []int) Result {
	res := Result{Routes: []string{}, Targets: []string{}}
	seen := map[int]bool{}
	for _, i := range routes {
		res.Routes = append(res.Routes, t.compiled[i].name)
		for _, id := range t.compiled[i].targets {
			if !seen[id] {
				seen[id] = true
				res.Targets = append(res.Targets, t.targetNames[id])
			}
		}
	}
	res.Routes = res.Routes[:len(res.Routes):len(res.Routes)]
	res.Targets = res.Targets[:len(res.Targets):len(res.Targets)]
	return res
}

// Match routes one event. task and status are the payload's, as validated by
// the ingest; doc is the payload decoded by encoding/json into map[string]any,
// with numbers as float64 or json.Number. Match never panics, whatever doc
// holds (nil included), and allocates only when a route with Where
// conditions matches.
func (t *Table) Match(task, status string, doc map[string]any) Result {
	if t == nil || t.anyTask == nil {
		return emptyResult
	}
	ti, ok := t.byTask[task]
	if !ok {
		ti = t.anyTask
	}
	e, ok := ti.byStatus[status]
	if !ok {
		e = ti.other
	}
	if e.steps == nil {
		return e.static
	}
	return t.matchSteps(e, doc)
}

func (t *Table) matchSteps(e *entry, doc map[string]any) Result {
	// Evaluate first and build second, so that an event no conditional
	// route matches gets the precomputed Result without allocating.
	var buf [64]bool
	matched := buf[:0]
	if len(e.steps) > len(buf) {
		matched = make([]bool, 0, len(e.steps))
	}
	hit := false
	for _, s := range e.steps {
		m := !s.cond || t.compiled[s.route].holds(doc)
		matched = append(matched, m)
		hit = hit || (m && s.cond)
	}
	if !hit {
		return e.static
	}

	var seenBuf [4]uint64
	seen := seenBuf[:]
	if n := (len(t.targetNames) + 63) / 64; n > len(seenBuf) {
		seen = make([]uint64, n)
	}
	nr := len(e.steps)
	out := make([]string, 0, nr+e.maxTargets)
	routes := out[0:0:nr]
	targets := out[nr:nr]
	for k, s := range e.steps {
		if !matched[k] {
			continue
		}
		r := &t.compiled[s.route]
		routes = append(routes, r.name)
		for _, id := range r.targets {
			if seen[id/64]&(1<<(id%64)) == 0 {
				seen[id/64] |= 1 << (id % 64)
				targets = append(targets, t.targetNames[id])
			}
		}
	}
	return Result{
		Routes:  routes[:len(routes):len(routes)],
		Targets: targets[:len(targets):len(targets)],
	}
}

// merge merges two ascending lists of route indexes.
func merge(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
