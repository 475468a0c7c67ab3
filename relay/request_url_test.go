package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// newRequest builds the request http.NewRequestWithContext builds, with
// its URL parsed once or fresh.
func TestNewRequestAsStdlib(t *testing.T) {
	tg := &target{}
	ctx := context.Background()
	for _, c := range []struct{ method, url, body string }{
		{"POST", "http://127.0.0.1:8080/hook?a=1&b=%20", `{"x":1}`},
		{"POST", "http://127.0.0.1:8080/hook?a=1&b=%20", `{"x":2}`}, // the cached URL
		{"PUT", "https://user:p%40ss@example.test:/a%2Fb#frag", ``},
		{"POST", "http://[::1]:/x", `y`},
		{"POST", "http://[::1]/x", `y`},
		{"POST", "http://exa mple/", `y`},
		{"BAD METHOD", "http://127.0.0.1/", `y`},
		{"BAD METHOD", "http://127.0.0.1/", `y`},
		{"BAD METHOD", "::", `y`},
		{"POST", "::", `y`},
	} {
		want, werr := http.NewRequestWithContext(ctx, c.method, c.url, bytes.NewReader([]byte(c.body)))
		got, gerr := tg.newRequest(ctx, c.method, c.url, []byte(c.body))
		if fmt.Sprint(werr) != fmt.Sprint(gerr) {
			t.Fatalf("%s %s: error %v, want %v", c.method, c.url, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if g, w := describe(t, got), describe(t, want); g != w {
			t.Errorf("%s %s:\n got %s\nwant %s", c.method, c.url, g, w)
		}
	}
}

func describe(t *testing.T, r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	again := ""
	if r.GetBody != nil {
		rc, _ := r.GetBody()
		b, _ := io.ReadAll(rc)
		again = string(b)
	}
	u := *r.URL
	user := u.User.String()
	u.User = nil
	return fmt.Sprintf("%s %#v user=%q host=%q proto=%s len=%d header=%v body=%q getbody=%q", r.Method, u, user, r.Host, r.Proto, r.ContentLength, r.Header, body, again)
}
