package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every server and operator setting is a flag, and each comes from the first
// of these that has it: the command line, KEYWARD_<FLAG> (or, for a secret,
// the file named by KEYWARD_<FLAG>_FILE), the config file (--config or
// KEYWARD_CONFIG), the flag's default. A name keyward does not know, in the
// file or among the KEYWARD_* variables, is an error at start: a misspelt
// setting silently ignored is worse than a refusal.

// envOnly lists the KEYWARD_* variables read directly rather than through a
// flag. Anything that reads a new one must add it here, or serve refuses to
// start when it is set.
var envOnly = []string{
	"KEYWARD_BOOTSTRAP_ADMIN_KEY", "KEYWARD_BOOTSTRAP_ADMIN_KEY_FILE", // serve's first start
	"KEYWARD_URL", "KEYWARD_OUTPUT", // the remote commands
	"KEYWARD_ADMIN_KEY", "KEYWARD_ADMIN_KEY_FILE",
	"KEYWARD_MACHINE_KEY", "KEYWARD_MACHINE_KEY_FILE",
	"KEYWARD_TEST_DATABASE_URL", // the PostgreSQL test runs
	"KEYWARD_TEST_MAIN_ARGS",    // cmd/keyward's tests running their binary as keyward
	"KEYWARD_VERIFY_KEY",        // examples/protected-api, often exported in the same shell
}

// runtimeSettings are the settings a SIGHUP applies; a change to any other
// in the config file is logged as needing a restart.
var runtimeSettings = map[string]bool{"log-level": true, "tls-cert": true, "tls-key": true, "tls-client-ca": true}

const configFlag = "config"

// settings remembers where each flag's value came from, so that a reload
// of the config file changes only what the file decided.
type settings struct {
	configPath string
	source     map[string]string // flag name → "flag", "env", "file" or "default"
	file       map[string]string // the config file's values as last loaded
}

func envName(flag string) string {
	return "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// knownFlags are the flags that the environment and the config file may
// set: the root's and those of every command outside the remote ones, which
// read only their documented variables (see remoteConfig.prepare).
func knownFlags(root *cobra.Command) map[string]*pflag.Flag {
	known := map[string]*pflag.Flag{}
	add := func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != configFlag {
			known[f.Name] = f
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && c.PersistentPreRunE != nil {
			return
		}
		c.PersistentFlags().VisitAll(add)
		c.Flags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return known
}

// checkEnv refuses KEYWARD_* variables that nothing reads.
func checkEnv(known map[string]*pflag.Flag) error {
	names := map[string]bool{envName(configFlag): true}
	for _, n := range envOnly {
		names[n] = true
	}
	for name := range known {
		names[envName(name)] = true
		if secretFlags[name] {
			names[envName(name)+"_FILE"] = true
		}
	}
	var errs []error
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "KEYWARD_") || names[name] {
			continue
		}
		errs = append(errs, fmt.Errorf("unknown environment variable %s%s", name, suggest(name, names)))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// loadConfigFile reads a YAML file of flag names and values.
func loadConfigFile(path string, known map[string]*pflag.Flag) (map[string]string, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	names := map[string]bool{}
	for name := range known {
		names[name] = true
	}
	values := map[string]string{}
	var errs []error
	for _, key := range k.Keys() {
		if !names[key] {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q%s", path, key, suggest(key, names)))
			continue
		}
		switch v := k.Get(key).(type) {
		case nil:
			values[key] = ""
		case string:
			values[key] = v
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			values[key] = strings.Join(parts, ",")
		default:
			values[key] = fmt.Sprint(v)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return values, errors.Join(errs...)
}

// resolve fills every flag of cmd not given on the command line, from the
// environment, then the config file.
func (s *settings) resolve(cmd *cobra.Command) error {
	known := knownFlags(cmd.Root())
	if err := checkEnv(known); err != nil {
		return err
	}
	if f := cmd.Flags().Lookup(configFlag); f == nil || !f.Changed {
		s.configPath = os.Getenv(envName(configFlag))
	}
	s.file, s.source = map[string]string{}, map[string]string{}
	if s.configPath != "" {
		var err error
		if s.file, err = loadConfigFile(s.configPath, known); err != nil {
			return err
		}
	}
	var errs []error
	visit := func(fl *pflag.Flag) {
		if fl.Name == configFlag || s.source[fl.Name] != "" {
			return
		}
		env := envName(fl.Name)
		if fl.Changed {
			s.source[fl.Name] = "flag"
			return
		}
		if v, ok := os.LookupEnv(env); ok {
			s.source[fl.Name] = "env"
			errs = append(errs, wrapErr(env, fl.Value.Set(v)))
			return
		}
		if path, ok := os.LookupEnv(env + "_FILE"); ok && secretFlags[fl.Name] {
			s.source[fl.Name] = "env"
			b, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", env, err))
				return
			}
			errs = append(errs, wrapErr(env+"_FILE", fl.Value.Set(strings.TrimSpace(string(b)))))
			return
		}
		if v, ok := s.file[fl.Name]; ok {
			s.source[fl.Name] = "file"
			errs = append(errs, wrapErr("config file "+s.configPath+": "+fl.Name, fl.Value.Set(v)))
			return
		}
		s.source[fl.Name] = "default"
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return errors.Join(errs...)
}

func wrapErr(where string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", where, err)
}

// reload reads the config file again and applies what changed in it to the
// runtime settings of cmd whose value the file (or the default) decided; the
// names of the other changed settings come back in restart. A file that no
// longer loads changes nothing.
func (s *settings) reload(cmd *cobra.Command) (applied, restart []string, err error) {
	if s.configPath == "" {
		return nil, nil, nil
	}
	next, err := loadConfigFile(s.configPath, knownFlags(cmd.Root()))
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	seen := map[string]bool{}
	visit := func(fl *pflag.Flag) {
		src := s.source[fl.Name]
		if seen[fl.Name] || (src != "file" && src != "default") {
			return
		}
		seen[fl.Name] = true
		old, hadOld := s.file[fl.Name]
		v, has := next[fl.Name]
		if old == v && hadOld == has {
			return
		}
		if !runtimeSettings[fl.Name] {
			restart = append(restart, fl.Name)
			return
		}
		if !has {
			v = fl.DefValue
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %s: %w", s.configPath, fl.Name, err))
			return
		}
		applied = append(applied, fl.Name)
		s.source[fl.Name] = map[bool]string{true: "file", false: "default"}[has]
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	s.file = next
	sort.Strings(applied)
	sort.Strings(restart)
	return applied, restart, errors.Join(errs...)
}

// suggest names the closest known name, when one is close enough to be a
// likely misspelling.
func suggest(name string, known map[string]bool) string {
	best, bestDist := "", -1
	for k := range known {
		d := editDistance(name, k)
		if bestDist < 0 || d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	longest := max(len(strings.TrimPrefix(name, "KEYWARD_")), len(strings.TrimPrefix(best, "KEYWARD_")))
	if best == "" || bestDist*3 > longest*2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
