package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseQueries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []query
		wantErr bool
	}{
		{
			name: "comments and blank lines",
			in:   "# a comment\n\nSHOW DATABASES\n  SHOW MEASUREMENTS  \n",
			want: []query{{Line: 3, DB: "telegraf", Text: "SHOW DATABASES"}, {Line: 4, DB: "telegraf", Text: "SHOW MEASUREMENTS"}},
		},
		{
			name: "db prefix",
			in:   "db=other SELECT 1; SELECT 2\n",
			want: []query{{Line: 1, DB: "other", Text: "SELECT 1; SELECT 2"}},
		},
		{
			name: "epoch",
			in:   "epoch=ms SHOW DATABASES\nepoch=rfc3339 db=other SELECT 1\nepoch=ns SELECT 2\n",
			want: []query{
				{Line: 1, DB: "telegraf", Epoch: "ms", Text: "SHOW DATABASES"},
				{Line: 2, DB: "other", Epoch: "rfc3339", Text: "SELECT 1"},
				{Line: 3, DB: "telegraf", Text: "SELECT 2"},
			},
		},
		{
			name: "not an option",
			in:   "SHOW TAG VALUES WITH KEY = \"db\"\n",
			want: []query{{Line: 1, DB: "telegraf", Text: `SHOW TAG VALUES WITH KEY = "db"`}},
		},
		{name: "db without a query", in: "db=other\n", wantErr: true},
		{name: "a bad epoch", in: "epoch=us SHOW DATABASES\n", wantErr: true},
		{name: "db twice", in: "db=a db=b SHOW DATABASES\n", wantErr: true},
		{name: "db without a name", in: "db= SHOW DATABASES\n", wantErr: true},
		{name: "no queries", in: "# nothing\n", wantErr: true},
		{name: "too many", in: strings.Repeat("SHOW DATABASES\n", maxQueries+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseQueries(strings.NewReader(tt.in), "telegraf")
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCorpusQueries(t *testing.T) {
	t.Parallel()
	for _, c := range corpora(t) {
		for _, q := range corpusQueries(t, c) {
			if strings.Contains(strings.ToLower(q.Text), "now()") {
				t.Errorf("%s/queries.txt line %d: got now(), want absolute times: answers must not depend on when they were recorded", c.Name, q.Line)
			}
		}
	}
}
