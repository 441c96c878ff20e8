package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/doccheck"
)

// TestREADMEQuickstart: the Quickstart is two commands, make run and
// make test, and the Makefile has both.
func TestREADMEQuickstart(t *testing.T) {
	t.Parallel()
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(doccheck.Section(t, "README.md", "Quickstart"), -1)
	var got []string
	for _, b := range blocks {
		got = append(got, strings.TrimSpace(b[1]))
	}
	if want := []string{"make run", "make test"}; !slices.Equal(got, want) {
		t.Errorf("the Quickstart's commands are %q, want %q", got, want)
	}
	makefile := []byte(doccheck.Read(t, "Makefile"))
	for _, target := range []string{"run", "test", "build"} {
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(makefile) {
			t.Errorf("the Makefile has no target %s", target)
		}
	}
}

// TestDocsCommands: docs/configuration.md's table of commands lists every
// command pginflux has, and no other.
func TestDocsCommands(t *testing.T) {
	t.Parallel()
	section := doccheck.Section(t, "docs/configuration.md", "Commands")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `pginflux ([a-z-]+)` \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(listed)
	if have := sortedCommands(); !slices.Equal(listed, have) {
		t.Errorf("docs/configuration.md lists commands %q, pginflux has %q", listed, have)
	}
}

// TestDocsImportFlags: every pginflux flag docs/import.md's "Importing
// history" section names outside its code blocks is a flag of pginflux
// import, except the one it says import does not take.
func TestDocsImportFlags(t *testing.T) {
	t.Parallel()
	section := doccheck.Section(t, "docs/import.md", "Importing history")
	section = regexp.MustCompile("(?s)```.*?```").ReplaceAllString(section, "")
	var usage bytes.Buffer
	if _, err := parseImportFlags([]string{"--help"}, func(string) string { return "" }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: got %v", err)
	}
	named := regexp.MustCompile("`(--[a-z0-9-]+)").FindAllStringSubmatch(section, -1)
	if len(named) < 10 {
		t.Fatalf("found only %d flags in the section", len(named))
	}
	for _, m := range named {
		if m[1] == "--retention" {
			continue
		}
		if !strings.Contains(usage.String(), "\n  "+m[1]+" ") && !strings.Contains(usage.String(), "\n  "+m[1]+"\n") {
			t.Errorf("docs/import.md names %s, which pginflux import does not take", m[1])
		}
	}
	if strings.Contains(usage.String(), "\n  --retention") {
		t.Error("pginflux import takes --retention, which docs/import.md says it does not")
	}
}
