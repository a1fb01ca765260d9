// Package doclinks checks the project's Markdown: README.md stays short
// enough to read in one sitting, it links every page of docs/, and every
// relative link and #anchor in README.md and docs/*.md leads somewhere, by
// GitHub's rules for heading anchors. Pages move and headings get renamed;
// a link left behind fails here instead of on a reader.
package doclinks

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

const (
	repoRoot = "../.."
	// maxREADMELines is the README's budget: what mcproxy is, how to start
	// it, a first config and where to read on. The reference is in docs/.
	maxREADMELines = 300
)

// pages returns README.md and docs/*.md, relative to the repository root.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, filepath.Join("docs", filepath.Base(d)))
	}
	return out
}

func TestREADMELength(t *testing.T) {
	data := read(t, "README.md")
	if n := strings.Count(data, "\n"); n > maxREADMELines {
		t.Errorf("README.md has %d lines, more than %d: move reference text to a page of docs/", n, maxREADMELines)
	}
}

// TestREADMELinksEveryPage: a page of docs/ that the README does not link
// is a page no newcomer finds.
func TestREADMELinksEveryPage(t *testing.T) {
	var linked []string
	for _, l := range links(read(t, "README.md")) {
		if path, _, _ := strings.Cut(l.target, "#"); !isExternal(path) {
			linked = append(linked, filepath.Clean(path))
		}
	}
	for _, p := range pages(t)[1:] {
		if !slices.Contains(linked, p) {
			t.Errorf("README.md does not link %s", p)
		}
	}
}

// TestLinksResolve: every relative link names a file or directory of the
// repository, and every #anchor a heading of the page it points into.
func TestLinksResolve(t *testing.T) {
	anchors := map[string][]string{} // page → its heading anchors
	anchorsOf := func(page string) []string {
		if a, ok := anchors[page]; ok {
			return a
		}
		a := headingAnchors(read(t, page))
		anchors[page] = a
		return a
	}
	checked := 0
	for _, page := range pages(t) {
		for _, l := range links(read(t, page)) {
			if isExternal(l.target) {
				continue
			}
			checked++
			path, anchor, hasAnchor := strings.Cut(l.target, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
				if rel, err := filepath.Rel(".", target); err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s:%d: link %q leaves the repository", page, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, target)); err != nil {
					t.Errorf("%s:%d: link %q: %v", page, l.line, l.target, err)
					continue
				}
			}
			if !hasAnchor {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: link %q: an anchor into a file that is not Markdown", page, l.line, l.target)
				continue
			}
			if !slices.Contains(anchorsOf(target), anchor) {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s (it has %s)",
					page, l.line, l.target, target, anchor, strings.Join(anchorsOf(target), ", "))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link reader is broken")
	}
}

// TestHeadingAnchor holds headingAnchors to GitHub's rules with headings
// of these pages, including the awkward ones.
func TestHeadingAnchor(t *testing.T) {
	page := "# Configuration\n" +
		"## Changing the config while mcproxy runs\n" +
		"```sh\n# not a heading\n```\n" +
		"## What memcached does (1.6.18, checked against the source and a running server)\n" +
		"# `lru_crawler metadump` through mcproxy\n" +
		"### Backing up or copying a fleet\n" +
		"#### light load: 1 conn, 1 in flight\n" +
		"## A [linked](x.md) *word* — and **bold**\n" +
		"## Layout\n## Layout\n"
	want := []string{
		"configuration",
		"changing-the-config-while-mcproxy-runs",
		"what-memcached-does-1618-checked-against-the-source-and-a-running-server",
		"lru_crawler-metadump-through-mcproxy",
		"backing-up-or-copying-a-fleet",
		"light-load-1-conn-1-in-flight",
		"a-linked-word--and-bold",
		"layout", "layout-1",
	}
	if got := headingAnchors(page); !slices.Equal(got, want) {
		t.Errorf("headingAnchors:\n got %q\nwant %q", got, want)
	}
}

// TestLinksReader holds links to what it must find and skip.
func TestLinksReader(t *testing.T) {
	page := "see [a](a.md) and [`b`](../b.md#x), `[not](code.md)`,\n" +
		"```\n[not](fenced.md)\n```\n" +
		"[two\nlines](c.md#y) ![img](d.svg) [ext](https://example.com/)\n" +
		"[ref]: e.md\n"
	var got []string
	for _, l := range links(page) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"1:a.md", "1:../b.md#x", "5:c.md#y", "6:d.svg", "6:https://example.com/", "7:e.md"}
	if !slices.Equal(got, want) {
		t.Errorf("links:\n got %q\nwant %q", got, want)
	}
}

func read(t *testing.T, page string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, page))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func isExternal(target string) bool {
	return strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:")
}

type link struct {
	line   int
	target string
}

var (
	// inlineLink matches [text](target) and ![alt](target); the text may
	// hold one level of brackets and run over lines.
	inlineLink = regexp.MustCompile(`\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	// refDef matches a reference definition: [name]: target
	refDef = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*(\S+)`)
)

// links returns the links of a Markdown page, outside code blocks and
// code spans, with their line numbers.
func links(page string) []link {
	text := withoutCode(page)
	var out []link
	for _, re := range []*regexp.Regexp{inlineLink, refDef} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			target := text[m[len(m)-2]:m[len(m)-1]]
			out = append(out, link{line: 1 + strings.Count(text[:m[0]], "\n"), target: target})
		}
	}
	slices.SortStableFunc(out, func(a, b link) int { return a.line - b.line })
	return out
}

// withoutCode blanks fenced code blocks and code spans, keeping every
// newline so line numbers still count. The text of a span that is a link's
// text is blanked too, which leaves the link.
func withoutCode(page string) string {
	lines := strings.Split(page, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			lines[i] = ""
			continue
		}
		if fenced {
			lines[i] = ""
		}
	}
	b := []byte(strings.Join(lines, "\n"))
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		run := 1
		for i+run < len(b) && b[i+run] == '`' {
			run++
		}
		fence := strings.Repeat("`", run)
		end := strings.Index(string(b[i+run:]), fence)
		if end < 0 {
			i += run
			continue
		}
		end += i + run + run
		for j := i; j < end; j++ {
			if b[j] != '\n' {
				b[j] = ' '
			}
		}
		i = end
	}
	return string(b)
}

var (
	atxHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	linkText   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// headingAnchors returns the anchors GitHub gives the page's headings, in
// order: the heading's text (links by their text, code spans by their
// content, emphasis marks dropped) lowercased, every character that is not
// a letter, digit, mark, underscore, hyphen or space dropped, and each
// space made a hyphen; a repeated anchor gets -1, -2, ...
func headingAnchors(page string) []string {
	seen := map[string]int{}
	var out []string
	fenced := false
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		m := atxHeading.FindStringSubmatch(l)
		if fenced || m == nil {
			continue
		}
		text := linkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor] = n + 1
			anchor = fmt.Sprintf("%s-%d", anchor, n)
		} else {
			seen[anchor] = 1
		}
		out = append(out, anchor)
	}
	return out
}
