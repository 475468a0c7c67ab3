package shape

import (
	"context"
	"testing"
	"time"
)

// Any payload through a shaper that uses every feature: an error or a
// request, never a panic, and never past the run limit by much.
func FuzzBuild(f *testing.F) {
	f.Add([]byte(payload))
	f.Add([]byte(`{"task":"avatar_edit","avatar_id":"a b/c","look_id":"l","status":"error","error":{"code":"X"}}`))
	f.Add([]byte(`{"job_id":{"a":1},"status":[1,2]}`))
	f.Add([]byte(`{"job_id":1e400,"status":null}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`not json`))
	sh, err := Compile("http://127.0.0.1/jobs/{job_id}?s={status}", Settings{
		Method:  "PUT",
		Headers: map[string]string{"X-Job": "{job_id}"},
		Body:    `{id: .job_id, state: (if .status == "completed" then "DONE" else "FAILED" end), cost: .result.cost}`,
		Format:  "form",
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		start := time.Now()
		r, err := sh.Build(context.Background(), body)
		if err == nil && (r.Method != "PUT" || r.ContentType != "application/x-www-form-urlencoded") {
			t.Fatalf("Build(%q) = %+v", body, r)
		}
		if d := time.Since(start); d > RunLimit+time.Second {
			t.Fatalf("Build(%q) took %s", body, d)
		}
	})
}

// Any template and any jq program over any payload: compiled or refused,
// then built or refused, never a panic, bounded in time.
func FuzzProgram(f *testing.F) {
	f.Add("/jobs/{job_id}", `{id: .job_id}`, []byte(payload))
	f.Add("/{a.b.0}", `.[]`, []byte(`{"a":{"b":["x y"]}}`))
	f.Add("/{}", `..`, []byte(`{}`))
	f.Add("/{x", `def f: f; f`, []byte(`{"x":1}`))
	f.Add("/x}", `[limit(100000; repeat(1))] | length`, []byte(`{"x":1}`))
	f.Add("/{x}", `reduce range(1e9) as $i (0; . + $i)`, []byte(`{"x":"\u0000"}`))
	f.Fuzz(func(t *testing.T, path, program string, body []byte) {
		sh, err := Compile("http://127.0.0.1"+path, Settings{Body: program, Headers: map[string]string{"X": path}})
		if err != nil {
			return
		}
		start := time.Now()
		_, _ = sh.Build(context.Background(), body)
		if d := time.Since(start); d > RunLimit+2*time.Second {
			t.Fatalf("Build with %q over %q took %s", program, body, d)
		}
	})
}
