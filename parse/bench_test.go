package parse

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// benchLinesPerBuffer is about what fits a Telegraf UDP datagram.
const benchLinesPerBuffer = 10

// benchBuffers returns n buffers of Telegraf-like cpu lines with varying
// hosts, cpus, values and timestamps.
func benchBuffers(n int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		var b bytes.Buffer
		for j := range benchLinesPerBuffer {
			k := i*benchLinesPerBuffer + j
			idle := 90 + float64(k%97)/10
			fmt.Fprintf(&b, "cpu,cpu=cpu%d,host=host-%04d usage_guest=0,usage_guest_nice=0,usage_idle=%.1f,usage_iowait=%.1f,usage_irq=0,usage_nice=0,usage_softirq=0.%02d,usage_steal=0,usage_system=%.1f,usage_user=%.1f %d\n",
				j%8, i%1000, idle, float64(k%7)/10, k%100, (100-idle)/2, (100-idle)/2, 1574753954000000000+int64(k)*1e9)
		}
		bufs[i] = b.Bytes()
	}
	return bufs
}

func benchTotals(bufs [][]byte) (size, lines int) {
	for _, b := range bufs {
		size += len(b)
		lines += bytes.Count(b, []byte("\n"))
	}
	return size, lines
}

// BenchmarkParser parses a set of datagram-sized buffers per iteration.
func BenchmarkParser(b *testing.B) {
	bufs := benchBuffers(64)
	size, lines := benchTotals(bufs)
	p := NewParser(Nanosecond)
	now := time.Now()
	var fields int
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, buf := range bufs {
			p.Reset(buf, now)
			for {
				pt, err := p.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				fields += len(pt.Fields)
			}
		}
	}
	reportLines(b, lines)
	if fields != lines*10*b.N {
		b.Fatalf("got %v fields, want %v", fields, lines*10*b.N)
	}
}

// BenchmarkDecoderRaw does the equivalent full decode with the raw decoder,
// as the baseline for BenchmarkParser.
func BenchmarkDecoderRaw(b *testing.B) {
	bufs := benchBuffers(64)
	size, lines := benchTotals(bufs)
	now := time.Now()
	var fields int
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, buf := range bufs {
			dec := lineprotocol.NewDecoderWithBytes(buf)
			for dec.Next() {
				if _, err := dec.Measurement(); err != nil {
					b.Fatal(err)
				}
				for {
					k, _, err := dec.NextTag()
					if err != nil {
						b.Fatal(err)
					}
					if k == nil {
						break
					}
				}
				for {
					k, _, err := dec.NextField()
					if err != nil {
						b.Fatal(err)
					}
					if k == nil {
						break
					}
					fields++
				}
				if _, err := dec.Time(lineprotocol.Nanosecond, now); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	reportLines(b, lines)
	if fields != lines*10*b.N {
		b.Fatalf("got %v fields, want %v", fields, lines*10*b.N)
	}
}

// BenchmarkParserEscaped parses lines whose every token is escaped, so
// that every token is copied and line numbers come from the shadow decoder.
func BenchmarkParserEscaped(b *testing.B) {
	var buf bytes.Buffer
	for i := range benchLinesPerBuffer {
		fmt.Fprintf(&buf, `my\ cpu,host\ name=host\ %d usage\ idle="%d \"%%\"",usage\ user=%d.5 1574753954000000000`+"\n", i, i, i)
	}
	data := buf.Bytes()
	p := NewParser(Nanosecond)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		p.Reset(data, now)
		for {
			_, err := p.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	reportLines(b, benchLinesPerBuffer)
}

// BenchmarkParserMixed parses cpu lines of which one in ten has an escaped
// tag value, so that the fast path hands it to the decoder.
func BenchmarkParserMixed(b *testing.B) {
	bufs := benchBuffers(64)
	for i, buf := range bufs {
		ls := bytes.SplitAfter(buf, newline)
		ls[i%benchLinesPerBuffer] = bytes.Replace(ls[i%benchLinesPerBuffer], []byte("host=host-"), []byte(`host=host\ `), 1)
		bufs[i] = bytes.Join(ls, nil)
	}
	size, lines := benchTotals(bufs)
	p := NewParser(Nanosecond)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, buf := range bufs {
			p.Reset(buf, now)
			for {
				_, err := p.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	reportLines(b, lines)
}

// BenchmarkParserNumbers parses lines whose numbers are not the plain
// decimals plainFloat takes: exponents, leading zeros, integers and
// unsigned integers, and long mantissas, which the fast path's general
// number parsers (parseFloatPlain, parseInt, parseUint) take.
func BenchmarkParserNumbers(b *testing.B) {
	var buf bytes.Buffer
	for i := range benchLinesPerBuffer {
		fmt.Fprintf(&buf, "sensor,id=s%d temp=2.%de1,pressure=1.01325E+5,small=-6.5e-%d,lead=00%d.25,count=%di,bytes=%du,ratio=0.12345678901234%d,big=9007199254740993%d %d\n",
			i, i, i+1, i, i*1000, i*4096, i, i, 1574753954000000000+int64(i)*1e9)
	}
	data := buf.Bytes()
	p := NewParser(Nanosecond)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		p.Reset(data, now)
		for {
			_, err := p.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	reportLines(b, benchLinesPerBuffer)
}

// reportLines reports the rate of a benchmark that parses lines lines per
// iteration, in lines/s and ns/line.
func reportLines(b *testing.B, lines int) {
	b.Helper()
	n := float64(lines) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/line")
}
