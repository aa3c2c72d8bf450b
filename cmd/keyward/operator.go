package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

// Operator commands open the store directly, as an operator on the host
// would; they do not talk to a server.

// withAuthority runs an operator command against the local store.
func (c *storeConfig) withAuthority(run func(cmd *cobra.Command, args []string, auth *authority.Authority) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		n, err := c.open(cmd.Context(), false, nodeOptions{})
		if err != nil {
			return err
		}
		defer n.Close()
		return run(cmd, args, n.auth)
	}
}

func newInstanceCommand(cfg *storeConfig) *cobra.Command {
	cmd := &cobra.Command{Use: "instance", Short: "Manage instances (tenants) in the local store"}
	cmd.AddCommand(&cobra.Command{
		Use:     "create NAME",
		Short:   "Create an instance and print its first admin key once",
		Example: "  keyward instance create staging",
		Args:    cobra.ExactArgs(1),
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			in, key, err := auth.CreateInstance(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "instance:  %s\nadmin key: %s\n", in.ID, key.Reveal())
			return nil
		}),
	}, &cobra.Command{
		Use:   "list",
		Short: "List instances",
		Args:  cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			ins, err := auth.ListInstances(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, in := range ins {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", in.ID, in.Name, in.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}),
	})
	return cmd
}

func newAdminKeyCommand(cfg *storeConfig) *cobra.Command {
	var instanceID string
	cmd := &cobra.Command{Use: "admin-key", Short: "Manage an instance's admin keys in the local store"}
	withInstance := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&instanceID, "instance", "", "instance id (ins_…)")
		_ = c.MarkFlagRequired("instance")
		return c
	}
	cmd.AddCommand(
		withInstance(adminKeyCreateCommand(cfg, &instanceID)),
		withInstance(adminKeyListCommand(cfg, &instanceID)),
		withInstance(adminKeyRevokeCommand(cfg, &instanceID)),
		adminKeyGenerateCommand(),
	)
	return cmd
}

func adminKeyCreateCommand(cfg *storeConfig, instanceID *string) *cobra.Command {
	var (
		name        string
		permissions []string
		expiresAt   string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin key and print it once",
		Long: "Create an admin key holding the given permissions (every permission, *, by default).\n" +
			"Permissions: " + strings.Join(permissionNames(), ", ") + ".",
		Example: "  keyward admin-key create --instance ins_… --name protected-api --permission verify\n" +
			"  keyward admin-key create --instance ins_… --name ci --permission machines:write --expires-at 2027-01-01T00:00:00Z",
		Args: cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			in := authority.CreateAdminKeyInput{Name: &name, Permissions: permissions}
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return fmt.Errorf("--expires-at: %q is not an RFC 3339 time (2027-01-01T00:00:00Z)", expiresAt)
				}
				in.ExpiresAt = &t
			}
			k, key, err := auth.CreateAdminKey(cmd.Context(), authority.Operator(*instanceID), in)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "id:          %s\npermissions: %s\n", k.ID, joinPermissions(k.Permissions))
			if !k.ExpiresAt.IsZero() {
				fmt.Fprintf(cmd.OutOrStdout(), "expires:     %s\n", k.ExpiresAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin key:   %s\n", key.Reveal())
			return nil
		}),
	}
	create.Flags().StringVar(&name, "name", "operator key", "what the key is for")
	create.Flags().StringArrayVar(&permissions, "permission", []string{string(credential.PermAll)}, "a permission the key holds (repeat for several)")
	create.Flags().StringVar(&expiresAt, "expires-at", "", "when the key stops working (RFC 3339); never by default")
	return create
}

func adminKeyListCommand(cfg *storeConfig, instanceID *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List admin keys (ids, prefixes and permissions, never the keys)",
		Args:  cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			keys, err := auth.ListAdminKeys(cmd.Context(), authority.Operator(*instanceID))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tPERMISSIONS\tCREATED\tEXPIRES\tSTATUS")
			for _, k := range keys {
				status, expires := "active", "never"
				if !k.ExpiresAt.IsZero() {
					expires = k.ExpiresAt.UTC().Format(time.RFC3339)
				}
				if !k.RevokedAt.IsZero() {
					status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.DisplayPrefix, joinPermissions(k.Permissions),
					k.CreatedAt.UTC().Format(time.RFC3339), expires, status)
			}
			return tw.Flush()
		}),
	}
}

func adminKeyRevokeCommand(cfg *storeConfig, instanceID *string) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke KEY_ID",
		Short:   "Revoke an admin key; it stops authenticating at once",
		Example: "  keyward admin-key revoke --instance ins_… key_…",
		Args:    cobra.ExactArgs(1),
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			if _, err := auth.RevokeAdminKey(cmd.Context(), authority.Operator(*instanceID), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		}),
	}
}

func adminKeyGenerateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a fresh admin key without storing it (for KEYWARD_BOOTSTRAP_ADMIN_KEY)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := credential.Generate(credential.KindAdminKey)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key.Reveal())
			return nil
		},
	}
}

func newSigningKeyCommand(cfg *storeConfig) *cobra.Command {
	var instanceID, algorithm string
	cmd := &cobra.Command{Use: "signing-key", Short: "Manage an instance's JWT signing keys in the local store"}
	cmd.PersistentFlags().StringVar(&instanceID, "instance", "", "instance id (ins_…)")
	_ = cmd.MarkPersistentFlagRequired("instance")
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new key the instance's signing key",
		Long: `Make a new key the instance's signing key. Older keys stop signing at once and stay in
the JWKS until every token they signed has expired, so tokens in flight keep verifying.
Running servers pick up the new key within a minute.`,
		Example: "  keyward signing-key rotate --instance ins_…\n  keyward signing-key rotate --instance ins_… --algorithm EdDSA",
		Args:    cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			k, err := auth.RotateSigningKey(cmd.Context(), authority.Operator(instanceID), algorithm)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key %s (%s) is now active\n", k.ID, k.Algorithm)
			return nil
		}),
	}
	rotate.Flags().StringVar(&algorithm, "algorithm", "RS256", "RS256 (what Clerk's SDKs verify) or EdDSA")
	cmd.AddCommand(rotate, &cobra.Command{
		Use:   "list",
		Short: "List signing keys (public information only)",
		Args:  cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			keys, err := auth.SigningKeys(cmd.Context(), authority.Operator(instanceID))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALGORITHM\tCREATED\tSTATUS")
			for _, k := range keys {
				status := "active"
				if !k.RetiredAt.IsZero() {
					status = "retired; published until " + k.TokensExpireAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), status)
			}
			return tw.Flush()
		}),
	})
	return cmd
}

func newMasterKeyCommand(cfg *storeConfig) *cobra.Command {
	cmd := &cobra.Command{Use: "master-key", Short: "Generate or rotate the master key"}
	var newKey string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-wrap the data keys under a new master key",
		Long: `Re-wrap the store's data keys (the digest pepper and the sealing key) under a new
master key, in one transaction. No credential is re-hashed or re-sealed: every key and
token keeps working. From then on only the new master key opens the store.

The new key comes from --new-master-key (or KEYWARD_NEW_MASTER_KEY[_FILE]); without one a
key is generated. When the current key is the generated <data-dir>/master.key, that file
is replaced with the new key; otherwise a generated key is printed once to stdout.

Running servers keep serving (they hold the data keys in memory); restart each of them
with the new key. A server or command started with the old key is refused.`,
		Example: `  keyward master-key rotate --data-dir /var/lib/keyward
  KEYWARD_MASTER_KEY_FILE=/run/secrets/mk KEYWARD_NEW_MASTER_KEY_FILE=/run/secrets/mk.new \
    keyward master-key rotate --database-url postgres://keyward@db/keyward`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return rotateMasterKey(cmd.Context(), cfg, newKey, cmd.OutOrStdout())
		},
	}
	rotate.Flags().StringVar(&newKey, "new-master-key", "", "the new master key, base64 of 32 random bytes (default: generated)")
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Print a new master key (base64 of 32 random bytes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keyring.GenerateMasterKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}, rotate)
	return cmd
}

func permissionNames() []string {
	var out []string
	for _, p := range credential.AllPermissions() {
		out = append(out, string(p))
	}
	return out
}

func joinPermissions(ps []credential.Permission) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return strings.Join(out, ",")
}

// keyOpens reports whether the store accepts master now; an error means
// the store could not say.
func (c *storeConfig) keyOpens(ctx context.Context, master []byte) (bool, error) {
	n, err := c.openWith(ctx, master, nodeOptions{})
	if err == nil {
		n.Close()
		return true, nil
	}
	if errors.Is(err, authority.ErrWrongMasterKey) {
		return false, nil
	}
	return false, err
}

// rotateMasterKey re-wraps the data keys under a new master key. When the
// current key lives in the data dir, the new one is written beside it
// before the rotation commits and moved over it after, so at every moment
// one of the two files opens the store.
func rotateMasterKey(ctx context.Context, cfg *storeConfig, encoded string, stdout io.Writer) error {
	current, file, err := cfg.resolveMasterKey(false)
	if err != nil {
		return err
	}
	generated := encoded == ""
	if generated {
		if encoded, err = keyring.GenerateMasterKey(); err != nil {
			return err
		}
	}
	next, err := keyring.ParseMasterKey(encoded)
	if err != nil {
		return fmt.Errorf("--new-master-key: %w", err)
	}
	n, err := cfg.openWith(ctx, current, nodeOptions{})
	if err != nil {
		return err
	}
	defer n.Close()

	pending := ""
	if file != "" {
		pending = file + ".new"
		if err := writeKeyFile(pending, encoded, os.O_TRUNC); err != nil {
			return err
		}
	}
	if err := n.auth.RotateMasterKey(ctx, current, next); err != nil {
		if err := settleFailedRotation(ctx, cfg, err, rotation{next: next, encoded: encoded, generated: generated, pending: pending}, stdout); err != nil {
			return err
		}
	}
	return finishRotation(stdout, file, rotation{encoded: encoded, generated: generated, pending: pending})
}

// rotation is what a master-key rotation carries past the commit: the new
// key (raw and encoded), whether keyward generated it, and the file that
// holds it until it replaces the current one ("" when the key is not in
// the data dir).
type rotation struct {
	next      []byte
	encoded   string
	generated bool
	pending   string
}

// settleFailedRotation decides what a failed rotation means. A failed
// COMMIT may still have landed (a connection dropped while it ran): ask
// the store which key it answers to now before the only copy of the new
// key is thrown away. nil means the rotation did land.
func settleFailedRotation(ctx context.Context, cfg *storeConfig, err error, r rotation, stdout io.Writer) error {
	adopted, checkErr := cfg.keyOpens(ctx, r.next)
	switch {
	case checkErr != nil:
		if r.generated && r.pending == "" {
			fmt.Fprintf(stdout, "the rotation failed and its outcome is unknown; if the store now refuses the old key, this is the new master key:\n\n    %s\n\n", r.encoded)
		}
		kept := ""
		if r.pending != "" {
			kept = "; the new key is kept in " + r.pending
		}
		return fmt.Errorf("rotate: %w; and checking whether it landed failed: %v%s", err, checkErr, kept)
	case !adopted:
		if r.pending != "" {
			os.Remove(r.pending)
		}
		return err
	}
	return nil
}

// finishRotation moves the new key file over the current one, or shows
// the new key, and says what to do next.
func finishRotation(stdout io.Writer, file string, r rotation) error {
	if r.pending != "" {
		if err := os.Rename(r.pending, file); err != nil {
			return fmt.Errorf("the data keys are now wrapped under the new master key, which is in %s: move it over %s before the next start: %w", r.pending, file, err)
		}
		if dir, err := os.Open(filepath.Dir(file)); err == nil {
			dir.Sync() // make the rename durable
			dir.Close()
		}
		fmt.Fprintf(stdout, "master key rotated; the new key replaced %s\nrestart keyward to use it (running servers keep serving until then)\n", file)
		return nil
	}
	if r.generated {
		// The one time this key is ever shown.
		fmt.Fprintf(stdout, "master key rotated; the new master key (shown once; store it now):\n\n    %s\n\nrestart every node with it (running nodes keep serving until then)\n", r.encoded)
		return nil
	}
	fmt.Fprintln(stdout, "master key rotated; restart every node with the new key (running nodes keep serving until then)")
	return nil
}

// newAuditVerifyCommand checks the hash chains of the local store's audit
// trail (an operator command: it opens the store directly).
func newAuditVerifyCommand(cfg *storeConfig) *cobra.Command {
	var instanceID string
	all := false
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chains in the local store; name the first broken link",
		Long: `Check the audit trail's hash chains in the local store (an operator command: it opens
the store directly, like instance and admin-key). Every event carries the SHA-256 of its
predecessor's hash and its own fields; verify recomputes them in order and names the first
event whose link does not hold (edited, inserted or removed events, or a truncated tail).
A chain the janitor pruned (--retention-audit) starts after its checkpoint: the seq and hash
of the last pruned event, MACed with a key derived from the keyring, so a checkpoint moved to
hide deleted events does not verify. It exits 1 when a chain is broken. Without --instance it checks every chain, including
the host-wide one (refused authentications whose secret matched no instance). A broken
instance chain is also sent, once per break, as the audit.chain_broken webhook event to the
instance's endpoints that subscribe to it (a running serve delivers it).`,
		Example: "  keyward audit verify\n  keyward audit verify --instance ins_…",
		Args:    cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			ctx := cmd.Context()
			ids := []string{instanceID}
			if all = !cmd.Flags().Changed("instance"); all {
				var err error
				if ids, err = auth.AuditChains(ctx); err != nil {
					return err
				}
			}
			broken := 0
			for _, id := range ids {
				rep, err := auth.VerifyAuditChain(ctx, id)
				if err != nil && rep.Break == nil {
					return err
				}
				if err != nil { // the break stands; only its event could not be queued
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
				}
				if printChainReport(cmd.OutOrStdout(), rep) {
					broken++
				}
			}
			if broken > 0 {
				return &cliError{code: exitFailure, err: fmt.Errorf("%d audit chain(s) broken", broken)}
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&instanceID, "instance", "", "check only this instance's chain (ins_…)")
	return cmd
}

// printChainReport writes one chain's line of keyward audit verify and
// reports whether the chain is broken.
func printChainReport(out io.Writer, rep authority.ChainReport) bool {
	name := rep.InstanceID
	if name == "" {
		name = "(host-wide)"
	}
	switch {
	case rep.Break == nil:
		pruned := ""
		if rep.PrunedThrough > 0 {
			pruned = fmt.Sprintf(" after the checkpoint at seq %d (older events pruned by the janitor)", rep.PrunedThrough)
		}
		fmt.Fprintf(out, "%s: ok, %d events%s\n", name, rep.Events, pruned)
		return false
	case rep.Break.EventID != "":
		fmt.Fprintf(out, "%s: BROKEN at event %s (seq %d): %s\n", name, rep.Break.EventID, rep.Break.Seq, rep.Break.Reason)
	default:
		fmt.Fprintf(out, "%s: BROKEN: %s\n", name, rep.Break.Reason)
	}
	return true
}
