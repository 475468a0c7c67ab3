package relay

import (
	"strings"
	"time"
)

// APIRoutes lists the routes of the admin API as "METHOD /path", with
// path parameters as {name}, for the OpenAPI test.
func APIRoutes(s *Server) map[string][]string {
	out := map[string][]string{}
	for _, rt := range s.apiRoutes() {
		out[rt.method+" "+openAPIPath(rt.path)] = rt.params
	}
	return out
}

func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if strings.HasPrefix(part, ":") {
			parts[i] = "{" + part[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// SetWatchEvery sets how often the notification watch looks at the store,
// for tests that cannot wait 15s, and returns what restores it.
func SetWatchEvery(d time.Duration) (restore func()) {
	old := watchEvery
	watchEvery = d
	return func() { watchEvery = old }
}

// ParsePayloadNoDoc is the ingress's parse when no route has conditions.
func ParsePayloadNoDoc(body []byte) (*Payload, error) { return parsePayload(body, false) }
