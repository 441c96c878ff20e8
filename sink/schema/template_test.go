package schema

import "testing"

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	if _, err := ParseTemplate("{{.NoSuchField}}"); err == nil {
		t.Error("a template naming an unknown field parsed")
	}
	if _, err := ParseTemplate("{{"); err == nil {
		t.Error("a broken template parsed")
	}
	d := templateData("m", "t", "$p$x")
	if d.Measurement != "$p0$$p$x$p0$" {
		t.Errorf("got %s", d.Measurement)
	}
}
