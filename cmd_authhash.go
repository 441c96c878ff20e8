package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/cli"
)

func init() {
	commands["auth-hash"] = command{
		summary: "print the SECRET field of an --auth-file line for a token, or for a 1.x user's password, read from standard input",
		run:     runAuthHash,
	}
}

// runAuthHash is "pginflux auth-hash [--user NAME]": it reads a secret
// from the first line of standard input, so that it is never in the
// command line (nor the shell's history, nor ps), and prints what
// --auth-file keeps of it: token:sha256:..., or user:NAME:<bcrypt>.
func runAuthHash(_ context.Context, args []string, _ func(string) string, stdin io.Reader, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("pginflux auth-hash", flag.ContinueOnError)
	user := fs.String("user", "", "hash a password of this InfluxDB 1.x `user` (bcrypt) instead of a token (SHA-256)")
	rest, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: pginflux auth-hash [--user NAME] < secret\n\n"+
			"Reads a token (or, with --user, a password) from the first line of standard\n"+
			"input and prints the SECRET field of an --auth-file line for it:\n"+
			"  printf '%%s' \"$TOKEN\" | pginflux auth-hash\n"+
			"  token:sha256:...\n\nFlags:\n")
		cli.PrintFlags(stdout, fs, nil)
		return nil
	}
	if err != nil {
		return usageError{Err: fmt.Errorf("auth-hash: %w", err)}
	}
	if len(rest) > 0 {
		return usageError{Err: fmt.Errorf("auth-hash: unexpected argument %q: the secret is read from standard input, never from the command line", rest[0])}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("auth-hash: read the secret: %w", err)
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return errors.New("auth-hash: no secret on standard input")
	}
	if *user == "" {
		fmt.Fprintln(stdout, auth.HashToken(secret))
		return nil
	}
	h, err := auth.HashPassword(*user, secret)
	if err != nil {
		return fmt.Errorf("auth-hash: %w", err)
	}
	fmt.Fprintln(stdout, h)
	return nil
}
