package authority

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyward/keyward/internal/credential"
)

// useCase names one operation of the authority, for the permission table.
type useCase string

// rule is what a use case requires of its caller: the permission an admin
// key must hold, and the other kinds of caller that may enter (the use
// case then applies their own rules: a machine acts on its own tokens, a
// PAT as its user and within its scopes, an org token within its
// privileges).
type rule struct {
	perm  credential.Permission // "" when no admin key may perform it
	kinds []credential.Kind
}

var (
	machineKey = []credential.Kind{credential.KindMachineKey}
	pat        = []credential.Kind{credential.KindPAT}
	orgToken   = []credential.Kind{credential.KindOrgToken}
)

// useCases is the one table of who may perform what. Every use case that
// acts for a caller starts with enter(ctx, c, itsName); a use case missing
// here panics on its first call (and in the tests).
var useCases = map[useCase]rule{
	// Clerk machines. Reading a secret key is a write: whoever holds it
	// can act as the machine.
	"CreateMachine":          {perm: credential.Machines.Write()},
	"GetMachine":             {perm: credential.Machines.Read()},
	"ListMachines":           {perm: credential.Machines.Read()},
	"UpdateMachine":          {perm: credential.Machines.Write()},
	"DeleteMachine":          {perm: credential.Machines.Write()},
	"MachineSecretKey":       {perm: credential.Machines.Write()},
	"RotateMachineSecretKey": {perm: credential.Machines.Write()},
	"CreateMachineScope":     {perm: credential.Machines.Write()},
	"DeleteMachineScope":     {perm: credential.Machines.Write()},

	// M2M tokens: minted by machines only; listed and revoked by their
	// machine or an admin key.
	"CreateM2MToken": {kinds: machineKey},
	"SeedM2MTokens":  {kinds: machineKey}, // the bulk path of keyward-bench
	"ListM2MTokens":  {perm: credential.M2MTokens.Read(), kinds: machineKey},
	"RevokeM2MToken": {perm: credential.M2MTokens.Write(), kinds: machineKey},
	// RFC 7009 revocation at /oauth/revoke: the same right as revoking by id.
	"RevokeM2MTokenBySecret": {perm: credential.M2MTokens.Write(), kinds: machineKey},

	// Clerk API keys. Reading a secret is a write, as for machines.
	"CreateAPIKey": {perm: credential.APIKeys.Write()},
	"ListAPIKeys":  {perm: credential.APIKeys.Read()},
	"GetAPIKey":    {perm: credential.APIKeys.Read()},
	"UpdateAPIKey": {perm: credential.APIKeys.Write()},
	"DeleteAPIKey": {perm: credential.APIKeys.Write()},
	"RevokeAPIKey": {perm: credential.APIKeys.Write()},
	"APIKeySecret": {perm: credential.APIKeys.Write()},

	"CreateActorToken":           {perm: credential.ActorTokens.Write()},
	"GetActorToken":              {perm: credential.ActorTokens.Read()},
	"ListActorTokens":            {perm: credential.ActorTokens.Read()},
	"RevokeActorToken":           {perm: credential.ActorTokens.Write()},
	"RevokeImpersonationSession": {perm: credential.ActorTokens.Write()},

	"Instance":                    {perm: credential.InstanceSetup.Read()},
	"SetOrgTokenHourlyLimit":      {perm: credential.InstanceSetup.Write()},
	"SetImpersonationRedirectURL": {perm: credential.InstanceSetup.Write()},
	"RotateSigningKey":            {perm: credential.InstanceSetup.Write()},
	"SigningKeys":                 {perm: credential.InstanceSetup.Read()},

	"ListAuditEvents": {perm: credential.Audit.Read()},

	"Verifications": {perm: credential.Analytics.Read()},

	// Controls at verify time (controls.go), for every kind of
	// credential alike: its controls, its credits, and the roles they name.
	"SetCredentialControls": {perm: credential.Credentials.Write()},
	"GetCredentialControls": {perm: credential.Credentials.Read()},
	"ChangeCredits":         {perm: credential.Credentials.Write()},
	"CreateRole":            {perm: credential.Credentials.Write()},
	"ListRoles":             {perm: credential.Credentials.Read()},
	"GetRole":               {perm: credential.Credentials.Read()},
	"UpdateRole":            {perm: credential.Credentials.Write()},
	"DeleteRole":            {perm: credential.Credentials.Write()},
	"CreateIdentity":        {perm: credential.Credentials.Write()},
	"GetIdentity":           {perm: credential.Credentials.Read()},
	"ListIdentities":        {perm: credential.Credentials.Read()},
	"UpdateIdentity":        {perm: credential.Credentials.Write()},
	"DeleteIdentity":        {perm: credential.Credentials.Write()},
	"IdentityCredentials":   {perm: credential.Credentials.Read()},

	"CreateOrganization": {perm: credential.Organizations.Write()},
	"ListOrganizations":  {perm: credential.Organizations.Read()},
	"GetOrganization":    {perm: credential.Organizations.Read()},
	"UpdateOrganization": {perm: credential.Organizations.Write()},
	"DeleteOrganization": {perm: credential.Organizations.Write()},
	"CreateSite":         {perm: credential.Organizations.Write()},
	"ListSites":          {perm: credential.Organizations.Read()},
	"GetSite":            {perm: credential.Organizations.Read()},
	"UpdateSite":         {perm: credential.Organizations.Write()},
	"DeleteSite":         {perm: credential.Organizations.Write()},
	"CreateSitegroup":    {perm: credential.Organizations.Write()},
	"ListSitegroups":     {perm: credential.Organizations.Read()},
	"GetSitegroup":       {perm: credential.Organizations.Read()},
	"UpdateSitegroup":    {perm: credential.Organizations.Write()},
	"DeleteSitegroup":    {perm: credential.Organizations.Write()},
	"CreateOrgToken":     {perm: credential.Organizations.Write(), kinds: orgToken},
	"ListOrgTokens":      {perm: credential.Organizations.Read(), kinds: orgToken},
	"GetOrgToken":        {perm: credential.Organizations.Read(), kinds: orgToken},
	"UpdateOrgToken":     {perm: credential.Organizations.Write(), kinds: orgToken},
	"DeleteOrgToken":     {perm: credential.Organizations.Write(), kinds: orgToken},

	"CreateWorkspace": {perm: credential.Workspaces.Write()},
	"ListWorkspaces":  {perm: credential.Workspaces.Read()},
	"GetWorkspace":    {perm: credential.Workspaces.Read()},
	"UpdateWorkspace": {perm: credential.Workspaces.Write()},
	"DeleteWorkspace": {perm: credential.Workspaces.Write()},
	"PutMember":       {perm: credential.Workspaces.Write()},
	"ListMembers":     {perm: credential.Workspaces.Read()},
	"GetMember":       {perm: credential.Workspaces.Read()},
	"RemoveMember":    {perm: credential.Workspaces.Write()},

	"Catalogue":    {perm: credential.Scopes.Read()},
	"SetCatalogue": {perm: credential.Scopes.Write()},

	// PATs and clients: a PAT acts as its own user; an admin key acts for
	// the user named in X-User-ID.
	"AvailableScopes": {perm: credential.PATs.Read(), kinds: pat},
	"CreatePAT":       {perm: credential.PATs.Write(), kinds: pat},
	"ListPATs":        {perm: credential.PATs.Read(), kinds: pat},
	"UpdatePAT":       {perm: credential.PATs.Write(), kinds: pat},
	"RevokePAT":       {perm: credential.PATs.Write(), kinds: pat},
	"CreateClient":    {perm: credential.Clients.Write(), kinds: pat},
	"GetClient":       {perm: credential.Clients.Read(), kinds: pat},
	"ListClients":     {perm: credential.Clients.Read(), kinds: pat},
	"DeleteClient":    {perm: credential.Clients.Write(), kinds: pat},

	// A machine verifies the tokens scoped to it; an admin key with
	// verify, every kind in its instance.
	"Verify": {perm: credential.PermVerify, kinds: machineKey},

	"CreateAdminKey": {perm: credential.AdminKeys.Write()},
	"ListAdminKeys":  {perm: credential.AdminKeys.Read()},
	"GetAdminKey":    {perm: credential.AdminKeys.Read()},
	"RevokeAdminKey": {perm: credential.AdminKeys.Write()},

	"CreateWebhook":         {perm: credential.Webhooks.Write()},
	"ListWebhooks":          {perm: credential.Webhooks.Read()},
	"GetWebhook":            {perm: credential.Webhooks.Read()},
	"UpdateWebhook":         {perm: credential.Webhooks.Write()},
	"DeleteWebhook":         {perm: credential.Webhooks.Write()},
	"RotateWebhookSecret":   {perm: credential.Webhooks.Write()},
	"TestWebhook":           {perm: credential.Webhooks.Write()},
	"ListWebhookDeliveries": {perm: credential.Webhooks.Read()},
	"ReplayWebhookDelivery": {perm: credential.Webhooks.Write()},

	// A leak report (POST /v1/leaks) is authenticated by the scanner's
	// signature, not by a credential: no admin key reports leaks.
	"ReportLeak": {kinds: []credential.Kind{KindSecretScanner}},
}

// enter is the first step of every use case acting for a caller: it looks
// the use case up in useCases and lets in the kinds named there, or an
// admin key holding the permission. The grant it returns is what a use
// case that writes needs to open its change (see mutate).
func (a *Authority) enter(ctx context.Context, c Caller, uc useCase) (grant, error) {
	r, ok := useCases[uc]
	if !ok {
		panic(fmt.Sprintf("authority: use case %s has no entry in the permission table", uc))
	}
	if !slices.Contains(r.kinds, c.Kind) {
		if err := a.authorize(ctx, c, r.perm); err != nil {
			return grant{}, err
		}
	}
	return grant{a: a, caller: c, uc: uc, now: a.clock.Now()}, nil
}

// authorize is where a caller lacking a permission is refused, and the
// only place: an admin key must hold p; the operator holds everything;
// any other kind of caller holds no admin permission.
func (a *Authority) authorize(ctx context.Context, c Caller, p credential.Permission) error {
	if c.holds(p) {
		return nil
	}
	if c.Kind == credential.KindAdminKey && p != "" {
		return a.forbid(ctx, c, "permission_required:"+string(p), credential.Errorf(credential.CodeForbidden, "the admin key lacks the %s permission", p))
	}
	return a.forbid(ctx, c, "not_allowed", errForbidden)
}

// holds reports whether the caller holds an admin permission.
func (c Caller) holds(p credential.Permission) bool {
	switch c.Kind {
	case "":
		return p != ""
	case credential.KindAdminKey:
		return credential.Holds(c.Permissions, p)
	}
	return false
}

// UseCasePermissions lists every use case with the permission an admin
// key needs for it ("" when none may), for documentation and tests.
func UseCasePermissions() map[string]credential.Permission {
	out := make(map[string]credential.Permission, len(useCases))
	for uc, r := range useCases {
		out[string(uc)] = r.perm
	}
	return out
}
