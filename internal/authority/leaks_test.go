package authority_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// leakFixture is an instance with a machine, its key and one M2M token,
// subscribed to the leak events.
type leakFixture struct {
	op         authority.Caller // the operator
	admin      authority.Caller // the instance's first admin key (verifies)
	machineID  string
	machineKey string
	m2m        authority.M2MToken
}

func newLeakFixture(t *testing.T, a *authority.Authority, events ...string) leakFixture {
	t.Helper()
	ctx := context.Background()
	in, adminKey, err := a.CreateInstance(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	op := authority.Operator(in.ID)
	admin, err := a.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) > 0 {
		if _, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/leaks", Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	name := "worker"
	m, key, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := a.Authenticate(ctx, key.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	return leakFixture{op: op, admin: admin, machineID: m.ID, machineKey: key.Reveal(), m2m: tok}
}

func auditOf(t *testing.T, a *authority.Authority, c authority.Caller, action string) []credential.AuditEvent {
	t.Helper()
	events, _, err := a.ListAuditEvents(context.Background(), c, authority.ListAuditEventsInput{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A leak report revokes the instance's found credentials, audits each as
// credential.leak with where it was found, and queues <kind>.leaked for
// the webhooks; another instance's secret, an unknown one and a wrong
// checksum are false positives that touch nothing.
func TestReportLeaksRevokesAuditsAndEmits(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		mine := newLeakFixture(t, a, "m2m_token.leaked", "machine_key.leaked")
		theirs := newLeakFixture(t, a, "*")
		theirAudit := len(auditOf(t, a, theirs.op, ""))
		unknown := credential.MustGenerate(credential.KindM2MToken).Reveal()
		bad := mine.m2m.Token[:len(mine.m2m.Token)-1] + "x"
		if bad == mine.m2m.Token {
			bad = mine.m2m.Token[:len(mine.m2m.Token)-1] + "y"
		}
		const where = "https://github.com/octocat/leaky/blob/abc/.env"
		reports := []authority.LeakReport{
			{Token: mine.m2m.Token, Type: "keyward_m2m_token", URL: where, Source: "content"},
			{Token: mine.machineKey, Type: "keyward_machine_or_api_key", URL: where, Source: "commit"},
			{Token: theirs.machineKey, Type: "keyward_machine_or_api_key", URL: where, Source: "content"},
			{Token: theirs.m2m.Token, Type: "keyward_m2m_token", URL: where, Source: "content"},
			{Token: unknown, Type: "keyward_m2m_token", URL: where},
			{Token: bad, Type: "keyward_m2m_token", URL: where},
			{Token: "not a token at all", Type: "keyward_pat"},
		}
		_, deliveriesBefore := outboxSize(t, store)
		verdicts, err := a.ReportLeaks(ctx, mine.op.InstanceID, authority.LeakRevoke, reports)
		if err != nil {
			t.Fatal(err)
		}
		if len(verdicts) != len(reports) {
			t.Fatalf("%d verdicts for %d reports", len(verdicts), len(reports))
		}
		for i, v := range verdicts {
			wantFound := i < 2
			if v.Found != wantFound || v.TokenHash != sha256Hex(reports[i].Token) || v.Type != reports[i].Type {
				t.Errorf("report %d: %+v, want found=%v with the token's SHA-256 and its type", i, v, wantFound)
			}
			if strings.Contains(v.TokenHash, reports[i].Token) {
				t.Errorf("report %d: the verdict repeats the token", i)
			}
		}
		if verdicts[0].Kind != "m2m_token" || verdicts[0].Outcome != "revoked" || verdicts[1].Kind != "machine_key" || verdicts[1].Outcome != "revoked" {
			t.Errorf("verdicts %+v %+v", verdicts[0], verdicts[1])
		}

		// Revoked: the token no longer verifies, the machine key no longer
		// authenticates.
		res, err := a.Verify(ctx, mine.admin, authority.VerifyInput{Token: mine.m2m.Token})
		if err != nil || res.Valid || res.Reason != authority.ReasonRevoked {
			t.Errorf("the leaked token verifies as %+v, %v; want revoked", res, err)
		}
		if _, err := a.Authenticate(ctx, mine.machineKey); !credential.IsCode(err, credential.CodeUnauthenticated) {
			t.Errorf("the leaked machine key still authenticates: %v", err)
		}
		// The other instance is untouched: its key and token still work,
		// and it has no new audit event.
		if _, err := a.Authenticate(ctx, theirs.machineKey); err != nil {
			t.Errorf("another instance's reported key was touched: %v", err)
		}
		if res, err := a.Verify(ctx, theirs.admin, authority.VerifyInput{Token: theirs.m2m.Token}); err != nil || !res.Valid {
			t.Errorf("another instance's reported token: %+v, %v", res, err)
		}
		if n := len(auditOf(t, a, theirs.op, "")); n != theirAudit {
			t.Errorf("the other instance has %d audit events, had %d", n, theirAudit)
		}

		// Audited with the URL, never the secret.
		leaks := auditOf(t, a, mine.op, "credential.leak")
		if len(leaks) != 2 {
			t.Fatalf("%d credential.leak events, want 2", len(leaks))
		}
		for _, e := range leaks {
			var d map[string]string
			if err := json.Unmarshal(e.Detail, &d); err != nil {
				t.Fatal(err)
			}
			if d["url"] != where || d["outcome"] != "revoked" || d["policy"] != "revoke" || e.ActorKind != "secret_scanner" {
				t.Errorf("audit event %s on %s/%s: actor %s, detail %v", e.Action, e.TargetKind, e.TargetID, e.ActorKind, d)
			}
			if strings.Contains(string(e.Detail), mine.m2m.Token) || strings.Contains(string(e.Detail), mine.machineKey) {
				t.Error("an audit event holds the leaked secret")
			}
			if !slices.Contains([]string{mine.m2m.ID, leakTargetID(t, a, mine)}, e.TargetID) {
				t.Errorf("audit event targets %s/%s", e.TargetKind, e.TargetID)
			}
		}

		// One webhook event per leak, queued in the leak's transaction, and
		// delivered as <kind>.leaked with the URL.
		_, deliveriesAfter := outboxSize(t, store)
		if deliveriesAfter-deliveriesBefore != 2 {
			t.Errorf("%d deliveries queued, want 2 (one per found secret, none for the other instance)", deliveriesAfter-deliveriesBefore)
		}
		s := &fakeSender{}
		if _, err := a.DeliverWebhooks(ctx, s); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, got := range s.received() {
			var p struct {
				Type       string            `json:"type"`
				InstanceID string            `json:"instance_id"`
				Target     map[string]string `json:"target"`
				Detail     json.RawMessage   `json:"detail"`
			}
			if err := json.Unmarshal(got.body, &p); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(p.Type, ".leaked") {
				continue // the fixture's own created events
			}
			var detail map[string]string
			if err := json.Unmarshal(p.Detail, &detail); err != nil {
				t.Fatal(err)
			}
			types = append(types, p.Type)
			if p.InstanceID != mine.op.InstanceID || detail["url"] != where {
				t.Errorf("%s delivered %+v", p.Type, p)
			}
			if strings.Contains(string(got.body), mine.m2m.Token) || strings.Contains(string(got.body), mine.machineKey) {
				t.Error("a delivery holds the leaked secret")
			}
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{"m2m_token.leaked", "machine_key.leaked"}) {
			t.Errorf("delivered leak events %v", types)
		}

		// Reported again: still a true positive, nothing left to revoke.
		again, err := a.ReportLeaks(ctx, mine.op.InstanceID, authority.LeakRevoke, reports[:1])
		if err != nil || !again[0].Found || again[0].Outcome != "already_revoked" {
			t.Errorf("a second report: %+v, %v", again, err)
		}
	})
}

// leakTargetID is the id of the fixture's machine key credential, read
// back from its audit trail.
func leakTargetID(t *testing.T, a *authority.Authority, f leakFixture) string {
	t.Helper()
	for _, e := range auditOf(t, a, f.op, "credential.leak") {
		if e.TargetKind == "machine_key" {
			return e.TargetID
		}
	}
	return ""
}

// Under the quarantine policy a found credential stays live; the leak is
// audited and emitted all the same.
func TestReportLeaksQuarantineLeavesTheCredentialLive(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := webhookAuthority(t, store, testkit.NewClock())
		f := newLeakFixture(t, a, "m2m_token.leaked")
		_, before := outboxSize(t, store)
		v, err := a.ReportLeaks(ctx, f.op.InstanceID, authority.LeakQuarantine,
			[]authority.LeakReport{{Token: f.m2m.Token, Type: "keyward_m2m_token", URL: "https://gist.github.com/x"}})
		if err != nil || !v[0].Found || v[0].Outcome != "quarantined" {
			t.Fatalf("%+v, %v", v, err)
		}
		if res, err := a.Verify(ctx, f.admin, authority.VerifyInput{Token: f.m2m.Token}); err != nil || !res.Valid {
			t.Errorf("a quarantined token: %+v, %v; want it still valid", res, err)
		}
		if n := len(auditOf(t, a, f.op, "credential.leak")); n != 1 {
			t.Errorf("%d credential.leak events, want 1", n)
		}
		if _, after := outboxSize(t, store); after-before != 1 {
			t.Errorf("%d deliveries queued, want 1", after-before)
		}
	})
}

// "" names the default instance (the oldest) and the revoke policy; a
// report holds at most MaxLeakReports matches.
func TestReportLeaksDefaultInstanceAndLimit(t *testing.T) {
	ctx := context.Background()
	store := testkit.OpenSQLite(t)
	a := webhookAuthority(t, store, testkit.NewClock())
	f := newLeakFixture(t, a) // the first instance: the default one
	v, err := a.ReportLeaks(ctx, "", "", []authority.LeakReport{{Token: f.m2m.Token}})
	if err != nil || !v[0].Found || v[0].Outcome != "revoked" {
		t.Errorf("the default instance and policy: %+v, %v", v, err)
	}
	tooMany := make([]authority.LeakReport, authority.MaxLeakReports+1)
	if _, err := a.ReportLeaks(ctx, "", "", tooMany); !credential.IsCode(err, credential.CodeTooMany) {
		t.Errorf("%d reports: %v, want CodeTooMany", len(tooMany), err)
	}
}

// An API key (ak_, like a machine key, told apart by its checksum domain)
// and an actor ticket (its own table) are found and revoked too.
func TestReportLeaksFindsAPIKeysAndActorTickets(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := webhookAuthority(t, store, testkit.NewClock())
		f := newLeakFixture(t, a, "api_key.leaked", "actor_token.leaked")
		name, subject := "ci key", "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
		k, err := a.CreateAPIKey(ctx, f.admin, authority.CreateAPIKeyInput{Name: &name, Subject: &subject})
		if err != nil {
			t.Fatal(err)
		}
		user := "user_alice"
		ticket, err := a.CreateActorToken(ctx, f.admin, authority.CreateActorTokenInput{UserID: &user, Actor: json.RawMessage(`{"sub":"user_admin"}`)}, "")
		if err != nil {
			t.Fatal(err)
		}
		_, before := outboxSize(t, store)
		v, err := a.ReportLeaks(ctx, f.op.InstanceID, authority.LeakRevoke, []authority.LeakReport{
			{Token: k.Secret, Type: "keyward_machine_or_api_key", URL: "https://github.com/o/r/issues/1", Source: "issue_comment"},
			{Token: ticket.Token, Type: "keyward_actor_ticket", URL: "https://gist.github.com/o/1", Source: "gist_content"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !v[0].Found || v[0].Kind != "api_key" || v[0].Outcome != "revoked" || !v[1].Found || v[1].Kind != "actor_token" || v[1].Outcome != "revoked" {
			t.Fatalf("verdicts %+v", v)
		}
		if res, err := a.Verify(ctx, f.admin, authority.VerifyInput{Token: k.Secret}); err != nil || res.Valid {
			t.Errorf("the leaked API key: %+v, %v; want invalid", res, err)
		}
		got, err := a.GetActorToken(ctx, f.admin, ticket.ID)
		if err != nil || got.Status != credential.ActorRevoked {
			t.Errorf("the leaked ticket: %+v, %v; want revoked", got, err)
		}
		if _, after := outboxSize(t, store); after-before != 2 {
			t.Errorf("%d deliveries queued, want 2", after-before)
		}
	})
}
