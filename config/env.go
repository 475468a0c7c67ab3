package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value of
// the tree rooted at n. It works on the parsed nodes rather than the raw
// text so that comments are never expanded, a value can never inject YAML
// structure, and every node keeps its original line.
//
// Nodes whose expansion failed are added to failed, so that the decoder
// does not report a second, confusing type error for the same value.
func expandEnv(n *yaml.Node, path, file string, failed map[*yaml.Node]bool) []error {
	var errs []error
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				// Keys are not expanded: a key that depends on the
				// environment would make strict decoding meaningless.
				walk(n.Content[i+1], joinPath(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			v, err := expand(n.Value, os.LookupEnv)
			if err != nil {
				failed[n] = true
				errs = append(errs, &FieldError{File: file, Line: n.Line, Path: path, Msg: err.Error()})
				return
			}
			n.Value = v
			if n.Style == 0 {
				// A plain scalar's type comes from its text, so it has to be
				// worked out again from the expanded text: that is what
				// makes rps: ${RPS:-10} a number. Quoted values stay strings.
				n.Tag = ""
				n.Tag = n.ShortTag()
			}
		}
		// Aliases are skipped: the node they point to is expanded where it
		// is defined, and expanding it twice would undo a $${ escape.
	}
	walk(n, path)
	return errs
}

// expand does the substitution on one string: ${NAME} is the variable (an
// error if unset), ${NAME:-default} falls back to default when the variable
// is unset or empty (as in the shell), and $${ is a literal ${. A $ in any
// other position is kept as written, so that passwords and regular
// expressions containing $ need no escaping.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated %q: close it with } or write $${ for a literal ${", s[i:])
			}
			ref := s[i+2 : i+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				return "", fmt.Errorf("invalid environment variable reference %q: names are letters, digits and _, not starting with a digit; write $${ for a literal ${", s[i:i+end+1])
			}
			v, ok := lookup(name)
			switch {
			case hasDef && v == "":
				v = def
			case !ok:
				return "", fmt.Errorf("environment variable %q is not set; export it or give a default with ${%s:-value}", name, name)
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
