package main

import (
	"encoding/json"
	"testing"

	"github.com/keyward/keyward/client"
)

// TestClientFilterKeepsFreezersSearchRules pins the search the CLI now
// applies itself over the native listing.
func TestClientFilterKeepsFreezersSearchRules(t *testing.T) {
	clients := []client.BackupClient{
		{ClientID: "proj_backup01", UserID: "u1", Client: json.RawMessage(`{"client_id":"proj_backup01","hostname":"Backup01.example.org","tags":["nightly","db"],"meta":{"env":"prod","n":3}}`)},
		{ClientID: "proj_web01", UserID: "u1", Client: json.RawMessage(`{"client_id":"proj_web01","hostname":"web01.example.org","meta":{"env":"test"}}`)},
	}
	for _, tc := range []struct {
		name            string
		match, matchNot []string
		search          string
		want            []string
	}{
		{name: "no search keeps every client", want: []string{"proj_backup01", "proj_web01"}},
		{name: "search is a case-insensitive substring of any text", search: "BACKUP", want: []string{"proj_backup01"}},
		{name: "match finds a nested key", match: []string{"env=test"}, want: []string{"proj_web01"}},
		{name: "match finds an item of a list", match: []string{"tags=db"}, want: []string{"proj_backup01"}},
		{name: "match with := compares JSON", match: []string{"n:=3"}, want: []string{"proj_backup01"}},
		{name: "match with = compares a string", match: []string{"n=3"}, want: nil},
		{name: "match-not drops a match", matchNot: []string{"hostname=web01.example.org"}, want: []string{"proj_backup01"}},
		{name: "match on user_id sees the entry", match: []string{"user_id=u1"}, matchNot: []string{"env=prod"}, want: []string{"proj_web01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clientListFlags{match: tc.match, matchNot: tc.matchNot, search: tc.search, limit: clientPageDefault}
			search, err := f.filter()
			if err != nil {
				t.Fatal(err)
			}
			kept, err := search.apply(clients)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, bc := range kept {
				got = append(got, bc.ClientID)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClientListFlagsRefuseBadPagesAndPairs(t *testing.T) {
	for _, f := range []clientListFlags{
		{limit: 0},
		{limit: clientPageMax + 1},
		{limit: 10, offset: -1},
		{limit: 10, match: []string{"novalue"}},
		{limit: 10, match: []string{"=x"}},
		{limit: 10, matchNot: []string{"k:={bad"}},
	} {
		if _, err := f.filter(); exitCode(err) != exitUsage {
			t.Errorf("%+v: %v (exit %d), want a usage error", f, err, exitCode(err))
		}
	}
}

func TestPageOfStaysWithinBounds(t *testing.T) {
	items := []int{0, 1, 2, 3, 4}
	for _, tc := range []struct {
		offset, limit int64
		want          int
	}{{0, 10, 5}, {0, 2, 2}, {3, 10, 2}, {5, 10, 0}, {9, 1, 0}} {
		if got := pageOf(items, tc.offset, tc.limit); len(got) != tc.want {
			t.Errorf("offset %d limit %d: %v, want %d items", tc.offset, tc.limit, got, tc.want)
		}
	}
}
