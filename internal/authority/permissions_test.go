package authority_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/testkit"
)

// useCasesOf lists the methods of *Authority that act for a Caller: those
// whose second parameter (after the context) is a Caller.
func useCasesOf() []reflect.Method {
	callerType := reflect.TypeOf(authority.Caller{})
	at := reflect.TypeOf(&authority.Authority{})
	var out []reflect.Method
	for i := range at.NumMethod() {
		m := at.Method(i)
		if m.Type.NumIn() >= 3 && m.Type.In(2) == callerType {
			out = append(out, m)
		}
	}
	return out
}

// Every use case that acts for a caller is in the permission table (keyed
// by its name), and its first step is the permission check: called with
// zero arguments by an admin key holding nothing it needs, each is refused
// with CodeForbidden before it looks at its input.
func TestEveryUseCaseIsInThePermissionTableAndChecksItFirst(t *testing.T) {
	table := authority.UseCasePermissions()
	a := newAuthority(t, testkit.OpenSQLite(t))
	in, _, err := a.CreateInstance(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	methods := useCasesOf()
	if len(methods) < 60 {
		t.Fatalf("found only %d use cases: the reflection is wrong", len(methods))
	}
	var names []string
	for _, m := range methods {
		names = append(names, m.Name)
		if _, ok := table[m.Name]; !ok {
			t.Errorf("use case %s is not in the permission table", m.Name)
			continue
		}
		need := table[m.Name]
		// Everything except what the use case needs.
		var held []credential.Permission
		for _, p := range credential.AllPermissions() {
			if p != credential.PermAll && !credential.Holds([]credential.Permission{p}, need) {
				held = append(held, p)
			}
		}
		c := authority.Caller{InstanceID: in.ID, Kind: credential.KindAdminKey, CredentialID: "key_x", Permissions: held}
		args := []reflect.Value{reflect.ValueOf(a), reflect.ValueOf(context.Background()), reflect.ValueOf(c)}
		for i := 3; i < m.Type.NumIn(); i++ {
			args = append(args, reflect.Zero(m.Type.In(i)))
		}
		out := m.Func.Call(args)
		err, _ := out[len(out)-1].Interface().(error)
		if credential.CodeOf(err) != credential.CodeForbidden {
			t.Errorf("%s without %q: %v, want CodeForbidden", m.Name, need, err)
		}
	}
	for uc := range table {
		if !slices.Contains(names, uc) {
			t.Errorf("the permission table names %s, which is not a use case", uc)
		}
	}
}
