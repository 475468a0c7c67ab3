package relay_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	openapirouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/hooxrelay/hooxrelay/docs"
	"github.com/hooxrelay/hooxrelay/relay"
)

// probes are the admin listener's routes outside /api/v1.
var probes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("docs/openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIRoutes checks that docs/openapi.yaml has every route the
// admin router serves, with the query parameters it takes, and nothing
// else.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	h := startRelay(t, settingsFor(t), "")
	served := relay.APIRoutes(h.srv)
	for _, p := range probes {
		served[p] = nil
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			route := method + " " + path
			documented[route] = true
			params, ok := served[route]
			if !ok {
				t.Errorf("docs/openapi.yaml has %s, which the admin listener does not serve", route)
				continue
			}
			var query []string
			for _, p := range op.Parameters {
				if p.Value.In == openapi3.ParameterInQuery {
					query = append(query, p.Value.Name)
				}
			}
			slices.Sort(query)
			params = slices.Sorted(slices.Values(params))
			if !slices.Equal(query, params) {
				t.Errorf("%s: docs/openapi.yaml has the query parameters %v, the relay takes %v", route, query, params)
			}
		}
	}
	for _, route := range slices.Sorted(maps.Keys(served)) {
		if !documented[route] {
			t.Errorf("the admin listener serves %s, which docs/openapi.yaml lacks", route)
		}
	}
}

// TestOpenAPIAnswers validates real answers of a running relay, success
// and error alike, against the document's schemas; every operation of the
// document must have been answered at least once.
func TestOpenAPIAnswers(t *testing.T) {
	doc := loadOpenAPI(t)
	good, flaky := newSink(t, "good", ok), newSink(t, "flaky", always(answer{status: http.StatusGone}))
	set := adminSettings(t, good, flaky)
	set.Server.RejectedLog = 10
	h := startRelay(t, set, "")
	doc.Servers = openapi3.Servers{{URL: h.adminURL}}
	router, err := openapirouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	id := h.send(t, videoBody("openapi"))
	flaky.waitCount(t, 1, 5*time.Second)
	dead := id + ":flaky"
	waitState(t, h, dead, relay.Dead)
	waitState(t, h, id+":good", relay.Delivered)
	h.post(t, "/hooks/hoox", "not json") // for the rejected log

	answered := map[string]bool{}
	check := func(method, path string, token bool, want int) {
		t.Helper()
		header := http.Header{}
		if token {
			header.Set("Authorization", "Bearer "+adminToken)
		}
		r := h.do(t, method, h.adminURL+path, nil, header)
		if r.status != want {
			t.Errorf("%s %s: got %s, want %d", method, path, r, want)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, h.adminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in docs/openapi.yaml: %v", method, path, err)
			return
		}
		answered[route.Method+" "+route.Path] = true
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 r.status,
			Header:                 r.header,
			Body:                   io.NopCloser(bytes.NewReader(r.body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(t.Context(), in); err != nil {
			t.Errorf("%s %s answered %d, which docs/openapi.yaml does not allow: %v\n%s", method, path, r.status, err, r.body)
		}
	}

	type call struct {
		method, path string
		token        bool
		want         int
	}
	calls := []call{
		{"GET", "/healthz", false, 200},
		{"GET", "/readyz", false, 200},
		{"GET", "/metrics", false, 200},
		{"GET", "/api/v1/status", true, 200},
		{"GET", "/api/v1/status", false, 401},
		{"GET", "/api/v1/openapi.yaml", true, 200},
		{"GET", "/api/v1/events", true, 200},
		{"GET", "/api/v1/events?task=video_generate&limit=1", true, 200},
		{"GET", "/api/v1/events?job_id=openapi&since=1h", true, 200},
		{"GET", "/api/v1/events?since=yesterday", true, 400},
		{"GET", "/api/v1/events?jobid=openapi", true, 400},
		{"GET", "/api/v1/events/" + id, true, 200},
		{"GET", "/api/v1/events/evt_00000000000000000000000000", true, 404},
		{"GET", "/api/v1/deliveries", true, 200},
		{"GET", "/api/v1/deliveries?state=dead&target=flaky", true, 200},
		{"GET", "/api/v1/deliveries?state=lost", true, 400},
		{"GET", "/api/v1/targets", true, 200},
		{"GET", "/api/v1/rejected?limit=5", true, 200},
		{"POST", "/api/v1/deliveries/" + id + ":good/retry", true, 202},
		{"POST", "/api/v1/replays", true, 400},
		{"GET", "/api/v1/replays?limit=5", true, 200},
		{"GET", "/api/v1/replays/rpl_01JDQ2W5Q3M9V7A1T0F8X6K2ZC", true, 404},
		{"DELETE", "/api/v1/replays/rpl_01JDQ2W5Q3M9V7A1T0F8X6K2ZC", true, 404},
		{"POST", "/api/v1/deliveries/" + dead + "/retry", true, 202},
		{"POST", "/api/v1/targets/nobody/retry-dead", true, 404},
		{"POST", "/api/v1/targets/good/pause", true, 200},
		{"POST", "/api/v1/targets/good/resume", true, 200},
		{"POST", "/api/v1/targets/nobody/pause", true, 404},
	}
	for _, c := range calls {
		check(c.method, c.path, c.token, c.want)
	}
	waitState(t, h, dead, relay.Dead) // the retried delivery died again
	check("POST", "/api/v1/targets/flaky/retry-dead", true, 202)

	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !answered[method+" "+path] {
				t.Errorf("no answer of %s %s was validated", method, path)
			}
		}
	}
}

// waitState waits until the delivery id is in state.
func waitState(t *testing.T, h *relayHarness, id string, state relay.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var d relay.EventDetailJSON
		eventID, _, _ := strings.Cut(id, ":")
		h.api(t, "GET", "/api/v1/events/"+eventID, &d)
		for _, dd := range d.Deliveries {
			if dd.DeliveryID == id && dd.State == state {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s not %s within 5s: %+v", id, state, d.Deliveries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
