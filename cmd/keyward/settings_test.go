package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeTakesEachSettingFromFlagThenEnvThenFileThenDefault(t *testing.T) {
	dir := t.TempDir()
	fileDataDir, envDataDir := filepath.Join(dir, "from-file"), filepath.Join(dir, "from-env")
	config := filepath.Join(dir, "keyward.yaml")
	// addr: overridden by the --addr flag startServe passes; data-dir:
	// overridden by the environment; log-format: only in the file.
	writeFile(t, config, []byte("addr: 127.0.0.1:1\ndata-dir: "+fileDataDir+"\nlog-format: json\n"))
	t.Setenv("KEYWARD_DATA_DIR", envDataDir)

	url, stderr := startServe(t, "--config", config)
	resp, err := http.Get(url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("the --addr flag lost to the file: %v", err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(envDataDir, sqliteFile)); err != nil {
		t.Fatalf("KEYWARD_DATA_DIR lost to the file: %v", err)
	}
	if _, err := os.Stat(fileDataDir); err == nil {
		t.Fatal("the file's data-dir was used despite KEYWARD_DATA_DIR")
	}
	if !strings.Contains(stderr.String(), `"msg":"keyward listening"`) {
		t.Fatalf("log-format from the file was not applied:\n%s", stderr)
	}
}

func TestKEYWARD_CONFIGNamesTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "keyward.yaml")
	writeFile(t, config, []byte("data-dir: "+filepath.Join(dir, "data")+"\n"))
	t.Setenv("KEYWARD_CONFIG", config) // the env form of --config
	startServe(t)
	if _, err := os.Stat(filepath.Join(dir, "data", sqliteFile)); err != nil {
		t.Fatalf("KEYWARD_CONFIG's data-dir was not used: %v", err)
	}
}

func TestStartRefusesUnknownSettingsNamingTheOffender(t *testing.T) {
	cases := map[string]struct {
		file string
		env  map[string]string
		want string
	}{
		"a misspelt environment variable": {env: map[string]string{"KEYWARD_ADRESS": "0.0.0.0:80"},
			want: "unknown environment variable KEYWARD_ADRESS (did you mean KEYWARD_ADDR?)"},
		"a variable that nothing reads": {env: map[string]string{"KEYWARD_FROBNICATE": "1"},
			want: "unknown environment variable KEYWARD_FROBNICATE"},
		"a _FILE variable of a setting that is not a secret": {env: map[string]string{"KEYWARD_ADDR_FILE": "/x"},
			want: "unknown environment variable KEYWARD_ADDR_FILE"},
		"a misspelt key in the config file": {file: "adress: 0.0.0.0:80\n",
			want: `unknown key "adress" (did you mean addr?)`},
		"a nested key in the config file": {file: "tls:\n  cert: /x\n",
			want: `unknown key "tls.cert"`},
		"a config file that is not YAML": {file: "addr: [\n", want: "config file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}
			if tc.file != "" {
				config := filepath.Join(dir, "keyward.yaml")
				writeFile(t, config, []byte(tc.file))
				args = append(args, "--config", config)
			}
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs(args)
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if _, statErr := os.Stat(filepath.Join(dir, "data")); statErr == nil {
				t.Fatal("the data dir was created despite the refusal")
			}
		})
	}
}

func TestStartAcceptsTheVariablesKeywardReadsOutsideItsFlags(t *testing.T) {
	dir := t.TempDir()
	for _, name := range envOnly {
		if _, set := os.LookupEnv(name); !set {
			t.Setenv(name, filepath.Join(dir, "unused"))
		}
	}
	t.Setenv("KEYWARD_MASTER_KEY_FILE", filepath.Join(dir, "absent")) // a secret flag's _FILE form is known
	root := newRootCommand(io.Discard, io.Discard)
	root.SetArgs([]string{"instance", "list", "--data-dir", filepath.Join(dir, "data")})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "KEYWARD_MASTER_KEY_FILE") {
		t.Fatalf("want only the absent master key file refused, got %v", err)
	}
}

func TestSIGHUPReloadsTheLogLevelAndReportsWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "keyward.yaml")
	base := "data-dir: " + filepath.Join(dir, "data") + "\n"
	writeFile(t, config, []byte(base+"log-level: info\n"))
	_, stderr, reloaded := startServeReloading(t, "--config", config)

	// At warn the reload's own INFO line is no longer written, while the
	// warning that a changed data-dir needs a restart is.
	writeFile(t, config, []byte("data-dir: "+filepath.Join(dir, "elsewhere")+"\nlog-level: warn\n"))
	if err := hangUp(t, reloaded, stderr); err != nil {
		t.Fatalf("reload: %v", err)
	}
	out := stderr.String()
	if !strings.Contains(out, "restart needed") || !strings.Contains(out, "setting=data-dir") {
		t.Fatalf("a changed data-dir was not reported as needing a restart:\n%s", out)
	}
	if strings.Contains(out, "msg=reloaded") {
		t.Fatalf("log-level warn from the reloaded file was not applied:\n%s", out)
	}

	writeFile(t, config, []byte(base+"log-level: loud\n"))
	if err := hangUp(t, reloaded, stderr); err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Fatalf("a bad log level reloaded without an error naming it: %v", err)
	}
	writeFile(t, config, []byte(base+"log-leve: info\n"))
	if err := hangUp(t, reloaded, stderr); err == nil || !strings.Contains(err.Error(), `unknown key "log-leve"`) {
		t.Fatalf("an unknown key reloaded without an error naming it: %v", err)
	}

	writeFile(t, config, []byte(base+"log-level: info\n"))
	if err := hangUp(t, reloaded, stderr); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !strings.Contains(stderr.String(), "msg=reloaded") {
		t.Fatalf("log-level info from the reloaded file was not applied:\n%s", stderr)
	}
}

func TestSIGHUPLeavesSettingsFromFlagsAndEnvAlone(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "keyward.yaml")
	writeFile(t, config, []byte("data-dir: "+filepath.Join(dir, "data")+"\n"))
	t.Setenv("KEYWARD_LOG_LEVEL", "info")
	_, stderr, reloaded := startServeReloading(t, "--config", config)
	writeFile(t, config, []byte("data-dir: "+filepath.Join(dir, "data")+"\nlog-level: error\naddr: 0.0.0.0:1\n"))
	if err := hangUp(t, reloaded, stderr); err != nil {
		t.Fatalf("reload: %v", err)
	}
	out := stderr.String()
	if !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("the file's log-level overrode KEYWARD_LOG_LEVEL:\n%s", out)
	}
	if strings.Contains(out, "setting=addr") {
		t.Fatalf("a file change to a setting given by flag was reported:\n%s", out)
	}
}

func TestSuggestNamesOnlyACloseName(t *testing.T) {
	known := map[string]bool{"KEYWARD_ADDR": true, "KEYWARD_DATA_DIR": true, "KEYWARD_LOG_LEVEL": true}
	cases := map[string]string{
		"KEYWARD_ADRESS":    " (did you mean KEYWARD_ADDR?)",
		"KEYWARD_DATADIR":   " (did you mean KEYWARD_DATA_DIR?)",
		"KEYWARD_LOGLEVEL":  " (did you mean KEYWARD_LOG_LEVEL?)",
		"KEYWARD_HOSTNAME":  "",
		"KEYWARD_PROFILING": "",
	}
	for name, want := range cases {
		if got := suggest(name, known); got != want {
			t.Errorf("suggest(%s) = %q, want %q", name, got, want)
		}
	}
}
