package loadgen

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// A run reads the counters of the machine, of pginflux and of the server
// before sending, when sending ends, when the rows have settled and at the
// end; the Result holds the differences.

// snapshot is the counters at one moment; a nil or zero part was not
// available (the reason is in the Result's warnings).
type snapshot struct {
	cpuSnapshot
	udp        *UDPStats
	metrics    map[string]float64
	metricsErr error
	memory     *Memory
	processErr error
}

// cpuSnapshot is the CPU times at one moment.
type cpuSnapshot struct {
	at         time.Time
	machine    *CPUTimes
	processCPU *float64
	cpuErr     error
	serverCPU  *float64
	serverErr  error
}

// takeCPU reads the CPU times of the machine, the server and pginflux.
func takeCPU(probe *processProbe) cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	if probe.server != nil && probe.server.PID > 0 {
		if c, err := ReadServerCPU(probe.server.PID); err == nil {
			s.serverCPU = &c
		} else {
			s.serverErr = err
		}
	}
	if c, err := ReadMachineCPU(); err == nil {
		s.machine = &c
	}
	if probe.enabled() {
		if c, err := probe.cpu(); err == nil {
			s.processCPU = &c
		} else {
			s.cpuErr = err
		}
	}
	return s
}

// takeSnapshot reads every counter the Result compares before and after
// the run; what cannot be read becomes a warning or an error in the
// snapshot.
func takeSnapshot(ctx context.Context, cfg Config, client *http.Client, probe *processProbe, r *Result) snapshot {
	s := snapshot{cpuSnapshot: takeCPU(probe)}
	if u, err := ReadUDPStats(); err == nil {
		s.udp = &u
	} else {
		r.warn("no kernel UDP counters: %v", err)
	}
	if cfg.MetricsURL != "" {
		s.metrics, s.metricsErr = Scrape(ctx, client, cfg.MetricsURL)
	}
	if probe.enabled() {
		if m, err := probe.memory(); err == nil {
			s.memory = &m
		} else {
			s.processErr = err
		}
	}
	return s
}

// fill sets the deltas between before and after, and of CPU time between
// before and sendEnd.
func (r *Result) fill(cfg Config, probe *processProbe, before snapshot, sendEnd cpuSnapshot, after snapshot, maxRSS int64) {
	if before.udp != nil && after.udp != nil {
		d := after.udp.Sub(*before.udp)
		r.Kernel = &d
	}
	if cfg.MetricsURL != "" {
		p := &PginfluxCounts{}
		switch {
		case before.metricsErr != nil:
			p.Error = before.metricsErr.Error()
		case after.metricsErr != nil:
			p.Error = after.metricsErr.Error()
		default:
			p.Counters = make(map[string]float64)
			for _, name := range pginfluxCounters {
				if v, ok := after.metrics[name]; ok {
					p.Counters[name] = v - before.metrics[name]
				}
			}
		}
		r.Pginflux = p
	}
	seconds := sendEnd.at.Sub(before.at).Seconds()
	if before.machine != nil && sendEnd.machine != nil && sendEnd.machine.Total > before.machine.Total {
		busy := (sendEnd.machine.Busy - before.machine.Busy) / (sendEnd.machine.Total - before.machine.Total)
		cores := (sendEnd.machine.Total - before.machine.Total) / seconds
		r.Machine = &MachineUsage{BusyCores: busy * cores, Cores: cores}
	}
	if probe.enabled() {
		p := &ProcessUsage{PID: cfg.PID, Source: probe.source(), MaxRSS: maxRSS}
		if before.processCPU != nil && sendEnd.processCPU != nil {
			p.CPU = *sendEnd.processCPU - *before.processCPU
			p.CPUCores = p.CPU / seconds
		}
		if r.haveRunCPU {
			p.RunCPU = r.runCPU
			if r.Stored != nil && r.Stored.Rows > 0 {
				p.CPUPerLine = 1e6 * p.RunCPU / float64(r.Stored.Rows)
			}
		}
		if after.memory != nil {
			p.HWM = after.memory.HWM
			p.MaxRSS = max(p.MaxRSS, after.memory.RSS)
		}
		if err := errors.Join(before.cpuErr, sendEnd.cpuErr, before.processErr, after.processErr); err != nil {
			p.Error = err.Error()
		}
		r.Process = p
	}
}

// fillPerRow sets the CPU time pginflux and the server used from before
// (sending starts) to settled (the rows stopped arriving, before the
// final count), per row stored.
func (r *Result) fillPerRow(probe *processProbe, before, settled cpuSnapshot) {
	rows := r.Stored.Rows
	if probe.server != nil {
		su := &ServerUsage{ServerInfo: *probe.server, Durable: probe.server.Durable()}
		if before.serverCPU != nil && settled.serverCPU != nil {
			su.CPU = *settled.serverCPU - *before.serverCPU
			if rows > 0 {
				su.CPUPerRow = 1e6 * su.CPU / float64(rows)
			}
		} else if err := errors.Join(before.serverErr, settled.serverErr); err != nil && su.CPUError == "" {
			su.CPUError = err.Error()
		}
		r.Server = su
	}
	if before.processCPU != nil && settled.processCPU != nil {
		r.runCPU = *settled.processCPU - *before.processCPU
		r.haveRunCPU = true
	}
}
