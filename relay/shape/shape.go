// Package shape turns a Hoox payload into the request a legacy endpoint
// wants: its method, a URL with fields of the payload in it, headers with
// fields in them, a body computed by a jq program and sent as JSON or as a
// form, and its own authentication.
//
// Everything is compiled once, by Compile, when the config is loaded, so
// that a broken program or template is a config error and not a failure of
// every delivery; Build then only fills in and runs. A Shaper is pure: it
// makes no request and reads nothing but the payload (an OAuth2 token is
// fetched by Tokens, at delivery time). The package imports nothing else
// of hooxrelay.
package shape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/itchyny/gojq"
)

// Body formats.
const (
	FormatJSON = "json"
	FormatForm = "form"
)

// Settings are how one target's requests are shaped. The zero value
// shapes nothing: the payload is posted as it came.
type Settings struct {
	// Method is POST, PUT or PATCH; "" means POST.
	Method string
	// Headers are sent with every request; their values may hold {path}
	// placeholders, filled in from the payload as they are.
	Headers map[string]string
	// Body is a jq program over the payload whose one output is the body;
	// "" sends the payload byte for byte.
	Body string
	// Format is how the body is encoded: json ("" too) or form (the
	// output must be an object of scalars, sent url-encoded).
	Format string
	Auth   Auth
}

// Error is a problem with one setting. Key is the setting's name below
// the target, such as "url" or "request.body".
type Error struct {
	Key, Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

// Shaper builds the requests of one target. It is safe for concurrent use.
type Shaper struct {
	method      string
	url         *template
	headers     []header
	body        *program
	form        bool
	contentType string
	auth        string // basic and bearer: the Authorization value
	oauth2      bool
	// payload: neither the URL, the headers nor the body read it, so it
	// is not decoded at all.
	opaque bool
}

type header struct {
	name string
	tmpl *template
}

// Compile checks and compiles s for a target whose url may hold {path}
// placeholders. Its error names every problem, each an *Error, joined
// with errors.Join.
func Compile(rawURL string, s Settings) (*Shaper, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	sh := &Shaper{method: http.MethodPost, contentType: "application/json"}
	switch s.Method {
	case "", http.MethodPost:
	case http.MethodPut, http.MethodPatch:
		sh.method = s.Method
	default:
		bad("request.method", "must be POST, PUT or PATCH, got %q", s.Method)
	}
	var err error
	if sh.url, err = compileTemplate(rawURL, urlEscape); err != nil {
		bad("url", "%v", err)
	} else if strings.ContainsAny(hostPart(rawURL), "{}") {
		bad("url", "placeholders may stand in the path and the query only, not in the host")
	}
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		t, err := compileTemplate(s.Headers[name], asIs)
		if err != nil {
			bad("request.headers."+name, "%v", err)
			continue
		}
		if s.Auth.Kind != "" && s.Auth.Kind != AuthNone && strings.EqualFold(name, "Authorization") {
			bad("request.headers."+name, "is set by auth (kind %s); remove it here", s.Auth.Kind)
		}
		sh.headers = append(sh.headers, header{name: http.CanonicalHeaderKey(name), tmpl: t})
	}
	slices.SortFunc(sh.headers, func(a, b header) int { return strings.Compare(a.name, b.name) })
	switch s.Format {
	case "", FormatJSON:
	case FormatForm:
		sh.form, sh.contentType = true, "application/x-www-form-urlencoded"
		if s.Body == "" {
			bad("request.format", "form needs a body program whose output is an object of scalars, such as body: '{id: .job_id, state: .status}'")
		}
	default:
		bad("request.format", "must be json or form, got %q", s.Format)
	}
	if s.Body != "" {
		if sh.body, err = compileProgram(s.Body); err != nil {
			bad("request.body", "%v", err)
		}
	}
	sh.auth, sh.oauth2 = s.Auth.header(), s.Auth.Kind == AuthOAuth2
	errs = append(errs, checkAuth(s.Auth)...)
	sh.opaque = sh.body == nil && sh.url != nil && sh.url.static()
	for _, h := range sh.headers {
		sh.opaque = sh.opaque && h.tmpl.static()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sh, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hostPart is the authority of a raw URL, "" when it has none.
func hostPart(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func checkAuth(a Auth) []error {
	var errs []error
	need := func(key, v, what string) {
		if v == "" {
			errs = append(errs, &Error{Key: "request.auth." + key, Msg: "is required for kind " + a.Kind + ": " + what})
		}
	}
	switch a.Kind {
	case "", AuthNone:
	case AuthBasic:
		need("username", a.Username, "the user name, such as ${BILLING_USER}")
	case AuthBearer:
		need("token", a.Token, "the token, such as ${BILLING_TOKEN}")
	case AuthOAuth2:
		need("token_url", a.TokenURL, "the token endpoint, such as https://auth.internal/oauth/token")
		need("client_id", a.ClientID, "the client id")
		need("client_secret", a.ClientSecret, "the client secret, such as ${CLIENT_SECRET}")
		if a.TokenURL != "" {
			u, err := url.Parse(a.TokenURL)
			switch {
			case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
				errs = append(errs, &Error{Key: "request.auth.token_url", Msg: fmt.Sprintf("must be an absolute https URL, got %q", a.TokenURL)})
			case u.Scheme == "http" && !loopback(u.Hostname()):
				// The client secret goes in every token request.
				errs = append(errs, &Error{Key: "request.auth.token_url", Msg: fmt.Sprintf("must be https, got %q: plain http is only allowed to localhost, 127.0.0.0/8 and ::1", a.TokenURL)})
			}
		}
	default:
		errs = append(errs, &Error{Key: "request.auth.kind", Msg: fmt.Sprintf("must be none, basic, bearer or oauth2, got %q", a.Kind)})
	}
	return errs
}

// Request is what a shaped delivery sends, before the headers that every
// delivery carries (ids, timestamp, signature, the OAuth2 token).
type Request struct {
	Method, URL string
	// Header holds the shaped headers, Authorization included for basic
	// and bearer auth, in the order of their names.
	Header      []Field
	ContentType string
	Body        []byte
}

// Field is one header.
type Field struct{ Name, Value string }

// OAuth2 reports whether requests need an OAuth2 token (see Tokens).
func (s *Shaper) OAuth2() bool { return s.oauth2 }

// Build shapes the request for payload, a JSON object. Its error says
// which field or which jq error stopped it; the request is then not to be
// made. ctx's values reach the body program; its run is bounded by
// StepBudget and RunLimit, not by ctx.
func (s *Shaper) Build(ctx context.Context, payload []byte) (*Request, error) {
	r := &Request{Method: s.method, ContentType: s.contentType}
	if s.auth != "" {
		r.Header = make([]Field, 0, len(s.headers)+1)
		r.Header = append(r.Header, Field{"Authorization", s.auth})
	}
	var doc any
	if !s.opaque {
		d := json.NewDecoder(bytes.NewReader(payload))
		d.UseNumber()
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decode the payload: %w", err)
		}
	}
	var err error
	if r.URL, err = s.url.fill(doc, urlEscape, "url"); err != nil {
		return nil, err
	}
	for _, h := range s.headers {
		v, err := h.tmpl.fill(doc, asIs, "header "+h.name)
		if err != nil {
			return nil, err
		}
		r.Header = append(r.Header, Field{h.name, v})
	}
	if s.auth != "" {
		slices.SortFunc(r.Header, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	}
	if s.body == nil {
		r.Body = payload
		return r, nil
	}
	out, err := s.body.run(ctx, doc)
	if err != nil {
		return nil, err
	}
	if s.form {
		r.Body, err = formBody(out)
	} else {
		r.Body, err = gojq.Marshal(out)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// formBody encodes an object of scalars as application/x-www-form-urlencoded,
// keys in order; null is the empty value.
func formBody(out any) ([]byte, error) {
	obj, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("format form: the body program's output must be an object of scalars, got %s", kind(out))
	}
	keys := slices.Sorted(maps.Keys(obj))
	b := make([]byte, 0, 32*len(keys))
	for i, k := range keys {
		var v string
		if obj[k] != nil {
			var err error
			if v, err = scalar(obj[k]); err != nil {
				return nil, fmt.Errorf("format form: key %q: %s: form values must be strings, numbers or booleans", k, strings.TrimPrefix(err.Error(), "the field "))
			}
		}
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, url.QueryEscape(k)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(v)...)
	}
	return b, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a number"
}
