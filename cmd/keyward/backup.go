package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/sqlstore"
)

// pgDumpHint is the documented way to back a PostgreSQL store up.
const pgDumpHint = "PostgreSQL is backed up with its own tools: pg_dump --format=custom --file keyward.dump \"$KEYWARD_DATABASE_URL\" (restore with pg_restore --clean --if-exists --dbname \"$KEYWARD_DATABASE_URL\" keyward.dump); see README › Production › Backup and restore"

func newBackupCommand(cfg *storeConfig) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent copy of the SQLite store to FILE (safe while keyward serve runs)",
		Long: "Write a consistent online copy of the SQLite store to FILE (mode 0600), while keyward serve keeps\n" +
			"serving. The copy holds digests and sealed secrets but not the master key: keep master.key (or\n" +
			"--master-key) backed up separately, since the copy is useless without it.\n\n" + pgDumpHint + ".",
		Example: "  keyward backup --data-dir /var/lib/keyward --out /backups/keyward-$(date +%F).db",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.databaseURL != "" {
				return errors.New("backup copies a SQLite store. " + pgDumpHint)
			}
			n, err := cfg.open(cmd.Context(), false, nodeOptions{})
			if err != nil {
				return err
			}
			defer n.Close()
			if err := n.store.Backup(cmd.Context(), out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s\n", filepath.Join(cfg.dataDir, sqliteFile), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to (must not exist)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newRestoreCommand(cfg *storeConfig) *cobra.Command {
	var (
		from  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Replace the SQLite store in --data-dir with a backup (keyward serve must be stopped)",
		Long: "Restore a file written by keyward backup into --data-dir. The file must be a keyward SQLite\n" +
			"database no newer than this binary. A data dir that already holds a database is refused unless\n" +
			"--force. The master key is not part of the backup: restore master.key alongside, or pass\n" +
			"--master-key when serving.\n\n" + pgDumpHint + ".",
		Example: "  keyward restore --data-dir /var/lib/keyward --from /backups/keyward-2026-12-01.db",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.databaseURL != "" {
				return errors.New("restore replaces a SQLite store. " + pgDumpHint)
			}
			to := filepath.Join(cfg.dataDir, sqliteFile)
			if err := sqlstore.RestoreSQLite(cmd.Context(), from, to, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s from %s\n", to, from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file written by keyward backup")
	cmd.Flags().BoolVar(&force, "force", false, "replace a database already in --data-dir")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
