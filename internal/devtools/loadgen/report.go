package loadgen

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "workload    %s, %d series, %d lines a datagram, %d sender(s) to %s\n",
		r.Workload, r.Series, r.LinesPerDatagram, r.Senders, r.Address)
	target := "as fast as possible"
	if r.TargetRate > 0 {
		target = "target " + num(r.TargetRate)
	}
	fmt.Fprintf(w, "sent        %s lines in %s datagrams (%s) in %.2fs = %s lines/s (%s), sender using %.2f cores\n",
		num(r.Sent.Lines), num(r.Sent.Datagrams), bytesString(r.Sent.Bytes), r.Sent.Seconds, num(r.Sent.Rate), target, r.Sent.CPUCores)
	if r.Sent.FailedDatagrams > 0 {
		fmt.Fprintf(w, "not sent    %s lines in %s datagrams refused by the kernel (%s)\n",
			num(r.Sent.FailedLines), num(r.Sent.FailedDatagrams), r.Sent.LastError)
	}
	if s := r.Stored; s != nil {
		fmt.Fprintf(w, "stored      %s rows (%s); last one visible %.2fs after the first send = %s rows/s\n",
			num(s.Rows), tableCounts(s.Tables), s.Seconds, num(s.Rate))
		pct := 0.0
		if r.Sent.Lines > 0 {
			pct = 100 * float64(s.Lost) / float64(r.Sent.Lines)
		}
		note := ""
		if !s.Settled {
			note = " (rows were still arriving: not final)"
		}
		fmt.Fprintf(w, "lost        %s lines (%.3f%%)%s\n", num(s.Lost), pct, note)
	} else {
		fmt.Fprintf(w, "stored      not checked (no --database-url)\n")
	}
	if k := r.Kernel; k != nil {
		fmt.Fprintf(w, "kernel      %s UDP datagrams dropped for a full receive buffer (RcvbufErrors, whole machine), %s receive errors in all\n",
			num(k.RcvbufErrors), num(k.InErrors))
	}
	if p := r.Pginflux; p != nil {
		if p.Error != "" {
			fmt.Fprintf(w, "pginflux    no counters: %s\n", p.Error)
		} else {
			c := p.Counters
			fmt.Fprintf(w, "pginflux    received %s datagrams, dropped %s at its queue; parsed %s lines, rejected %s; wrote %s rows, dropped %s\n",
				num(c["pginflux_udp_received_datagrams_total"]), num(c["pginflux_ingest_dropped_datagrams_total"]),
				num(c["pginflux_parse_lines_total"]), num(c["pginflux_parse_rejected_lines_total"]),
				num(c["pginflux_sink_written_rows_total"]), num(c["pginflux_sink_dropped_rows_total"]))
		}
	}
	if p := r.Process; p != nil {
		fmt.Fprintf(w, "process     pginflux (%s): RSS up to %s during the run", p.Source, mib(p.MaxRSS))
		if p.HWM > 0 {
			fmt.Fprintf(w, " (peak since it started %s)", mib(p.HWM))
		}
		fmt.Fprintf(w, ", %.2f cores of CPU while sending", p.CPUCores)
		if p.CPUPerLine > 0 {
			fmt.Fprintf(w, ", %.2f µs of CPU per line stored (%.2fs until the rows settled)", p.CPUPerLine, p.RunCPU)
		}
		if p.Error != "" {
			fmt.Fprintf(w, " (%s)", p.Error)
		}
		fmt.Fprintln(w)
	}
	if s := r.Server; s != nil {
		s.writeText(w)
	}
	if m := r.Machine; m != nil {
		fmt.Fprintf(w, "machine     %.2f of %.0f cores busy while sending (sender, pginflux, PostgreSQL and anything else)\n", m.BusyCores, m.Cores)
	}
	for _, iv := range r.Intervals {
		fmt.Fprintf(w, "interval    %s\n", iv)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning     %s\n", warn)
	}
}

func (s *ServerUsage) writeText(w io.Writer) {
	fmt.Fprintf(w, "server      PostgreSQL %s, %s: ", s.Version, s.Settings())
	if s.Durable {
		fmt.Fprintf(w, "durable")
	} else {
		fmt.Fprintf(w, "NOT DURABLE, the figures are an upper bound for a durable server")
	}
	switch {
	case s.CPUPerRow > 0:
		fmt.Fprintf(w, "; its processes used %.2f µs of CPU per row stored (%.2fs)\n", s.CPUPerRow, s.CPU)
	case s.CPUError != "":
		fmt.Fprintf(w, "; its CPU time is unknown: %s\n", s.CPUError)
	default:
		fmt.Fprintln(w)
	}
}

// WriteText writes f for people: a table of the steps, then the outcome.
func (f *FindMaxResult) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\ttarget/s\tsent/s\tsent\tstored\tlost\tkernel drops\tqueue drops\tpginflux RSS\tsender cores\tpginflux cores\tpginflux µs/line\tserver µs/row\tbusy cores\tresult\t")
	for i, r := range f.Steps {
		stored, lost := "-", "-"
		if r.Stored != nil {
			stored, lost = num(r.Stored.Rows), num(r.Stored.Lost)
		}
		drops, queue, rss, cores, busy, perLine, perRow := "-", "-", "-", "-", "-", "-", "-"
		if r.Kernel != nil {
			drops = num(r.Kernel.RcvbufErrors)
		}
		if r.Pginflux != nil && r.Pginflux.Error == "" {
			queue = num(r.Pginflux.Counters["pginflux_ingest_dropped_datagrams_total"])
		}
		if r.Process != nil {
			rss, cores = mib(r.Process.MaxRSS), fmt.Sprintf("%.2f", r.Process.CPUCores)
			if r.Process.CPUPerLine > 0 {
				perLine = fmt.Sprintf("%.2f", r.Process.CPUPerLine)
			}
		}
		if r.Server != nil && r.Server.CPUPerRow > 0 {
			perRow = fmt.Sprintf("%.2f", r.Server.CPUPerRow)
		}
		if r.Machine != nil {
			busy = fmt.Sprintf("%.2f", r.Machine.BusyCores)
		}
		verdict := "lossless"
		switch {
		case !r.Lossless() && r.Stored != nil && !r.Stored.Settled:
			verdict = "LOSSY (unsettled)"
		case !r.Lossless():
			verdict = "LOSSY"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n", i+1, num(r.TargetRate), num(r.Sent.Rate),
			num(r.Sent.Lines), stored, lost, drops, queue, rss, r.Sent.CPUCores, cores, perLine, perRow, busy, verdict)
	}
	tw.Flush()
	fmt.Fprintln(w, "(kernel drops are datagrams, machine-wide; queue drops are datagrams pginflux dropped at its parser queue;")
	fmt.Fprintln(w, " µs/line and µs/row are CPU time from the start of sending until the rows settled, over the rows stored)")
	if len(f.Steps) > 0 && f.Steps[0].Server != nil {
		settings := ServerUsage{ServerInfo: f.Steps[0].Server.ServerInfo, Durable: f.Steps[0].Server.Durable}
		settings.CPUError = ""
		settings.writeText(w)
	}
	if f.Best != nil {
		fmt.Fprintf(w, "highest lossless rate: %s lines/s", num(f.BestRate))
	} else {
		fmt.Fprintf(w, "highest lossless rate: none found")
	}
	if f.LowestLossy > 0 {
		fmt.Fprintf(w, " (lowest lossy: %s lines/s)", num(f.LowestLossy))
	}
	fmt.Fprintf(w, "\nstopped because %s\n", f.Reason)
}

// WriteText writes c for people.
func (c *CeilingResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "ceiling: %s rows from memory into scratch schema %s, %d connections, %s rows a COPY\n",
		num(c.Rows), c.Schema, c.Writers, num(c.BatchSize))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "storage\tmethod\trows\tseconds\trows/s\tserver µs/row\t")
	for _, v := range c.Variants {
		note := ""
		if !v.Complete {
			note = " (time ran out)"
		}
		perRow := "-"
		if v.ServerCPUPerRow > 0 {
			perRow = fmt.Sprintf("%.2f", v.ServerCPUPerRow)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s%s\t%s\t\n", v.Storage, v.Method, num(v.Rows), v.Seconds, num(v.Rate), note, perRow)
	}
	tw.Flush()
	if c.Server != nil {
		settings := ServerUsage{ServerInfo: c.Server.ServerInfo, Durable: c.Server.Durable}
		settings.CPUError = ""
		settings.writeText(w)
	}
}

func tableCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + num(m[k])
	}
	return strings.Join(parts, ", ")
}

// num formats a count or rate with thousands separators, rounded to a
// whole number.
func num[T int | int64 | float64](v T) string {
	n := int64(float64(v) + 0.5)
	if float64(v) < 0 {
		n = int64(float64(v) - 0.5)
	}
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func bytesString(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return mib(b)
}
