package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// UDPStats are the kernel's UDP counters, over IPv4 and IPv6 together,
// for the whole network namespace (not one socket).
type UDPStats struct {
	InDatagrams  int64 // delivered to a socket
	RcvbufErrors int64 // dropped because a socket's receive buffer was full
	InErrors     int64 // every receive error, RcvbufErrors included
}

// Sub returns s - o, counter by counter.
func (s UDPStats) Sub(o UDPStats) UDPStats {
	return UDPStats{
		InDatagrams:  s.InDatagrams - o.InDatagrams,
		RcvbufErrors: s.RcvbufErrors - o.RcvbufErrors,
		InErrors:     s.InErrors - o.InErrors,
	}
}

// ReadUDPStats reads /proc/net/snmp and, when present, /proc/net/snmp6.
func ReadUDPStats() (UDPStats, error) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return UDPStats{}, fmt.Errorf("read udp counters: %w", err)
	}
	defer f.Close()
	s, err := ParseSNMP(f)
	if err != nil {
		return UDPStats{}, fmt.Errorf("read udp counters: %w", err)
	}
	if f6, err := os.Open("/proc/net/snmp6"); err == nil { // absent without IPv6
		defer f6.Close()
		s6, err := ParseSNMP6(f6)
		if err != nil {
			return UDPStats{}, fmt.Errorf("read udp6 counters: %w", err)
		}
		s.InDatagrams += s6.InDatagrams
		s.RcvbufErrors += s6.RcvbufErrors
		s.InErrors += s6.InErrors
	}
	return s, nil
}

// ParseSNMP reads the "Udp:" lines of /proc/net/snmp: a line of names,
// then a line of values.
func ParseSNMP(r io.Reader) (UDPStats, error) {
	sc := bufio.NewScanner(r)
	var names []string
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Udp:")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		values := strings.Fields(rest)
		if len(values) != len(names) {
			return UDPStats{}, fmt.Errorf("/proc/net/snmp: %d Udp names but %d values", len(names), len(values))
		}
		var s UDPStats
		for i, n := range names {
			if err := s.set(n, values[i]); err != nil {
				return UDPStats{}, fmt.Errorf("/proc/net/snmp: %w", err)
			}
		}
		return s, nil
	}
	if err := sc.Err(); err != nil {
		return UDPStats{}, err
	}
	return UDPStats{}, fmt.Errorf("/proc/net/snmp: no Udp lines")
}

// ParseSNMP6 reads the "Udp6..." lines of /proc/net/snmp6, one name and
// value a line.
func ParseSNMP6(r io.Reader) (UDPStats, error) {
	sc := bufio.NewScanner(r)
	var s UDPStats
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if n, ok := strings.CutPrefix(f[0], "Udp6"); ok {
			if err := s.set(n, f[1]); err != nil {
				return UDPStats{}, fmt.Errorf("/proc/net/snmp6: %w", err)
			}
		}
	}
	return s, sc.Err()
}

func (s *UDPStats) set(name, value string) error {
	var p *int64
	switch name {
	case "InDatagrams":
		p = &s.InDatagrams
	case "RcvbufErrors":
		p = &s.RcvbufErrors
	case "InErrors":
		p = &s.InErrors
	default:
		return nil
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number", name, value)
	}
	*p = v
	return nil
}

// Memory is a process's resident memory, from /proc/PID/status.
type Memory struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, the highest RSS since the process started, bytes
}

// ReadMemory reads the memory of process pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	return ParseStatus(b)
}

// ParseStatus reads VmRSS and VmHWM from the text of /proc/PID/status.
func ParseStatus(b []byte) (Memory, error) {
	var m Memory
	var found int
	for line := range bytes.Lines(b) {
		var p *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			p = &m.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			p = &m.HWM
		default:
			continue
		}
		f := strings.Fields(string(line[6:]))
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("status: unexpected line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("status: unexpected line %q", bytes.TrimSpace(line))
		}
		*p = kb << 10
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("status: no VmRSS and VmHWM (a kernel thread, or a process that exited?)")
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of CPU times in /proc: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// CPUTimes are CPU times in seconds.
type CPUTimes struct {
	Busy  float64 // user, nice, system, irq, softirq, steal
	Total float64 // Busy plus idle and iowait
}

// ReadMachineCPU reads the CPU time of all CPUs together from /proc/stat.
func ReadMachineCPU() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read cpu times: %w", err)
	}
	return ParseStat(b)
}

// ParseStat reads the first ("cpu ") line of /proc/stat.
func ParseStat(b []byte) (CPUTimes, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return CPUTimes{}, fmt.Errorf("stat: unexpected first line %q", line)
	}
	var t CPUTimes
	// user nice system idle iowait irq softirq steal [guest guest_nice],
	// guest time being counted in user already.
	for i, s := range f[1:9] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("stat: unexpected first line %q", line)
		}
		v /= clockTicks
		t.Total += v
		if i != 3 && i != 4 {
			t.Busy += v
		}
	}
	return t, nil
}

// ReadProcessCPU returns the CPU time process pid has used, in seconds.
func ReadProcessCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu time of process %d: %w", pid, err)
	}
	return ParseProcessStat(b)
}

// ParseProcessStat returns utime + stime, in seconds, from the text of
// /proc/PID/stat. The command name may hold spaces and parentheses, so
// fields are counted from the last ')'.
func ParseProcessStat(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("process stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(3) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("process stat: %d fields", len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("process stat: utime %q, stime %q", f[11], f[12])
	}
	return (utime + stime) / clockTicks, nil
}
