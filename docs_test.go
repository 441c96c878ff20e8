package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeSection returns the text of the README section "## title".
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	return section
}

// TestREADMEQuickstart: the Quickstart is two commands, make run and
// make test, and the Makefile has both.
func TestREADMEQuickstart(t *testing.T) {
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(readmeSection(t, "Quickstart"), -1)
	var got []string
	for _, b := range blocks {
		got = append(got, strings.TrimSpace(b[1]))
	}
	if want := []string{"make run", "make test"}; !slices.Equal(got, want) {
		t.Errorf("the Quickstart's commands are %q, want %q", got, want)
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"run", "test", "build"} {
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(makefile) {
			t.Errorf("the Makefile has no target %s", target)
		}
	}
}

// TestREADMECommands: the README's table of commands lists every
// command pginflux has, and no other.
func TestREADMECommands(t *testing.T) {
	section := readmeSection(t, "Configuration")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `pginflux ([a-z]+)` \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(listed)
	if have := sortedCommands(); !slices.Equal(listed, have) {
		t.Errorf("the README lists commands %q, pginflux has %q", listed, have)
	}
}
