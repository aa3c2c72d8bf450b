package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func newExportCommand(cfg *storeConfig) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export [--out FILE]",
		Short: "Write every row of the store as JSON lines (digests and sealed values, never a secret)",
		Long: "Write the store as JSON lines: a header naming the master key by a keyed hash (never the key),\n" +
			"then one object per row with a type field (instances, credentials, machines, machine_scopes,\n" +
			"organizations, sites, sitegroups, workspaces, workspace_members, clients, signing_keys, audit_events,\n" +
			"…). Digests and sealed values are base64; no plaintext secret is written, since none is stored.\n" +
			"The export reads one snapshot, so it is consistent while keyward serve runs.",
		Example: "  keyward export --out keyward.jsonl\n  keyward export --database-url postgres://… | gzip > keyward.jsonl.gz",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := cfg.open(cmd.Context(), false, nodeOptions{})
			if err != nil {
				return err
			}
			defer n.Close()
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if out != "" {
				if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				w = f
			}
			rows, err := n.store.Export(cmd.Context(), w, n.keys.ExportCheck())
			if f != nil {
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(out)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d rows\n", rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (mode 0600, must not exist); stdout by default")
	return cmd
}

func newImportCommand(cfg *storeConfig) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "import --from FILE",
		Short: "Insert the rows of a keyward export into this store (same master key; idempotent on ids)",
		Long: "Insert the rows of a file written by keyward export, in one transaction. Rows whose id already\n" +
			"exists are skipped, so importing twice changes nothing. The store must run under the master key\n" +
			"the export was made with; another key is refused before anything is written.\n" +
			"Pass the master key with --master-key (or KEYWARD_MASTER_KEY) when the target is a fresh data dir.",
		Example: "  keyward import --database-url postgres://… --master-key … --from keyward.jsonl",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer f.Close()
			n, err := cfg.open(cmd.Context(), false, nodeOptions{})
			if err != nil {
				return err
			}
			defer n.Close()
			inserted, skipped, err := n.store.Import(cmd.Context(), f, n.keys.ExportCheck())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d rows (%d already present)\n", inserted, skipped)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "file written by keyward export")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
