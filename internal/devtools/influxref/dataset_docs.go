package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// The docs data set: the shape of the NOAA sample data that InfluxDB
// 1.x's documentation queries (database NOAA_water_database), small and
// synthetic, since the real file is not part of the tree:
//
//   - h2o_feet (tag location: coyote_creek, santa_monica; fields
//     water_level, a float, and "level description", a string) every
//     6 minutes: two days from 2015-08-18T00:00:00Z, and
//     2015-09-18T12:00:00Z to 21:42:00Z, where coyote_creek sends
//     nothing at 16:36 and 16:42 (the documentation's fill examples).
//     The first hour has the values the documentation shows;
//   - h2o_temperature, average_temperature (degrees, whole floats),
//     h2o_pH (pH, an integer) and h2o_quality (index, an integer; tag
//     randtag 1..3) for the same two days, every 6 minutes;
//   - pond: three tadpoles counts on 2016-11-11 (21:00, 21:24, 22:00),
//     the documentation's fill(linear) example.

// docsDatabase is the database of the docs data set, as in the
// documentation.
const docsDatabase = "NOAA_water_database"

var (
	docsStart     = time.Date(2015, 8, 18, 0, 0, 0, 0, time.UTC)
	docsLateStart = time.Date(2015, 9, 18, 12, 0, 0, 0, time.UTC)
	docsGap       = []time.Time{time.Date(2015, 9, 18, 16, 36, 0, 0, time.UTC), time.Date(2015, 9, 18, 16, 42, 0, 0, time.UTC)}
	docsPond      = time.Date(2016, 11, 11, 21, 0, 0, 0, time.UTC)
)

const (
	docsStep      = 6 * time.Minute
	docsSteps     = 480 // two days
	docsLateSteps = 98  // 12:00 to 21:42
)

var docsLocations = []string{"coyote_creek", "santa_monica"}

// docsFirstHour are the documentation's water levels from 00:00 to
// 00:54 on 2015-08-18, by location.
var docsFirstHour = [][]float64{
	{8.12, 8.005, 7.887, 7.762, 7.635, 7.5, 7.372, 7.234, 7.11, 6.982},
	{2.064, 2.116, 2.028, 2.126, 2.041, 2.051, 2.067, 2.057, 1.991, 2.054},
}

// waterLevel is location l's level at t, in feet, with three decimals:
// a semidiurnal tide and noise.
func waterLevel(l int, t time.Time) float64 {
	if step := int(t.Sub(docsStart) / docsStep); t.Sub(docsStart)%docsStep == 0 && step >= 0 && step < len(docsFirstHour[l]) {
		return docsFirstHour[l][step]
	}
	hours := t.Sub(docsStart).Hours()
	// The phases continue the first hour's levels.
	mean, amp, phase := 4.9, 5.0, 1.2
	if l == 1 {
		mean, amp, phase = 2.9, 3.4, 2.6
	}
	v := mean + amp*math.Cos(2*math.Pi*(hours+phase)/12.42) + 0.3*(noise(6, uint64(l), uint64(t.Unix()))-0.5)
	return math.Round(v*1000) / 1000
}

// levelDescription is the documentation's text for a level.
func levelDescription(v float64) string {
	switch {
	case v < 3:
		return "below 3 feet"
	case v < 6:
		return "between 3 and 6 feet"
	case v < 9:
		return "between 6 and 9 feet"
	}
	return "at or greater than 9 feet"
}

// writeDocs writes the docs data set as line protocol, in time order,
// after a line naming its database.
func writeDocs(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s%s\n", contextDatabasePrefix, docsDatabase)
	feet := func(l int, t time.Time) {
		v := waterLevel(l, t)
		fmt.Fprintf(bw, "h2o_feet,location=%s level\\ description=%q,water_level=%s %d\n",
			docsLocations[l], levelDescription(v), strconv.FormatFloat(v, 'f', -1, 64), t.UnixNano())
	}
	for step := range docsSteps {
		t := docsStart.Add(time.Duration(step) * docsStep)
		su := uint64(step)
		for l, loc := range docsLocations {
			lu := uint64(l)
			feet(l, t)
			temp := 60 + 5*float64(l) + math.Round(8*noise(7, lu, su))
			fmt.Fprintf(bw, "h2o_temperature,location=%s degrees=%s %d\n", loc, strconv.FormatFloat(temp, 'f', -1, 64), t.UnixNano())
			avg := 70 + 3*float64(l) + math.Round(12*noise(8, lu, su))
			fmt.Fprintf(bw, "average_temperature,location=%s degrees=%s %d\n", loc, strconv.FormatFloat(avg, 'f', -1, 64), t.UnixNano())
			fmt.Fprintf(bw, "h2o_pH,location=%s pH=%di %d\n", loc, 6+int(3*noise(9, lu, su)), t.UnixNano())
			fmt.Fprintf(bw, "h2o_quality,location=%s,randtag=%d index=%di %d\n", loc, 1+int(3*noise(10, lu, su)), int(100*noise(11, lu, su)), t.UnixNano())
		}
	}
	for step := range docsLateSteps {
		t := docsLateStart.Add(time.Duration(step) * docsStep)
		for l := range docsLocations {
			if l == 0 && (t.Equal(docsGap[0]) || t.Equal(docsGap[1])) {
				continue
			}
			feet(l, t)
		}
	}
	for i, n := range []int{1, 3, 6} {
		t := docsPond.Add(time.Duration([]int{0, 24, 60}[i]) * time.Minute)
		fmt.Fprintf(bw, "pond tadpoles=%di %d\n", n, t.UnixNano())
	}
	return bw.Flush()
}
