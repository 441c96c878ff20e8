package importer

import (
	"fmt"
	"strings"
	"testing"
)

func TestExportSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		chunks     []string // fed in order to one exportState
		byDatabase bool
		want       []string // parts as "database@offset:data"
		ddl        int64
	}{
		{
			name:   "plain line protocol is one part",
			chunks: []string{"cpu v=1 1\n# a comment\nmem v=2 2\n"},
			want:   []string{"@0:cpu v=1 1\n# a comment\nmem v=2 2\n"},
		},
		{
			name: "an export: the DDL is skipped, the context noted",
			chunks: []string{"# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z\n# DDL\nCREATE DATABASE telegraf WITH NAME autogen\n" +
				"CREATE RETENTION POLICY weekly ON telegraf DURATION 0s REPLICATION 1\n# DML\n# CONTEXT-DATABASE:telegraf\n# CONTEXT-RETENTION-POLICY:autogen\ncpu v=1 1\n"},
			want: []string{"telegraf@5:# CONTEXT-DATABASE:telegraf\n# CONTEXT-RETENTION-POLICY:autogen\ncpu v=1 1\n"},
			ddl:  2,
		},
		{
			name: "by database: cut at each change",
			chunks: []string{"# DDL\nCREATE DATABASE a WITH NAME autogen\n# DML\n# CONTEXT-DATABASE: a\n# CONTEXT-RETENTION-POLICY: autogen\ncpu v=1 1\n" +
				"# CONTEXT-DATABASE: b\ncpu v=2 2\n# CONTEXT-DATABASE: b\n# CONTEXT-RETENTION-POLICY: rp2\ncpu v=3 3\n# CONTEXT-DATABASE:a\ncpu v=4 4"},
			byDatabase: true,
			want: []string{
				"a@3:# CONTEXT-DATABASE: a\n# CONTEXT-RETENTION-POLICY: autogen\ncpu v=1 1\n",
				"b@6:# CONTEXT-DATABASE: b\ncpu v=2 2\n# CONTEXT-DATABASE: b\n# CONTEXT-RETENTION-POLICY: rp2\ncpu v=3 3\n",
				"a@11:# CONTEXT-DATABASE:a\ncpu v=4 4",
			},
			ddl: 1,
		},
		{
			name:       "a DDL section across chunks",
			chunks:     []string{"x v=0 0\n# DDL\nCREATE DATABASE a\n", "CREATE DATABASE b\nCREATE DATABASE c\n", "CREATE DATABASE d\n# DML\n# CONTEXT-DATABASE:a\nx v=1 1\n"},
			byDatabase: true,
			want:       []string{"@0:x v=0 0\n", "a@2:# CONTEXT-DATABASE:a\nx v=1 1\n"},
			ddl:        4,
		},
		{
			name:       "the database stays across chunks",
			chunks:     []string{"# CONTEXT-DATABASE:a\nx v=1 1\n", "x v=2 2\n"},
			byDatabase: true,
			want:       []string{"a@0:# CONTEXT-DATABASE:a\nx v=1 1\n", "a@0:x v=2 2\n"},
		},
		{
			name:       "CRLF and a lone DDL marker mid-line are not directives",
			chunks:     []string{"# CONTEXT-DATABASE:a\r\nx s=\"# DDL\" 1\r\n"},
			byDatabase: true,
			want:       []string{"a@0:# CONTEXT-DATABASE:a\r\nx s=\"# DDL\" 1\r\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st exportState
			var got []string
			var parts []part
			for _, c := range tt.chunks {
				parts = st.split([]byte(c), tt.byDatabase, parts)
				for _, p := range parts {
					got = append(got, fmt.Sprintf("%s@%d:%s", p.database, p.offset, p.data))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if st.skipped != tt.ddl {
				t.Errorf("got %d DDL lines skipped, want %d", st.skipped, tt.ddl)
			}
		})
	}
}
