package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLoggerDurations: both log formats write a duration as Go does.
func TestLoggerDurations(t *testing.T) {
	for format, want := range map[string]string{"json": `"wait":"1.5s"`, "text": "wait=1.5s"} {
		var out bytes.Buffer
		Config{LogFormat: format}.Logger(&out, new(slog.LevelVar)).Info("m", "wait", 1500*time.Millisecond)
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: got %q, want %s in it", format, out.String(), want)
		}
	}
}
