package pgtest

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestSchemasAreSeparate runs two tests side by side that create a table
// of the same name in their own schemas.
func TestSchemasAreSeparate(t *testing.T) {
	var (
		mu    sync.Mutex
		names = map[string]string{}
	)
	// The parallel subtests are done when the group returns.
	t.Run("group", func(t *testing.T) {
		for _, test := range []string{"first", "second"} {
			t.Run(test, func(t *testing.T) {
				t.Parallel()
				pool, schema := Schema(t)
				mu.Lock()
				names[test] = schema
				mu.Unlock()
				ctx := t.Context()
				if _, err := pool.Exec(ctx, "create table cpu (host text, usage_idle double precision)"); err != nil {
					t.Fatal(err)
				}
				if _, err := pool.Exec(ctx, "insert into cpu values ($1, 95.9)", test); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := pool.QueryRow(ctx, "select string_agg(host, ',') from "+schema+".cpu").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != test {
					t.Errorf("hosts in %s.cpu: got %q, want %q", schema, got, test)
				}
			})
		}
	})
	if names["first"] == "" || names["first"] == names["second"] {
		t.Errorf("schemas: got %q and %q, want two different names", names["first"], names["second"])
	}
	for test, schema := range names {
		if !strings.HasPrefix(schema, "testschemasareseparate_group_"+test+"_") {
			t.Errorf("schema of %s: got %q, want it named after the test", test, schema)
		}
	}

	// The cleanups of the subtests dropped both schemas.
	pool, _ := Schema(t)
	var left int
	err := pool.QueryRow(t.Context(),
		"select count(*) from pg_namespace where nspname = any($1)",
		[]string{names["first"], names["second"]}).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("got %d schemas left after cleanup, want 0", left)
	}
}

func TestSchemaName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]*_[0-9a-f]{8}$`)
	tests := []struct {
		name     string
		testName string
		prefix   string
	}{
		{name: "plain", testName: "TestWrite", prefix: "testwrite_"},
		{name: "subtest", testName: "TestWrite/Float Field#01", prefix: "testwrite_float_field_01_"},
		{name: "leading digit", testName: "1/x", prefix: "t_1_x_"},
		{name: "symbols only", testName: "/-/", prefix: "t__"},
		{name: "long", testName: "Test" + strings.Repeat("Abc", 40), prefix: "testabc"},
		{name: "unicode", testName: "TestÜber", prefix: "test_ber_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schemaName(tt.testName)
			if len(got) > 63 || !valid.MatchString(got) || !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("schemaName(%q) = %q, want a valid name of at most 63 bytes starting with %q", tt.testName, got, tt.prefix)
			}
		})
	}
	if a, b := schemaName("TestX"), schemaName("TestX"); a == b {
		t.Errorf("two schemas for TestX are both named %q", a)
	}
}

func TestCluster(t *testing.T) {
	c := Cluster(t)
	if !c.Running() {
		t.Fatal("shared cluster not running")
	}
	pool, _ := Schema(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, "create table kept (v int); insert into kept values (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The pool's connections died with the server; it replaces them.
	var v int
	err := pool.QueryRow(ctx, "select v from kept").Scan(&v)
	if err != nil {
		err = pool.QueryRow(ctx, "select v from kept").Scan(&v)
	}
	if err != nil || v != 1 {
		t.Errorf("after Restart: got %d, %v, want 1", v, err)
	}
}
