package main

// Remote commands talk to a running keyward server through the Go SDK
// (package client) and the native API only.
//
// Every remote command takes --server (KEYWARD_URL), --admin-key
// (KEYWARD_ADMIN_KEY, KEYWARD_ADMIN_KEY_FILE) and -o/--output. Keys are read
// from the environment at run time, never as flag defaults, so --help does
// not show them; they are sent only in headers and never printed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Exit codes of the remote commands.
const (
	exitOK           = 0
	exitFailure      = 1 // a server or network error
	exitUsage        = 2 // bad usage, or a request the server refused as invalid
	exitNotFound     = 3
	exitUnauthorized = 4 // unauthorized or forbidden
	exitConflict     = 5
	exitNotValid     = 6 // verify: the credential is not valid
)

const defaultServer = "http://127.0.0.1:8080"

// remoteTimeout bounds each call to the server.
const remoteTimeout = 30 * time.Second

// cliError is an error with the process exit code it stands for.
type cliError struct {
	code int
	err  error
	msg  string // replaces err's text when set
}

func (e *cliError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return e.err.Error()
}
func (e *cliError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// usageMessages start cobra's own usage errors, which carry no type.
var usageMessages = []string{
	"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
	"invalid argument", "bad flag syntax", "required flag(s)", "accepts ", "requires at least",
	"requires at most", "received ", "if any flags in the group", "none of the others can be",
}

// exitCode is the process exit status for err, the result of executing
// the root command: 0 on success; 1 for a server or network error; 2 for
// bad usage (or a 400/413/422 from the server); 3 not found; 4
// unauthorized or forbidden; 5 conflict; 6 from verify for a credential
// that is not valid.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code
	}
	switch {
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return exitUnauthorized
	case errors.Is(err, client.ErrConflict):
		return exitConflict
	case errors.Is(err, client.ErrInvalid):
		return exitUsage
	}
	msg := err.Error()
	for _, p := range usageMessages {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitFailure
}

// remoteConfig is what every remote command shares: where the server is,
// the admin key, and the output format.
type remoteConfig struct {
	server   string
	adminKey string
	output   string
}

// newRemoteCommands returns the commands that talk to a running server.
func newRemoteCommands() []*cobra.Command {
	rc := &remoteConfig{}
	cmds := []*cobra.Command{
		newMachinesCommand(rc),
		newM2MCommand(rc),
		newOrgsCommand(rc),
		newSitesCommand(rc),
		newSitegroupsCommand(rc),
		newWorkspacesCommand(rc),
		newMembersCommand(rc),
		newOrgTokensCommand(rc),
		newPATsCommand(rc),
		newClientsCommand(rc),
		newScopesCommand(rc),
		newVerifyCommand(rc),
		newAuditCommand(rc),
		newWhoamiCommand(rc),
		newAdminKeysCommand(rc),
		newAnalyticsCommand(rc),
		newWebhooksCommand(rc),
		newControlsCommand(rc),
		newCreditsCommand(rc),
		newRolesCommand(rc),
		newIdentitiesCommand(rc),
	}
	for _, c := range cmds {
		rc.addFlags(c)
		c.PersistentPreRunE = rc.prepare
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
			return &cliError{code: exitUsage, err: err}
		})
		c.SilenceUsage = true
		c.SilenceErrors = true
		c.SetHelpFunc(remoteHelp)
		markGroups(c)
		classifyErrors(c)
	}
	return cmds
}

// remoteHelp is the usual help without the root's store flags, which
// remote commands do not use.
func remoteHelp(cmd *cobra.Command, args []string) {
	root := cmd.Root()
	var hidden []*pflag.Flag
	if root != cmd {
		root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden {
				f.Hidden = true
				hidden = append(hidden, f)
			}
		})
	}
	defer func() {
		for _, f := range hidden {
			f.Hidden = false
		}
	}()
	// cobra's default help (a command without a help function of its own
	// or a parent has it); the root's would lead back here.
	(&cobra.Command{}).HelpFunc()(cmd, args)
}

// classifyErrors gives every error a command returns its exit code, and
// drops the SDK's "keyward: " prefix (main adds its own).
func classifyErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		classifyErrors(c)
	}
	if cmd.RunE == nil {
		return
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		err := run(c, args)
		if err == nil {
			return nil
		}
		var ce *cliError
		if errors.As(err, &ce) {
			return err
		}
		return &cliError{code: exitCode(err), err: err, msg: strings.TrimPrefix(err.Error(), "keyward: ")}
	}
}

func (rc *remoteConfig) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&rc.server, "server", "", "keyward's base URL (env KEYWARD_URL; default "+defaultServer+")")
	f.StringVar(&rc.adminKey, "admin-key", "", "the instance's admin key (env KEYWARD_ADMIN_KEY, or a file named by KEYWARD_ADMIN_KEY_FILE)")
	f.StringVarP(&rc.output, "output", "o", "table", "output format: table or json (env KEYWARD_OUTPUT)")
}

// markGroups makes every command without its own action answer an
// unknown subcommand with a usage error instead of its help.
func markGroups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		markGroups(c)
	}
	if cmd.Run != nil || cmd.RunE != nil || !cmd.HasSubCommands() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q; see %s --help", args[0], c.CommandPath(), c.CommandPath())
		}
		return c.Help()
	}
}

// prepare resolves the settings from the environment. It also stands in
// for the root command's hook, so remote commands' flags are not filled
// from KEYWARD_<FLAG> wholesale: only the variables documented here apply.
func (rc *remoteConfig) prepare(cmd *cobra.Command, _ []string) error {
	if !flagChanged(cmd, "server") {
		rc.server = defaultServer
		if v := strings.TrimSpace(os.Getenv("KEYWARD_URL")); v != "" {
			rc.server = v
		}
	}
	if !flagChanged(cmd, "output") {
		if v := strings.TrimSpace(os.Getenv("KEYWARD_OUTPUT")); v != "" {
			rc.output = v
		}
	}
	if !flagChanged(cmd, "admin-key") {
		v, err := envSecretValue("KEYWARD_ADMIN_KEY")
		if err != nil {
			return &cliError{code: exitUsage, err: err}
		}
		rc.adminKey = v
	}
	rc.adminKey = strings.TrimSpace(rc.adminKey)
	switch rc.output {
	case "table", "json":
	default:
		return usageErrorf("--output must be table or json, not %q", rc.output)
	}
	u, err := url.Parse(rc.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--server must be an http:// or https:// URL")
	}
	rc.server = strings.TrimRight(rc.server, "/")
	return nil
}

// serverForDisplay is the server's URL without userinfo or query.
func (rc *remoteConfig) serverForDisplay() string {
	u, err := url.Parse(rc.server)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

func flagChanged(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && f.Changed
}

// envSecretValue reads a secret from NAME, or from the file named by
// NAME_FILE.
func envSecretValue(name string) (string, error) {
	if v, ok := os.LookupEnv(name); ok {
		return strings.TrimSpace(v), nil
	}
	if path, ok := os.LookupEnv(name + "_FILE"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: cannot read the file", name)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// needAdminKey refuses to call the server without an admin key.
func (rc *remoteConfig) needAdminKey() error {
	if rc.adminKey == "" {
		return usageErrorf("an admin key is required: pass --admin-key or set KEYWARD_ADMIN_KEY (or KEYWARD_ADMIN_KEY_FILE)")
	}
	return nil
}

// sdk returns an SDK client with the admin key.
func (rc *remoteConfig) sdk() (*client.Client, error) {
	if err := rc.needAdminKey(); err != nil {
		return nil, err
	}
	return rc.sdkWith(rc.adminKey), nil
}

// sdkWith returns an SDK client with key (a machine's, for instance).
func (rc *remoteConfig) sdkWith(key string) *client.Client {
	return client.New(rc.server, key, client.WithTimeout(remoteTimeout), client.WithUserAgent("keyward-cli/"+shortVersion()))
}

func (rc *remoteConfig) json() bool { return rc.output == "json" }

// Output helpers.

// printJSON prints v (raw JSON bytes or any value) as indented JSON.
func printJSON(w io.Writer, v any) error {
	var out bytes.Buffer
	switch b := v.(type) {
	case []byte:
		if len(bytes.TrimSpace(b)) == 0 {
			b = []byte("{}")
		}
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
	case json.RawMessage:
		return printJSON(w, []byte(b))
	default:
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		out.Write(j)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// table writes rows under a header with tabwriter.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// printSecret prints a secret the server hands out, once, labelled.
func printSecret(w io.Writer, label, secret, note string) {
	fmt.Fprintf(w, "\n%s: %s\n", label, secret)
	if note != "" {
		fmt.Fprintf(w, "(%s)\n", note)
	}
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func joinOr(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, ",")
}

// done prints the outcome of a call with no body of its own: a sentence
// for tables, an object for JSON.
func (rc *remoteConfig) done(cmd *cobra.Command, text string, obj map[string]any) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), obj)
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), text)
	return err
}

// exactArgs and friends are cobra's validators with usage exit codes.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }

func minArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.MinimumNArgs(n)) }

func noArgs() cobra.PositionalArgs { return usageArgs(cobra.NoArgs) }

func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &cliError{code: exitUsage, err: err}
		}
		return nil
	}
}

// nonEmpty refuses empty positional arguments.
func nonEmpty(args []string, names ...string) error {
	for i, a := range args {
		if strings.TrimSpace(a) == "" {
			name := "argument"
			if i < len(names) {
				name = names[i]
			}
			return usageErrorf("%s must not be empty", name)
		}
	}
	return nil
}
