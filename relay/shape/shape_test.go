package shape

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const payload = `{"task":"video_generate","job_id":"run/01 a","status":"completed","result":{"video_id":"video_ab","cost":5,"big":12345678901234567890,"tags":["x","y"]}}`

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		url      string
		set      Settings
		wantURL  string
		wantHdr  string // name=value;...
		wantBody string
		wantCT   string
	}{
		{
			name:     "unshaped",
			url:      "http://127.0.0.1/hook",
			wantURL:  "http://127.0.0.1/hook",
			wantBody: payload,
			wantCT:   "application/json",
		},
		{
			name:     "path id escaped, query value escaped",
			url:      "http://127.0.0.1/jobs/{job_id}/done?v={result.video_id}&c={result.cost}&t={result.tags.1}",
			set:      Settings{Method: "PUT"},
			wantURL:  "http://127.0.0.1/jobs/run%2F01%20a/done?v=video_ab&c=5&t=y",
			wantBody: payload,
			wantCT:   "application/json",
		},
		{
			name:     "headers and json body, big number kept",
			url:      "http://127.0.0.1/x",
			set:      Settings{Headers: map[string]string{"x-job": "{job_id}", "X-Static": "s"}, Body: `{id: .job_id, n: .result.big, ok: (.status == "completed")}`},
			wantURL:  "http://127.0.0.1/x",
			wantHdr:  "X-Job=run/01 a;X-Static=s",
			wantBody: `{"id":"run/01 a","n":12345678901234567890,"ok":true}`,
			wantCT:   "application/json",
		},
		{
			name:     "form",
			url:      "http://127.0.0.1/x.php",
			set:      Settings{Format: "form", Body: `{job: .job_id, cost: .result.cost, done: true, none: null}`},
			wantURL:  "http://127.0.0.1/x.php",
			wantBody: "cost=5&done=true&job=run%2F01+a&none=",
			wantCT:   "application/x-www-form-urlencoded",
		},
		{
			name:     "basic auth sorted among headers",
			url:      "http://127.0.0.1/x",
			set:      Settings{Headers: map[string]string{"B": "b", "A": "a"}, Auth: Auth{Kind: "basic", Username: "u", Password: "p"}},
			wantURL:  "http://127.0.0.1/x",
			wantHdr:  "A=a;Authorization=Basic dTpw;B=b",
			wantBody: payload,
			wantCT:   "application/json",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := Compile(tc.url, tc.set)
			if err != nil {
				t.Fatalf("Compile(%q, %+v): %v", tc.url, tc.set, err)
			}
			r, err := sh.Build(context.Background(), []byte(payload))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			var hdr []string
			for _, f := range r.Header {
				hdr = append(hdr, f.Name+"="+f.Value)
			}
			if r.URL != tc.wantURL || strings.Join(hdr, ";") != tc.wantHdr || string(r.Body) != tc.wantBody || r.ContentType != tc.wantCT {
				t.Errorf("Build = %s %q headers %q body %s (%s)\nwant %q headers %q body %s (%s)",
					r.Method, r.URL, hdr, r.Body, r.ContentType, tc.wantURL, tc.wantHdr, tc.wantBody, tc.wantCT)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		set       Settings
		want      string
	}{
		{"missing url field", "http://127.0.0.1/{nope}", Settings{}, "url: placeholder {nope}: the payload has no such field"},
		{"object in header", "http://127.0.0.1/", Settings{Headers: map[string]string{"X": "{result}"}}, "header X: placeholder {result}: the field is an object"},
		{"jq error", "http://127.0.0.1/", Settings{Body: `error("no way")`}, "no way"},
		{"no output", "http://127.0.0.1/", Settings{Body: `empty`}, "gave no output"},
		{"several outputs", "http://127.0.0.1/", Settings{Body: `.job_id, .status`}, "more than one output"},
		{"form of an array", "http://127.0.0.1/", Settings{Format: "form", Body: `[.job_id]`}, "format form: the body program's output must be an object of scalars, got an array"},
		{"form of nested", "http://127.0.0.1/", Settings{Format: "form", Body: `{r: .result}`}, `format form: key "r": is an object`},
		{"runs too long", "http://127.0.0.1/", Settings{Body: `[range(1e12)] | length`}, "jq: the body program ran past "},
		{"recurses forever", "http://127.0.0.1/", Settings{Body: `def f: f; f`}, "jq: the body program ran past "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := Compile(tc.url, tc.set)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			start := time.Now()
			r, err := sh.Build(context.Background(), []byte(payload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %+v, %v; want an error containing %q", r, err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Build took %s", d)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		set       Settings
		key, want string
	}{
		{"broken jq", "http://h/", Settings{Body: `{id: .job_id`}, "request.body", "jq: unexpected EOF"},
		{"env", "http://h/", Settings{Body: `{a: env.HOME}`}, "request.body", "env is not allowed"},
		{"$ENV", "http://h/", Settings{Body: `$ENV.PATH`}, "request.body", "$ENV is not allowed"},
		{"$ENV as a key", "http://h/", Settings{Body: `{$ENV}`}, "request.body", "$ENV is not allowed"},
		{"input", "http://h/", Settings{Body: `[., input]`}, "request.body", "input is not allowed"},
		{"now", "http://h/", Settings{Body: `{t: now}`}, "request.body", "now is not allowed"},
		{"unknown function", "http://h/", Settings{Body: `frobnicate`}, "request.body", "function not defined"},
		{"unclosed placeholder", "http://h/jobs/{job_id", Settings{}, "url", "unclosed placeholder"},
		{"placeholder syntax", "http://h/jobs/{.job_id}", Settings{}, "url", "unknown placeholder syntax"},
		{"placeholder with space", "http://h/", Settings{Headers: map[string]string{"X": "{job id}"}}, "request.headers.X", "unknown placeholder syntax"},
		{"stray brace", "http://h/}", Settings{}, "url", "unmatched '}'"},
		{"placeholder in host", "http://{job_id}.h/", Settings{}, "url", "not in the host"},
		{"method", "http://h/", Settings{Method: "GET"}, "request.method", "POST, PUT or PATCH"},
		{"format", "http://h/", Settings{Format: "xml"}, "request.format", "json or form"},
		{"form without body", "http://h/", Settings{Format: "form"}, "request.format", "needs a body program"},
		{"auth kind", "http://h/", Settings{Auth: Auth{Kind: "digest"}}, "request.auth.kind", "none, basic, bearer or oauth2"},
		{"bearer token", "http://h/", Settings{Auth: Auth{Kind: "bearer"}}, "request.auth.token", "required"},
		{"oauth2 url", "http://h/", Settings{Auth: Auth{Kind: "oauth2", TokenURL: "auth", ClientID: "a", ClientSecret: "b"}}, "request.auth.token_url", "absolute"},
		{"oauth2 over http", "http://h/", Settings{Auth: Auth{Kind: "oauth2", TokenURL: "http://auth.example/token", ClientID: "a", ClientSecret: "b"}}, "request.auth.token_url", "must be https"},
		{"authorization twice", "http://h/", Settings{Headers: map[string]string{"Authorization": "x"}, Auth: Auth{Kind: "bearer", Token: "t"}}, "request.headers.Authorization", "set by auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.url, tc.set)
			var e *Error
			if !errors.As(err, &e) || e.Key != tc.key || !strings.Contains(e.Msg, tc.want) {
				t.Fatalf("Compile(%q, %+v) = %v; want an *Error at %s containing %q", tc.url, tc.set, err, tc.key, tc.want)
			}
		})
	}
}
