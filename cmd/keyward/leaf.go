package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// leaf describes one leaf command of a remote family: what it is called,
// its positional arguments (each must be non-empty), its flags, what it
// checks before calling, and the call itself with an SDK client.
type leaf struct {
	use, short, example string
	args                []string // positional argument names, all required
	flags               func(fs *pflag.FlagSet)
	check               func() error // flag checks, before any request
	// key, when set, picks the credential the call is made with (a
	// machine's key); the admin key otherwise.
	key func(cmd *cobra.Command) (string, error)
	run func(cmd *cobra.Command, c *client.Client, args []string) error
}

// leaf builds the command: it checks the arguments and flags, makes the
// SDK client with the admin key, and runs the call.
func (rc *remoteConfig) leaf(l leaf) *cobra.Command {
	args := noArgs()
	if len(l.args) > 0 {
		args = exactArgs(len(l.args))
	}
	cmd := &cobra.Command{
		Use: l.use, Short: l.short, Example: l.example, Args: args,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := nonEmpty(argv, l.args...); err != nil {
				return err
			}
			if l.check != nil {
				if err := l.check(); err != nil {
					return err
				}
			}
			c, err := rc.leafClient(cmd, l.key)
			if err != nil {
				return err
			}
			return l.run(cmd, c, argv)
		},
	}
	if l.flags != nil {
		l.flags(cmd.Flags())
	}
	return cmd
}

func (rc *remoteConfig) leafClient(cmd *cobra.Command, key func(*cobra.Command) (string, error)) (*client.Client, error) {
	if key == nil {
		return rc.sdk()
	}
	k, err := key(cmd)
	if err != nil {
		return nil, err
	}
	return rc.sdkWith(k), nil
}

// show prints one value: as JSON, or as a one-row table.
func show[T any](rc *remoteConfig, cmd *cobra.Command, v T, table func(*cobra.Command, []T) *table) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), v)
	}
	return table(cmd, []T{v}).flush()
}

// showAll prints a list: as {"data": [...]}, or as a table.
func showAll[T any](rc *remoteConfig, cmd *cobra.Command, items []T, table func(*cobra.Command, []T) *table) error {
	if rc.json() {
		return printData(cmd, items)
	}
	return table(cmd, items).flush()
}

// printData prints a list as {"data": [...]}, never null.
func printData[T any](cmd *cobra.Command, items []T) error {
	if items == nil {
		items = []T{}
	}
	return printJSON(cmd.OutOrStdout(), map[string]any{"data": items})
}
