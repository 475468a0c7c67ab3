package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// field is one of the top-level payload fields the relay reads.
type field int

const (
	fieldTask field = iota
	fieldStatus
	fieldJobID
	fieldAvatarID
	fieldLookID
	numFields
)

var fieldNames = [numFields]string{"task", "status", "job_id", "avatar_id", "look_id"}

// rawFields is how each field the relay reads appears in the raw body: how
// many times its key occurs at the top level, where its last value is
// (body[start:end]), and what is wrong with the raw form of that value when
// it is a string ("" when nothing).
type rawFields [numFields]struct {
	count      int
	start, end int
	bad        string
}

// scanFields walks the top-level keys of body, a JSON object that
// json.Unmarshal has already accepted (so the syntax is not checked again),
// and records how the fields the relay reads appear. It allocates only for a
// key written with escapes.
func scanFields(body []byte) (raw rawFields) {
	i := skipSpace(body, 0) + 1 // past '{'
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '"' {
			return raw // '}'
		}
		keyEnd := skipString(body, i)
		key := body[i+1 : keyEnd-1]
		i = skipSpace(body, keyEnd) + 1 // past ':'
		i = skipSpace(body, i)
		valStart := i
		i = skipValue(body, i)
		if f, ok := fieldOf(key); ok {
			raw[f].count++
			raw[f].start, raw[f].end, raw[f].bad = valStart, i, ""
			if body[valStart] == '"' {
				raw[f].bad = rawStringProblem(body[valStart+1 : i-1])
			}
		}
		i = skipSpace(body, i)
		if i < len(body) && body[i] == ',' {
			i++
		}
	}
}

// rawString is requiredString for field f of a body that scanFields
// scanned into fr.raw, with the same answers: its last value, decoded as
// encoding/json would decode it into a map.
func (fr *fields) rawString(f field) (string, error) {
	name := fieldNames[f]
	e := fr.raw[f]
	if e.count == 0 {
		return "", &PayloadError{Field: name, Message: "is required"}
	}
	v := fr.body[e.start:e.end]
	if kind := rawKind(v[0]); kind != "" {
		return "", &PayloadError{Field: name, Message: "must be a string, got " + kind}
	}
	var s string
	if bytes.IndexByte(v, '\\') < 0 {
		// Bytes that are not UTF-8 would decode otherwise, but e.bad
		// refuses them before the value is used.
		s = string(v[1 : len(v)-1])
	} else if err := json.Unmarshal(v, &s); err != nil {
		return "", &PayloadError{Field: name, Message: "must be a string"}
	}
	if s == "" {
		return "", &PayloadError{Field: name, Message: "must not be empty"}
	}
	return s, nil
}

// rawKind names the JSON type of a value by its first byte as jsonType
// does, and is "" for a string.
func rawKind(c byte) string {
	switch c {
	case '"':
		return ""
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "a number"
}

// fieldOf reports which field a raw key names, decoding it when it is
// written with escapes ("\u0074ask" is "task" to every JSON reader).
func fieldOf(key []byte) (field, bool) {
	name := key
	if bytes.IndexByte(key, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &s) != nil {
			return 0, false
		}
		name = []byte(s)
	}
	for f, n := range fieldNames {
		if string(name) == n {
			return field(f), true
		}
	}
	return 0, false
}

// rawStringProblem says why the raw content of a JSON string (between its
// quotes) would not decode to what it says: bytes that are not UTF-8, or a
// \u escape of a lone surrogate. Decoders replace both with U+FFFD, so two
// different ids would read as the same one.
func rawStringProblem(s []byte) string {
	if !utf8.Valid(s) {
		return "is not valid UTF-8"
	}
	for i := bytes.IndexByte(s, '\\'); i >= 0 && i+1 < len(s); {
		if s[i+1] != 'u' {
			i = nextEscape(s, i+2)
			continue
		}
		r := hex4(s, i+2)
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if i+11 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if lo := hex4(s, i+8); lo >= 0xdc00 && lo < 0xe000 {
					i = nextEscape(s, i+12)
					continue
				}
			}
			return fmt.Sprintf("has a lone surrogate escape \\u%04x (a high surrogate not followed by a low one)", r)
		case r >= 0xdc00 && r < 0xe000:
			return fmt.Sprintf("has a lone surrogate escape \\u%04x (a low surrogate without a high one)", r)
		}
		i = nextEscape(s, i+6)
	}
	return ""
}

// nextEscape returns the index of the next backslash in s from i on, or -1.
func nextEscape(s []byte, i int) int {
	if i >= len(s) {
		return -1
	}
	if j := bytes.IndexByte(s[i:], '\\'); j >= 0 {
		return i + j
	}
	return -1
}

// hex4 reads the four hex digits at s[i:], or returns -1.
func hex4(s []byte, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
