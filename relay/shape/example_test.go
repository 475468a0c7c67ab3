package shape_test

import (
	"context"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay/shape"
)

// A legacy endpoint that wants a PUT to /jobs/<id>/done and a form of its
// own field names.
func ExampleShaper_Build() {
	sh, err := shape.Compile("https://billing.internal/jobs/{job_id}/done", shape.Settings{
		Method:  "PUT",
		Headers: map[string]string{"X-Job": "{job_id}"},
		Body:    `{id: .job_id, state: (if .status == "completed" then "DONE" else "FAILED" end)}`,
		Format:  "form",
		Auth:    shape.Auth{Kind: "basic", Username: "relay", Password: "s3cret"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := sh.Build(context.Background(), []byte(`{"task":"video_generate","job_id":"run/1 a","status":"completed"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Method, r.URL)
	for _, h := range r.Header {
		fmt.Printf("%s: %s\n", h.Name, h.Value)
	}
	fmt.Printf("Content-Type: %s\n\n%s\n", r.ContentType, r.Body)

	_, err = sh.Build(context.Background(), []byte(`{"task":"video_generate","status":"completed"}`))
	fmt.Println(err)
	// Output:
	// PUT https://billing.internal/jobs/run%2F1%20a/done
	// Authorization: Basic cmVsYXk6czNjcmV0
	// X-Job: run/1 a
	// Content-Type: application/x-www-form-urlencoded
	//
	// id=run%2F1+a&state=DONE
	// url: placeholder {job_id}: the payload has no such field
}
