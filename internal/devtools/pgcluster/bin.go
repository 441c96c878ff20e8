package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// debianRoot is where Debian and Ubuntu install one directory of server
// binaries per major version; they are not on PATH there.
const debianRoot = "/usr/lib/postgresql"

// FindBin returns the path of the PostgreSQL program name (initdb, pg_ctl,
// postgres, ...). It looks on PATH first, then in
// /usr/lib/postgresql/<version>/bin of the highest installed version. The
// error says how to install the server when the program is nowhere.
func FindBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range debianBinDirs() {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not on PATH nor in %s/<version>/bin; install the PostgreSQL server (apt-get install postgresql)", name, debianRoot)
}

// findBinFor is FindBin, but prefers the binaries of the major version that
// created an existing data directory: a newer server cannot open it.
func findBinFor(name, dataDir string) (string, error) {
	if v, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		p := filepath.Join(debianRoot, strings.TrimSpace(string(v)), "bin", name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return FindBin(name)
}

// debianBinDirs lists /usr/lib/postgresql/<version>/bin, highest version
// first.
func debianBinDirs() []string {
	entries, err := os.ReadDir(debianRoot)
	if err != nil {
		return nil
	}
	var versions []string
	for _, e := range entries {
		if _, ok := parseVersion(e.Name()); ok {
			versions = append(versions, e.Name())
		}
	}
	slices.SortFunc(versions, func(a, b string) int {
		va, _ := parseVersion(a)
		vb, _ := parseVersion(b)
		return -slices.Compare(va, vb)
	})
	dirs := make([]string, len(versions))
	for i, v := range versions {
		dirs[i] = filepath.Join(debianRoot, v, "bin")
	}
	return dirs
}

// parseVersion parses "15" or "9.6" into its numeric parts.
func parseVersion(s string) ([]int, bool) {
	var parts []int
	for f := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		parts = append(parts, n)
	}
	return parts, true
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
