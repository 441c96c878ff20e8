package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrInaccessible is wrapped by the error Start returns when the server's
// user (postgres, when running as root) cannot reach the data directory,
// typically because a parent directory such as /root is not traversable.
// Callers can fall back to another directory on errors.Is(err, ErrInaccessible).
var ErrInaccessible = errors.New("data directory not reachable by the server's user")

// serverUser is the OS user initdb and postgres run as.
type serverUser struct {
	name string
	cred *syscall.Credential // nil: run as the current user
	home string              // the server user's home, when not the current user
}

// lookupServerUser returns the current user, or the postgres user when
// running as root: initdb and postgres refuse to run as root.
func lookupServerUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return &serverUser{name: "current user"}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, but cannot find the postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of user postgres: %w", err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return &serverUser{name: "postgres", cred: cred, home: u.HomeDir}, nil
}

// chown gives path to the server's user; a no-op when not root.
func (u *serverUser) chown(path string) error {
	if u.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(u.cred.Uid), int(u.cred.Gid)); err != nil {
		return fmt.Errorf("chown %s to user %s: %w", path, u.name, err)
	}
	return nil
}

// mkdir creates dir (mode 0700, owned by the server's user) and any missing
// parents (mode 0755, so that the server's user can traverse them). An
// existing dir is left as it is.
func (u *serverUser) mkdir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return u.chown(dir)
}

// checkReach returns an error wrapping ErrInaccessible when the server's
// user cannot traverse every existing directory on the way to dir. Only
// classic permission bits are considered (no ACLs); it is a check for a
// clear message, the server has the last word.
func (u *serverUser) checkReach(dir string) error {
	if u.cred == nil {
		return nil
	}
	var chain []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(chain) // from / down
	for _, p := range chain {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil // created by mkdir, traversable
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if !u.canSearch(fi.Mode(), st) {
			return fmt.Errorf("%w: user %s cannot enter %s (mode %#o, owner uid %d)", ErrInaccessible, u.name, p, fi.Mode().Perm(), st.Uid)
		}
	}
	return nil
}

func (u *serverUser) canSearch(mode os.FileMode, st *syscall.Stat_t) bool {
	perm := mode.Perm()
	switch {
	case st.Uid == u.cred.Uid:
		return perm&0o100 != 0
	case st.Gid == u.cred.Gid || slices.Contains(u.cred.Groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// sysProcAttr returns the attributes that run a child as the server's user.
func (u *serverUser) sysProcAttr() *syscall.SysProcAttr {
	if u.cred == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: u.cred}
}

// serverEnv is the environment of the server's programs: ours without
// the PG* variables (which would change the server's port or the data
// directory of pg_ctl), and, when the server runs as another user, that
// user's HOME (libpq in the server, as Citus uses it between nodes, looks
// for ~/.postgresql there; root's is not readable to it).
func (u *serverUser) serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || u.home != "" && strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	if u.home != "" {
		env = append(env, "HOME="+u.home)
	}
	return env
}
