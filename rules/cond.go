package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// op is a compiled operator; an int rather than the configured string so
// that evaluation is a jump, not a string comparison.
type op uint8

const (
	opEq op = iota
	opNe
	opIn
	opExists
	opGt
	opGte
	opLt
	opLte
	opPrefix
)

// opNames is indexed by op, and its order is the order error messages list
// the operators in.
var opNames = [...]string{"eq", "ne", "in", "exists", "gt", "gte", "lt", "lte", "prefix"}

func parseOp(s string) (op, bool) {
	for i, n := range opNames {
		if s == n {
			return op(i), true
		}
	}
	return 0, false
}

// kind is the JSON type of a scalar. kindNone stands for everything a
// condition cannot compare: objects, arrays and Go types JSON never yields.
type kind uint8

const (
	kindNone kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
)

// scalar is a JSON scalar normalised so that values of different Go
// representations (int vs float64 vs json.Number) compare equal when they
// denote the same number.
type scalar struct {
	kind kind
	b    bool
	num  float64
	str  string
}

func (a scalar) equal(b scalar) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindNull:
		return true
	case kindBool:
		return a.b == b.b
	case kindNumber:
		return a.num == b.num
	case kindString:
		return a.str == b.str
	}
	return false
}

// segment is one step of a path. index is the array index the key denotes,
// or -1 when the key is not a canonical decimal (so "01" and "-1" are only
// ever object keys).
type segment struct {
	key   string
	index int
}

// cond is a compiled Cond.
type cond struct {
	path   []segment
	op     op
	val    scalar   // eq ne gt gte lt lte prefix
	list   []scalar // in
	exists bool     // exists
}

// problem is one thing wrong with a condition: the key to fix, and a
// message that reads after it.
type problem struct{ field, msg string }

// compileCond returns the compiled condition and every problem with it.
func compileCond(c Cond) (cond, []problem) {
	var problems []problem
	var cc cond
	path, msg := parsePath(c.Path)
	if msg != "" {
		problems = append(problems, problem{"path", msg})
	}
	cc.path = path

	o, ok := parseOp(c.Op)
	switch {
	case c.Op == "":
		problems = append(problems, problem{"op", "is required: one of " + strings.Join(opNames[:], " ")})
		return cc, problems
	case !ok:
		problems = append(problems, problem{"op", fmt.Sprintf("must be one of %s, got %q", strings.Join(opNames[:], " "), c.Op)})
		return cc, problems
	}
	cc.op = o
	if p := cc.setValue(c.Op, c.Value); p.msg != "" {
		problems = append(problems, p)
	}
	return cc, problems
}

// setValue checks v against what the operator needs and stores its
// normalised form, so that Match never converts configured values again.
func (cc *cond) setValue(opName string, v any) problem {
	wrong := func(what string) problem { return problem{"value", mustBe(what, opName, v)} }
	switch cc.op {
	case opExists:
		switch v := v.(type) {
		case nil:
			cc.exists = true
		case bool:
			cc.exists = v
		default:
			return wrong("true, false or left out")
		}
	case opIn:
		rv := reflect.ValueOf(v)
		if v == nil || rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return wrong("a list such as [completed, error]")
		}
		if rv.Len() == 0 {
			return problem{"value", `must not be empty for op "in": an empty list never matches`}
		}
		cc.list = make([]scalar, rv.Len())
		for i := range rv.Len() {
			e := rv.Index(i).Interface()
			s, what := configScalar(e)
			if what != "" {
				return problem{fmt.Sprintf("value[%d]", i), mustBe(what, "", e)}
			}
			cc.list[i] = s
		}
	case opEq, opNe:
		s, what := configScalar(v)
		if what != "" {
			return wrong(what)
		}
		cc.val = s
	case opGt, opGte, opLt, opLte:
		s, what := configScalar(v)
		if what != "" || (s.kind != kindNumber && s.kind != kindString) {
			return wrong("a number or a string")
		}
		cc.val = s
	case opPrefix:
		s, what := configScalar(v)
		if what != "" || s.kind != kindString {
			return wrong("a string")
		}
		cc.val = s
	}
	return problem{}
}

// mustBe says what a value must be for op ("" for an element of a list),
// and what it is.
func mustBe(what, op string, v any) string {
	s := "must be " + what
	if op != "" {
		s += fmt.Sprintf(" for op %q", op)
	}
	return s + ", got " + describe(v)
}

// parsePath splits a dot-notation path once, at compile time.
func parsePath(p string) ([]segment, string) {
	if p == "" {
		return nil, "is required: a dot-separated path into the payload, such as result.cost"
	}
	keys := strings.Split(p, ".")
	path := make([]segment, len(keys))
	for i, k := range keys {
		if k == "" {
			return nil, fmt.Sprintf("must be field names separated by single dots, such as result.cost, got %q", p)
		}
		path[i] = segment{key: k, index: arrayIndex(k)}
	}
	return path, ""
}

func arrayIndex(k string) int {
	if k != "0" && k[0] == '0' {
		return -1
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return -1
		}
	}
	n, err := strconv.Atoi(k)
	if err != nil {
		return -1 // too large to index any array
	}
	return n
}

// configScalar normalises a configured value. what is empty when v is a
// comparable scalar, and otherwise what v must be instead.
func configScalar(v any) (s scalar, what string) {
	switch v := v.(type) {
	case time.Time:
		// The YAML decoder turns unquoted timestamps into time.Time; payloads
		// carry them as UTC RFC 3339 text, so compare against that.
		return scalar{kind: kindString, str: v.UTC().Format(time.RFC3339Nano)}, ""
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsNaN(f) {
			return scalar{}, "a valid number"
		}
		return scalar{kind: kindNumber, num: f}, ""
	}
	s = payloadScalar(v)
	switch {
	case s.kind == kindNone:
		return s, "a string, number, bool or null"
	case s.kind == kindNumber && math.IsNaN(s.num):
		return s, "a number other than NaN (which equals nothing)"
	}
	return s, ""
}

// payloadScalar classifies a value found in a decoded payload. It accepts
// every Go numeric type, not only float64 and json.Number, so that documents
// built in code behave like decoded ones.
func payloadScalar(v any) scalar {
	switch v := v.(type) {
	case nil:
		return scalar{kind: kindNull}
	case string:
		return scalar{kind: kindString, str: v}
	case bool:
		return scalar{kind: kindBool, b: v}
	case float64:
		return scalar{kind: kindNumber, num: v}
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			// Out of range still yields ±Inf, which orders correctly; a
			// malformed json.Number (only possible when built in code) is
			// not a number at all.
			if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
				return scalar{}
			}
		}
		return scalar{kind: kindNumber, num: f}
	case int:
		return scalar{kind: kindNumber, num: float64(v)}
	case int64:
		return scalar{kind: kindNumber, num: float64(v)}
	case uint64:
		return scalar{kind: kindNumber, num: float64(v)}
	case float32:
		return scalar{kind: kindNumber, num: float64(v)}
	case int8:
		return scalar{kind: kindNumber, num: float64(v)}
	case int16:
		return scalar{kind: kindNumber, num: float64(v)}
	case int32:
		return scalar{kind: kindNumber, num: float64(v)}
	case uint:
		return scalar{kind: kindNumber, num: float64(v)}
	case uint8:
		return scalar{kind: kindNumber, num: float64(v)}
	case uint16:
		return scalar{kind: kindNumber, num: float64(v)}
	case uint32:
		return scalar{kind: kindNumber, num: float64(v)}
	}
	return scalar{}
}

// lookup walks path through nested objects and arrays. It reports whether
// the path is present; a present value may be nil (JSON null). The walk is
// bounded by the path's length, so a deeply nested doc costs nothing extra.
func lookup(doc map[string]any, path []segment) (any, bool) {
	var cur any = doc
	for _, s := range path {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[s.key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if s.index < 0 || s.index >= len(n) {
				return nil, false
			}
			cur = n[s.index]
		default:
			return nil, false
		}
	}
	return cur, true
}

func (c *cond) holds(doc map[string]any) bool {
	v, present := lookup(doc, c.path)
	switch c.op {
	case opExists:
		return present == c.exists
	case opNe:
		return !present || !payloadScalar(v).equal(c.val)
	}
	if !present {
		return false
	}
	s := payloadScalar(v)
	switch c.op {
	case opEq:
		return s.equal(c.val)
	case opIn:
		for _, e := range c.list {
			if s.equal(e) {
				return true
			}
		}
		return false
	case opPrefix:
		return s.kind == kindString && strings.HasPrefix(s.str, c.val.str)
	}
	if s.kind != c.val.kind {
		return false
	}
	if s.kind == kindNumber {
		return compare(c.op, s.num, c.val.num)
	}
	return compare(c.op, s.str, c.val.str)
}

// compare applies an ordering operator. Written with the operators rather
// than cmp.Compare so that NaN (only possible in documents built in code)
// satisfies none of them.
func compare[T float64 | string](o op, a, b T) bool {
	switch o {
	case opGt:
		return a > b
	case opGte:
		return a >= b
	case opLt:
		return a < b
	case opLte:
		return a <= b
	}
	return false
}

// describe names a rejected value's type in the configuration's terms, with
// the value itself when it is short enough to be useful.
func describe(v any) string {
	if v == nil {
		return "null"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map:
		return "a map"
	case reflect.Slice, reflect.Array:
		return "a list " + formatValue(v)
	}
	switch v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("bool %v", v)
	}
	if s := payloadScalar(v); s.kind == kindNumber {
		return "number " + formatValue(v)
	}
	if n, ok := v.(json.Number); ok {
		return fmt.Sprintf("json.Number %q", string(n))
	}
	return fmt.Sprintf("%T %v", v, v)
}

// formatValue renders a configured value as an operator would write it.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case time.Time:
		return strconv.Quote(v.UTC().Format(time.RFC3339Nano))
	case json.Number:
		return string(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = formatValue(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v) // exact for integers, which a float64 would round
}
