package schema

import (
	"testing"
	"time"
)

func TestPeriods(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 21, 15, 4, 5, 0, time.UTC) // a Saturday
	tests := []struct {
		by          string
		start, next string
		name        string
	}{
		{by: "day", start: "2026-11-21", next: "2026-11-22", name: "cpu_p20261121"},
		{by: "week", start: "2026-11-16", next: "2026-11-23", name: "cpu_p20261116"},
		{by: "month", start: "2026-11-01", next: "2026-12-01", name: "cpu_p202611"},
	}
	for _, tt := range tests {
		p := newPartitions(tt.by, "s", nil)
		s := p.Start(at)
		if got := s.Format(time.DateOnly); got != tt.start {
			t.Errorf("%s: start got %s, want %s", tt.by, got, tt.start)
		}
		if got := p.next(s).Format(time.DateOnly); got != tt.next {
			t.Errorf("%s: next got %s, want %s", tt.by, got, tt.next)
		}
		if got := p.partitionName("cpu", s); got != tt.name {
			t.Errorf("%s: name got %s, want %s", tt.by, got, tt.name)
		}
	}
}
