package main

import (
	"fmt"
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
	cmd.AddCommand(withInstance(&cobra.Command{
		Use:     "create",
		Short:   "Create an admin key and print it once",
		Example: "  keyward admin-key create --instance ins_…",
		Args:    cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			cred, key, err := auth.CreateAdminKey(cmd.Context(), authority.Operator(instanceID))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "id:        %s\nadmin key: %s\n", cred.ID, key.Reveal())
			return nil
		}),
	}), withInstance(&cobra.Command{
		Use:   "list",
		Short: "List admin keys (ids and prefixes, never the keys)",
		Args:  cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			keys, err := auth.ListAdminKeys(cmd.Context(), authority.Operator(instanceID))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPREFIX\tCREATED\tSTATUS")
			for _, k := range keys {
				status := "active"
				if k.Revoked() {
					status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\n", k.ID, k.DisplayPrefix, k.CreatedAt.UTC().Format(time.RFC3339), status)
			}
			return tw.Flush()
		}),
	}), withInstance(&cobra.Command{
		Use:     "revoke KEY_ID",
		Short:   "Revoke an admin key; it stops authenticating at once",
		Example: "  keyward admin-key revoke --instance ins_… key_…",
		Args:    cobra.ExactArgs(1),
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			if err := auth.RevokeAdminKey(cmd.Context(), authority.Operator(instanceID), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		}),
	}), &cobra.Command{
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
	})
	return cmd
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

func newMasterKeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "master-key", Short: "Master key helpers"}
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
	})
	return cmd
}
