package config

import (
	"regexp"
	"slices"
	"strings"
)

// Check parses data as Parse does and validates the result, and reports
// every problem of both steps at once: a typo in a key does not hide an
// unknown target further down. On any problem it returns a nil Config.
//
// A value that failed to decode keeps its default, and a mistyped key
// leaves the key it was meant to be unset; Validate's complaints about
// those keys would only repeat the decoding error, so they are left out.
// A YAML syntax error stops everything: nothing after it can be read.
func Check(data []byte, name string) (*Config, error) {
	c, errs, suspect, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	// A target whose name could not be read makes every route that names
	// it look wrong.
	namesInDoubt := slices.ContainsFunc(suspect, func(p string) bool {
		return p == "targets" || targetNameRE.MatchString(p)
	})
	for _, e := range FieldErrors(c.Validate()) {
		if underAny(e.Path, suspect) || (namesInDoubt && routeTargetRE.MatchString(e.Path)) {
			continue
		}
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return c, nil
}

var (
	targetNameRE  = regexp.MustCompile(`^targets\[\d+\](\.name)?$`)
	routeTargetRE = regexp.MustCompile(`^routes\[\d+\]\.targets\[\d+\]$`)
)

// underAny reports whether path is one of paths or below one of them.
func underAny(path string, paths []string) bool {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(path, p); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return true
		}
	}
	return false
}
