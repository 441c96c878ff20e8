package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/internal/sender"
)

func init() {
	commands["send"] = command{
		summary: "send lines of line protocol (arguments or standard input) to a UDP address",
		run:     runSend,
	}
}

// runSend is "pginflux send [flags] [LINE...]", the seed's send_packet:
// it sends its arguments, one line each, or else the lines of stdin, in
// datagrams of at most --max-datagram bytes, never splitting a line.
func runSend(ctx context.Context, args []string, _ func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pginflux send", flag.ContinueOnError)
	address := fs.String("address", "127.0.0.1:8089", "UDP `address` to send to: host:port, host:service, [::1]:port")
	maxDatagram := fs.Int("max-datagram", sender.DefaultMaxDatagram,
		fmt.Sprintf("largest datagram in `bytes`; lines are never split: a longer line goes alone (up to %d bytes with its newline)", sender.MaxPayload))
	quiet := fs.Bool("quiet", false, "print no summary")
	lines, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Fprint(stdout, "Usage: pginflux send [flags] [LINE...]\n\n"+
			"Sends lines of line protocol to pginflux (or anything that takes line protocol\n"+
			"over UDP): each argument is a line; with no arguments, standard input is read.\n"+
			"Blank lines are skipped. A summary goes to standard error. Flags may come after\n"+
			"the lines; after --, everything is a line.\n\n"+
			"  pginflux send 'cpu,host=a usage_idle=95.9' 'mem,host=a used=123i'\n"+
			"  some-program | pginflux send --address db.example.com:8089\n\nFlags:\n")
		cli.PrintFlags(stdout, fs, nil)
		return nil
	}
	if err != nil {
		return commandUsageError("send", err)
	}
	if *maxDatagram < 1 || *maxDatagram > sender.MaxPayload {
		return commandUsageError("send", fmt.Errorf("--max-datagram: %d is outside 1..%d", *maxDatagram, sender.MaxPayload))
	}
	addr, err := config.ResolveAddress("udp", *address)
	if err != nil {
		return commandUsageError("send", fmt.Errorf("--address: %w", err))
	}
	if addr == "" {
		return commandUsageError("send", errors.New("--address: must not be empty"))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	defer conn.Close()

	in := stdin
	if len(lines) > 0 {
		in = strings.NewReader(strings.Join(lines, "\n"))
	}
	s := sender.New(conn, *maxDatagram)
	// Reading a terminal blocks until a line comes; Ctrl-C ends ctx and
	// must end the command without waiting for it.
	done := make(chan error, 1)
	go func() { done <- s.AddFrom(in) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("send: interrupted: %w", context.Cause(ctx))
	}
	if !*quiet {
		st := s.Stats()
		fmt.Fprintf(stderr, "pginflux send: %s in %s (%s) to %s\n",
			plural.Count(st.Lines, "line"), plural.Count(st.Datagrams, "datagram"), plural.Count(st.Bytes, "byte"), conn.RemoteAddr())
		if st.TooLong > 0 {
			fmt.Fprintf(stderr, "pginflux send: %s not sent: too long for a UDP datagram\n", plural.Count(st.TooLong, "line"))
		}
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}
