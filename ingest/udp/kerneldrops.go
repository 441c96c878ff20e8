package udp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pginflux/pginflux/internal/plural"
)

// procNetUDP are the kernel's tables of UDP sockets in the process's
// network namespace; each socket's line ends with the datagrams the kernel
// dropped for it, mostly because its receive buffer was full.
var procNetUDP = []string{"/proc/net/udp", "/proc/net/udp6"}

// KernelDrops counts the datagrams the kernel dropped for a Listener's
// sockets before a reader could take them: what --udp-read-buffer was too
// small to hold. It reads the drops column of /proc/net/udp and
// /proc/net/udp6 for each socket, found by its inode. It is a
// prometheus.Collector of pginflux_udp_kernel_dropped_datagrams_total and
// safe for concurrent use.
//
// The kernel's count is per socket, 32 bits wide, and gone once the socket
// is closed. KernelDrops adds up each socket's increments, taking a wrap of
// the 32-bit count into account, and keeps a closed socket's last total,
// so that the sum it reports never goes down: it is a true counter.
type KernelDrops struct {
	files []string
	desc  *prometheus.Desc

	mu      sync.Mutex
	sockets []socketDrops
}

type socketDrops struct {
	inode uint64
	raw   uint32 // the kernel's count when last seen
	total uint64 // every increment seen, wraps included
}

// KernelDrops returns the kernel's drop count for l's sockets. Call it
// while the sockets are open (before Run returns); the returned value goes
// on answering after they are closed. It fails when the kernel's tables
// cannot be read or do not list the sockets (no /proc, say), so that the
// caller can leave the metric out rather than report a zero that means
// nothing.
func (l *Listener) KernelDrops() (*KernelDrops, error) {
	k := &KernelDrops{
		files: procNetUDP,
		desc: prometheus.NewDesc("pginflux_udp_kernel_dropped_datagrams_total",
			"UDP datagrams the kernel dropped before a reader took them, mostly because a socket's receive buffer (--udp-read-buffer) was full.",
			nil, nil),
	}
	for _, c := range l.conns {
		ino, err := socketInode(c)
		if err != nil {
			return nil, err
		}
		k.sockets = append(k.sockets, socketDrops{inode: ino})
	}
	if err := k.update(true); err != nil {
		return nil, err
	}
	return k, nil
}

// socketInode returns the inode of the socket behind c, as /proc lists it.
func socketInode(c syscall.Conn) (uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("find the inode of a udp socket: %w", err)
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, fmt.Errorf("find the inode of a udp socket: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("find the inode of a udp socket: fstat: %w", serr)
	}
	return st.Ino, nil
}

// Total returns the datagrams the kernel dropped for the listener's
// sockets since they were opened. When the kernel's tables cannot be read
// it returns the last total together with the error.
func (k *KernelDrops) Total() (uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.updateLocked(false)
	var sum uint64
	for _, s := range k.sockets {
		sum += s.total
	}
	return sum, err
}

// update reads the kernel's counts. With requireAll, a socket missing from
// the tables is an error; otherwise it is a closed socket, whose total
// stays as it was.
func (k *KernelDrops) update(requireAll bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.updateLocked(requireAll)
}

// updateLocked is update with k.mu held: from reading the tables to
// adding the increments, so that two scrapes at once cannot add a count
// read earlier after one read later (which would look like a wrap of the
// 32-bit count).
func (k *KernelDrops) updateLocked(requireAll bool) error {
	byInode := make(map[uint64]int, len(k.sockets))
	for i, s := range k.sockets {
		byInode[s.inode] = i
	}
	raw := make(map[int]uint32, len(k.sockets))
	read := 0
	var errs []error
	for _, name := range k.files {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = parseProcNetUDP(f, func(inode uint64, drops uint32) {
			if i, ok := byInode[inode]; ok {
				raw[i] = drops
			}
		})
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", name, err))
			continue
		}
		read++
	}
	if read == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("none of %s exists", strings.Join(k.files, ", ")))
	}
	if requireAll && len(raw) < len(k.sockets) && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d of %d udp sockets are not listed in %s", len(k.sockets)-len(raw), len(k.sockets), strings.Join(k.files, ", ")))
	}

	for i, v := range raw {
		s := &k.sockets[i]
		// Unsigned subtraction counts across a wrap of the 32-bit count.
		s.total += uint64(v - s.raw)
		s.raw = v
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("count kernel udp drops: %w", err)
	}
	return nil
}

// parseProcNetUDP calls fn with the inode and drop count of every socket
// listed in r, a /proc/net/udp or /proc/net/udp6 table:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
//	270: 00000000:1F99 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 15767 2 0000000000000000 17
//
// The header names tx_queue:rx_queue and tr:tm->when as four columns where
// the lines have two, so the positions are those of the lines: inode is
// the tenth field, drops the thirteenth.
func parseProcNetUDP(r io.Reader, fn func(inode uint64, drops uint32)) error {
	const inodeField, dropsField = 9, 12
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return err
		}
		return errors.New("empty table")
	}
	header := strings.Fields(sc.Text())
	if len(header) < 2 || header[len(header)-1] != "drops" || !strings.Contains(sc.Text(), " inode ") {
		return fmt.Errorf("unexpected header %q", sc.Text())
	}
	for n := 2; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) <= dropsField {
			return fmt.Errorf("line %d: %s, want %d", n, plural.Count(len(f), "field"), dropsField+1)
		}
		inode, err := strconv.ParseUint(f[inodeField], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q: %w", n, f[inodeField], errors.Unwrap(err))
		}
		drops, err := strconv.ParseUint(f[dropsField], 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: drops %q: %w", n, f[dropsField], errors.Unwrap(err))
		}
		fn(inode, uint32(drops))
	}
	return sc.Err()
}

// Describe implements prometheus.Collector.
func (k *KernelDrops) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

// Collect implements prometheus.Collector. Should the kernel's tables
// become unreadable, the last total is reported rather than failing the
// scrape.
func (k *KernelDrops) Collect(ch chan<- prometheus.Metric) {
	total, _ := k.Total()
	ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(total))
}
