package config

import (
	"reflect"
	"strings"
	"text/template"
	"unicode"
)

// Changed returns the flag names of the settings that differ between a
// and b, once each, in the order of Config's fields.
func Changed(a, b Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var names []string
	seen := make(map[string]bool)
	for i := range va.NumField() {
		if sameSetting(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name := flagOfField(va.Type().Field(i).Name)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// sameSetting reports whether two values of a Config field are the same
// setting. Templates parsed twice from one text are the same, though they
// are two values that reflect.DeepEqual tells apart.
func sameSetting(a, b any) bool {
	ta, okA := a.(*template.Template)
	tb, okB := b.(*template.Template)
	if okA && okB {
		return templateText(ta) == templateText(tb)
	}
	return reflect.DeepEqual(a, b)
}

func templateText(t *template.Template) string {
	if t == nil {
		return "<none>"
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return ""
	}
	return t.Tree.Root.String()
}

// fieldFlags names the flag of the Config fields whose flag name is not
// their name in kebab case.
var fieldFlags = map[string]string{
	"Database":      "database-url", // a description of DatabaseURL
	"UintType":      "uint64-type",
	"PProf":         "pprof",
	"SpoolMaxBytes": "spool-max-size",
}

// flagOfField returns the flag that sets a Config field: UDPReadBuffer is
// udp-read-buffer, DatabaseURL database-url.
func flagOfField(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	var b strings.Builder
	rs := []rune(field)
	for i, r := range rs {
		// A word starts at an upper-case letter after a lower-case one,
		// and at the last upper-case letter of a run when a lower-case
		// one follows (the R of UDPRead).
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
