package rules

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	const ops = "eq ne in exists gt gte lt lte prefix"
	tests := []struct {
		name  string
		cond  Cond
		field string // the key the single error names
		msg   string // and its message
	}{
		{"unknown op", Cond{"result.cost", "gtx", 1}, "op", `must be one of ` + ops + `, got "gtx"`},
		{"empty op", Cond{"result.cost", "", 1}, "op", `is required: one of ` + ops},
		{"op case matters", Cond{"result.cost", "EQ", 1}, "op", `must be one of ` + ops + `, got "EQ"`},
		{"empty path", Cond{"", "exists", nil}, "path", `is required: a dot-separated path into the payload, such as result.cost`},
		{"leading dot", Cond{".a", "exists", nil}, "path", `must be field names separated by single dots, such as result.cost, got ".a"`},
		{"trailing dot", Cond{"a.", "exists", nil}, "path", `must be field names separated by single dots, such as result.cost, got "a."`},
		{"double dot", Cond{"result..cost", "exists", nil}, "path", `must be field names separated by single dots, such as result.cost, got "result..cost"`},
		{"in scalar", Cond{"a", "in", "x"}, "value", `must be a list such as [completed, error] for op "in", got string "x"`},
		{"in null", Cond{"a", "in", nil}, "value", `must be a list such as [completed, error] for op "in", got null`},
		{"in empty", Cond{"a", "in", []any{}}, "value", `must not be empty for op "in": an empty list never matches`},
		{"in nested list", Cond{"a", "in", []any{"x", []any{1}}}, "value[1]", `must be a string, number, bool or null, got a list [1]`},
		{"in map element", Cond{"a", "in", []any{map[string]any{"k": 1}}}, "value[0]", `must be a string, number, bool or null, got a map`},
		{"in NaN element", Cond{"a", "in", []any{1, math.NaN()}}, "value[1]", `must be a number other than NaN (which equals nothing), got number NaN`},
		{"gt bool", Cond{"a", "gt", true}, "value", `must be a number or a string for op "gt", got bool true`},
		{"gte null", Cond{"a", "gte", nil}, "value", `must be a number or a string for op "gte", got null`},
		{"lt list", Cond{"a", "lt", []any{1}}, "value", `must be a number or a string for op "lt", got a list [1]`},
		{"lte NaN", Cond{"a", "lte", math.NaN()}, "value", `must be a number or a string for op "lte", got number NaN`},
		{"prefix number", Cond{"a", "prefix", 3}, "value", `must be a string for op "prefix", got number 3`},
		{"prefix null", Cond{"a", "prefix", nil}, "value", `must be a string for op "prefix", got null`},
		{"exists string", Cond{"a", "exists", "yes"}, "value", `must be true, false or left out for op "exists", got string "yes"`},
		{"exists number", Cond{"a", "exists", 1}, "value", `must be true, false or left out for op "exists", got number 1`},
		{"eq list", Cond{"a", "eq", []any{"x"}}, "value", `must be a string, number, bool or null for op "eq", got a list ["x"]`},
		{"ne map", Cond{"a", "ne", map[string]any{}}, "value", `must be a string, number, bool or null for op "ne", got a map`},
		{"eq NaN", Cond{"a", "eq", math.NaN()}, "value", `must be a number other than NaN (which equals nothing) for op "eq", got number NaN`},
		{"eq bad json.Number", Cond{"a", "eq", json.Number("x1")}, "value", `must be a valid number for op "eq", got json.Number "x1"`},
		{"eq struct", Cond{"a", "eq", struct{}{}}, "value", `must be a string, number, bool or null for op "eq", got struct {} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := Compile([]Route{{Name: "r", Where: []Cond{{"ok", "exists", nil}, tt.cond}}})
			if err == nil {
				t.Fatalf("Compile(where %#v) = %v, nil; want an error on %s: %s", tt.cond, table, tt.field, tt.msg)
			}
			if table != nil {
				t.Errorf("Compile(where %#v) returned a table along with its error", tt.cond)
			}
			want := `routes[0] ("r"): where[1].` + tt.field + ": " + tt.msg
			if err.Error() != want {
				t.Errorf("Compile(where %#v) error:\n got %s\nwant %s", tt.cond, err, want)
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Route != 0 || ce.Name != "r" || ce.Cond != 1 || ce.Field != tt.field || ce.Msg != tt.msg {
				t.Errorf("Compile(where %#v) error %#v: want a *CompileError for routes[0] where[1], field %q", tt.cond, err, tt.field)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	routes := []Route{
		{Name: "ok", Where: []Cond{{"a", "eq", 1}}},
		{Name: "two-bad", Where: []Cond{{"a", "exists", nil}, {"", "gtx", 1}}},
		{Name: "finished-videos", Where: []Cond{{"result.cost", "gtx", 1}}},
	}
	_, err := Compile(routes)
	want := []string{
		`routes[1] ("two-bad"): where[1].path: is required: a dot-separated path into the payload, such as result.cost`,
		`routes[1] ("two-bad"): where[1].op: must be one of eq ne in exists gt gte lt lte prefix, got "gtx"`,
		`routes[2] ("finished-videos"): where[0].op: must be one of eq ne in exists gt gte lt lte prefix, got "gtx"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Compile error:\n got %v\nwant %s", err, strings.Join(want, "\n"))
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Compile error %T does not unwrap to a list", err)
	}
	for i, e := range joined.Unwrap() {
		var ce *CompileError
		if !errors.As(e, &ce) {
			t.Errorf("error %d is %T, want *CompileError", i, e)
		}
	}
}

func TestCompileAcceptsYAMLValues(t *testing.T) {
	// What go.yaml.in/yaml/v3 produces for scalars decoded into `any`.
	values := []any{"s", 1, int64(-1 << 40), uint64(1 << 63), 1.5, true, false, nil,
		time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), math.Inf(1)}
	for _, v := range values {
		for _, op := range []string{"eq", "ne"} {
			if _, err := Compile([]Route{{Where: []Cond{{"a", op, v}}}}); err != nil {
				t.Errorf("Compile(%s %#v): %v", op, v, err)
			}
		}
	}
	if _, err := Compile([]Route{{Where: []Cond{{"a", "in", values}}}}); err != nil {
		t.Errorf("Compile(in %#v): %v", values, err)
	}
}

func TestCompileCopiesRoutes(t *testing.T) {
	routes := []Route{{
		Name: "r", Tasks: []string{"video_generate"}, Statuses: []string{"completed"},
		Where: []Cond{{"a", "in", []any{"x"}}}, Targets: []string{"media"},
	}}
	table, err := Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	routes[0].Tasks[0] = "changed"
	routes[0].Targets[0] = "changed"
	routes[0].Where[0].Value.([]any)[0] = "changed"

	got := table.Routes()
	if got[0].Tasks[0] != "video_generate" || got[0].Targets[0] != "media" || got[0].Where[0].Value.([]any)[0] != "x" {
		t.Errorf("Routes() after changing the input = %+v, want the routes as compiled", got)
	}
	got[0].Name = "changed again"
	if table.Routes()[0].Name != "r" {
		t.Errorf("changing the result of Routes() changed the table")
	}
	res := table.Match("video_generate", "completed", map[string]any{"a": "x"})
	if len(res.Targets) != 1 || res.Targets[0] != "media" {
		t.Errorf("Match after changing the input = %+v, want target media", res)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		route Route
		want  string
	}{
		{Route{}, "any event"},
		{Route{Tasks: []string{"video_generate", "video_export"}, Statuses: []string{"completed"},
			Where: []Cond{{"result.cost", "gte", 1}}},
			"task in [video_generate, video_export], status in [completed], result.cost gte 1"},
		{Route{Where: []Cond{
			{"error.code", "in", []any{"A", 2.5, nil, true}},
			{"error", "exists", nil},
			{"error", "exists", true},
			{"job_id", "exists", false},
			{"result.created_at", "gte", time.Date(2024, 1, 15, 11, 30, 0, 0, time.FixedZone("", 3600))},
			{"big", "lt", uint64(1 << 63)},
			{"status", "in", []string{"a", "b"}},
		}}, `error.code in ["A", 2.5, null, true], error exists, error exists, job_id exists false, ` +
			`result.created_at gte "2024-01-15T10:30:00Z", big lt 9223372036854775808, status in ["a", "b"]`},
	}
	for _, tt := range tests {
		if got := tt.route.Describe(); got != tt.want {
			t.Errorf("%#v.Describe():\n got %s\nwant %s", tt.route, got, tt.want)
		}
	}
}
