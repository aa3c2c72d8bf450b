// Command keyward is the whole credential authority in one binary: the
// server (serve), the operator's commands that open the store directly
// (instance, admin-key, master-key), and version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := &storeConfig{settings: &settings{}}
	root := &cobra.Command{
		Use:           "keyward",
		Short:         "A self-hosted credential authority for APIs",
		Long:          "keyward issues, stores, verifies, rotates, scopes, rate-limits, audits and revokes API credentials.\n\nServer and operator flags can also be set as KEYWARD_<FLAG> (e.g. KEYWARD_DATA_DIR); secrets also as\nKEYWARD_<FLAG>_FILE, and in a YAML file named by --config (flag > env > file > default). Commands that talk to a server read KEYWARD_URL, KEYWARD_ADMIN_KEY[_FILE],\nKEYWARD_MACHINE_KEY[_FILE] and KEYWARD_OUTPUT.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return cfg.settings.resolve(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	cfg.addFlags(root)
	root.PersistentFlags().StringVar(&cfg.settings.configPath, configFlag, "", "a YAML file of settings keyed by flag name (env KEYWARD_CONFIG); flags and KEYWARD_* variables override it")
	remote := newRemoteCommands()
	for _, c := range remote {
		if c.Name() == "audit" {
			c.AddCommand(newAuditVerifyCommand(cfg))
		}
	}
	root.AddCommand(remote...)
	root.AddCommand(
		newServeCommand(cfg),
		newInstanceCommand(cfg),
		newAdminKeyCommand(cfg),
		newSigningKeyCommand(cfg),
		newMasterKeyCommand(cfg),
		newBackupCommand(cfg),
		newRestoreCommand(cfg),
		newExportCommand(cfg),
		newImportCommand(cfg),
		newImportKeysCommand(cfg),
		newProbeCommand(),
		newScanCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, args []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "keyward", versionString())
			},
		},
	)
	return root
}
