package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxLocateLines bounds the work of locating a syntax error: it parses
// every prefix of the file, which is quadratic in its length.
const maxLocateLines = 5000

// yamlLine matches the "line N: " the YAML library puts before its message.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxProblem turns the YAML library's error for a malformed file into a
// problem at the line the user has to fix, naming the dotted key there.
//
// The library's line is often that of the enclosing block (an
// over-indented key under "health:" is reported at "health:" or even at a
// blank line before it). The first line whose addition makes the file
// unparseable is where the mistake is: every shorter prefix of the file
// parsed. A construct left open (a quote, a "[") counts as malformed from
// the line where it opens, which is also where the fix goes.
func syntaxProblem(data []byte, err error) problem {
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	lines := strings.SplitAfter(string(data), "\n")
	if n := firstBadLine(lines); n > 0 {
		line = n
	}
	if line <= 0 || line > len(lines) {
		return problem{line: line, msg: "malformed YAML: " + msg}
	}
	hint := "check this line's indentation against the lines above"
	if l := lines[line-1]; strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
		hint = "YAML indents with spaces; this line has a tab"
	}
	if key := keyPathAt(lines, line-1); key != "" {
		return problem{line: line, msg: fmt.Sprintf("%s: malformed YAML: %s (%s)", key, msg, hint)}
	}
	return problem{line: line, msg: "malformed YAML: " + msg}
}

// firstBadLine returns the 1-based number of the first line whose prefix
// of the file does not parse, or 0 when it cannot tell.
func firstBadLine(lines []string) int {
	if len(lines) > maxLocateLines {
		return 0
	}
	var buf bytes.Buffer
	for i, l := range lines {
		buf.WriteString(l)
		var n yaml.Node
		if yaml.Unmarshal(buf.Bytes(), &n) != nil {
			return i + 1
		}
	}
	return 0
}

// keyPathAt guesses the dotted key of line i (0-based) from indentation, as
// a reader of the file would: the key written on the line, under the
// nearest lines above it that open a block ("health:") or a list item
// ("- addr: ..."), each less indented than the last. A key with a value on
// its own line ("interval: 1s") opens nothing and is passed over, so an
// over-indented "timeout:" under it is named health.timeout, not
// health.interval.timeout.
func keyPathAt(lines []string, i int) string {
	indent, body, ok := splitLine(lines[i])
	if !ok {
		return ""
	}
	var parts []string
	item := strings.HasPrefix(body, "- ")
	if k, _, isKey := cutKey(strings.TrimPrefix(body, "- ")); isKey {
		parts = append(parts, k)
	}
	// limit: ancestors are less indented than this. listIndent: after a
	// list item, the list's key may sit at the items' own indentation.
	limit, listIndent := indent, -1
	if item {
		// A new list item, perhaps mis-indented: it follows the nearest
		// item above that is not more indented.
		for j := i - 1; j >= 0; j-- {
			ind, b, ok := splitLine(lines[j])
			if !ok || ind > indent || !strings.HasPrefix(b, "-") {
				if ok && ind < indent && !strings.HasPrefix(b, "-") {
					break
				}
				continue
			}
			parts = append(parts, fmt.Sprintf("[%d]", itemIndex(lines, j, ind)+1))
			limit, listIndent = ind, ind
			break
		}
	}
	for j := i - 1; j >= 0 && (limit > 0 || listIndent == 0); j-- {
		ind, b, ok := splitLine(lines[j])
		isItem := strings.HasPrefix(b, "- ") || b == "-"
		if !ok || ind > limit || ind == limit && (ind != listIndent || isItem) {
			continue
		}
		if isItem {
			parts = append(parts, fmt.Sprintf("[%d]", itemIndex(lines, j, ind)))
			limit, listIndent = ind, ind
			continue
		}
		k, v, isKey := cutKey(b)
		if !isKey || v != "" {
			continue // a scalar line, or a key with its value: opens no block
		}
		parts = append(parts, k)
		limit, listIndent = ind, -1
	}
	var sb strings.Builder
	for j := len(parts) - 1; j >= 0; j-- {
		if sb.Len() > 0 && !strings.HasPrefix(parts[j], "[") {
			sb.WriteByte('.')
		}
		sb.WriteString(parts[j])
	}
	return sb.String()
}

// itemIndex is the index of the list item on line j, at indentation ind:
// the number of its siblings above it.
func itemIndex(lines []string, j, ind int) int {
	idx := 0
	for k := j - 1; k >= 0; k-- {
		ki, kb, ok := splitLine(lines[k])
		if !ok || ki > ind {
			continue
		}
		if ki < ind || !strings.HasPrefix(kb, "-") {
			break
		}
		idx++
	}
	return idx
}

// splitLine returns a line's indentation and content without a trailing
// comment; ok is false for blank and comment-only lines.
func splitLine(l string) (indent int, body string, ok bool) {
	l = strings.TrimRight(l, "\r\n")
	t := strings.TrimLeft(l, " \t")
	if t == "" || strings.HasPrefix(t, "#") {
		return 0, "", false
	}
	if i := strings.Index(t, " #"); i >= 0 {
		t = t[:i]
	}
	return len(l) - len(strings.TrimLeft(l, " \t")), strings.TrimSpace(t), true
}

// plainKey is a key as config files write them.
var plainKey = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*))?$`)

// cutKey splits "key: value" (value may be empty).
func cutKey(s string) (key, value string, ok bool) {
	m := plainKey.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], strings.TrimSpace(m[2]), true
}
