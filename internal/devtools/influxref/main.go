// Command influxref records InfluxDB 1.8's answers to InfluxQL queries as
// golden files: the reference that pginflux's /query is compared with.
// It is run by hand against an InfluxDB 1.8.10 on this machine; the
// files it writes are committed, and the tests compare with them without
// InfluxDB.
//
// Build InfluxDB 1.8.10 from its tag, outside this tree:
//
//	git clone --branch v1.8.10 --depth 1 https://github.com/influxdata/influxdb /tmp/influxdb-1.8.10
//	cd /tmp/influxdb-1.8.10 && go build -o /tmp/bin/influxd-1.8.10 ./cmd/influxd
//
// (It builds with Go 1.26 as it is.) Start it with its directories in a
// temporary directory, on loopback, with nothing of its own recorded:
//
//	T=$(mktemp -d)
//	cat > $T/influxd.conf <<END
//	reporting-disabled = true
//	bind-address = "127.0.0.1:18088"
//	[meta]
//	  dir = "$T/meta"
//	[data]
//	  dir = "$T/data"
//	  wal-dir = "$T/wal"
//	[http]
//	  bind-address = "127.0.0.1:18086"
//	[monitor]
//	  store-enabled = false
//	END
//	/tmp/bin/influxd-1.8.10 run -config $T/influxd.conf &
//	curl -i 127.0.0.1:18086/ping   # 204
//
// A corpus is a directory of testdata/influxql (its README.md describes
// each): data.lp, queries.txt, and the answers/ influxref records. Record
// each corpus into an InfluxDB of its own, started empty as above (SHOW
// DATABASES answers every database there is); from the root of the tree,
// for corpus fleet:
//
//	go run ./internal/devtools/influxref -data testdata/influxql/fleet/data.lp \
//	    -queries testdata/influxql/fleet/queries.txt -out testdata/influxql/fleet/answers
//
// influxref creates the database -db, which must not exist yet (-reuse to
// write into it anyway), writes -data into it (POST /write, precision ns,
// in chunks), then sends each query of -queries (GET /query, epoch=ns
// unless the query says otherwise) and writes InfluxDB's answer to
// -out/NNN.json, NNN the query's number (from 001), as
//
//	{"query": "...", "db": "...", "status": 200, "answer": {"results": [...]}}
//
// indented, object keys sorted, numbers as InfluxDB wrote them, with
// "epoch" after "db" when the query was not sent with epoch=ns. Files of
// that name form already in -out are removed first.
//
// The database: -db, or else the one the data file names in a comment
// line "# CONTEXT-DATABASE: NAME" before its first line of data (as
// influx_inspect export writes it), or else telegraf.
//
// A line of -queries is one query (several statements separated by ';'
// are one query); '#' starts a comment line. A line may start with
// options, each followed by a space: "db=NAME" sends its query to
// database NAME instead of -db's; "epoch=E" sends epoch=E (h, m, s, ms,
// u, µ or ns) instead of epoch=ns, and "epoch=rfc3339" sends no epoch,
// for times as RFC3339 strings.
//
// Data sets of fleet and docs are made by influxref itself,
// deterministically:
//
//	go run ./internal/devtools/influxref -make-data testdata/influxql/fleet/data.lp
//	go run ./internal/devtools/influxref -dataset docs -make-data testdata/influxql/docs/data.lp
//
// and a test checks that the committed files are what it makes.
//
// Every target must be a loopback address; every request has a timeout
// and every answer a size limit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pginflux/pginflux/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.ExitStatus("influxref", err, os.Stderr))
}

// usageError is a bad command line.
type usageError = cli.UsageError

// options are influxref's flags.
type options struct {
	influxd  string
	db       string
	data     string
	queries  string
	out      string
	makeData string
	dataset  string
	reuse    bool
	timeout  time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("influxref", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.influxd, "influxd", "http://127.0.0.1:18086", "InfluxDB 1.8's base `URL` (loopback only)")
	fs.StringVar(&o.db, "db", "", "the database the data is written to and queries go to by default (default: the data's, or telegraf)")
	fs.StringVar(&o.data, "data", "", "line protocol `file` to write first")
	fs.StringVar(&o.queries, "queries", "", "`file` of queries, one a line")
	fs.StringVar(&o.out, "out", "", "`directory` for the answers (NNN.json)")
	fs.StringVar(&o.makeData, "make-data", "", "write data set -dataset to `file` and exit")
	fs.StringVar(&o.dataset, "dataset", "fleet", "the data set -make-data writes: fleet or docs")
	fs.BoolVar(&o.reuse, "reuse", false, "write into -db even if it exists")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request")
	if err := fs.Parse(args); err != nil {
		return o, usageError{Err: err}
	}
	if fs.NArg() > 0 {
		return o, usageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if o.makeData != "" {
		if datasets[o.dataset] == nil {
			return o, usageError{Err: fmt.Errorf("-dataset %q: want fleet or docs", o.dataset)}
		}
		return o, nil
	}
	var errs []error
	if o.queries == "" {
		errs = append(errs, errors.New("-queries is required"))
	}
	if o.out == "" {
		errs = append(errs, errors.New("-out is required"))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want > 0", o.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return o, usageError{Err: err}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.makeData != "" {
		return writeDatasetFile(o.makeData, datasets[o.dataset])
	}
	if o.db, err = database(o); err != nil {
		return err
	}
	qs, err := readQueriesFile(o.queries, o.db)
	if err != nil {
		return err
	}
	c, err := newClient(ctx, o.influxd, o.timeout)
	if err != nil {
		return err
	}
	if err := c.ping(ctx); err != nil {
		return err
	}
	exists, err := c.databaseExists(ctx, o.db)
	if err != nil {
		return err
	}
	if exists && !o.reuse {
		return fmt.Errorf("database %q exists already: start from an empty InfluxDB, or pass -reuse", o.db)
	}
	if err := c.createDatabase(ctx, o.db); err != nil {
		return err
	}
	if o.data != "" {
		n, err := c.writeFile(ctx, o.db, o.data)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d lines into %s\n", n, o.db)
	}
	if err := record(ctx, c, qs, o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recorded %d answers in %s\n", len(qs), o.out)
	return nil
}

// database is the database of the data and of the queries that name
// none: -db, the data file's, or telegraf.
func database(o options) (string, error) {
	db := ""
	if o.data != "" {
		var err error
		if db, err = dataDatabase(o.data); err != nil {
			return "", err
		}
	}
	switch {
	case o.db != "" && db != "" && o.db != db:
		return "", usageError{Err: fmt.Errorf("-db %s, but %s names database %s", o.db, o.data, db)}
	case o.db != "":
		return o.db, nil
	case db != "":
		return db, nil
	}
	return "telegraf", nil
}
