package config

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/sink"
)

// Sink returns the sink's part of the configuration: the daemon's and
// the import's.
func (c Config) Sink() sink.Config {
	return sink.Config{
		Schema:         c.Schema,
		Storage:        string(c.Storage),
		WriteMode:      c.WriteMode,
		TimeNanos:      c.TimeNanos,
		BatchSize:      c.BatchSize,
		FlushInterval:  c.FlushInterval,
		Writers:        c.Writers,
		UintType:       c.UintType,
		MaxColumns:     c.MaxColumns,
		RejectedTable:  c.RejectedTable,
		MaxPendingRows: c.MaxPendingRows,
		CreateTableSQL: c.CreateTableSQL,
		PartitionBy:    c.PartitionBy,
		Retention:      c.Retention,
	}
}

// Pool returns the configuration of a connection pool to the database,
// for the writers and a couple of connections for DDL, whose connections
// call themselves appName unless the connection string names them.
func (c Config) Pool(appName string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		// Checked by Parse already; never print the string itself.
		return nil, fmt.Errorf("--database-url: not a valid connection string: %s", ConnStringProblem(c.DatabaseURL, err))
	}
	pc.MaxConns = int32(c.Writers + 2)
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = appName
	}
	return pc, nil
}

// Logger returns the log of the configured format, writing to w at level,
// which it sets to the configured level (a reload may change it later).
// Durations are written as Go writes them ("1.5s") in both formats, not
// as JSON's nanoseconds.
func (c Config) Logger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	level.Set(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationAsString}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func durationAsString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
