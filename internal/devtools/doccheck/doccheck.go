// Package doccheck reads the project's Markdown documentation for tests
// that check what the docs say against what the code does, so that the
// docs cannot drift from it.
package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// Root returns the module's root directory: the nearest directory above
// the working directory (a test's package) that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("doccheck: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Read returns the text of the file at path, relative to the module's
// root (README.md, docs/tables.md).
func Read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Section returns the text under the heading of the file at path whose
// title is title (any level: "## Quickstart" is title "Quickstart"), up
// to the next heading of the same level or above. It fails the test when
// there is no such heading.
func Section(t testing.TB, path, title string) string {
	t.Helper()
	text := Read(t, path)
	m := regexp.MustCompile(`(?m)^(#+) ` + regexp.QuoteMeta(title) + `[ \t]*$`).FindStringSubmatchIndex(text)
	if m == nil {
		t.Fatalf("%s has no section %q", path, title)
	}
	level := m[3] - m[2]
	rest := text[m[1]:]
	end := regexp.MustCompile(`(?m)^#{1,` + strconv.Itoa(level) + `} `).FindStringIndex(rest)
	if end != nil {
		rest = rest[:end[0]]
	}
	return rest
}

// CodeBlocks returns the contents of the fenced code blocks of text whose
// info string is lang ("" for plain ``` fences).
func CodeBlocks(text, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```"+regexp.QuoteMeta(lang)+"\n(.*?)^```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}
