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
	tests := []struct {
		name string
		cond Cond
		want string // the whole message of the single error
	}{
		{"unknown op", Cond{"result.cost", "gtx", 1},
			`routes[0] ("r"): where[0]: op "gtx" is not one of eq ne in exists gt gte lt lte prefix`},
		{"empty op", Cond{"result.cost", "", 1},
			`routes[0] ("r"): where[0]: op "" is not one of eq ne in exists gt gte lt lte prefix`},
		{"op case matters", Cond{"result.cost", "EQ", 1},
			`routes[0] ("r"): where[0]: op "EQ" is not one of eq ne in exists gt gte lt lte prefix`},
		{"empty path", Cond{"", "exists", nil},
			`routes[0] ("r"): where[0]: path is empty`},
		{"leading dot", Cond{".a", "exists", nil},
			`routes[0] ("r"): where[0]: path ".a" has an empty segment`},
		{"trailing dot", Cond{"a.", "exists", nil},
			`routes[0] ("r"): where[0]: path "a." has an empty segment`},
		{"double dot", Cond{"result..cost", "exists", nil},
			`routes[0] ("r"): where[0]: path "result..cost" has an empty segment`},
		{"in scalar", Cond{"a", "in", "x"},
			`routes[0] ("r"): where[0]: op "in" needs a list value, got string "x"`},
		{"in null", Cond{"a", "in", nil},
			`routes[0] ("r"): where[0]: op "in" needs a list value, got null`},
		{"in empty", Cond{"a", "in", []any{}},
			`routes[0] ("r"): where[0]: op "in" needs a non-empty list: an empty one never matches`},
		{"in nested list", Cond{"a", "in", []any{"x", []any{1}}},
			`routes[0] ("r"): where[0]: op "in" value[1] needs a string, number, bool or null value, got a list [1]`},
		{"in map element", Cond{"a", "in", []any{map[string]any{"k": 1}}},
			`routes[0] ("r"): where[0]: op "in" value[0] needs a string, number, bool or null value, got a map`},
		{"gt bool", Cond{"a", "gt", true},
			`routes[0] ("r"): where[0]: op "gt" needs a number or string value, got bool true`},
		{"gte null", Cond{"a", "gte", nil},
			`routes[0] ("r"): where[0]: op "gte" needs a number or string value, got null`},
		{"lt list", Cond{"a", "lt", []any{1}},
			`routes[0] ("r"): where[0]: op "lt" needs a number or string value, got a list [1]`},
		{"lte NaN", Cond{"a", "lte", math.NaN()},
			`routes[0] ("r"): where[0]: op "lte" needs a number or string value, got number NaN`},
		{"prefix number", Cond{"a", "prefix", 3},
			`routes[0] ("r"): where[0]: op "prefix" needs a string value, got number 3`},
		{"prefix null", Cond{"a", "prefix", nil},
			`routes[0] ("r"): where[0]: op "prefix" needs a string value, got null`},
		{"exists string", Cond{"a", "exists", "yes"},
			`routes[0] ("r"): where[0]: op "exists" needs true or false (or no value, meaning true), got string "yes"`},
		{"exists number", Cond{"a", "exists", 1},
			`routes[0] ("r"): where[0]: op "exists" needs true or false (or no value, meaning true), got number 1`},
		{"eq list", Cond{"a", "eq", []any{"x"}},
			`routes[0] ("r"): where[0]: op "eq" needs a string, number, bool or null value, got a list ["x"]`},
		{"ne map", Cond{"a", "ne", map[string]any{}},
			`routes[0] ("r"): where[0]: op "ne" needs a string, number, bool or null value, got a map`},
		{"eq NaN", Cond{"a", "eq", math.NaN()},
			`routes[0] ("r"): where[0]: op "eq" needs a number other than NaN, which equals nothing`},
		{"eq bad json.Number", Cond{"a", "eq", json.Number("x1")},
			`routes[0] ("r"): where[0]: op "eq" needs a valid number, got "x1"`},
		{"eq struct", Cond{"a", "eq", struct{}{}},
			`routes[0] ("r"): where[0]: op "eq" needs a string, number, bool or null value, got struct {} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := Compile([]Route{{Name: "r", Where: []Cond{tt.cond}}})
			if err == nil {
				t.Fatalf("Compile(where %#v) = %v, nil; want error %q", tt.cond, table, tt.want)
			}
			if table != nil {
				t.Errorf("Compile(where %#v) returned a table along with its error", tt.cond)
			}
			if err.Error() != tt.want {
				t.Errorf("Compile(where %#v) error:\n got %s\nwant %s", tt.cond, err, tt.want)
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Route != 0 || ce.Name != "r" || ce.Where != 0 {
				t.Errorf("Compile(where %#v) error %#v: want a *CompileError for routes[0] where[0]", tt.cond, err)
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
		`routes[1] ("two-bad"): where[1]: path is empty`,
		`routes[1] ("two-bad"): where[1]: op "gtx" is not one of eq ne in exists gt gte lt lte prefix`,
		`routes[2] ("finished-videos"): where[0]: op "gtx" is not one of eq ne in exists gt gte lt lte prefix`,
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
