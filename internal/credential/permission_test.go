package credential

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestPermissionSpelling(t *testing.T) {
	if got := Machines.Read(); got != "machines:read" {
		t.Errorf("Machines.Read() = %q", got)
	}
	if got := AdminKeys.Write(); got != "admin_keys:write" {
		t.Errorf("AdminKeys.Write() = %q", got)
	}
	want := []Permission{"*", "verify", "machines:read", "machines:write", "m2m_tokens:read", "m2m_tokens:write",
		"api_keys:read", "api_keys:write",
		"actor_tokens:read", "actor_tokens:write", "organizations:read", "organizations:write",
		"workspaces:read", "workspaces:write", "pats:read", "pats:write", "clients:read", "clients:write",
		"scopes:read", "scopes:write", "instance:read", "instance:write", "audit:read", "audit:write",
		"admin_keys:read", "admin_keys:write", "analytics:read", "analytics:write",
		"webhooks:read", "webhooks:write", "credentials:read", "credentials:write"}
	if got := AllPermissions(); !slices.Equal(got, want) {
		t.Errorf("AllPermissions() = %v\nwant %v", got, want)
	}
}

func TestHolds(t *testing.T) {
	cases := []struct {
		name string
		held []Permission
		need Permission
		want bool
	}{
		{"all holds a write", []Permission{PermAll}, Machines.Write(), true},
		{"all holds verify", []Permission{PermAll}, PermVerify, true},
		{"write holds its read", []Permission{Machines.Write()}, Machines.Read(), true},
		{"read does not hold its write", []Permission{Machines.Read()}, Machines.Write(), false},
		{"write does not hold another family", []Permission{Machines.Write()}, M2MTokens.Read(), false},
		{"verify holds only verify", []Permission{PermVerify}, Machines.Read(), false},
		{"a write does not hold verify", []Permission{Machines.Write()}, PermVerify, false},
		{"nothing holds nothing", nil, Machines.Read(), false},
		{"nobody holds the empty need", []Permission{PermAll}, "", false},
		{"only all holds all", []Permission{PermVerify, Machines.Write()}, PermAll, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Holds(tc.held, tc.need); got != tc.want {
				t.Errorf("Holds(%v, %q) = %v, want %v", tc.held, tc.need, got, tc.want)
			}
		})
	}
}

func TestParsePermissions(t *testing.T) {
	got, err := ParsePermissions("permissions", []string{"machines:write", "verify", "verify"})
	if err != nil || !slices.Equal(got, []Permission{PermVerify, Machines.Write()}) {
		t.Errorf("ParsePermissions = %v, %v; want [verify machines:write] in vocabulary order, once each", got, err)
	}
	for _, bad := range [][]string{{"machines:admin"}, {"MACHINES:READ"}, {""}, {"verify", "root"}} {
		_, err := ParsePermissions("permissions", bad)
		if e := AsError(err); err == nil || e.Code != CodeInvalid || e.Param != "permissions" {
			t.Errorf("ParsePermissions(%q) = %v, want CodeInvalid naming permissions", bad, err)
		}
	}
	if _, err := ParsePermissions("permissions", nil); AsError(err).Code != CodeMissing {
		t.Errorf("ParsePermissions(nil) = %v, want CodeMissing", err)
	}
}

// What a set of permissions allows, spelled out per need, is the oracle:
// Covers(a, b) must be true exactly when every operation b allows, a
// allows too.
func TestCoversMatchesWhatEachAllows(t *testing.T) {
	all := AllPermissions()
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "a")
		b := rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "b")
		want := true
		for _, need := range all {
			if Holds(b, need) && !Holds(a, need) {
				want = false
			}
		}
		if got := Covers(a, b); got != want {
			t.Fatalf("Covers(%v, %v) = %v, the operations say %v", a, b, got, want)
		}
	})
}
