package loadgen

import (
	"math"
	"os"
	"strings"
	"testing"
)

const sampleSNMP = `Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 1 64 1180263 0 0 0 0 0 1180263 1103312 0 0 0 0 0 0 0 0 0 1103312
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps
Icmp: 12 0 0 12 0 0 0 0 0 0 0 0 0 0 12 0 0 0 12 0 0 0 0 0 0 0 0 0 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 815230 12 4711 820001 4700 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 99 0 99 0 0 0 0
`

const sampleSNMP6 = `Ip6InReceives                   	12
Udp6InDatagrams                 	30
Udp6NoPorts                     	0
Udp6InErrors                    	7
Udp6OutDatagrams                	30
Udp6RcvbufErrors                	5
UdpLite6RcvbufErrors            	1000
`

func TestParseSNMP(t *testing.T) {
	t.Parallel()
	got, err := ParseSNMP(strings.NewReader(sampleSNMP))
	if err != nil {
		t.Fatal(err)
	}
	if want := (UDPStats{InDatagrams: 815230, RcvbufErrors: 4700, InErrors: 4711}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got6, err := ParseSNMP6(strings.NewReader(sampleSNMP6))
	if err != nil {
		t.Fatal(err)
	}
	if want := (UDPStats{InDatagrams: 30, RcvbufErrors: 5, InErrors: 7}); got6 != want {
		t.Errorf("snmp6: got %+v, want %+v", got6, want)
	}
	if d := got.Sub(UDPStats{InDatagrams: 1, RcvbufErrors: 2, InErrors: 3}); d != (UDPStats{815229, 4698, 4708}) {
		t.Errorf("Sub: got %+v", d)
	}
}

func TestParseSNMPErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"Udp: InDatagrams RcvbufErrors\n",
		"Udp: InDatagrams RcvbufErrors\nUdp: 1\n",
		"Udp: InDatagrams RcvbufErrors\nUdp: 1 x\n",
	} {
		if _, err := ParseSNMP(strings.NewReader(in)); err == nil {
			t.Errorf("ParseSNMP(%q): no error", in)
		}
	}
}

func TestReadUDPStats(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/net/snmp"); err != nil {
		t.Skip("no /proc/net/snmp")
	}
	if _, err := ReadUDPStats(); err != nil {
		t.Fatal(err)
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	in := "Name:\tpginflux\nVmPeak:\t 1000 kB\nVmHWM:\t   204800 kB\nVmRSS:\t   102400 kB\nThreads:\t9\n"
	got, err := ParseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{RSS: 100 << 20, HWM: 200 << 20}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ParseStatus([]byte("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Error("no error for a status without VmRSS")
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("ReadMemory(self): got %+v, %v", m, err)
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	got, err := ParseStat([]byte("cpu  100 5 50 800 20 3 2 0 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (CPUTimes{Busy: 1.6, Total: 9.8}); math.Abs(got.Busy-want.Busy) > 1e-9 || math.Abs(got.Total-want.Total) > 1e-9 {
		t.Errorf("got %+v, want %+v", got, want)
	}
	cpu, err := ParseProcessStat([]byte("4242 (pg (weird) name) S 1 4242 4242 0 -1 4194560 3000 0 0 0 250 130 0 0 20 0 9 0 1000 1000000 2000 18446744073709551615\n"))
	if err != nil || math.Abs(cpu-3.8) > 1e-9 {
		t.Errorf("ParseProcessStat: got %v, %v, want 3.8", cpu, err)
	}
	if _, err := ReadProcessCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}
