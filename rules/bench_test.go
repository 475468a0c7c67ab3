package rules

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchRoutes builds a table of 20 routes of the shape operators write: one
// per (task, status) of interest, a few catch-alls, and — when where is set —
// conditions on a third of them.
func benchRoutes(where bool) []Route {
	tasks := []string{"video_generate", "video_export", "avatar_create", "avatar_edit"}
	statuses := []string{"completed", "error", "processing", "failed"}
	var routes []Route
	for i := range 16 {
		r := Route{
			Name:     fmt.Sprintf("r%02d", i),
			Tasks:    []string{tasks[i%4]},
			Statuses: []string{statuses[i/4]},
			Targets:  []string{fmt.Sprintf("team%d", i%5), "audit"},
		}
		if where && i%3 == 0 {
			r.Where = []Cond{{"result.cost", "gte", 1}, {"result.created_at", "gte", "2024-01-01T00:00:00Z"}}
		}
		routes = append(routes, r)
	}
	routes = append(routes,
		Route{Name: "failures", Statuses: []string{"error", "failed"}, Targets: []string{"alerts"}},
		Route{Name: "all", Targets: []string{"audit"}},
		Route{Name: "videos", Tasks: []string{"video_generate", "video_export"}, Targets: []string{"media"}},
		Route{Name: "avatars", Tasks: []string{"avatar_create", "avatar_edit"}, Targets: []string{"avatars"}},
	)
	if where {
		routes[16].Where = []Cond{{"error.code", "in", []any{"GENERATION_FAILED", "TIMEOUT"}}}
		routes[18].Where = []Cond{{"job_id", "prefix", "run_"}}
	}
	return routes
}

func BenchmarkMatch(b *testing.B) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(videoDone), &doc); err != nil {
		b.Fatal(err)
	}
	for _, where := range []bool{false, true} {
		routes := benchRoutes(where)
		table, err := Compile(routes)
		if err != nil {
			b.Fatal(err)
		}
		events := []struct {
			name, task, status string
			doc                map[string]any
		}{
			{"known-task", "video_generate", "completed", doc},
			{"known-task-conditions-fail", "video_generate", "completed", map[string]any{}},
			{"unknown-task", "lipsync", "completed", doc},
		}
		for _, ev := range events {
			b.Run(fmt.Sprintf("where=%v/%s", where, ev.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					table.Match(ev.task, ev.status, ev.doc)
				}
			})
		}
		// The reference matcher walks every route: what the index saves.
		b.Run(fmt.Sprintf("where=%v/naive-walk", where), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				naiveMatch(routes, "video_generate", "completed", doc)
			}
		})
	}
}
