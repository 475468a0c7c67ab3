package rules

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// decoders are the two ways a payload reaches Match: the relay's plain
// json.Unmarshal (numbers as float64) and a Decoder with UseNumber (numbers as
// json.Number). Every condition must hold the same way under both.
var decoders = []struct {
	name   string
	decode func([]byte) (map[string]any, error)
}{
	{"float64", func(b []byte) (map[string]any, error) {
		var doc map[string]any
		err := json.Unmarshal(b, &doc)
		return doc, err
	}},
	{"json.Number", func(b []byte) (map[string]any, error) {
		var doc map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		err := d.Decode(&doc)
		return doc, err
	}},
}

const (
	videoDone = `{"task":"video_generate","job_id":"run_0123","status":"completed",
		"result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,
		"created_at":"2024-01-15T10:30:00Z","ratio":0.5,"big":1e300,"ok":true,"note":null,
		"items":[{"id":"a"},{"id":"b","n":[10,20]}],"tags":{"0":"zero"}}}`
	avatarError = `{"task":"avatar_edit","avatar_id":"avtr_abc","look_id":"look_edit_789","status":"error",
		"error":{"code":"GENERATION_FAILED","message":"…"}}`
)

func TestCondHolds(t *testing.T) {
	tests := []struct {
		name string
		cond Cond
		doc  string
		want bool
	}{
		// eq
		{"eq string", Cond{"error.code", "eq", "GENERATION_FAILED"}, avatarError, true},
		{"eq string differs", Cond{"error.code", "eq", "TIMEOUT"}, avatarError, false},
		{"eq int vs JSON int", Cond{"result.cost", "eq", 5}, videoDone, true},
		{"eq int64 vs JSON int", Cond{"result.cost", "eq", int64(5)}, videoDone, true},
		{"eq uint64 vs JSON int", Cond{"result.cost", "eq", uint64(5)}, videoDone, true},
		{"eq float vs JSON int", Cond{"result.cost", "eq", 5.0}, videoDone, true},
		{"eq float vs JSON float", Cond{"result.ratio", "eq", 0.5}, videoDone, true},
		{"eq json.Number", Cond{"result.cost", "eq", json.Number("5.0")}, videoDone, true},
		{"eq large exponent", Cond{"result.big", "eq", 1e300}, videoDone, true},
		{"eq number differs", Cond{"result.cost", "eq", 6}, videoDone, false},
		{"eq string never equals number", Cond{"result.cost", "eq", "5"}, videoDone, false},
		{"eq number never equals string", Cond{"job_id", "eq", 123}, `{"job_id":"123"}`, false},
		{"eq bool", Cond{"result.ok", "eq", true}, videoDone, true},
		{"eq bool differs", Cond{"result.ok", "eq", false}, videoDone, false},
		{"eq null", Cond{"result.note", "eq", nil}, videoDone, true},
		{"eq null vs missing", Cond{"result.nothing", "eq", nil}, videoDone, false},
		{"eq null vs string", Cond{"result.video_id", "eq", nil}, videoDone, false},
		{"eq on object", Cond{"result", "eq", "x"}, videoDone, false},
		{"eq on array", Cond{"result.items", "eq", nil}, videoDone, false},
		{"eq missing", Cond{"error.code", "eq", "X"}, videoDone, false},
		{"eq array index", Cond{"result.items.1.id", "eq", "b"}, videoDone, true},
		{"eq nested array index", Cond{"result.items.1.n.1", "eq", 20}, videoDone, true},
		{"eq index out of range", Cond{"result.items.2.id", "eq", "b"}, videoDone, false},
		{"eq non-canonical index", Cond{"result.items.01.id", "eq", "b"}, videoDone, false},
		{"eq numeric key in object", Cond{"result.tags.0", "eq", "zero"}, videoDone, true},
		{"eq through a scalar", Cond{"job_id.x", "eq", "r"}, videoDone, false},
		{"eq unquoted YAML timestamp", Cond{"result.created_at", "eq", time.Date(2024, 1, 15, 12, 30, 0, 0, time.FixedZone("", 2*3600))}, videoDone, true},

		// ne
		{"ne differs", Cond{"status", "ne", "completed"}, avatarError, true},
		{"ne same", Cond{"status", "ne", "completed"}, videoDone, false},
		{"ne missing", Cond{"error.code", "ne", "X"}, videoDone, true},
		{"ne number same", Cond{"result.cost", "ne", 5}, videoDone, false},
		{"ne number vs string", Cond{"result.cost", "ne", "5"}, videoDone, true},
		{"ne null vs null", Cond{"result.note", "ne", nil}, videoDone, false},
		{"ne on object", Cond{"result", "ne", nil}, videoDone, true},

		// in
		{"in strings", Cond{"task", "in", []any{"video_export", "video_generate"}}, videoDone, true},
		{"in strings absent", Cond{"task", "in", []any{"avatar_edit"}}, videoDone, false},
		{"in mixed with int", Cond{"result.cost", "in", []any{"5", 5}}, videoDone, true},
		{"in only string form", Cond{"result.cost", "in", []any{"5", true}}, videoDone, false},
		{"in null", Cond{"result.note", "in", []any{"x", nil}}, videoDone, true},
		{"in missing", Cond{"nope", "in", []any{nil}}, videoDone, false},
		{"in []string", Cond{"status", "in", []string{"error", "failed"}}, avatarError, true},

		// exists
		{"exists present", Cond{"job_id", "exists", true}, videoDone, true},
		{"exists omitted value", Cond{"job_id", "exists", nil}, videoDone, true},
		{"exists null counts", Cond{"result.note", "exists", true}, videoDone, true},
		{"exists object", Cond{"error", "exists", nil}, avatarError, true},
		{"exists missing", Cond{"error", "exists", true}, videoDone, false},
		{"exists false missing", Cond{"error", "exists", false}, videoDone, true},
		{"exists false present", Cond{"error", "exists", false}, avatarError, false},
		{"exists false null", Cond{"result.note", "exists", false}, videoDone, false},
		{"exists array element", Cond{"result.items.0", "exists", true}, videoDone, true},
		{"exists past array end", Cond{"result.items.5", "exists", false}, videoDone, true},

		// gt gte lt lte on numbers
		{"gt true", Cond{"result.cost", "gt", 4}, videoDone, true},
		{"gt equal", Cond{"result.cost", "gt", 5}, videoDone, false},
		{"gte equal", Cond{"result.cost", "gte", 5}, videoDone, true},
		{"gte float", Cond{"result.cost", "gte", 5.5}, videoDone, false},
		{"lt true", Cond{"result.ratio", "lt", 1}, videoDone, true},
		{"lt false", Cond{"result.cost", "lt", 5}, videoDone, false},
		{"lte equal", Cond{"result.cost", "lte", 5}, videoDone, true},
		{"lte false", Cond{"result.cost", "lte", 4.99}, videoDone, false},
		{"gt negative", Cond{"n", "gt", -1}, `{"n":-0.5}`, true},
		{"gt string payload vs number", Cond{"result.video_id", "gt", 0}, videoDone, false},
		{"gt numeric string vs number", Cond{"n", "gt", 1}, `{"n":"5"}`, false},
		{"gt null vs number", Cond{"result.note", "gt", -1e308}, videoDone, false},
		{"gt missing", Cond{"result.nope", "gt", 0}, videoDone, false},

		// gt gte lt lte on strings
		{"gte timestamp", Cond{"result.created_at", "gte", "2024-01-15T00:00:00Z"}, videoDone, true},
		{"gt timestamp later", Cond{"result.created_at", "gt", "2024-01-15T10:30:00Z"}, videoDone, false},
		{"lt timestamp", Cond{"result.created_at", "lt", "2025-01-01T00:00:00Z"}, videoDone, true},
		{"lte timestamp equal", Cond{"result.created_at", "lte", "2024-01-15T10:30:00Z"}, videoDone, true},
		{"lte timestamp before", Cond{"result.created_at", "lte", "2024-01-01"}, videoDone, false},
		{"gte YAML timestamp", Cond{"result.created_at", "gte", time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)}, videoDone, true},
		{"gt number payload vs string", Cond{"result.cost", "gt", "1"}, videoDone, false},

		// prefix
		{"prefix", Cond{"avatar_id", "prefix", "avtr_"}, avatarError, true},
		{"prefix empty", Cond{"avatar_id", "prefix", ""}, avatarError, true},
		{"prefix other", Cond{"avatar_id", "prefix", "look_"}, avatarError, false},
		{"prefix longer than value", Cond{"avatar_id", "prefix", "avtr_abcdef"}, avatarError, false},
		{"prefix on number", Cond{"result.cost", "prefix", "5"}, videoDone, false},
		{"prefix missing", Cond{"avatar_id", "prefix", "a"}, videoDone, false},
	}
	for _, tt := range tests {
		for _, d := range decoders {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				doc, err := d.decode([]byte(tt.doc))
				if err != nil {
					t.Fatalf("decode %s: %v", tt.doc, err)
				}
				routes := []Route{{Name: "r", Where: []Cond{tt.cond}, Targets: []string{"t"}}}
				table, err := Compile(routes)
				if err != nil {
					t.Fatalf("Compile(%v): %v", tt.cond, err)
				}
				res := table.Match("any", "any", doc)
				if got := len(res.Routes) == 1; got != tt.want {
					t.Errorf("condition %v: Match = %+v, want held=%v", tt.cond, res, tt.want)
				}
				if refKnows(tt.cond.Value) {
					ref := naiveMatch(routes, "any", "any", doc)
					if got := len(ref.Routes) == 1; got != tt.want {
						t.Errorf("condition %v: reference matcher says held=%v, want %v", tt.cond, got, tt.want)
					}
				}
			})
		}
	}
}

// refKnows reports whether the reference matcher understands v: it knows only
// the types YAML and JSON produce, not the conversions Compile adds.
func refKnows(v any) bool {
	switch v := v.(type) {
	case nil, string, bool, float64, int, int64, uint64:
		return true
	case []any:
		for _, e := range v {
			if !refKnows(e) {
				return false
			}
		}
		return true
	}
	return false
}

func TestMatchOddDocs(t *testing.T) {
	var conds []Cond
	for _, path := range []string{"a", "a.b", "a.0", "a.0.b", "a.b.c.d.e.f"} {
		conds = append(conds,
			Cond{path, "eq", 1}, Cond{path, "ne", "x"}, Cond{path, "in", []any{nil, 1}},
			Cond{path, "exists", nil}, Cond{path, "exists", false}, Cond{path, "gt", 0},
			Cond{path, "lte", "z"}, Cond{path, "prefix", ""})
	}
	var routes []Route
	for i, c := range conds {
		routes = append(routes, Route{Name: c.String(), Where: conds[i : i+1], Targets: []string{"t"}})
	}
	table, err := Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	deep := map[string]any{}
	cur := deep
	for range 10000 {
		next := map[string]any{}
		cur["a"] = next
		cur = next
	}
	docs := map[string]map[string]any{
		"nil":           nil,
		"empty":         {},
		"a null":        {"a": nil},
		"a string":      {"a": "str"},
		"a empty array": {"a": []any{}},
		"a nil array":   {"a": []any(nil)},
		"a typed map":   {"a": map[string]string{"b": "c"}},
		"a typed slice": {"a": []string{"x"}},
		"a struct":      {"a": struct{ B int }{1}},
		"a channel":     {"a": make(chan int)},
		"a func":        {"a": func() {}},
		"a nil map":     {"a": map[string]any(nil)},
		"bad number":    {"a": json.Number("not a number")},
		"huge number":   {"a": json.Number("1e400")},
		"int types":     {"a": map[string]any{"b": int8(1), "0": uint16(1)}},
		"deep":          deep,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			got := table.Match("t", "s", doc) // must not panic
			if got.Routes == nil || got.Targets == nil {
				t.Errorf("Match on %s returned nil slices: %#v", name, got)
			}
		})
	}
	t.Run("huge number orders as infinity", func(t *testing.T) {
		res := table.Match("t", "s", map[string]any{"a": json.Number("1e400")})
		if !slices.Contains(res.Routes, "a gt 0") {
			t.Errorf("Match(a=1e400).Routes = %q, want it to include %q", res.Routes, "a gt 0")
		}
	})
}
