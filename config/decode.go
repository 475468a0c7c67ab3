package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse expands environment variables in data and decodes it strictly over
// Default: list elements are decoded over DefaultSource and DefaultTarget, so
// a key left out anywhere keeps its default. It does not call Validate, so
// that a caller can inspect or adjust a config before checking it. name is
// used in error messages and stored in Config.File.
//
// Every problem found is reported, joined with errors.Join, each a
// *FieldError. A key whose value is null (written as "key:" or "key: ~")
// keeps its default.
func Parse(data []byte, name string) (*Config, error) {
	c, errs, _, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return c, nil
}

// parse decodes data over the defaults. It returns the config as far as it
// could be decoded, the decoding problems, and the key paths those
// problems leave in doubt (see Check); err is a YAML syntax error, after
// which there is no config.
func parse(data []byte, name string) (c *Config, errs []error, suspect []string, err error) {
	c = Default()
	c.File = name
	c.lines = map[string]int{}

	root, err := parseYAML(data, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if root == nil {
		return c, nil, nil, nil
	}
	failed := map[*yaml.Node]bool{}
	errs = expandEnv(root, "", name, failed)
	d := &decoder{file: name, lines: c.lines, failed: failed, active: map[*yaml.Node]bool{}, merged: map[*yaml.Node][]pair{}}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	errs = append(errs, d.errs...)
	for _, fe := range FieldErrors(errors.Join(errs...)) {
		suspect = append(suspect, fe.Path)
	}
	return c, errs, append(suspect, d.meant...), nil
}

// parseYAML returns the document node, nil for an empty file (or one that
// holds only comments or null). A second document is an error: a relay reading only the first one
// would silently ignore whatever an operator put after the "---".
func parseYAML(data []byte, name string) (root *yaml.Node, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err, name, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(err, name, data)
	default:
		return nil, &FieldError{File: name, Line: extra.Line, Msg: "a second YAML document (after ---) is not allowed; keep the whole config in one document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	if resolveAlias(root).Kind != yaml.MappingNode {
		return nil, &FieldError{File: name, Line: root.Line, Msg: fmt.Sprintf("the config must be a mapping of keys such as server: and targets:, got %s", describe(root))}
	}
	return &doc, nil
}

// decoder walks a yaml.Node tree alongside a Go value, guided by the yaml
// struct tags. It does the work of yaml.Node.Decode itself because strict
// decoding needs what that cannot give: the key path and line of each
// unknown key and type error, all of them at once, and list elements that
// start from a default element instead of the zero value.
type decoder struct {
	file   string
	lines  map[string]int
	failed map[*yaml.Node]bool // values whose env expansion already failed
	active map[*yaml.Node]bool // aliases being followed, to stop cycles
	merged map[*yaml.Node][]pair
	errs   []error
	meant  []string // the key paths that unknown keys were probably meant to be
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType = reflect.TypeFor[Duration]()
	secretsType  = reflect.TypeFor[Secrets]()
	sourceType   = reflect.TypeFor[Source]()
	targetType   = reflect.TypeFor[Target]()
	notifyType   = reflect.TypeFor[Notify]()
)

// defaultElem returns the value a new list element starts from.
func defaultElem(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t {
	case sourceType:
		v.Set(reflect.ValueOf(DefaultSource()))
	case targetType:
		v.Set(reflect.ValueOf(DefaultTarget()))
	case notifyType:
		v.Set(reflect.ValueOf(DefaultNotify()))
	}
	return v
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, path)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.active[n] {
			d.errorf(n, path, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[n] = true
		defer delete(d.active, n)
		d.decode(n.Alias, v, path)
		return
	}
	if d.failed[n] || isNull(n) {
		return
	}

	switch v.Type() {
	case durationType:
		var x Duration
		if err := x.UnmarshalYAML(n); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(x))
		return
	case secretsType:
		var x Secrets
		if err := d.secrets(n, &x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(x))
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				d.lines[fmt.Sprintf("%s[%d]", path, i)] = c.Line
			}
		}
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.slice(n, v, path)
	case reflect.Map:
		d.stringMap(n, v, path)
	case reflect.Interface:
		budget := maxAnyNodes
		if x, ok := d.anyValue(n, path, &budget); ok && x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "must be a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		x, ok := parseInt(n)
		if !ok || v.OverflowInt(x) {
			d.errorf(n, path, "must be a whole number, got %s", describe(n))
			return
		}
		v.SetInt(x)
	case reflect.Float64:
		x, ok := parseFloat(n)
		if !ok {
			d.errorf(n, path, "must be a number, got %s", describe(n))
			return
		}
		v.SetFloat(x)
	default:
		// Only reachable if a field of an unsupported type is added to
		// Config; the decoder tests cover every field.
		d.errorf(n, path, "cannot decode into %s", v.Type())
	}
}

// maxAnyNodes bounds the size of one free-form value. A where value is a
// scalar or a short list; the bound only matters against a file that
// nests aliases to expand into billions of nodes.
const maxAnyNodes = 10000

// anyValue decodes a free-form value (a where condition's value) into the
// types the rules package expects: string, int, int64, uint64, float64,
// bool, []any, map[string]any or nil. Unlike yaml.v3 it keeps a date as
// the string it was written as: nobody comparing a payload field to
// 2024-01-15 means a time.Time.
func (d *decoder) anyValue(n *yaml.Node, path string, budget *int) (any, bool) {
	if *budget--; *budget < 0 {
		d.errorf(n, path, "is too large (more than %d items)", maxAnyNodes)
		return nil, false
	}
	switch n.Kind {
	case yaml.AliasNode:
		if d.active[n] {
			d.errorf(n, path, "alias *%s refers to a value that contains it", n.Value)
			return nil, false
		}
		d.active[n] = true
		defer delete(d.active, n)
		return d.anyValue(n.Alias, path, budget)
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			x, ok := d.anyValue(c, fmt.Sprintf("%s[%d]", path, i), budget)
			if !ok {
				return nil, false
			}
			list = append(list, x)
		}
		return list, true
	case yaml.MappingNode:
		m := map[string]any{}
		for _, kv := range d.pairs(n, path) {
			x, ok := d.anyValue(kv.value, joinPath(path, kv.key.Value), budget)
			if !ok {
				return nil, false
			}
			m[kv.key.Value] = x
		}
		return m, true
	case yaml.ScalarNode:
		if d.failed[n] {
			return nil, false
		}
		if n.ShortTag() == "!!timestamp" {
			return n.Value, true
		}
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, false
		}
		return x, true
	}
	return nil, true
}

// secrets decodes a Secrets value, unless its expansion already failed and
// has been reported.
func (d *decoder) secrets(n *yaml.Node, x *Secrets) error {
	if d.failed[n] {
		return nil
	}
	for _, c := range n.Content {
		if d.failed[c] {
			return nil
		}
	}
	return x.UnmarshalYAML(n)
}

// structure decodes a mapping into a struct, key by key, over the values
// the struct already holds.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of keys (%s), got %s", strings.Join(knownKeys(v.Type()), ", "), describe(n))
		return
	}
	fields := fieldIndex(v.Type())
	for _, kv := range d.pairs(n, path) {
		key := kv.key.Value
		p := joinPath(path, key)
		i, ok := fields[key]
		if !ok {
			msg := "unknown key"
			if s := suggest(key, knownKeys(v.Type())); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
				d.meant = append(d.meant, joinPath(path, s))
			} else {
				msg += "; known keys here are " + strings.Join(knownKeys(v.Type()), ", ")
			}
			d.errorf(kv.key, p, "%s", msg)
			continue
		}
		d.lines[p] = kv.key.Line
		d.decode(kv.value, v.Field(i), p)
	}
}

type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *base")
// applied: keys written in the mapping win over merged ones, and among
// merged mappings the first listed wins, as the YAML merge spec says.
// Duplicate keys are reported, because the YAML spec forbids them and
// whichever one a decoder picks, it surprises someone.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain string, got %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key, already set on line %d; keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, val})
	}
	for _, kv := range merged {
		if _, dup := seen[kv.key.Value]; dup {
			continue
		}
		seen[kv.key.Value] = kv.key.Line
		out = append(out, kv)
	}
	return out
}

// mergeSources returns the entries that a merge key's value brings in.
func (d *decoder) mergeSources(n *yaml.Node, path string) []pair {
	var maps []*yaml.Node
	switch r := resolveAlias(n); r.Kind {
	case yaml.MappingNode:
		maps = append(maps, r)
	case yaml.SequenceNode:
		for _, c := range r.Content {
			maps = append(maps, resolveAlias(c))
		}
	default:
		d.errorf(n, path, "a merge (<<) must be a mapping or a list of mappings, got %s", describe(n))
		return nil
	}
	var out []pair
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			d.errorf(m, path, "a merge (<<) must be a mapping or a list of mappings, got %s", describe(m))
			continue
		}
		if d.active[m] {
			d.errorf(n, path, "a merge (<<) refers to a mapping that contains it")
			continue
		}
		// Each merged mapping is worked out once: a chain of mappings
		// that each merge the previous one twice would otherwise take
		// exponential time, and its errors would be reported many times.
		ps, done := d.merged[m]
		if !done {
			d.active[m] = true
			ps = d.pairs(m, path)
			delete(d.active, m)
			d.merged[m] = ps
		}
		out = append(out, ps...)
	}
	return out
}

// slice decodes a sequence, each element over a default element. A lone
// scalar is taken as a one-element list, since "targets: media" can only
// mean one thing.
func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string) {
	et := v.Type().Elem()
	items := n.Content
	switch {
	case n.Kind == yaml.SequenceNode:
	case n.Kind == yaml.ScalarNode && et.Kind() == reflect.String:
		items = []*yaml.Node{n}
	default:
		d.errorf(n, path, "must be a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		e := defaultElem(et)
		if et.Kind() == reflect.String && isNull(resolveAlias(item)) {
			d.errorf(item, p, "empty item; remove it or give it a value")
			continue
		}
		d.decode(item, e, p)
		out = reflect.Append(out, e)
	}
	v.Set(out)
}

// stringMap decodes a mapping of strings, such as headers.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of names to values, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for _, kv := range d.pairs(n, path) {
		p := joinPath(path, kv.key.Value)
		d.lines[p] = kv.key.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv.value, e, p)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), e)
	}
	v.Set(m)
}

func parseInt(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	s := strings.ReplaceAll(n.Value, "_", "")
	if x, err := strconv.ParseInt(s, 0, 64); err == nil {
		return x, true
	}
	// 1e6 is a whole number too; YAML reads it as a float.
	f, ok := parseFloat(n)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

func parseFloat(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	s := strings.ReplaceAll(n.Value, "_", "")
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		x, err := strconv.ParseInt(s, 0, 64)
		return float64(x), err == nil
	}
	f, err := strconv.ParseFloat(s, 64)
	// Infinity and NaN would pass every range check in Validate, so they
	// are refused here rather than treated as numbers.
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// fieldIndex maps each yaml key of a struct type to its field index.
func fieldIndex(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
	}
	return m
}

// knownKeys lists a struct type's yaml keys in declaration order, the order
// the docs show them in.
func knownKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// suggest returns the known key closest to key when it is close enough to
// be a typo, else "".
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
		if dist := levenshtein(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if bestDist <= max(2, len(key)/4) && bestDist < len(key) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolveAlias follows aliases to the node they name. It gives up after a
// few hops, which only a self-referencing alias can need.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "got ..." in error messages.
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing (null)"
		}
		return strconv.Quote(n.Value)
	}
	return "an empty value"
}
