package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi"
)

// leakConfig is POST /v1/leaks's part of serve's flags: whose signatures
// it accepts, which instance the reports are for, and what a found
// credential undergoes.
type leakConfig struct {
	keyFile  string
	instance string
	policy   string
}

func (c *leakConfig) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.keyFile, "leak-report-public-key-file", "", "the secret scanner's public keys POST /v1/leaks checks signatures with: GitHub's JSON (https://api.github.com/meta/public_keys/secret_scanning) or PEM PUBLIC KEY blocks (default: none, every report is refused)")
	cmd.Flags().StringVar(&c.instance, "leak-report-instance", "", "the instance whose secrets POST /v1/leaks handles; other instances' secrets are false positives (default: the instance created at first start)")
	cmd.Flags().StringVar(&c.policy, "leak-response", string(authority.LeakRevoke), "what a reported secret of the instance undergoes: revoke, or quarantine (left live, flagged by its credential.leak audit event and <kind>.leaked webhook event)")
}

// load reads the keys and checks the instance and the policy.
func (c *leakConfig) load(ctx context.Context, auth *authority.Authority) (httpapi.LeakReportConfig, error) {
	var out httpapi.LeakReportConfig
	policy, err := authority.ParseLeakPolicy(c.policy)
	if err != nil {
		return out, fmt.Errorf("--leak-response: %w", err)
	}
	out.Policy = policy
	if c.instance != "" {
		if _, err := auth.GatewayInstance(ctx, c.instance); err != nil {
			return out, fmt.Errorf("--leak-report-instance: %w", err)
		}
		out.Instance = c.instance
	}
	if c.keyFile == "" {
		return out, nil
	}
	data, err := os.ReadFile(c.keyFile)
	if err != nil {
		return out, fmt.Errorf("--leak-report-public-key-file: %w", err)
	}
	if out.Keys, err = httpapi.ParseLeakReportKeys(data); err != nil {
		return out, fmt.Errorf("--leak-report-public-key-file %s: %w", c.keyFile, err)
	}
	return out, nil
}

// newScanCommand is `keyward scan FILE...`: it prints every checksum-valid
// keyward secret in the files (- for stdin) as file:line:column, kind and
// the secret's display prefix, never the secret itself. It exits 1 when it
// found any, so it can gate a commit or a CI step.
func newScanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "scan FILE...",
		Short: "Find keyward secrets (checked by their checksum) in files, printing where and which kind, never the secret",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, found := cmd.OutOrStdout(), 0
			for _, name := range args {
				var (
					data []byte
					err  error
				)
				if name == "-" {
					data, err = io.ReadAll(cmd.InOrStdin())
				} else {
					data, err = os.ReadFile(name)
				}
				if err != nil {
					return err
				}
				for _, f := range credential.FindSecrets(string(data)) {
					found++
					fmt.Fprintf(out, "%s:%d:%d\t%s\t%s…\n", name, f.Line, f.Column, f.Kind, f.Secret.DisplayPrefix())
				}
			}
			if found > 0 {
				return &cliError{code: exitFailure, msg: fmt.Sprintf("%d keyward secret(s) found", found)}
			}
			return nil
		},
	}
}
