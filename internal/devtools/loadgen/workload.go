// Package loadgen is the load generator behind "pginflux bench": it makes
// Telegraf-like line protocol, sends it over UDP at a steady rate, and then
// checks in PostgreSQL how much of it was stored, next to the kernel's and
// pginflux's own counters. It also measures the ceiling: how fast the same
// rows go into PostgreSQL with COPY straight from memory.
//
// Every line it sends is distinct: line number seq of a run carries the
// timestamp base + seq microseconds, so the rows of one run are found (and
// counted) by their time range, and a lost line cannot hide behind a
// duplicate.
//
// Load goes only to loopback addresses unless the caller explicitly allows
// others (see ResolveUDP and CheckDatabase).
package loadgen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the line-protocol type of a field's values.
type Kind uint8

// The kinds of fields a workload has.
const (
	Float Kind = iota // 93.877551
	Int               // 8123456i
)

// Field is one field of a measurement. Values are drawn from [0, Max): a
// Float in steps of 1e-6, an Int in steps of 1.
type Field struct {
	Name string
	Kind Kind
	Max  uint64 // exclusive, in whole units
}

// Measurement is a measurement's name, tag keys (sorted, as Telegraf
// sends them) and fields (in the order they are sent).
type Measurement struct {
	Name    string
	TagKeys []string
	Fields  []Field
}

// Series is one combination of a measurement and tag values; every line
// belongs to one.
type Series struct {
	Measurement *Measurement
	TagValues   []string // in the order of Measurement.TagKeys

	prefix []byte   // "cpu,cpu=cpu0,host=host-0001 "
	keys   [][]byte // "usage_guest=", ",usage_guest_nice=", ...
}

// Workload is a set of series written in turn: line seq belongs to
// Series[seq % len(Series)]. A Workload is immutable once made and safe
// for concurrent use.
type Workload struct {
	Name         string
	Measurements []*Measurement
	Series       []Series
	// Split sends each point as this many lines of the same measurement,
	// tags and time, each with a part of the fields, as Telegraf's UDP
	// output does with wide points; 0 or 1: a line a point.
	Split int
	// Stamps is how the lines of a round (every series once) share
	// timestamps: StampHost (the default, ""), StampRound or StampLine.
	Stamps string
	// Interval, when set, is the time between two points of a series:
	// round r starts at Base + r×Interval, as agents gathering every
	// Interval send (see WithInterval). Zero: the rounds follow each
	// other a SeqStride a line, whatever the rate.
	Interval time.Duration

	perHost int // lines of one host in a round
}

// How the lines of a round share their timestamps. A round is every series
// once, in order; line seq of a run is stamped Base + seq*SeqStride, less
// its place in its group, so times never fall and two lines of one series
// never share one.
const (
	// StampHost: the lines of one host in a round share a timestamp, and
	// hosts differ, as Telegraf agents stamp each gather with its time.
	StampHost = "host"
	// StampRound: every line of a round shares one timestamp, as agents
	// gathering on the interval with precision = "1s" send.
	StampRound = "round"
	// StampLine: every line has a timestamp of its own.
	StampLine = "line"
)

// Stampings are the values Workload.Stamps takes.
var Stampings = []string{StampHost, StampRound, StampLine}

// WithStamps returns a copy of w whose lines share timestamps as stamps
// says (see StampHost).
func (w *Workload) WithStamps(stamps string) (*Workload, error) {
	if !slices.Contains(Stampings, stamps) {
		return nil, fmt.Errorf("unknown timestamps %q; timestamps: %s", stamps, strings.Join(Stampings, ", "))
	}
	c := *w
	c.Stamps = stamps
	return &c, nil
}

// WithInterval returns a copy of w whose rounds are interval apart (see
// Workload.Interval). The lines of a round keep their SeqStride apart
// within it, so interval must be longer than a round's lines.
func (w *Workload) WithInterval(interval time.Duration) (*Workload, error) {
	if interval != 0 && interval < time.Duration(len(w.Series))*SeqStride {
		return nil, fmt.Errorf("interval %v is shorter than a round of %d series %v apart", interval, len(w.Series), SeqStride)
	}
	c := *w
	c.Interval = interval
	return &c, nil
}

// group returns how many consecutive lines of a round share a timestamp.
func (w *Workload) group() uint64 {
	switch w.Stamps {
	case StampLine:
		return 1
	case StampRound:
		return uint64(len(w.Series))
	default:
		return uint64(max(w.perHost, 1))
	}
}

// SplitInto returns a copy of w that sends each point as n lines (see
// Workload.Split).
func (w *Workload) SplitInto(n int) *Workload {
	c := *w
	c.Split = max(n, 1)
	return &c
}

// parts returns how many lines a point of s is sent as.
func (w *Workload) parts(s *Series) int {
	return min(max(w.Split, 1), len(s.Measurement.Fields))
}

// Workloads are the names NewWorkload accepts.
var Workloads = []string{"cpu", "mix"}

// The measurements, with Telegraf's field sets (mem trimmed to its common
// fields).
var (
	cpuMeasurement = &Measurement{
		Name:    "cpu",
		TagKeys: []string{"cpu", "host"},
		Fields: floats(100, "usage_guest", "usage_guest_nice", "usage_idle", "usage_iowait", "usage_irq",
			"usage_nice", "usage_softirq", "usage_steal", "usage_system", "usage_user"),
	}
	memMeasurement = &Measurement{
		Name:    "mem",
		TagKeys: []string{"host"},
		Fields: []Field{
			{"active", Int, 64 << 30}, {"available", Int, 64 << 30}, {"available_percent", Float, 100},
			{"buffered", Int, 4 << 30}, {"cached", Int, 32 << 30}, {"commit_limit", Int, 64 << 30},
			{"committed_as", Int, 64 << 30}, {"dirty", Int, 1 << 30}, {"free", Int, 64 << 30},
			{"inactive", Int, 32 << 30}, {"mapped", Int, 4 << 30}, {"shared", Int, 4 << 30},
			{"slab", Int, 4 << 30}, {"swap_cached", Int, 1 << 30}, {"swap_free", Int, 8 << 30},
			{"swap_total", Int, 8 << 30}, {"total", Int, 64 << 30}, {"used", Int, 64 << 30},
			{"used_percent", Float, 100}, {"write_back", Int, 1 << 20},
		},
	}
	diskMeasurement = &Measurement{
		Name:    "disk",
		TagKeys: []string{"device", "fstype", "host", "mode", "path"},
		Fields: []Field{
			{"free", Int, 1 << 40}, {"inodes_free", Int, 1 << 27}, {"inodes_total", Int, 1 << 27},
			{"inodes_used", Int, 1 << 27}, {"total", Int, 1 << 40}, {"used", Int, 1 << 40},
			{"used_percent", Float, 100},
		},
	}
	netMeasurement = &Measurement{
		Name:    "net",
		TagKeys: []string{"host", "interface"},
		Fields: []Field{
			{"bytes_recv", Int, 1 << 40}, {"bytes_sent", Int, 1 << 40}, {"drop_in", Int, 10000},
			{"drop_out", Int, 10000}, {"err_in", Int, 10000}, {"err_out", Int, 10000},
			{"packets_recv", Int, 1 << 34}, {"packets_sent", Int, 1 << 34},
		},
	}
)

func floats(max uint64, names ...string) []Field {
	fs := make([]Field, len(names))
	for i, n := range names {
		fs[i] = Field{Name: n, Kind: Float, Max: max}
	}
	return fs
}

// NewWorkload makes a workload over hosts hosts with series series of
// each kind per host:
//
//   - cpu: per host, cpu-total and cpus cpu0..cpu<series-2>, all of
//     measurement cpu, as Telegraf's cpu input sends them.
//   - mix: per host, series cpu lines, one mem line, series disk lines
//     (one per mount) and series net lines (one per interface), in that
//     order, as a Telegraf agent sends them each interval.
func NewWorkload(name string, hosts, series int) (*Workload, error) {
	if hosts < 1 || series < 1 {
		return nil, fmt.Errorf("hosts (%d) and series (%d) must be at least 1", hosts, series)
	}
	if hosts*series > 10_000_000 {
		return nil, fmt.Errorf("%d hosts × %d series is more than 10,000,000 series", hosts, series)
	}
	w := &Workload{Name: name}
	switch name {
	case "cpu":
		w.Measurements = []*Measurement{cpuMeasurement}
	case "mix":
		w.Measurements = []*Measurement{cpuMeasurement, memMeasurement, diskMeasurement, netMeasurement}
	default:
		return nil, fmt.Errorf("unknown workload %q; workloads: %s", name, strings.Join(Workloads, ", "))
	}
	for h := range hosts {
		host := "host-" + pad(h, 4)
		for s := range series {
			cpu := "cpu-total"
			if s > 0 {
				cpu = "cpu" + strconv.Itoa(s-1)
			}
			w.add(cpuMeasurement, cpu, host)
		}
		if name != "mix" {
			continue
		}
		w.add(memMeasurement, host)
		for s := range series {
			path := "/"
			if s > 0 {
				path = "/data" + strconv.Itoa(s)
			}
			w.add(diskMeasurement, "sd"+string(rune('a'+s%26))+strconv.Itoa(1+s/26), "ext4", host, "rw", path)
		}
		for s := range series {
			w.add(netMeasurement, host, "eth"+strconv.Itoa(s))
		}
	}
	w.perHost = len(w.Series) / hosts
	return w, nil
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// add appends a series with the given tag values, pre-building the bytes
// every one of its lines starts with. Tag values never need escaping.
func (w *Workload) add(m *Measurement, tagValues ...string) {
	s := Series{Measurement: m, TagValues: tagValues}
	s.prefix = append(s.prefix, m.Name...)
	for i, k := range m.TagKeys {
		s.prefix = append(s.prefix, ',')
		s.prefix = append(s.prefix, k...)
		s.prefix = append(s.prefix, '=')
		s.prefix = append(s.prefix, tagValues[i]...)
	}
	s.prefix = append(s.prefix, ' ')
	for i, f := range m.Fields {
		var k []byte
		if i > 0 {
			k = append(k, ',')
		}
		k = append(k, f.Name...)
		s.keys = append(s.keys, append(k, '='))
	}
	w.Series = append(w.Series, s)
}

// MeasurementNames returns the names of the workload's measurements, which
// are also the names of the tables pginflux writes them to.
func (w *Workload) MeasurementNames() []string {
	names := make([]string, len(w.Measurements))
	for i, m := range w.Measurements {
		names[i] = m.Name
	}
	return names
}

// MaxLineLen returns the longest line (newline included) the workload can
// produce with timestamps of at most 19 digits.
func (w *Workload) MaxLineLen() int {
	longest := 0
	for i := range w.Series {
		s := &w.Series[i]
		parts := w.parts(s)
		n := parts * (len(s.prefix) + 1 + 19 + 1) // space, timestamp, newline
		for j, f := range s.Measurement.Fields {
			n += len(s.keys[j]) + maxValueLen(f)
		}
		longest = max(longest, n)
	}
	return longest
}

func maxValueLen(f Field) int {
	digits := len(strconv.FormatUint(f.Max-1, 10))
	if f.Kind == Float {
		return digits + 1 + fracDigits
	}
	return digits + 1 // the i suffix
}
