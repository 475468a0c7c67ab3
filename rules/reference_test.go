package rules

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// naiveMatch is the reference the Table is checked against: it walks every
// route, re-parses every path and converts every value on each call, and
// shares no code with the package, so that a bug in the index or in the
// compiled conditions shows up as a disagreement.
func naiveMatch(routes []Route, task, status string, doc map[string]any) Result {
	res := Result{Routes: []string{}, Targets: []string{}}
	for _, r := range routes {
		if len(r.Tasks) > 0 && !slices.Contains(r.Tasks, task) {
			continue
		}
		if len(r.Statuses) > 0 && !slices.Contains(r.Statuses, status) {
			continue
		}
		ok := true
		for _, c := range r.Where {
			ok = ok && naiveHolds(c, doc)
		}
		if !ok {
			continue
		}
		res.Routes = append(res.Routes, r.Name)
		for _, t := range r.Targets {
			if !slices.Contains(res.Targets, t) {
				res.Targets = append(res.Targets, t)
			}
		}
	}
	return res
}

func naiveHolds(c Cond, doc map[string]any) bool {
	v, ok := naiveLookup(doc, c.Path)
	switch c.Op {
	case "exists":
		want := c.Value == nil || c.Value == true
		return ok == want
	case "ne":
		return !ok || !naiveEqual(v, c.Value)
	}
	if !ok {
		return false
	}
	switch c.Op {
	case "eq":
		return naiveEqual(v, c.Value)
	case "in":
		for _, e := range c.Value.([]any) {
			if naiveEqual(v, e) {
				return true
			}
		}
		return false
	case "prefix":
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, c.Value.(string))
	}
	if want, ok := c.Value.(string); ok {
		got, ok := v.(string)
		if !ok {
			return false
		}
		switch c.Op {
		case "gt":
			return got > want
		case "gte":
			return got >= want
		case "lt":
			return got < want
		case "lte":
			return got <= want
		}
	}
	want, _ := naiveNumber(c.Value)
	got, ok := naiveNumber(v)
	if !ok {
		return false
	}
	switch c.Op {
	case "gt":
		return got > want
	case "gte":
		return got >= want
	case "lt":
		return got < want
	case "lte":
		return got <= want
	}
	return false
}

func naiveLookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[k]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(n) || strconv.Itoa(i) != k {
				return nil, false
			}
			cur = n[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func naiveEqual(a, b any) bool {
	if x, ok := naiveNumber(a); ok {
		y, ok := naiveNumber(b)
		return ok && x == y
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && a == s
	case bool:
		c, ok := b.(bool)
		return ok && a == c
	}
	return false
}

// naiveNumber knows only what YAML and encoding/json produce. An
// out-of-range json.Number is ±Inf, as documented by the package.
func naiveNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}
