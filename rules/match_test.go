package rules

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// specRoutes is a routing table in the shape docs/configuration.md describes.
var specRoutes = []Route{
	{Name: "finished-videos", Tasks: []string{"video_generate", "video_export"}, Statuses: []string{"completed"},
		Where: []Cond{{"result.cost", "gte", 1}}, Targets: []string{"media", "billing"}},
	{Name: "avatars", Tasks: []string{"avatar_create", "avatar_edit"}, Targets: []string{"avatars"}},
	{Name: "failures", Statuses: []string{"error", "failed"}, Targets: []string{"alerts", "avatars"}},
	{Name: "audit", Targets: []string{"audit"}},
	{Name: "exports", Tasks: []string{"video_export"}, Targets: []string{"media", "archive", "media"}},
	{Name: "free-videos", Tasks: []string{"video_generate"}, Where: []Cond{{"result.cost", "lt", 1}}, Targets: []string{"billing"}},
}

func TestMatch(t *testing.T) {
	table, err := Compile(specRoutes)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		task, status string
		doc          map[string]any
		routes       []string
		targets      []string
	}{
		{"paid video", "video_generate", "completed", map[string]any{"result": map[string]any{"cost": 5.0}},
			[]string{"finished-videos", "audit"}, []string{"media", "billing", "audit"}},
		{"free video", "video_generate", "completed", map[string]any{"result": map[string]any{"cost": 0.0}},
			[]string{"audit", "free-videos"}, []string{"audit", "billing"}},
		{"video without cost", "video_generate", "completed", map[string]any{},
			[]string{"audit"}, []string{"audit"}},
		{"video still processing", "video_generate", "processing", map[string]any{"result": map[string]any{"cost": 5.0}},
			[]string{"audit"}, []string{"audit"}},
		{"paid export: targets once, first appearance wins", "video_export", "completed", map[string]any{"result": map[string]any{"cost": 2.0}},
			[]string{"finished-videos", "audit", "exports"}, []string{"media", "billing", "audit", "archive"}},
		{"failed avatar: shared target once", "avatar_edit", "error", nil,
			[]string{"avatars", "failures", "audit"}, []string{"avatars", "alerts", "audit"}},
		{"unknown task uses wildcard routes", "lipsync", "failed", nil,
			[]string{"failures", "audit"}, []string{"alerts", "avatars", "audit"}},
		{"unknown task and status", "lipsync", "weird", nil,
			[]string{"audit"}, []string{"audit"}},
		{"empty task", "", "", nil,
			[]string{"audit"}, []string{"audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := table.Match(tt.task, tt.status, tt.doc)
			if !slices.Equal(got.Routes, tt.routes) || !slices.Equal(got.Targets, tt.targets) {
				t.Errorf("Match(%q, %q, %v) = %+v\nwant routes %q targets %q", tt.task, tt.status, tt.doc, got, tt.routes, tt.targets)
			}
			if ref := naiveMatch(specRoutes, tt.task, tt.status, tt.doc); !reflect.DeepEqual(got, ref) {
				t.Errorf("Match(%q, %q, %v) = %+v, reference matcher says %+v", tt.task, tt.status, tt.doc, got, ref)
			}
		})
	}
}

func TestMatchNothing(t *testing.T) {
	only, err := Compile([]Route{{Name: "videos", Tasks: []string{"video_generate"}, Targets: []string{"media"}}})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]*Table{"no matching route": only, "no routes": empty, "nil table": nil, "zero table": {}}
	for name, table := range tables {
		t.Run(name, func(t *testing.T) {
			got := table.Match("avatar_edit", "completed", map[string]any{})
			if got.Routes == nil || got.Targets == nil || len(got.Routes) != 0 || len(got.Targets) != 0 {
				t.Errorf("Match = %#v, want empty non-nil slices", got)
			}
		})
	}
}

func TestMatchEverything(t *testing.T) {
	table, err := Compile([]Route{{Name: "all", Targets: []string{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range [][2]string{{"video_generate", "completed"}, {"", ""}, {"x", "y"}} {
		got := table.Match(ev[0], ev[1], nil)
		if !slices.Equal(got.Routes, []string{"all"}) || !slices.Equal(got.Targets, []string{"a", "b"}) {
			t.Errorf("Match(%q, %q) = %+v, want route all to targets a, b", ev[0], ev[1], got)
		}
	}
}

// TestMatchResultIsSafeToAppend checks that a caller appending to a shared,
// precomputed Result cannot corrupt the Table or another Result.
func TestMatchResultIsSafeToAppend(t *testing.T) {
	table, err := Compile(specRoutes)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"result": map[string]any{"cost": 5.0}}
	for _, ev := range [][2]string{{"avatar_edit", "error"}, {"video_generate", "completed"}} {
		first := table.Match(ev[0], ev[1], doc)
		_ = append(first.Routes, "extra")
		_ = append(first.Targets, "extra")
		if again := table.Match(ev[0], ev[1], doc); !reflect.DeepEqual(again, naiveMatch(specRoutes, ev[0], ev[1], doc)) {
			t.Errorf("after appending to a Result, Match(%q, %q) = %+v", ev[0], ev[1], again)
		}
	}
}

// TestIndexAgreesWithReference compiles random tables and checks Match
// against the route-walking reference on random events.
func TestIndexAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tasks := []string{"video_generate", "video_export", "avatar_create", "avatar_edit", "lipsync", ""}
	statuses := []string{"completed", "error", "processing", ""}
	targets := []string{"a", "b", "c", "d", "e"}
	pick := func(from []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, from[rng.IntN(len(from))])
		}
		return out
	}
	conds := []Cond{
		{"n", "gt", 0}, {"n", "lte", 2}, {"s", "eq", "x"}, {"s", "prefix", "y"},
		{"s", "ne", "x"}, {"n", "exists", false}, {"n", "in", []any{1, 3}},
	}
	for round := range 300 {
		var routes []Route
		for i := range rng.IntN(25) {
			r := Route{Name: fmt.Sprintf("r%d", i), Targets: pick(targets, 4)}
			if rng.IntN(2) == 0 {
				r.Tasks = pick(tasks, 3)
			}
			if rng.IntN(2) == 0 {
				r.Statuses = pick(statuses, 2)
			}
			for range rng.IntN(3) {
				r.Where = append(r.Where, conds[rng.IntN(len(conds))])
			}
			routes = append(routes, r)
		}
		table, err := Compile(routes)
		if err != nil {
			t.Fatalf("round %d: Compile: %v", round, err)
		}
		checkIndex(t, table)
		for range 50 {
			task := tasks[rng.IntN(len(tasks))]
			status := statuses[rng.IntN(len(statuses))]
			doc := map[string]any{}
			if rng.IntN(4) > 0 {
				doc["n"] = float64(rng.IntN(5))
			}
			doc["s"] = []string{"x", "y", "yz", "z"}[rng.IntN(4)]
			got := table.Match(task, status, doc)
			if want := naiveMatch(routes, task, status, doc); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: routes %+v\nMatch(%q, %q, %v) = %+v\nreference says %+v", round, routes, task, status, doc, got, want)
			}
		}
	}
}

// checkIndex checks that the index never hands Match a route that cannot
// match the (task, status) pair it is filed under, and never precomputes a
// Result it cannot know.
func checkIndex(t *testing.T, table *Table) {
	t.Helper()
	check := func(task string, taskKnown bool, ti *taskIndex) {
		entries := map[string]*entry{"(other)": ti.other}
		for s, e := range ti.byStatus {
			entries[s] = e
		}
		for status, e := range entries {
			for _, s := range e.steps {
				r := table.routes[s.route]
				if taskKnown && len(r.Tasks) > 0 && !slices.Contains(r.Tasks, task) || !taskKnown && len(r.Tasks) > 0 {
					t.Errorf("task %q status %q: route %d %q is a candidate but names tasks %q", task, status, s.route, r.Name, r.Tasks)
				}
				if status == "(other)" && len(r.Statuses) > 0 || status != "(other)" && len(r.Statuses) > 0 && !slices.Contains(r.Statuses, status) {
					t.Errorf("task %q status %q: route %d %q is a candidate but names statuses %q", task, status, s.route, r.Name, r.Statuses)
				}
				if s.cond != (len(r.Where) > 0) {
					t.Errorf("task %q status %q: route %d %q has cond=%v with %d conditions", task, status, s.route, r.Name, s.cond, len(r.Where))
				}
			}
		}
	}
	check("", false, table.anyTask)
	for task, ti := range table.byTask {
		check(task, true, ti)
	}
}

func TestMatchAllocations(t *testing.T) {
	table, err := Compile(specRoutes)
	if err != nil {
		t.Fatal(err)
	}
	paid := map[string]any{"result": map[string]any{"cost": 5.0}}
	tests := []struct {
		name         string
		task, status string
		doc          map[string]any
		want         float64
	}{
		{"no conditional candidate", "avatar_edit", "error", nil, 0},
		{"unknown task", "lipsync", "completed", nil, 0},
		{"conditions fail", "video_export", "completed", map[string]any{}, 0},
		{"condition holds", "video_generate", "completed", paid, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, func() { table.Match(tt.task, tt.status, tt.doc) }); got != tt.want {
				t.Errorf("Match(%q, %q) allocates %v times, want %v", tt.task, tt.status, got, tt.want)
			}
		})
	}
}

// TestMatchConcurrent gives the race detector a Table shared by goroutines.
func TestMatchConcurrent(t *testing.T) {
	table, err := Compile(specRoutes)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"result": map[string]any{"cost": 5.0}}
	want := naiveMatch(specRoutes, "video_export", "completed", doc)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := table.Match("video_export", "completed", doc); !reflect.DeepEqual(got, want) {
					t.Errorf("concurrent Match = %+v, want %+v", got, want)
					return
				}
				_ = table.Routes()
			}
		})
	}
	wg.Wait()
}

// TestMatchManyTargets covers the target set that outgrows the stack bitset.
func TestMatchManyTargets(t *testing.T) {
	var routes []Route
	for i := range 300 {
		routes = append(routes, Route{
			Name:    fmt.Sprintf("r%d", i),
			Where:   []Cond{{"n", "gte", i % 7}},
			Targets: []string{fmt.Sprintf("t%d", i), fmt.Sprintf("t%d", (i*7)%300)},
		})
	}
	table, err := Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []float64{-1, 0, 3, 6} {
		doc := map[string]any{"n": n}
		if got, want := table.Match("x", "y", doc), naiveMatch(routes, "x", "y", doc); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(n=%v) = %d routes %d targets, reference %d routes %d targets", n, len(got.Routes), len(got.Targets), len(want.Routes), len(want.Targets))
		}
	}
}
