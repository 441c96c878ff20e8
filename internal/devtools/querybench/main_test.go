package main

import (
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxql"
)

// TestDashboardParses: every panel is InfluxQL InfluxDB's parser takes,
// and the lines of a host are one a series, stamped as asked.
func TestDashboardParses(t *testing.T) {
	o := options{hosts: 2, cpus: 2, span: 24 * time.Hour, end: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), selectOne: "host0001"}
	for _, p := range dashboard(o) {
		if _, err := influxql.ParseQuery(p.q); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	got := strings.Split(strings.TrimSpace(string(lines(nil, o, 7, 1704067200))), "\n")
	if len(got) != 3 || !strings.HasPrefix(got[0], "cpu,cpu=cpu0,host=host0007 usage_idle=") || !strings.HasPrefix(got[2], "cpu,cpu=cpu-total,host=host0007 ") || !strings.HasSuffix(got[1], " 1704067200") {
		t.Errorf("lines: got %q", got)
	}
	if value(1, 2, 3, 0, 50) != value(1, 2, 3, 0, 50) || value(1, 2, 3, 0, 50) >= 50 {
		t.Error("value is not deterministic and below its scale")
	}
}
