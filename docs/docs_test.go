// Package docs_test checks the README and the references in docs/ against
// the repository and the code: a reader of a fresh clone must find every
// link, and every config key with its real default.
package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
)

const root = ".."

// markdown returns the README and every page in docs/, by path from the
// repository root.
func markdown(t *testing.T) map[string]string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range append(pages, filepath.Join(root, "README.md")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = string(b)
	}
	return out
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

// slug is the anchor GitHub gives a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(page string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(page, ""), -1) {
		out[slug(m[1])] = true
	}
	return out
}

// Every link in the README and the docs leads to a file of the repository
// (and to a heading of it, when it names one): nothing points outside, to
// a folder a clone does not have or to the web.
func TestLinksStayInTheRepository(t *testing.T) {
	pages := markdown(t)
	absRoot, _ := filepath.Abs(root)
	checked := 0
	for name, page := range pages {
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(page, ""), -1) {
			link := m[1]
			checked++
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				t.Errorf("%s: link %q leaves the repository; name the project in text instead", name, link)
				continue
			}
			file, frag, _ := strings.Cut(link, "#")
			target := name
			if file != "" {
				target = filepath.Join(filepath.Dir(name), file)
			}
			abs, _ := filepath.Abs(filepath.Join(root, target))
			if rel, err := filepath.Rel(absRoot, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q points outside the repository", name, link)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: link %q: %v", name, link, err)
				continue
			}
			if frag == "" {
				continue
			}
			page, ok := pages[filepath.Clean(target)]
			if !ok {
				b, err := os.ReadFile(abs)
				if err != nil {
					t.Errorf("%s: link %q: %v", name, link, err)
					continue
				}
				page = string(b)
			}
			if !anchors(page)[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", name, link, target, frag)
			}
		}
		for _, banned := range []string{"SPEC.md", "../shared", "shared/"} {
			if strings.Contains(page, banned) {
				t.Errorf("%s mentions %q, which a clone of the repository does not have", name, banned)
			}
		}
	}
	if checked < 10 {
		t.Errorf("found %d links in %d pages; the link pattern must be broken", checked, len(pages))
	}
}

// pendingMark flags a documented key that arrives with a change made at
// the same time as this page; see TestConfigurationReference.
const pendingMark = "(pending: issue 10"

// keyRow is one row of a key table in docs/configuration.md.
type keyRow struct {
	def, text string
	line      int
}

var keyRowRE = regexp.MustCompile("^\\| `([a-z_.\\[\\]]+)` \\| ([^|]+) \\| (.*) \\|$")

// Every key of the config format has a row in docs/configuration.md, with
// its default as the config package sets it, and every row names a key of
// the format.
func TestConfigurationReference(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]keyRow{}
	for i, line := range strings.Split(string(doc), "\n") {
		if m := keyRowRE.FindStringSubmatch(line); m != nil {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("configuration.md:%d: a second row for %s", i+1, m[1])
			}
			rows[m[1]] = keyRow{def: strings.TrimSpace(m[2]), text: m[3], line: i + 1}
		}
	}

	keys := map[string]reflect.Value{}
	collect(keys, "", reflect.ValueOf(*config.Default()))
	collect(keys, "sources[]", reflect.ValueOf(config.DefaultSource()))
	collect(keys, "targets[]", reflect.ValueOf(config.DefaultTarget()))
	collect(keys, "routes[]", reflect.ValueOf(config.Route{}))
	collect(keys, "notify[]", reflect.ValueOf(config.DefaultNotify()))
	if len(keys) < 50 {
		t.Fatalf("found %d keys in the config types; the walk must be broken", len(keys))
	}
	for key, v := range keys {
		row, ok := rows[key]
		switch {
		case !ok:
			t.Errorf("configuration.md has no row for %s (default %s)", key, show(v))
		case strings.Contains(row.text, pendingMark):
			t.Errorf("configuration.md:%d: %s is in the code now: check its row against it and remove the %q mark", row.line, key, pendingMark+")")
		default:
			if err := sameDefault(row.def, v); err != nil {
				t.Errorf("configuration.md:%d: %s: %v", row.line, key, err)
			}
		}
	}
	for key, row := range rows {
		if _, ok := keys[key]; !ok && !strings.Contains(row.text, pendingMark) {
			t.Errorf("configuration.md:%d: %s is not a key of the config format", row.line, key)
		}
	}
}

// collect adds the yaml key path of every field under v, with its value.
// The top-level lists are walked by the caller, from their default
// elements.
func collect(keys map[string]reflect.Value, prefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct:
			collect(keys, path, fv)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			// A list of mappings: its elements' keys are the rows.
			collect(keys, path+"[]", reflect.New(fv.Type().Elem()).Elem())
		default:
			keys[path] = fv
		}
	}
}

func show(v reflect.Value) string {
	if d, ok := v.Interface().(config.Duration); ok {
		return d.D().String()
	}
	return fmt.Sprint(v.Interface())
}

// sameDefault compares a default cell with the value the config package
// sets: a `literal` for a value, any words ("empty", "required") for a
// string, list or mapping left empty.
func sameDefault(cell string, v reflect.Value) error {
	lit, isLit := strings.CutPrefix(cell, "`")
	lit, _ = strings.CutSuffix(lit, "`")
	if !isLit {
		if v.IsZero() && (v.Kind() == reflect.String || v.Kind() == reflect.Slice || v.Kind() == reflect.Map || v.Kind() == reflect.Interface) {
			return nil
		}
		return fmt.Errorf("the default is %s; write it as `%s`, not %q", show(v), show(v), cell)
	}
	var ok bool
	switch x := v.Interface().(type) {
	case config.Duration:
		d, err := time.ParseDuration(lit)
		ok = err == nil && d == x.D()
	case string:
		ok = lit == x
	case int, int64:
		n, err := strconv.ParseInt(lit, 10, 64)
		ok = err == nil && n == v.Int()
	case float64:
		f, err := strconv.ParseFloat(lit, 64)
		ok = err == nil && f == x
	}
	if !ok {
		return fmt.Errorf("documented default `%s`, but the config package sets %s", lit, show(v))
	}
	return nil
}

// The README's worked examples of request shaping show the output of
// "hooxrelay route --requests" exactly as the command's golden files have
// it: a change to the example config or the output shows up here.
func TestReadmeShowsRouteRequests(t *testing.T) {
	readme := markdown(t)["README.md"]
	files, err := filepath.Glob(filepath.Join(root, "cmd", "hooxrelay", "testdata", "route-requests-*.golden"))
	if err != nil || len(files) < 3 {
		t.Fatalf("found %d route-requests golden files (%v), want the README's examples", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(readme, "--requests\n"+string(b)+"```") {
			t.Errorf("README.md does not show %s as the output of route --requests; copy it into the example", f)
		}
	}
}
