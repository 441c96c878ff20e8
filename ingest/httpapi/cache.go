package httpapi

import (
	"context"
	"sync"
	"time"
)

// Cache returns a check that runs check at most once per ttl and otherwise
// answers what it answered last, so that a storm of probes or scrapes does
// not become a storm of database round trips. Callers arriving while a
// check runs wait for its result instead of starting their own. check gets
// a context that is not cancelled when one impatient caller gives up (the
// result is shared): it must bound its own time. The returned function is
// safe for concurrent use.
func Cache(ttl time.Duration, check func(ctx context.Context) error) func(ctx context.Context) error {
	c := &cachedCheck{ttl: ttl, check: check}
	return c.run
}

type cachedCheck struct {
	ttl   time.Duration
	check func(ctx context.Context) error

	mu   sync.Mutex
	at   time.Time // when err was found; zero before the first check
	err  error
	done bool
}

func (c *cachedCheck) run(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done && time.Since(c.at) < c.ttl {
		return c.err
	}
	c.err = c.check(context.WithoutCancel(ctx))
	c.at, c.done = time.Now(), true
	return c.err
}
