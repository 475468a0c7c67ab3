package rules_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hooxrelay/hooxrelay/rules"
)

func Example() {
	table, err := rules.Compile([]rules.Route{
		{
			Name:     "finished-videos",
			Tasks:    []string{"video_generate", "video_export"},
			Statuses: []string{"completed"},
			Where:    []rules.Cond{{Path: "result.cost", Op: "gte", Value: 1}},
			Targets:  []string{"media"},
		},
		{Name: "audit", Targets: []string{"audit", "media"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	body := `{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"cost":5}}`
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		fmt.Println(err)
		return
	}
	res := table.Match("video_generate", "completed", doc)
	fmt.Println(res.Routes, res.Targets)

	res = table.Match("avatar_edit", "error", nil)
	fmt.Println(res.Routes, res.Targets)
	// Output:
	// [finished-videos audit] [media audit]
	// [audit] [audit media]
}

func ExampleCompile_errors() {
	_, err := rules.Compile([]rules.Route{
		{Name: "ok"},
		{Name: "finished-videos", Where: []rules.Cond{
			{Path: "result.cost", Op: "gtx", Value: 1},
			{Path: "result..id", Op: "exists"},
		}},
	})
	fmt.Println(err)
	// Each error says which route, condition and key it is about.
	var ce *rules.CompileError
	if errors.As(err, &ce) {
		fmt.Printf("route %d, condition %d, key %s\n", ce.Route, ce.Cond, ce.Field)
	}
	// Output:
	// routes[1] ("finished-videos"): where[0].op: must be one of eq ne in exists gt gte lt lte prefix, got "gtx"
	// routes[1] ("finished-videos"): where[1].path: must be field names separated by single dots, such as result.cost, got "result..id"
	// route 1, condition 0, key op
}

func ExampleRoute_Describe() {
	r := rules.Route{
		Name:     "finished-videos",
		Tasks:    []string{"video_generate", "video_export"},
		Statuses: []string{"completed"},
		Where:    []rules.Cond{{Path: "result.cost", Op: "gte", Value: 1}},
	}
	fmt.Println(r.Describe())
	fmt.Println(rules.Route{}.Describe())
	// Output:
	// task in [video_generate, video_export], status in [completed], result.cost gte 1
	// any event
}
