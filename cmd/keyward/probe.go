package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/client"
)

// newProbeCommand checks a running server's readiness, so container
// images without a shell or curl (distroless, scratch) can still have a
// HEALTHCHECK.
func newProbeCommand() *cobra.Command {
	var (
		target  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Exit 0 if a running server is ready (GET /readyz), 1 if not",
		Example: `  keyward probe
  keyward probe --url http://127.0.0.1:8080/readyz --timeout 2s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			// --url is the readiness URL (…/readyz) or the server's base URL.
			base := strings.TrimSuffix(strings.TrimRight(target, "/"), "/readyz")
			if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageErrorf("--url: want http(s)://host:port/readyz, not %q", target)
			}
			if err := client.New(base, "", client.WithTimeout(timeout)).Ready(ctx); err != nil {
				return fmt.Errorf("not ready: %s: %w", target, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ready")
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "http://127.0.0.1:8080/readyz", "the readiness URL to check")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for an answer")
	return cmd
}
