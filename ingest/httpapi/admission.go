package httpapi

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pginflux/pginflux/internal/auth"
)

// Admission, not overcommitment: a write request is served only when the
// bodies already being written leave room for its own, so that the ones
// served finish within their deadlines and get their 204, and the others
// are told, before their body is read, when to come back (Retry-After).
// Thirty-two clients posting 22 MB each at once are then served a few at
// a time, rather than all at once at a thirty-second of the speed each,
// every one running out of time.
//
// A request weighs what its body is expected to be, decompressed: its
// Content-Length, times gzipRatio when gzipped, and unknownWeight when it
// does not say. The weights served at once stay within the in-flight
// bound (--http-max-body), except that one request is always served
// alone, whatever its weight, and that a light one (smallWeight at most,
// a Telegraf batch of a few thousand lines) is always served: it is
// written within a moment, and it must not wait behind a client that
// declares a large body and sends it slowly.

// gzipRatio is how much line protocol is expected to grow when
// decompressed: a guess on the high side, so that gzipped bodies are not
// underweighted.
const gzipRatio = 10

// unknownWeight is the weight of a body whose size is not said.
const unknownWeight = 1 << 20

// smallWeight is the most a request served whatever the others weigh
// may weigh.
const smallWeight = 1 << 20

// Bounds of Retry-After, in seconds.
const (
	minRetryAfter = 1
	maxRetryAfter = 60
)

// admission tracks the write requests served. Safe for concurrent use.
type admission struct {
	bound int64 // weight served at once

	mu       sync.Mutex
	inflight int64 // weight of the requests served now
	served   int
	rate     float64   // bytes a second, written lately; 0 until known
	window   time.Time // since when done counts
	done     int64     // bytes written in the window
	// queueEnd is when the requests refused so far will likely have been
	// written, had they come back when told: the turn of the next one
	// refused.
	queueEnd time.Time
}

func newAdmission(bound int64) *admission { return &admission{bound: bound} }

// weight is what a request's body is expected to be, decompressed.
func weight(r *http.Request, maxBody int64) int64 {
	n := r.ContentLength
	switch {
	case n < 0:
		return unknownWeight
	case isGzip(r):
		return min(maxBody, n*gzipRatio)
	}
	return n
}

// admit serves a request of weight w now, or says in how many seconds
// to come back.
func (a *admission) admit(w int64, now time.Time) (ok bool, retryAfter int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.served == 0 || w <= smallWeight || a.inflight+w <= a.bound {
		if a.served == 0 {
			a.window, a.done = now, 0
		}
		a.served++
		a.inflight += w
		return true, 0
	}
	// Come back in turn: once what is served now is written, and after
	// the requests refused before this one, each told its own turn, so
	// that they do not all come back at once and most are served when
	// they do.
	rate := a.rate
	if rate == 0 {
		rate = defaultRate
	}
	turn := now.Add(seconds(float64(a.inflight) / rate))
	if a.queueEnd.After(turn) {
		turn = a.queueEnd
	}
	// A request refused again is counted again: the turns never run
	// further than the longest Retry-After.
	a.queueEnd = turn.Add(seconds(float64(w) / rate))
	if last := now.Add(maxRetryAfter * time.Second); a.queueEnd.After(last) {
		a.queueEnd = last
	}
	// A little jitter, so that turns rounded to one second spread.
	wait := turn.Sub(now).Seconds() * (1 + 0.1*rand.Float64())
	return false, int(min(max(math.Ceil(wait), minRetryAfter), maxRetryAfter))
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// defaultRate is the rate assumed before one is measured, in bytes a
// second.
const defaultRate = 16 << 20

// end ends a request of weight w that read n bytes of body.
func (a *admission) end(w, n int64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.served--
	a.inflight -= w
	a.done += n
	if d := now.Sub(a.window); d >= time.Second || a.served == 0 && d > 0 {
		r := float64(a.done) / d.Seconds()
		if a.rate == 0 {
			a.rate = r
		} else {
			a.rate = 0.7*a.rate + 0.3*r
		}
		a.window, a.done = now, 0
	}
}

// retryAfterHeader sets Retry-After to n seconds.
func retryAfterHeader(w http.ResponseWriter, n int) {
	w.Header().Set("Retry-After", strconv.Itoa(n))
}

// A request whose body trickles in (less than slowBytes within slowAfter
// of its start) gives back its slot of --http-max-writes and its weight:
// it holds a connection and a small read buffer, drawn from the memory
// budget, and no more, so that clients sending slowly — a slow network,
// or on purpose — cannot keep the others out; the body timeout ends it.
const (
	slowAfter = 200 * time.Millisecond
	slowBytes = 64 << 10
)

// serving is a write request being served: its slot, its weight and its
// memory, each given back once. The weight goes back as soon as the body
// is read: what is left is the wait for the commit, which the pending
// rows bound.
type serving struct {
	s          *Server
	cred       *auth.Credential
	weight     int64
	memory     int64
	slot, load sync.Once
}

// serve takes a slot of --http-max-writes, admits the request's weight
// and draws its memory, or says why not (an error wrapping ErrFull, with
// Retry-After set on w when it is not 1). Call end when done.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, cred *auth.Credential) (*serving, error) {
	if !s.credWrites.take(cred, s.cfg.MaxWrites) {
		return nil, fmt.Errorf("%w: %q has its most write requests under way (its max-writes, or half of --http-max-writes)", ErrFull, cred.Name)
	}
	select {
	case s.writes <- struct{}{}:
	default:
		s.credWrites.give(cred)
		return nil, fmt.Errorf("%w: %d write requests are under way (--http-max-writes)", ErrFull, s.cfg.MaxWrites)
	}
	sv := &serving{s: s, cred: cred, weight: weight(r, s.cfg.MaxBody), memory: s.cfg.RequestMemory}
	if ok, after := s.admission.admit(sv.weight, time.Now()); !ok {
		<-s.writes
		s.credWrites.give(cred)
		retryAfterHeader(w, after)
		return nil, fmt.Errorf("%w: the write requests under way bring as much as pginflux writes at once (--http-max-body); send this one again in %d s", ErrFull, after)
	}
	if isGzip(r) {
		sv.memory += s.cfg.GzipMemory
	}
	if !s.cfg.Memory.Admit(sv.memory) {
		sv.memory = 0
		sv.end()
		return nil, fmt.Errorf("%w: pginflux's memory budget (--max-memory) is spent", ErrFull)
	}
	return sv, nil
}

// read gives back the weight, once the body is read (n bytes) or cut.
func (sv *serving) read(n int64) {
	sv.load.Do(func() { sv.s.admission.end(sv.weight, n, time.Now()) })
}

// slow gives back the slot and the weight of a body that trickles in.
func (sv *serving) slow() {
	sv.read(0)
	sv.slot.Do(func() { <-sv.s.writes })
}

// end ends the request.
func (sv *serving) end() {
	sv.read(0)
	sv.slot.Do(func() { <-sv.s.writes })
	sv.s.credWrites.give(sv.cred)
	sv.s.cfg.Memory.Give(sv.memory)
}

func isGzip(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip")
}
