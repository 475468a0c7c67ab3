package shape

import (
	"context"
	"testing"
)

// A shaped delivery's request: URL template, a header template, a jq
// body and form encoding, over a typical Hoox payload.
func BenchmarkBuildForm(b *testing.B) {
	sh, err := Compile("http://127.0.0.1/jobs/{job_id}/done", Settings{
		Method:  "PUT",
		Headers: map[string]string{"X-Job": "{job_id}"},
		Body:    `{id: .job_id, state: (if .status == "completed" then "DONE" else "FAILED" end), url: .result.thumbnail_url, cost: .result.cost}`,
		Format:  "form",
		Auth:    Auth{Kind: "bearer", Token: "t"},
	})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sh.Build(ctx, body); err != nil {
			b.Fatal(err)
		}
	}
}
