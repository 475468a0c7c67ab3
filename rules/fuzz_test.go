package rules

import (
	"reflect"
	"testing"
)

// fuzzRoutes uses every operator, on paths that Hoox payloads have and on
// arrays, against every kind of value, so that the fuzzer can reach each
// branch of the compiled conditions and of the index.
var fuzzRoutes = []Route{
	{Name: "everything", Targets: []string{"audit"}},
	{Name: "finished-videos", Tasks: []string{"video_generate", "video_export"}, Statuses: []string{"completed"},
		Where: []Cond{{"result.cost", "gte", 1}}, Targets: []string{"media", "audit"}},
	{Name: "failures", Statuses: []string{"error", "failed"}, Targets: []string{"alerts"}},
	{Name: "avatars", Tasks: []string{"avatar_create", "avatar_edit"}, Targets: []string{"avatars", "media"}},
	{Name: "eq-string", Where: []Cond{{"error.code", "eq", "GENERATION_FAILED"}}, Targets: []string{"alerts", "oncall"}},
	{Name: "eq-number", Where: []Cond{{"result.cost", "eq", 5}}, Targets: []string{"billing"}},
	{Name: "eq-bool", Where: []Cond{{"result.ok", "eq", true}}, Targets: []string{"t1"}},
	{Name: "eq-null", Where: []Cond{{"result.note", "eq", nil}}, Targets: []string{"t2"}},
	{Name: "ne", Tasks: []string{"video_generate"}, Where: []Cond{{"status", "ne", "completed"}}, Targets: []string{"t3"}},
	{Name: "in", Where: []Cond{{"result.cost", "in", []any{1, 2.5, "3", true, nil}}}, Targets: []string{"t4", "billing"}},
	{Name: "exists", Where: []Cond{{"job_id", "exists", nil}}, Targets: []string{"t5"}},
	{Name: "absent", Statuses: []string{"completed"}, Where: []Cond{{"error", "exists", false}}, Targets: []string{"t6"}},
	{Name: "gt-number", Where: []Cond{{"result.cost", "gt", 2}}, Targets: []string{"t7"}},
	{Name: "lt-number", Where: []Cond{{"result.cost", "lt", -1.5}}, Targets: []string{"t7"}},
	{Name: "gte-time", Where: []Cond{{"result.created_at", "gte", "2024-01-01T00:00:00Z"}}, Targets: []string{"t8"}},
	{Name: "lte-string", Where: []Cond{{"look_id", "lte", "look_m"}}, Targets: []string{"t9"}},
	{Name: "prefix", Tasks: []string{"avatar_edit", "lipsync"}, Where: []Cond{{"avatar_id", "prefix", "avtr_"}}, Targets: []string{"avatars"}},
	{Name: "array", Where: []Cond{{"items.0.id", "eq", "a"}, {"items.1", "exists", true}}, Targets: []string{"t10"}},
	{Name: "numeric-key", Where: []Cond{{"0.0", "gte", 0}}, Targets: []string{"t11"}},
	{Name: "large", Where: []Cond{{"n", "gt", uint64(1) << 60}}, Targets: []string{"t12"}},
	{Name: "export-only", Tasks: []string{"video_export"}, Targets: []string{"archive", "audit"}},
}

func FuzzMatch(f *testing.F) {
	seeds := []struct{ doc, task, status string }{
		{videoDone, "video_generate", "completed"},
		{avatarError, "avatar_edit", "error"},
		{`{"task":"video_export","job_id":"j","status":"completed","result":{"cost":1.0}}`, "video_export", "completed"},
		{`{"task":"lipsync","status":"failed","avatar_id":"avtr_1","items":[{"id":"a"},2]}`, "lipsync", "failed"},
		{`{"result":{"cost":"3"},"0":[7]}`, "x", "y"},
		{`{"n":1152921504606846977,"result":{"cost":-2e0}}`, "", ""},
		{`{"result":{"cost":1e400}}`, "video_generate", "completed"},
		{`null`, "video_generate", "completed"},
		{`[1,2]`, "", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.doc), s.task, s.status)
	}
	table, err := Compile(fuzzRoutes)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, task, status string) {
		var results []Result
		for _, d := range decoders {
			doc, err := d.decode(data)
			if err != nil {
				doc = nil // Match must cope with whatever it is handed, nothing included
			}
			got := table.Match(task, status, doc)
			if want := naiveMatch(fuzzRoutes, task, status, doc); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded with %s, Match(%q, %q, %s) = %+v\nreference matcher says %+v", d.name, task, status, data, got, want)
			}
			if err == nil {
				results = append(results, got)
			}
		}
		// Numbers compare the same whatever their representation, so both
		// decodings of a document route alike.
		if len(results) == 2 && !reflect.DeepEqual(results[0], results[1]) {
			t.Fatalf("Match(%q, %q, %s) differs by number representation: float64 %+v, json.Number %+v", task, status, data, results[0], results[1])
		}
	})
}
