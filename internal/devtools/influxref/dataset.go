package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"
)

// The fleet data set: Telegraf's cpu, mem and net from four hosts,
// every 10 s for two hours from datasetStart. What the queries exercise:
//
//   - h4 sends nothing from 00:30:00 to 00:39:59 (gaps for fill);
//   - h2's net counters start again from zero at 01:06:40 (a counter
//     reset for derivative and non_negative_derivative).
var (
	datasetStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	datasetSteps = 720
	datasetStep  = 10 * time.Second
	gapFrom      = 180 // steps of h4's gap: [gapFrom, gapTo)
	gapTo        = 240
	resetHost    = 1 // h2
	resetStep    = 400
)

var (
	datasetHosts = []string{"h1", "h2", "h3", "h4"}
	datasetCPUs  = []string{"cpu-total", "cpu0", "cpu1"}
)

// noise returns a number in [0, 1) that depends only on its arguments
// (splitmix64), so that the data set is the same on every machine.
func noise(a, b, c uint64) float64 {
	x := a*0x9e3779b97f4a7c15 + b*0xbf58476d1ce4e5b9 + c*0x94d049bb133111eb + 1
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// fixed formats v with two decimals.
func fixed(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// datasets are the data sets -make-data writes, by -dataset.
var datasets = map[string]func(io.Writer) error{
	"fleet": writeFleet,
	"docs":  writeDocs,
}

// writeFleet writes the fleet data set as line protocol, in time order.
func writeFleet(w io.Writer) error {
	bw := bufio.NewWriter(w)
	recv := make([]int64, len(datasetHosts))
	sent := make([]int64, len(datasetHosts))
	for step := range datasetSteps {
		ts := datasetStart.Add(time.Duration(step) * datasetStep).UnixNano()
		wave := math.Sin(2 * math.Pi * float64(step) / 360)
		for h, host := range datasetHosts {
			hu := uint64(h)
			su := uint64(step)
			if h == resetHost && step == resetStep {
				recv[h], sent[h] = 0, 0
			}
			recv[h] += 1000*int64(h+1) + int64(noise(1, hu, su)*5000)
			sent[h] += 500*int64(h+1) + int64(noise(2, hu, su)*2000)
			if h == 3 && step >= gapFrom && step < gapTo {
				continue
			}
			for c, cpu := range datasetCPUs {
				cu := uint64(c)
				user := 10 + 5*float64(h) + 8*wave + 6*noise(3, hu*8+cu, su)
				system := 2 + float64(c) + 3*noise(4, hu*8+cu, su)
				idle := 100 - user - system
				fmt.Fprintf(bw, "cpu,cpu=%s,host=%s usage_idle=%s,usage_system=%s,usage_user=%s %d\n",
					cpu, host, fixed(idle), fixed(system), fixed(user), ts)
			}
			used := 30 + 10*float64(h) + 5*wave + 2*noise(5, hu, su)
			fmt.Fprintf(bw, "mem,host=%s total=%di,used_percent=%s %d\n", host, int64(h+1)<<33, fixed(used), ts)
			fmt.Fprintf(bw, "net,host=%s,interface=eth0 bytes_recv=%di,bytes_sent=%di %d\n", host, recv[h], sent[h], ts)
		}
	}
	return bw.Flush()
}

// writeDatasetFile writes a data set to name.
func writeDatasetFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("cannot create data: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write data %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write data %s: %w", name, err)
	}
	return nil
}
