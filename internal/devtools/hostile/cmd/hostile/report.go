package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// writeText writes r as a few lines for a person.
func (r *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s: %.1f s", r.Scenario, r.Seconds)
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, ", peak RSS %s (%s before)", mib(r.PeakRSS), mib(r.RSSBefore))
	}
	if r.RejectedLines >= 0 {
		fmt.Fprintf(w, ", rejected lines +%.0f", r.RejectedLines)
	}
	fmt.Fprintln(w)
	if b := r.Bombs; b != nil {
		fmt.Fprintf(w, "  bombs: %d × %s (%d bytes gzipped): %s; slowest %.1f s\n",
			b.Requests, mib(b.Size), b.CompressedBytes, b.Outcomes.String(), b.SlowestSeconds)
		writeSamples(w, b.Outcomes.Samples, "")
	}
	if b := r.Big; b != nil {
		times := make([]float64, 0, len(b.PerClient))
		for _, c := range b.PerClient {
			if c.Outcome == "204" {
				times = append(times, c.Seconds)
			}
		}
		slices.Sort(times)
		fmt.Fprintf(w, "  big: %d clients × %d lines (%d bytes each): %s, %d acknowledged, at most %d attempts; want %d rows\n",
			b.Clients, b.LinesPer, b.BodyBytes, b.Outcomes.String(), b.Acknowledged, b.MostAttempts, b.WantRows)
		if len(times) > 0 {
			fmt.Fprintf(w, "       time to 204: fastest %.1f s, median %.1f s, slowest %.1f s\n",
				times[0], times[len(times)/2], times[len(times)-1])
		}
		writeSamples(w, b.Outcomes.Samples, "")
	}
	if s := r.Slow; s != nil {
		fmt.Fprintf(w, "  slow: %d clients for %.1f s, %d bytes sent: %s; probes %s (slowest %.1f s)\n",
			s.Clients, s.Seconds, s.BytesSent, s.Outcomes.String(), s.Probes.String(), s.ProbeSlowestSeconds)
		writeSamples(w, s.Outcomes.Samples, "")
		writeSamples(w, s.Probes.Samples, "probe ")
	}
	if t := r.TCPLine; t != nil {
		fmt.Fprintf(w, "  tcpline: a line of %d bytes, %d sent in %.1f s, closed by pginflux: %v", t.Size, t.Sent, t.Seconds, t.Closed)
		if t.Err != "" {
			fmt.Fprintf(w, ", error: %s", t.Err)
		}
		fmt.Fprintln(w)
	}
	if u := r.UDP; u != nil {
		fmt.Fprintf(w, "  udp: %.0f lines/s asked, %d lines in %d datagrams over %.1f s (%.0f/s), %d datagrams refused\n",
			u.Rate, u.Lines, u.Datagrams, u.Seconds, float64(u.Lines)/max(u.Seconds, 1e-9), u.FailedDatagrams)
	}
}

// writeSamples writes the first answer of each outcome, after prefix.
func writeSamples(w io.Writer, samples map[string]string, prefix string) {
	for _, k := range slices.Sorted(maps.Keys(samples)) {
		fmt.Fprintf(w, "       %s%s: %s\n", prefix, k, samples[k])
	}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
