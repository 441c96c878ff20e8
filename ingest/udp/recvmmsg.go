package udp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader reads batches of datagrams from one socket with recvmmsg(2)
// into buffers it owns and reuses: a read allocates nothing. (x/net's
// ReadBatch allocates a net.UDPAddr for every datagram.) It is used by
// one goroutine only.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []sockaddr
	bufs  [][]byte

	// Results of the last read, set inside the RawConn.Read callback.
	n     int
	errno syscall.Errno
	flags int
	read  func(fd uintptr) bool // bound once, so that Read does not allocate
}

// sockaddr holds a sockaddr_in or sockaddr_in6.
type sockaddr [unix.SizeofSockaddrInet6]byte

func newMMsgReader(rc syscall.RawConn, batch, size int) *mmsgReader {
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]sockaddr, batch),
		bufs:  make([][]byte, batch),
	}
	for i := range batch {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = &r.names[i][0]
	}
	r.read = func(fd uintptr) bool {
		for i := range r.hdrs {
			r.hdrs[i].Hdr.Namelen = uint32(len(r.names[i]))
			r.hdrs[i].Hdr.Flags = 0
			r.hdrs[i].Len = 0
		}
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
			uintptr(r.flags|unix.MSG_DONTWAIT), 0, 0)
		if errno == unix.EAGAIN && r.flags&unix.MSG_DONTWAIT == 0 {
			return false // park until the socket is readable
		}
		if errno == unix.EINTR {
			n, errno = 0, 0
		}
		r.n, r.errno = int(n), errno
		return true
	}
	return r
}

// Read takes the datagrams waiting on the socket, up to the batch size,
// parking until one arrives (or the read deadline passes) unless flags
// hold MSG_DONTWAIT. It returns how many it took; Datagram(i) gives each.
func (r *mmsgReader) Read(flags int) (int, error) {
	r.flags = flags
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		if r.errno == unix.EAGAIN {
			return 0, nil
		}
		return 0, r.errno
	}
	return r.n, nil
}

// Datagram returns datagram i of the last Read: its bytes (valid until
// the next Read), its source, and whether the kernel cut it short.
func (r *mmsgReader) Datagram(i int) (data []byte, src netip.AddrPort, truncated bool) {
	h := &r.hdrs[i]
	return r.bufs[i][:h.Len], parseSockaddr(r.names[i][:h.Hdr.Namelen]), h.Hdr.Flags&unix.MSG_TRUNC != 0
}

// parseSockaddr reads the address of a sockaddr_in or sockaddr_in6; the
// zero AddrPort for anything else. An IPv6 scope id is left out: sources
// are compared with prefixes, which never match a zoned address.
func parseSockaddr(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	family := binary.NativeEndian.Uint16(b)
	switch {
	case family == unix.AF_INET && len(b) >= unix.SizeofSockaddrInet4:
		port := binary.BigEndian.Uint16(b[2:4])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case family == unix.AF_INET6 && len(b) >= unix.SizeofSockaddrInet6:
		port := binary.BigEndian.Uint16(b[2:4])
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
	}
	return netip.AddrPort{}
}
