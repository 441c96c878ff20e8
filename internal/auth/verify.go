package auth

import (
	"crypto/sha256"
	"sync"
)

// verifier checks passwords against their bcrypt hashes and remembers
// the user and password pairs it found right, so that a client sending
// the same pair on every request costs one bcrypt, not one a request. It
// remembers at most size pairs, forgetting one at random to make room. A
// wrong password is not remembered; concurrent checks of one pair share
// one bcrypt, right or wrong. Its File owns it: a reload, a new File,
// starts with nothing remembered. Safe for concurrent use.
type verifier struct {
	compare func(hash, password []byte) error
	size    int

	mu       sync.Mutex
	verified map[[sha256.Size]byte]*Credential
	checking map[[sha256.Size]byte]*check
}

// check is a verification under way, which others of the same pair wait
// for.
type check struct {
	done chan struct{}
	cred *Credential // set before done is closed; nil: the password is wrong
}

func newVerifier(compare func(hash, password []byte) error, size int) *verifier {
	return &verifier{
		compare:  compare,
		size:     size,
		verified: make(map[[sha256.Size]byte]*Credential),
		checking: make(map[[sha256.Size]byte]*check),
	}
}

// verify returns u's credential if password is the password of u, whose
// name is name, or nil.
func (v *verifier) verify(u *user, name, password string) *Credential {
	// A name never holds a NUL (validUser), so the key of a pair is
	// that of no other.
	key := sha256.Sum256([]byte(name + "\x00" + password))
	v.mu.Lock()
	if c, ok := v.verified[key]; ok {
		v.mu.Unlock()
		return c
	}
	if ch, ok := v.checking[key]; ok {
		v.mu.Unlock()
		<-ch.done
		return ch.cred
	}
	ch := &check{done: make(chan struct{})}
	v.checking[key] = ch
	v.mu.Unlock()

	// Deferred, so that those waiting are let go even if compare panics.
	defer func() {
		v.mu.Lock()
		delete(v.checking, key)
		if ch.cred != nil {
			if len(v.verified) >= v.size {
				for k := range v.verified {
					delete(v.verified, k)
					break
				}
			}
			v.verified[key] = ch.cred
		}
		v.mu.Unlock()
		close(ch.done)
	}()
	if v.compare(u.hash, []byte(password)) == nil {
		ch.cred = u.cred
	}
	return ch.cred
}
