package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// This file turns the YAML parser's syntax errors into FieldErrors that
// point at the line to fix.

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a syntax error into a FieldError, so that it carries the
// file and line in the same format as every other error.
//
// yaml.v3 counts lines from 0 in parser errors (but from 1 in scanner
// errors) and, for them, points at the start of the enclosing block rather
// than at the problem, and leaves the line out altogether when that is the
// first line. parserProblems lists those errors so that the line can be
// corrected; for an indentation problem, misindented finds the line itself.
// A tab in the indentation gets its own message: the scanner's words for
// it do not say "tab".
func yamlError(err error, name string, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p, parserError := parserProblems[msg]
	if parserError {
		line++
	}
	tabLine := 0
	if strings.Contains(msg, "tab character") || strings.Contains(msg, "cannot start any token") {
		tabLine = tabIndented(data, line)
	}
	switch {
	case tabLine > 0:
		line = tabLine
		msg = "a tab indents this line; YAML indents with spaces only, so replace the tab with spaces"
	case p.indentation || msg == "mapping values are not allowed in this context":
		if at, problem := misindented(data, line); at > 0 {
			line, msg = at, problem
			break
		}
		if parserError {
			msg += "; look at this line and the " + p.block + " it starts" + p.advice
		} else {
			msg += " (a value holding \": \" must be quoted; or check the indentation)"
		}
	case parserError:
		msg += "; look at this line and the " + p.block + " it starts" + p.advice
	}
	return &FieldError{File: name, Line: line, Msg: "invalid YAML: " + msg}
}

// tabIndented returns the first line from line n on (counting from 1)
// whose indentation holds a tab, or 0. The scanner may name the line
// before it.
func tabIndented(data []byte, n int) int {
	lines := strings.Split(string(data), "\n")
	for i := max(n, 1); i <= min(n+1, len(lines)); i++ {
		l := lines[i-1]
		if strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
			return i
		}
	}
	return 0
}

const quoteAdvice = ` (inside { } and [ ], a value containing , : { } [ ] or # must be quoted, such as "${RPS:-10}")`

var parserProblems = map[string]struct {
	block, advice string
	indentation   bool // the usual cause is a mis-indented line
}{
	"did not find expected key":              {"mapping", " (check the indentation)", true},
	"did not find expected ',' or '}'":       {"{ } mapping", quoteAdvice, false},
	"did not find expected ',' or ']'":       {"[ ] list", quoteAdvice, false},
	"did not find expected '-' indicator":    {"list", " (check the indentation)", true},
	"did not find expected node content":     {"block", "", false},
	"did not find expected <document start>": {"document", "", false},
	"found undefined tag handle":             {"value", "", false},
}

// The YAML parser reports a mis-indented line at the start of the block
// around it, which can be many lines up. misindented finds the line itself
// by following the indentation of a block-style file, the way people write
// configs: keys, "- " list items, block scalars (| and >) and flow values
// ({ } and [ ]) that may run over several lines. It is only asked after the
// parser has failed, so it looks for the first line that breaks the
// indentation, not for every possible YAML mistake.

// level is one open block: a mapping or a list, at an indentation.
type level struct {
	indent int
	list   bool
	line   int  // the line that last set open
	open   bool // that line ends with "key:" or "-": a deeper block may follow
	// compact is a list written at its key's indentation ("key:\n- a").
	compact bool
}

// misindented returns the first line at or after from (1-based) whose
// indentation does not fit the lines before it, with what is wrong with it,
// or 0 when it finds none.
func misindented(data []byte, from int) (int, string) {
	stack := []level{{indent: -1, open: true}}
	var (
		scalarAbove = -1 // inside a block scalar: lines deeper than this are its text
		flowDepth   int  // inside a { } or [ ] that runs over several lines
		quote       byte // inside a quoted scalar that runs over several lines
	)
	for n, raw := range strings.Split(string(data), "\n") {
		n++
		text := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(text)
		text = strings.TrimRight(text, " \t\r")
		switch {
		case quote != 0:
			if closes(text, quote) {
				quote = 0
			}
			continue
		case flowDepth > 0:
			flowDepth += bracketDepth(text)
			continue
		case text == "" || text[0] == '#':
			continue
		case scalarAbove >= 0 && indent > scalarAbove:
			continue
		case text == "---" || text == "...":
			stack = stack[:1]
			continue
		}
		scalarAbove = -1

		before := stack // the blocks open before this line closes some
		popped := false
		for len(stack) > 1 && indent < stack[len(stack)-1].indent {
			stack = stack[:len(stack)-1]
			popped = true
		}
		top := &stack[len(stack)-1]
		dash := text == "-" || strings.HasPrefix(text, "- ")
		key, value := splitKey(text)
		var problem string
		switch {
		case indent == top.indent && top.list && !dash && top.compact:
			// The end of a list written at its key's indentation: this
			// line is a sibling of that key.
			stack = stack[:len(stack)-1]
			top = &stack[len(stack)-1]
		case indent == top.indent && top.list && !dash:
			problem = fmt.Sprintf("this line is at the indentation of the list items above it (%s) but is not an item; start it with \"- \" or indent it under an item", spaces(indent))
		case indent == top.indent && !top.list && dash && top.open:
			// "key:\n- a": a list at its key's indentation.
			stack = append(stack, level{indent: indent, list: true, compact: true})
			top = &stack[len(stack)-1]
		case indent == top.indent && !top.list && dash:
			problem = fmt.Sprintf("a list item among keys (%s); put the list under a key (key:, then the items indented below it)", spaces(indent))
		case indent > top.indent && popped:
			problem = fmt.Sprintf("this line is indented %s, which lines it up with none of the blocks around it (%s spaces); line it up with the keys it belongs with", spaces(indent), indents(before))
		case indent > top.indent && !top.open:
			if !dash && key == "" {
				continue // a plain value running over several lines
			}
			problem = fmt.Sprintf("this line is indented %s, deeper than line %d (%s), which already has a value; line it up with line %d or give that key no value", spaces(indent), top.line, spaces(top.indent), top.line)
		case indent > top.indent:
			top.open = false
			stack = append(stack, level{indent: indent, list: dash})
			top = &stack[len(stack)-1]
		}
		if problem != "" {
			if n >= from {
				return n, problem
			}
			// Before the parser's error, so not the one it meant: take
			// the line as it stands and go on.
			stack = append(stack, level{indent: indent, list: dash})
			top = &stack[len(stack)-1]
		}

		// What the line holds after its "- ", and whether a deeper block
		// may follow it.
		top.line, top.open = n, false
		if dash {
			item := strings.TrimLeft(strings.TrimPrefix(text, "-"), " ")
			if item == "" || item[0] == '#' {
				top.open = true
				continue
			}
			if key, value = splitKey(item); key != "" {
				// The item is a mapping whose keys line up with this one.
				stack = append(stack, level{indent: indent + len(text) - len(item), line: n})
				top = &stack[len(stack)-1]
			} else {
				value = item
			}
		}
		switch v := stripComment(value); {
		case key != "" && opensBlock(v):
			top.open = true
		case strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">"):
			scalarAbove = top.indent
		case strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "'"):
			if !closes(v[1:], v[0]) {
				quote = v[0]
			}
		default:
			flowDepth = max(0, bracketDepth(v))
		}
	}
	return 0, ""
}

// splitKey splits "key: value" (or "key:") into its key and value; key is
// "" when the line is not a mapping entry.
func splitKey(text string) (key, value string) {
	if text == "" || strings.ContainsRune("#{[-", rune(text[0])) && !strings.HasPrefix(text, "-:") {
		return "", ""
	}
	i := 0
	if q := text[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(text[1:], q)
		if end < 0 {
			return "", ""
		}
		i = end + 2
	}
	for ; i < len(text); i++ {
		if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t') {
			return text[:i], strings.TrimSpace(text[i+1:])
		}
		if text[i] == '#' && i > 0 && text[i-1] == ' ' {
			break
		}
	}
	return "", ""
}

// opensBlock reports whether a key's value (without its comment) leaves
// the value to the lines below: nothing, or only an anchor or a tag.
func opensBlock(v string) bool {
	for _, f := range strings.Fields(v) {
		if f[0] != '&' && f[0] != '!' {
			return false
		}
	}
	return true
}

func stripComment(v string) string {
	if strings.HasPrefix(v, "#") {
		return ""
	}
	if i := strings.Index(v, " #"); i >= 0 && !strings.ContainsAny(v[:i], `"'`) {
		return strings.TrimSpace(v[:i])
	}
	return v
}

// bracketDepth counts the { and [ a line opens minus those it closes,
// outside quotes.
func bracketDepth(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return depth
		}
	}
	return depth
}

// closes reports whether s holds the end of a scalar quoted with q.
func closes(s string, q byte) bool {
	for i := 0; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++ // '' is a quote inside '…'
		case s[i] == q:
			return true
		}
	}
	return false
}

// indents lists the indentations of the open blocks, for a message:
// "0, 2 or 4".
func indents(stack []level) string {
	var out []string
	for _, l := range stack[1:] {
		if s := fmt.Sprint(l.indent); len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	switch len(out) {
	case 0:
		return "0"
	case 1:
		return out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " or " + out[len(out)-1]
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return fmt.Sprintf("%d spaces", n)
}
