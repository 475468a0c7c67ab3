package shape

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
)

// template is a string with {path} placeholders, split once at compile
// time so that filling it in is a walk over parts.
type template struct {
	parts []part
	size  int // bytes of literal text, to size the output
}

// part is literal text, or a field of the payload when path is set.
type part struct {
	lit   string
	path  []string // dot path into the payload; nil for literal text
	name  string   // the placeholder as written, for errors
	query bool     // in a URL's query: query-escaped
}

// escaping says how a placeholder's value is inserted.
type escaping int

const (
	asIs      escaping = iota // headers: inserted as they are
	urlEscape                 // URL: one path segment, or a query value after '?'
)

// compileTemplate splits s at its placeholders. A placeholder is {path},
// path being dot-separated keys of letters, digits, '_' and '-'; any other
// use of '{' or '}' is an error, so a typo never reaches a target.
func compileTemplate(s string, esc escaping) (*template, error) {
	t := &template{}
	inQuery := false
	for s != "" {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			t.addLit(s, &inQuery, esc)
			break
		}
		if s[i] == '}' {
			return nil, fmt.Errorf("unmatched '}' at %q; placeholders are written {field.path}", clip(s[i:]))
		}
		t.addLit(s[:i], &inQuery, esc)
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed placeholder %q; write {field.path}", clip(s[i:]))
		}
		name := s[i+1 : i+end]
		path, err := parsePath(name)
		if err != nil {
			return nil, fmt.Errorf("placeholder {%s}: %v", name, err)
		}
		t.parts = append(t.parts, part{path: path, name: name, query: inQuery})
		s = s[i+end+1:]
	}
	return t, nil
}

func (t *template) addLit(s string, inQuery *bool, esc escaping) {
	if s == "" {
		return
	}
	if esc == urlEscape && strings.IndexByte(s, '?') >= 0 {
		*inQuery = true
	}
	t.parts = append(t.parts, part{lit: s})
	t.size += len(s)
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// parsePath reads a placeholder's dot path.
func parsePath(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("unknown placeholder syntax: empty; name a payload field such as {job_id} or {result.video_id}")
	}
	path := strings.Split(s, ".")
	for _, k := range path {
		if k == "" {
			return nil, fmt.Errorf("unknown placeholder syntax: empty key in the dot path; write keys joined by single dots, such as {result.video_id}")
		}
		for j := 0; j < len(k); j++ {
			c := k[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return nil, fmt.Errorf("unknown placeholder syntax: %q is not allowed; a placeholder is a dot path of letters, digits, '_' and '-', such as {result.video_id}", c)
			}
		}
	}
	return path, nil
}

// static reports whether t has no placeholders.
func (t *template) static() bool {
	for _, p := range t.parts {
		if p.path != nil {
			return false
		}
	}
	return true
}

// fill returns t with each placeholder replaced by its field of doc,
// escaped as esc says. where names the template in errors ("url",
// "header X-Job").
func (t *template) fill(doc any, esc escaping, where string) (string, error) {
	switch {
	case len(t.parts) == 0:
		return "", nil
	case len(t.parts) == 1 && t.parts[0].path == nil:
		return t.parts[0].lit, nil // no placeholder: nothing to build
	}
	var b strings.Builder
	b.Grow(t.size + 16*len(t.parts))
	for _, p := range t.parts {
		if p.path == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := scalar(lookup(doc, p.path))
		if err != nil {
			return "", fmt.Errorf("%s: placeholder {%s}: %w", where, p.name, err)
		}
		switch {
		case esc == asIs:
			b.WriteString(v)
		case p.query:
			b.WriteString(url.QueryEscape(v))
		default:
			b.WriteString(url.PathEscape(v))
		}
	}
	return b.String(), nil
}

// missing is a placeholder's field that the payload lacks.
type missing struct{}

// lookup follows path into doc; a key that is a number indexes an array.
func lookup(doc any, path []string) any {
	v := doc
	for _, k := range path {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return missing{}
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return missing{}
			}
			v = c[i]
		default:
			return missing{}
		}
	}
	return v
}

// scalar is the text of a field's value: a string as it is, a number as
// the payload wrote it, a boolean as true or false.
func scalar(v any) (string, error) {
	switch v := v.(type) {
	case missing:
		return "", fmt.Errorf("the payload has no such field")
	case nil:
		return "", fmt.Errorf("the field is null")
	case string:
		return v, nil
	case json.Number:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(v), nil
	case *big.Int:
		return v.String(), nil
	case map[string]any:
		return "", fmt.Errorf("the field is an object, not a value")
	case []any:
		return "", fmt.Errorf("the field is an array, not a value")
	}
	return "", fmt.Errorf("the field has an unexpected type %T", v)
}
