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
//
// more are the checks that belong to other packages, such as the meaning
// of route conditions, which the rules package alone judges. Each runs on
// the decoded config, even when it has other problems, and reports each
// problem as a *FieldError with Path and Msg set (joined with errors.Join
// when there are several); Check fills in File and the line of the key, or
// of the nearest enclosing key written, and reports them with the others.
// An error that is not a *FieldError is reported as it is.
func Check(data []byte, name string, more ...func(*Config) error) (*Config, error) {
	c, errs, suspect, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	// A target whose name could not be read makes every route that names
	// it look wrong.
	namesInDoubt := slices.ContainsFunc(suspect, func(p string) bool {
		return p == "targets" || targetNameRE.MatchString(p)
	})
	found := FieldErrors(c.Validate())
	for _, check := range more {
		for _, err := range flatten(check(c)) {
			fe, ok := err.(*FieldError)
			if !ok {
				errs = append(errs, err)
				continue
			}
			fe.File = c.File
			if fe.Line == 0 {
				fe.Line = c.nearestLine(fe.Path)
			}
			found = append(found, fe)
		}
	}
	for _, e := range found {
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

// flatten undoes errors.Join, at any depth.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
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
