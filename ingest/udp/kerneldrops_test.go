package udp

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The header is padded with trailing spaces as the kernel writes it.
const sampleUDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops             
  270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 15767 2 0000000000000000 0         
  271: 0100007F:1F99 00000000:0000 07 00000000:00000300 00:00000000 00000000   106        0 15768 2 ffff8f1d8e2c4000 4294967295
 1003: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 21934 2 0000000000000000 17        
`

const sampleUDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  270: 00000000000000000000000000000000:1F99 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 33001 2 0000000000000000 5
`

func TestParseProcNetUDP(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[uint64]uint32
		wantErr string
	}{
		{name: "udp", text: sampleUDP, want: map[uint64]uint32{15767: 0, 15768: 4294967295, 21934: 17}},
		{name: "udp6", text: sampleUDP6, want: map[uint64]uint32{33001: 5}},
		{name: "no sockets", text: strings.SplitAfter(sampleUDP, "\n")[0], want: map[uint64]uint32{}},
		{name: "empty", text: "", wantErr: "empty table"},
		{name: "other header", text: "sl local_address inode\n", wantErr: "unexpected header"},
		{name: "short line", text: strings.SplitAfter(sampleUDP, "\n")[0] + "  270: 00000000:1F99 00000000:0000 07\n", wantErr: "line 2: 4 fields"},
		{name: "bad drops", text: strings.SplitAfter(sampleUDP, "\n")[0] + "  270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 15767 2 0 x\n", wantErr: `line 2: drops "x"`},
		{name: "drops beyond 32 bits", text: strings.SplitAfter(sampleUDP, "\n")[0] + "  270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 15767 2 0 4294967296\n", wantErr: "value out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[uint64]uint32{}
			err := parseProcNetUDP(strings.NewReader(tt.text), func(inode uint64, drops uint32) { got[inode] = drops })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("inode %d: got %d drops, want %d", k, got[k], v)
				}
			}
		})
	}
}

// TestKernelDropsCounter feeds KernelDrops changing tables: the sum goes
// across a 32-bit wrap and stays when a socket disappears.
func TestKernelDropsCounter(t *testing.T) {
	dir := t.TempDir()
	udp, udp6 := filepath.Join(dir, "udp"), filepath.Join(dir, "udp6")
	header := strings.SplitAfter(sampleUDP, "\n")[0]
	write := func(name string, lines ...string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(header+strings.Join(lines, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	line := func(inode, drops string) string {
		return "  270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 " + inode + " 2 0 " + drops + "\n"
	}
	k := &KernelDrops{files: []string{udp, udp6}, sockets: []socketDrops{{inode: 10}, {inode: 11}}}
	steps := []struct {
		name      string
		udp, udp6 []string
		want      uint64
		wantErr   bool
	}{
		{name: "start", udp: []string{line("10", "3"), line("99", "1000")}, udp6: []string{line("11", "4")}, want: 7},
		{name: "grow", udp: []string{line("10", "5")}, udp6: []string{line("11", "4")}, want: 9},
		{name: "near wrap", udp: []string{line("10", "4294967295")}, udp6: []string{line("11", "4")}, want: 4294967299},
		{name: "wrapped", udp: []string{line("10", "1")}, udp6: []string{line("11", "4")}, want: 4294967301},
		{name: "socket closed", udp: []string{line("10", "1")}, udp6: nil, want: 4294967301},
		{name: "all closed", udp: nil, udp6: nil, want: 4294967301},
		{name: "unreadable", udp: []string{"garbage\n"}, want: 4294967301, wantErr: true},
	}
	for _, s := range steps {
		write(udp, s.udp...)
		write(udp6, s.udp6...)
		if s.name == "unreadable" {
			if err := os.WriteFile(udp, []byte("garbage\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := k.Total()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: got error %v, want error %v", s.name, err, s.wantErr)
		}
		if got != s.want {
			t.Fatalf("%s: got %d, want %d", s.name, got, s.want)
		}
	}
}

// TestKernelDrops overflows the receive buffer of a real socket that no
// reader drains and finds the kernel's drops counted.
func TestKernelDrops(t *testing.T) {
	m := NewMetrics(nil)
	l, err := Listen(t.Context(), Config{Address: "127.0.0.1:0", Readers: 2, ReadBuffer: 1},
		func([]byte, netip.AddrPort, time.Time) {}, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	k, err := l.KernelDrops()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := k.Total(); err != nil || n != 0 {
		t.Fatalf("got %d drops (%v) before sending, want 0", n, err)
	}

	c, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 1000)
	// The buffer holds a few datagrams at most; the rest are dropped.
	const sent = 200
	for range sent {
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	var got uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = k.Total(); err != nil {
			t.Fatal(err)
		}
		if got >= sent/2 {
			break
		}
	}
	if got < sent/2 || got > sent {
		t.Fatalf("got %d drops, want between %d and %d", got, sent/2, sent)
	}
	if v := testutil.ToFloat64(k); v != float64(got) {
		t.Errorf("collected %v, want %d", v, got)
	}
	if problems, err := testutil.CollectAndLint(k); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	// Once the sockets are closed the count stays.
	l.closeAll()
	if n, err := k.Total(); err != nil || n != got {
		t.Errorf("after close: got %d (%v), want %d", n, err, got)
	}

}

// TestKernelDropsConcurrentScrapes: scrapes at once while the kernel's
// count grows never add a count read earlier after one read later (which
// would look like a wrap of the 32-bit count), and race with nothing.
func TestKernelDropsConcurrentScrapes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	udp := filepath.Join(dir, "udp")
	header := strings.SplitAfter(sampleUDP, "\n")[0]
	write := func(drops int) {
		line := fmt.Sprintf("  270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 10 2 0 %d\n", drops)
		// Renamed into place: a reader sees a whole table, old or new.
		tmp := udp + ".tmp"
		if err := os.WriteFile(tmp, []byte(header+line), 0o644); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, udp); err != nil {
			t.Error(err)
		}
	}
	write(0)
	k := &KernelDrops{files: []string{udp}, sockets: []socketDrops{{inode: 10}}}
	const last = 300
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if got, err := k.Total(); err != nil || got > last {
					t.Errorf("Total: got %d, %v; want at most %d", got, err, last)
					return
				}
			}
		})
	}
	for d := 1; d <= last; d++ {
		write(d)
	}
	wg.Wait()
	if got, err := k.Total(); err != nil || got != last {
		t.Errorf("at the end: got %d, %v; want %d", got, err, last)
	}
}
